package media

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// events records EventSink calls.
type events struct {
	mu  sync.Mutex
	log []string
}

func (ev *events) PublishStarted(_ context.Context, s StreamInfo) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.log = append(ev.log, "start "+s.Name)
}

func (ev *events) PublishStopped(_ context.Context, s StreamInfo) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.log = append(ev.log, "stop "+s.Name)
}

func (ev *events) String() string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return strings.Join(ev.log, ",")
}

// TestPublisherGrace drops the publisher and brings it back within the grace
// period: the reader stays connected and keeps receiving.
func TestPublisherGrace(t *testing.T) {
	needFFmpeg(t)
	ev := &events{}
	e := newTestEngine(t, Config{PublisherGrace: 3 * time.Second, Events: ev})
	srv := newFLVServer(t, e)
	pub := publishClip(t, rtmpURL(e, "/live/room6"))
	waitLive(t, e, "room6")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	counter := startFLVCounter(t, ctx, srv.URL+"/live/room6.flv")

	waitFor(t, 5*time.Second, "reader receiving", func() bool { return counter.Bytes() > 100000 })
	pub.Kill()
	waitFor(t, 5*time.Second, "stream not live", func() bool {
		st, ok := e.Stream("room6")
		return ok && !st.Publishing && !st.Live && st.ReaderCount == 1
	})
	before := counter.Bytes()
	publishClip(t, rtmpURL(e, "/live/room6"))
	waitFor(t, 10*time.Second, "reader receiving again", func() bool { return counter.Bytes() > before+200000 })
	if err := counter.Err(); err != nil {
		t.Fatalf("reader: %v", err)
	}
	if got := ev.String(); got != "start room6" {
		t.Errorf("events %q", got)
	}
	if counter.NonMonotonic() {
		t.Errorf("timestamps went backwards across the takeover")
	}
}

// TestPublisherGraceExpires checks that the stream ends, readers are
// disconnected and PublishStopped is called once the grace period ends.
func TestPublisherGraceExpires(t *testing.T) {
	needFFmpeg(t)
	ev := &events{}
	e := newTestEngine(t, Config{PublisherGrace: 500 * time.Millisecond, Events: ev})
	srv := newFLVServer(t, e)
	pub := publishClip(t, rtmpURL(e, "/live/room7"))
	waitLive(t, e, "room7")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	counter := startFLVCounter(t, ctx, srv.URL+"/live/room7.flv")
	waitFor(t, 5*time.Second, "reader receiving", func() bool { return counter.Bytes() > 10000 })
	pub.Kill()
	waitFor(t, 5*time.Second, "stream ended", func() bool {
		_, ok := e.Stream("room7")
		return !ok && counter.IsDone()
	})
	if err := counter.Err(); err != nil {
		t.Errorf("HTTP-FLV reader did not end cleanly: %v", err)
	}
	waitFor(t, 2*time.Second, "events", func() bool { return ev.String() == "start room7,stop room7" })
	waitFor(t, 2*time.Second, "clients gone", func() bool { return len(e.Clients()) == 0 })
}

// reasonUnavailable is what a client is told when the Authorizer failed.
const reasonUnavailable = "service unavailable"

// brokenAuth fails the way an Authorizer does when its database is down,
// and refuses stream "closed" with a reason meant for the client.
type brokenAuth struct{}

func (brokenAuth) check(req AuthRequest) error {
	if req.Stream == "closed" {
		return Refusal("the room is closed for now")
	}
	return fmt.Errorf("looking up the stream: dial tcp 10.1.2.3:3306: connect: connection refused")
}

func (a brokenAuth) AuthorizePublish(_ context.Context, req AuthRequest) error { return a.check(req) }
func (a brokenAuth) AuthorizePlay(_ context.Context, req AuthRequest) error    { return a.check(req) }

// TestAuthorizerFailureNotSent checks that an Authorizer's failure reaches
// the log in full but clients only as "service unavailable", over RTMP
// (publish and play) and HTTP-FLV, while a refusal's reason reaches them.
func TestAuthorizerFailureNotSent(t *testing.T) {
	needFFmpeg(t)
	logs := &mediatest.LockedBuffer{}
	e := newTestEngine(t, Config{Authorizer: brokenAuth{}, DisableRTSP: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	const secret = "10.1.2.3"

	p := startFFmpeg(t, "-re", "-i", testClip(t), "-c", "copy", "-f", "flv", rtmpURL(e, "/live/room8"))
	out := p.WaitExit(t, 10*time.Second)
	if p.Err == nil || strings.Contains(out, secret) || !strings.Contains(out, reasonUnavailable) {
		t.Errorf("publisher refused with %v: %q", p.Err, out)
	}
	_, err := ffprobe(t, rtmpURL(e, "/live/room8"))
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), reasonUnavailable) {
		t.Errorf("player refused with %v", err)
	}
	_, err = ffprobe(t, rtmpURL(e, "/live/closed"))
	if err == nil || !strings.Contains(err.Error(), "the room is closed for now") {
		t.Errorf("refused player: %v", err)
	}

	srv := newFLVServer(t, e)
	res, err := http.Get(srv.URL + "/live/room8.flv")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), secret) || !strings.Contains(string(body), reasonUnavailable) {
		t.Errorf("HTTP-FLV: %d %q, want 503 saying the service is unavailable", res.StatusCode, body)
	}
	res, err = http.Get(srv.URL + "/live/closed.flv")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "the room is closed for now") {
		t.Errorf("HTTP-FLV of a refused stream: %d %q, want 403 with the reason", res.StatusCode, body)
	}

	if !strings.Contains(logs.String(), "dial tcp 10.1.2.3:3306") {
		t.Errorf("the failure is not logged: %s", logs.String())
	}
}

package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

type denyAll struct{}

func (denyAll) AuthorizePublish(context.Context, AuthRequest) error {
	return Refusal("invalid sign")
}

func (denyAll) AuthorizePlay(context.Context, AuthRequest) error {
	return Refusal("invalid sign")
}

// signAuth accepts sign=good only, and records requests.
type signAuth struct {
	mu   sync.Mutex
	reqs []AuthRequest
}

func (a *signAuth) check(req AuthRequest) error {
	a.mu.Lock()
	a.reqs = append(a.reqs, req)
	a.mu.Unlock()
	switch req.Query.Get("sign") {
	case "good":
		return nil
	case "":
		return Refusal("missing sign")
	}
	return fmt.Errorf("checking the sign: %w", &RefusalError{Reason: "wrong or expired sign", Err: errors.New("mac mismatch")})
}

func (a *signAuth) AuthorizePublish(_ context.Context, req AuthRequest) error { return a.check(req) }
func (a *signAuth) AuthorizePlay(_ context.Context, req AuthRequest) error    { return a.check(req) }

func (a *signAuth) last() AuthRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reqs[len(a.reqs)-1]
}

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

// waitExit waits for ffmpeg to exit and returns its stderr.
func waitExit(t *testing.T, p *ffmpegProc, timeout time.Duration) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("ffmpeg still running after %v (silent hang?); stderr: %s", timeout, p.stderr.String())
	}
	return p.stderr.String()
}

func TestRTMPRefusals(t *testing.T) {
	needFFmpeg(t)
	auth := &signAuth{}
	e := newTestEngine(t, Config{Authorizer: auth})

	// OBS style: the sign in the stream key.
	pub := publishClip(t, rtmpURL(e, "/live/room4?sign=good"))
	waitLive(t, e, "room4")
	if req := auth.last(); req.Stream != "room4" || req.Protocol != ProtocolRTMP || !req.RemoteIP.IsLoopback() {
		t.Errorf("auth request %+v", req)
	}

	for _, c := range []struct {
		name, url, want string
	}{
		{"no sign", "/live/room5", "missing sign"},
		{"wrong sign", "/live/room5?sign=bad", "wrong or expired sign"},
		{"second publisher", "/live/room4?sign=good", "already being published"},
		{"bad app", "/other/room5?sign=good", "unknown application"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := startFFmpeg(t, "-re", "-i", testClip(t), "-c", "copy", "-f", "flv", rtmpURL(e, c.url))
			out := waitExit(t, p, 10*time.Second)
			if p.err == nil {
				t.Fatalf("ffmpeg succeeded")
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("ffmpeg stderr %q does not contain %q", out, c.want)
			}
		})
	}

	// players
	if _, err := ffprobe(t, rtmpURL(e, "/live/room4?sign=bad")); err == nil || !strings.Contains(err.Error(), "wrong or expired sign") {
		t.Errorf("play with a bad sign: %v", err)
	}
	if _, err := ffprobe(t, rtmpURL(e, "/live/nosuch?sign=good")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("play of an unknown stream: %v", err)
	}
	// sign in the tcUrl/app query
	ss, err := ffprobe(t, "rtmp://"+e.RTMPAddr().String()+"/live?sign=good/room4", "-rtmp_app", "live?sign=good", "-rtmp_playpath", "room4")
	if err != nil {
		t.Fatal(err)
	}
	checkClipStreams(t, ss)

	// the first publisher is unaffected.
	select {
	case <-pub.done:
		t.Fatalf("first publisher ended: %s", pub.stderr.String())
	default:
	}
	st, ok := e.Stream("room4")
	if !ok || !st.Live || st.PublisherIP.String() != "127.0.0.1" {
		t.Errorf("stream after refusals: %+v", st)
	}
	if e.Counters().ClientsRefused < 5 {
		t.Errorf("counters %+v", e.Counters())
	}
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

	waitFor(t, 5*time.Second, "reader receiving", func() bool { return counter.bytes() > 100000 })
	pub.kill()
	waitFor(t, 5*time.Second, "stream not live", func() bool {
		st, ok := e.Stream("room6")
		return ok && !st.Publishing && !st.Live && st.ReaderCount == 1
	})
	before := counter.bytes()
	publishClip(t, rtmpURL(e, "/live/room6"))
	waitFor(t, 10*time.Second, "reader receiving again", func() bool { return counter.bytes() > before+200000 })
	if err := counter.err(); err != nil {
		t.Fatalf("reader: %v", err)
	}
	if got := ev.String(); got != "start room6" {
		t.Errorf("events %q", got)
	}
	if counter.nonMonotonic() {
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
	waitFor(t, 5*time.Second, "reader receiving", func() bool { return counter.bytes() > 10000 })
	pub.kill()
	waitFor(t, 5*time.Second, "stream ended", func() bool {
		_, ok := e.Stream("room7")
		return !ok && counter.isDone()
	})
	if err := counter.err(); err != nil {
		t.Errorf("HTTP-FLV reader did not end cleanly: %v", err)
	}
	waitFor(t, 2*time.Second, "events", func() bool { return ev.String() == "start room7,stop room7" })
	waitFor(t, 2*time.Second, "clients gone", func() bool { return len(e.Clients()) == 0 })
}

func TestParseRTMPTarget(t *testing.T) {
	for _, c := range []struct {
		app, tcURL, key string
		name, sign      string
		err             bool
	}{
		{"live", "rtmp://h/live", "room?sign=a", "room", "a", false},
		{"live", "rtmp://h/live?sign=t", "room", "room", "t", false},
		{"live?sign=b", "rtmp://h/live?sign=b", "room", "room", "b", false},
		{"live?sign=b", "rtmp://h/live?sign=b", "room?sign=c", "room", "c", false},
		{"live/", "rtmp://h/live/", "room", "room", "", false},
		{"", "rtmp://h/", "live/room?sign=d", "room", "d", false},
		{"app", "rtmp://h/app", "room", "", "", true},
		{"live/room", "rtmp://h/live/room?sign=e", "", "room", "e", false},
		{"live/room?sign=f", "rtmp://h/live/room", "", "room", "f", false},
		{"live", "rtmp://h/live", "", "", "", true},
		{"live", "rtmp://h/live", "a/b", "", "", true},
		{"live", "rtmp://h/live", "room?sign=%zz", "", "", true},
		{"live", "rtmp://h/live", "..", "", "", true},
	} {
		name, q, err := parseRTMPTarget(c.app, c.tcURL, c.key)
		if (err != nil) != c.err || name != c.name || (err == nil && q.Get("sign") != c.sign) {
			t.Errorf("parseRTMPTarget(%q, %q, %q) = %q, %v, %v", c.app, c.tcURL, c.key, name, q, err)
		}
	}
}

func FuzzParseRTMPTarget(f *testing.F) {
	f.Add("live", "rtmp://h/live?sign=1", "room?sign=2")
	f.Add("", "", "live/x")
	f.Add("live?a=%", "rtmp://[::1]/live", "?sign=3")
	f.Fuzz(func(t *testing.T, app, tcURL, key string) {
		name, q, err := parseRTMPTarget(app, tcURL, key)
		if err != nil {
			return
		}
		if !validStreamName(name) || q == nil {
			t.Fatalf("accepted %q %v", name, q)
		}
	})
}

func FuzzParseHTTPFLVPath(f *testing.F) {
	f.Add("/live/room.flv")
	f.Add("room.flv")
	f.Add("/live/.flv")
	f.Fuzz(func(t *testing.T, p string) {
		name, err := parseHTTPFLVPath(p)
		if err == nil && !validStreamName(name) {
			t.Fatalf("accepted %q", name)
		}
	})
}

var _ = url.Values{}

func FuzzParseRTMPCommand(f *testing.F) {
	f.Add(uint8(20), []byte{2, 0, 7, 'c', 'o', 'n', 'n', 'e', 'c', 't', 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 5})
	f.Add(uint8(17), []byte{0, 2, 0, 4, 'p', 'l', 'a', 'y', 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 2, 0, 1, 'x'})
	f.Add(uint8(18), []byte{2, 0, 13, '@', 's', 'e', 't', 'D', 'a', 't', 'a', 'F', 'r', 'a', 'm', 'e'})
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		if typ == rtmpTypeDataAMF0 {
			metadataBody(b)
			return
		}
		parseRTMPCommand(typ, b) //nolint:errcheck
	})
}

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
	logs := &lockedBuffer{}
	e := newTestEngine(t, Config{Authorizer: brokenAuth{}, DisableRTSP: true,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	const secret = "10.1.2.3"

	p := startFFmpeg(t, "-re", "-i", testClip(t), "-c", "copy", "-f", "flv", rtmpURL(e, "/live/room8"))
	out := waitExit(t, p, 10*time.Second)
	if p.err == nil || strings.Contains(out, secret) || !strings.Contains(out, reasonUnavailable) {
		t.Errorf("publisher refused with %v: %q", p.err, out)
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
	if res.StatusCode != http.StatusForbidden || strings.Contains(string(body), secret) || !strings.Contains(string(body), reasonUnavailable) {
		t.Errorf("HTTP-FLV: %d %q", res.StatusCode, body)
	}

	if !strings.Contains(logs.String(), "dial tcp 10.1.2.3:3306") {
		t.Errorf("the failure is not logged: %s", logs.String())
	}
}

func TestPublicReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{Refusal("unknown stream"), "unknown stream"},
		{fmt.Errorf("publish refused: %w", &RefusalError{Reason: "wrong sign", Err: errors.New("mac 1234")}), "wrong sign"},
		{&RefusalError{Reason: reasonUnavailable, Err: errors.New("dial tcp 10.1.2.3:3306")}, reasonUnavailable},
		{fmt.Errorf("%w: x", ErrStreamNotFound), "stream not found: x"},
		{Refusal("bad ?sign=secret"), "bad "},
		{Refusal("line\nbreak"), "line"},
		{Refusal(strings.Repeat("é", 100)), strings.Repeat("é", 60)},
	} {
		if got := publicReason(c.err); got != c.want {
			t.Errorf("publicReason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

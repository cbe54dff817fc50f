package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var secret = []byte("0123456789abcdef-test-secret")

// receiver records what it was sent, after checking the signature.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	events []Event
	ids    []string
	bad    int
	// fail, if set, answers 500 to the first fail requests.
	fail atomic.Int32
	// hold, if set, delays every answer until it is closed.
	hold chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := Verify(secret, r.Header.Get(HeaderSignature), body, time.Minute, time.Now()); err != nil {
		rc.mu.Lock()
		rc.bad++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if rc.hold != nil {
		<-rc.hold
	}
	if rc.fail.Add(-1) >= 0 {
		http.Error(w, "not now", http.StatusInternalServerError)
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.t.Errorf("receiver: %v", err)
	}
	if got := r.Header.Get(HeaderEvent); got != ev.Type {
		rc.t.Errorf("event header %q, body type %q", got, ev.Type)
	}
	rc.mu.Lock()
	rc.events = append(rc.events, ev)
	rc.ids = append(rc.ids, r.Header.Get(HeaderDelivery))
	rc.mu.Unlock()
}

func (rc *receiver) got() []Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Event(nil), rc.events...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newDispatcher(t *testing.T, cfg Config) *Dispatcher {
	t.Helper()
	cfg.Secret = secret
	if cfg.Backoff == 0 {
		cfg.Backoff = 5 * time.Millisecond
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Close(ctx) //nolint:errcheck
	})
	return d
}

func TestDeliveredSignedInOrder(t *testing.T) {
	rc := &receiver{t: t}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	d := newDispatcher(t, Config{URLs: []string{srv.URL}})
	for i := range 50 {
		d.Send(Event{Type: PublishStart, Stream: "s1", Data: map[string]int{"n": i}})
		d.Send(Event{Type: PlayStart, Stream: "s2", Data: map[string]int{"n": i}})
	}
	d.Send(Event{Type: "room.comment", Stream: "s1"}) // not selected by default
	waitFor(t, "100 deliveries", func() bool { return len(rc.got()) == 100 })
	next := map[string]int{}
	for _, ev := range rc.got() {
		n := int(ev.Data.(map[string]any)["n"].(float64))
		if n != next[ev.Stream] {
			t.Fatalf("stream %s: got event %d, want %d (out of order)", ev.Stream, n, next[ev.Stream])
		}
		next[ev.Stream]++
		if ev.ID == "" || ev.Time == 0 {
			t.Fatalf("event without id or time: %+v", ev)
		}
	}
	if rc.bad != 0 {
		t.Fatalf("%d requests had a bad signature", rc.bad)
	}
	// the receiver has the last event before the dispatcher counts it.
	waitFor(t, "100 counted", func() bool { return d.Stats().Delivered == 100 })
	if s := d.Stats(); s.Delivered != 100 || s.Failed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRetriedInOrderWithTheSameID(t *testing.T) {
	rc := &receiver{t: t}
	rc.fail.Store(3)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	d := newDispatcher(t, Config{URLs: []string{srv.URL}})
	d.Send(Event{ID: "first", Type: PublishStart, Stream: "s"})
	d.Send(Event{ID: "second", Type: PublishStop, Stream: "s"})
	waitFor(t, "2 deliveries", func() bool { return len(rc.got()) == 2 })
	got := rc.got()
	if got[0].ID != "first" || got[1].ID != "second" {
		t.Fatalf("order after retries: %s, %s", got[0].ID, got[1].ID)
	}
	if rc.ids[0] != "first" {
		t.Fatalf("delivery header %q, want the event id", rc.ids[0])
	}
	waitFor(t, "2 counted", func() bool { return d.Stats().Delivered == 2 })
	if s := d.Stats(); s.Failed != 3 || s.Delivered != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestGivenUpAfterMaxAttempts(t *testing.T) {
	rc := &receiver{t: t}
	rc.fail.Store(1000)
	srv := httptest.NewServer(rc)
	defer srv.Close()
	d := newDispatcher(t, Config{URLs: []string{srv.URL}, MaxAttempts: 3})
	d.Send(Event{Type: PublishStart, Stream: "s"})
	waitFor(t, "giving up", func() bool { return d.Stats().GivenUp == 1 })
	if s := d.Stats(); s.Failed != 3 {
		t.Fatalf("stats %+v", s)
	}
}

// A receiver that does not answer holds up only its own queue: Send
// returns at once and another receiver gets everything.
func TestSlowReceiverBlocksNothing(t *testing.T) {
	slow := &receiver{t: t, hold: make(chan struct{})}
	slowSrv := httptest.NewServer(slow)
	defer slowSrv.Close()
	defer close(slow.hold)
	fast := &receiver{t: t}
	fastSrv := httptest.NewServer(fast)
	defer fastSrv.Close()
	d := newDispatcher(t, Config{URLs: []string{slowSrv.URL, fastSrv.URL}, QueueSize: 10, Timeout: 20 * time.Second})
	start := time.Now()
	for range 100 {
		d.Send(Event{Type: PlayStart, Stream: "s"})
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Send took %v with a stuck receiver", el)
	}
	waitFor(t, "the fast receiver", func() bool { return len(fast.got()) >= 10 })
	if s := d.Stats(); s.Dropped == 0 {
		t.Fatalf("the stuck receiver's full queue dropped nothing: %+v", s)
	}
}

func TestSelected(t *testing.T) {
	d := &Dispatcher{cfg: Config{URLs: []string{"http://x"}, Events: []string{"room.*", PublishStart}}}
	for typ, want := range map[string]bool{"room.comment": true, "room.gift": true, PublishStart: true, PublishStop: false} {
		if got := d.Selected(typ); got != want {
			t.Errorf("Selected(%q) = %v, want %v", typ, got, want)
		}
	}
	var none *Dispatcher
	if none.Selected(PublishStart) {
		t.Error("a nil dispatcher selects events")
	}
	none.Send(Event{Type: PublishStart}) // must not panic
}

func TestVerify(t *testing.T) {
	body := []byte(`{"type":"publish.start"}`)
	now := time.Unix(1_700_000_000, 0)
	h := Sign(secret, now, body)
	if err := Verify(secret, h, body, time.Minute, now.Add(30*time.Second)); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	if err := Verify(secret, h, body, time.Minute, now.Add(2*time.Minute)); !errors.Is(err, ErrStale) {
		t.Fatalf("replayed later: %v", err)
	}
	if err := Verify(secret, h, []byte(`{"type":"publish.stop"}`), time.Minute, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("another body: %v", err)
	}
	if err := Verify([]byte("another secret, 16+ bytes"), h, body, time.Minute, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("another secret: %v", err)
	}
	other := strings.Replace(h, "t=1700000000", "t=1700000030", 1)
	if err := Verify(secret, other, body, time.Minute, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a changed time kept the signature valid: %v", err)
	}
	for _, bad := range []string{"", "t=,v1=", "v1=abc", "t=1", "garbage"} {
		if err := Verify(secret, bad, body, time.Minute, now); err == nil {
			t.Fatalf("header %q accepted", bad)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	if _, err := New(Config{Secret: []byte("short")}); err == nil {
		t.Error("short secret accepted")
	}
	if _, err := New(Config{Secret: secret, URLs: []string{"ftp://x"}}); err == nil {
		t.Error("non-HTTP URL accepted")
	}
}

func TestGate(t *testing.T) {
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		body, _ := io.ReadAll(r.Body)
		if err := Verify(secret, r.Header.Get(HeaderSignature), body, time.Minute, time.Now()); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var req GateRequest
		json.Unmarshal(body, &req) //nolint:errcheck
		switch req.Stream {
		case "banned":
			fmt.Fprint(w, `{"allow":false,"reason":"this stream is closed by the operator"}`)
		case "slow":
			time.Sleep(500 * time.Millisecond)
			fmt.Fprint(w, `{"allow":true}`)
		case "broken":
			http.Error(w, "oops", http.StatusBadGateway)
		default:
			fmt.Fprint(w, `{"allow":true}`)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	g, err := NewGate(GateConfig{URL: srv.URL, Secret: secret, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(ctx, GateRequest{Action: "play", Stream: "ok"}); err != nil {
		t.Fatalf("allowed client refused: %v", err)
	}
	err = g.Check(ctx, GateRequest{Action: "publish", Stream: "banned"})
	if !errors.Is(err, ErrGateRefused) || !strings.Contains(err.Error(), "closed by the operator") {
		t.Fatalf("refusal: %v", err)
	}
	for _, s := range []string{"slow", "broken"} {
		if err := g.Check(ctx, GateRequest{Action: "play", Stream: s}); !errors.Is(err, ErrGateRefused) {
			t.Fatalf("%s hook with deny-on-error: %v", s, err)
		}
	}
	open, _ := NewGate(GateConfig{URL: srv.URL, Secret: secret, Timeout: 100 * time.Millisecond, AllowOnError: true})
	start := time.Now()
	if err := open.Check(ctx, GateRequest{Action: "play", Stream: "slow"}); err != nil {
		t.Fatalf("slow hook with allow-on-error: %v", err)
	}
	if el := time.Since(start); el > 400*time.Millisecond {
		t.Fatalf("the gate waited %v past its timeout", el)
	}
	if err := open.Check(ctx, GateRequest{Action: "play", Stream: "banned"}); !errors.Is(err, ErrGateRefused) {
		t.Fatalf("allow-on-error admitted an explicit refusal: %v", err)
	}
}

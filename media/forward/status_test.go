package forward

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestReasonHidesTheKey: a failure's reason never shows the key, raw or
// escaped, and is kept short.
func TestReasonHidesTheKey(t *testing.T) {
	p := &pusher{target: Target{Key: "room_1?sign=123-abc def"}}
	for _, err := range []error{
		errors.New(`bad result: &{onStatus [<nil> map[description:room_1?sign=123-abc def]]}`),
		errors.New("publish room_1%3Fsign%3D123-abc%20def refused"),
		errors.New("publish room_1%3Fsign=123-abc%20def refused"),
		errors.New(strings.Repeat("x", 500)),
	} {
		r := p.plain(err)
		if strings.Contains(r, "sign=123") || strings.Contains(r, "123-abc") || len(r) > maxReason+4 {
			t.Errorf("reason %q", r)
		}
	}
	if p.plain(nil) == "" {
		t.Error("no reason for a connection that ended")
	}
}

// TestStates: a pusher starts connecting; live counts a connection; a
// state change moves Since, the same state does not.
func TestStates(t *testing.T) {
	p := &pusher{state: StateConnecting, since: time.Now().Add(-time.Minute), s: nil}
	st := func() (State, string, time.Time, uint64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.state, p.reason, p.since, p.connects
	}
	_, _, since0, _ := st()
	p.setState(StateConnecting, "")
	if _, _, since, _ := st(); !since.Equal(since0) {
		t.Fatal("the same state moved since")
	}
	p.setState(StateLive, "")
	if s, _, since, n := st(); s != StateLive || n != 1 || !since.After(since0) {
		t.Fatalf("live: %v %v %d", s, since, n)
	}
	p.setState(StateError, "connection refused")
	if s, r, _, n := st(); s != StateError || r != "connection refused" || n != 1 {
		t.Fatalf("error: %v %q %d", s, r, n)
	}
	p.setState(StateLive, "")
	if _, _, _, n := st(); n != 2 {
		t.Fatalf("connects %d, want 2", n)
	}
}

// TestPublicAddr: only internet addresses are dialed by default.
func TestPublicAddr(t *testing.T) {
	for a, want := range map[string]bool{
		"203.0.113.9": true, "8.8.8.8": true, "2001:4860::8888": true,
		"127.0.0.1": false, "10.1.2.3": false, "192.168.1.1": false, "172.16.0.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fe80::1": false, "fd00::1": false, "::ffff:127.0.0.1": false, "224.0.0.1": false,
	} {
		if got := publicAddr(netip.MustParseAddr(a)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", a, got, want)
		}
	}
	if redactURL("rtmp://u:p@host:1935/app?token=x#k") != "rtmp://host:1935/app" {
		t.Errorf("redactURL: %s", redactURL("rtmp://u:p@host:1935/app?token=x#k"))
	}
}

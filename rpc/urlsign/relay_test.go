package urlsign

import (
	"errors"
	"testing"
	"time"
)

// TestRelayAction: a relay sign (the node credential) checks as a relay
// only; play and publish signs are no relay signs.
func TestRelayAction(t *testing.T) {
	s, err := New([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	relay := mustSign(s, Relay, "room_1", time.Minute)
	if err := s.Check(Relay, "room_1", relay); err != nil {
		t.Fatalf("relay sign: %v", err)
	}
	for _, a := range []Action{Play, Publish} {
		if err := s.Check(a, "room_1", relay); !errors.Is(err, ErrMismatch) {
			t.Errorf("a relay sign checked as %s: %v, want ErrMismatch", a, err)
		}
		if err := s.Check(Relay, "room_1", mustSign(s, a, "room_1", time.Minute)); !errors.Is(err, ErrMismatch) {
			t.Errorf("a %s sign checked as relay: %v, want ErrMismatch", a, err)
		}
	}
}

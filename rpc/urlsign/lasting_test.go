package urlsign

import (
	"errors"
	"testing"
	"time"
)

// TestLasting: a lasting sign is stable, checks at any time for its own
// generation only, allows only its action and stream, and differs with
// the secret.
func TestLasting(t *testing.T) {
	s, err := New([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	key := s.Lasting(Publish, "room_1", 0)
	if key != s.Lasting(Publish, "room_1", 0) {
		t.Fatal("a lasting sign changes between calls")
	}
	for _, later := range []time.Duration{0, 25 * time.Hour, 10 * 365 * 24 * time.Hour} {
		at := s.WithClock(func() time.Time { return time.Now().Add(later) })
		if err := at.CheckGen(Publish, "room_1", 0, key); err != nil {
			t.Errorf("lasting key %v later: %v", later, err)
		}
		if err := at.Check(Publish, "room_1", key); err != nil {
			t.Errorf("lasting key %v later, generation 0 by Check: %v", later, err)
		}
	}
	// A day later an expiring sign has expired, the key has not.
	day := s.WithClock(func() time.Time { return time.Now().Add(24*time.Hour + time.Minute) })
	short, _ := s.Sign(Publish, "room_1", 24*time.Hour)
	if err := day.Check(Publish, "room_1", short); !errors.Is(err, ErrExpired) {
		t.Fatalf("a 24 h sign a day later: %v, want ErrExpired", err)
	}
	// WithClock leaves the original's clock alone.
	if err := s.Check(Publish, "room_1", short); err != nil {
		t.Fatalf("the original signer's clock moved: %v", err)
	}

	g1 := s.Lasting(Publish, "room_1", 1)
	if g1 == key {
		t.Fatal("generations 0 and 1 give the same key")
	}
	for _, c := range []struct {
		name   string
		a      Action
		stream string
		gen    int64
		sign   string
	}{
		{"old generation", Publish, "room_1", 1, key},
		{"new key at the old generation", Publish, "room_1", 0, g1},
		{"other stream", Publish, "room_2", 0, key},
		{"play", Play, "room_1", 0, key},
	} {
		if err := s.CheckGen(c.a, c.stream, c.gen, c.sign); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: %v, want ErrMismatch", c.name, err)
		}
	}
	other, _ := New([]byte("another secret of 16+ bytes"))
	if other.Lasting(Publish, "room_1", 0) == key {
		t.Fatal("the key does not depend on the secret")
	}
}

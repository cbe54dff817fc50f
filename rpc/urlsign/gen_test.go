package urlsign

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestGenerations: a sign works for its generation only; generation 0 is
// the plain sign; the format stays <expires>-<32 hex digits>.
func TestGenerations(t *testing.T) {
	s, err := New([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := s.Sign(Play, "room_1", time.Hour)
	if err := s.CheckGen(Play, "room_1", 0, plain); err != nil {
		t.Fatalf("generation 0 is the plain sign: %v", err)
	}
	if err := s.CheckGen(Play, "room_1", 1, plain); !errors.Is(err, ErrMismatch) {
		t.Fatalf("a generation-0 sign at generation 1: %v, want ErrMismatch", err)
	}
	g3, _ := s.SignGen(Play, "room_1", 3, time.Hour)
	exp, hash, ok := strings.Cut(g3, "-")
	if !ok || len(exp) != 10 || len(hash) != 32 {
		t.Fatalf("sign %q is not Node-Media-Server's format", g3)
	}
	if err := s.CheckGen(Play, "room_1", 3, g3); err != nil {
		t.Fatalf("own generation: %v", err)
	}
	for _, gen := range []int64{0, 2, 4, 30} {
		if err := s.CheckGen(Play, "room_1", gen, g3); !errors.Is(err, ErrMismatch) {
			t.Errorf("a generation-3 sign at generation %d: %v, want ErrMismatch", gen, err)
		}
	}
	if err := s.CheckGen(Publish, "room_1", 3, g3); !errors.Is(err, ErrMismatch) {
		t.Errorf("a play sign cannot publish at any generation: %v", err)
	}
}

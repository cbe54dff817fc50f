package forward

import (
	"testing"
	"time"
)

// TestBackoff: waits double from min up to max, each jittered down by at
// most a fifth, and start again from min after a reset.
func TestBackoff(t *testing.T) {
	for _, r := range []float64{0, 0.5, 0.999} {
		b := backoff{min: time.Second, max: 30 * time.Second, rand: func() float64 { return r }}
		want := []time.Duration{1, 2, 4, 8, 16, 30, 30, 30}
		for i, w := range want {
			w *= time.Second
			got := b.next()
			lo := w - w/5
			if got > w || got < lo {
				t.Fatalf("rand %v, attempt %d: wait %v, want in [%v, %v]", r, i, got, lo, w)
			}
			if r == 0 && got != w {
				t.Fatalf("no jitter, attempt %d: %v, want %v", i, got, w)
			}
		}
		b.reset()
		if got := b.next(); got > time.Second || got < 800*time.Millisecond {
			t.Fatalf("after reset: %v", got)
		}
	}
}

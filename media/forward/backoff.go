package forward

import "time"

// backoff is the wait between a destination's connection attempts: from
// min doubling up to max, each wait jittered, back to min after a push
// that held.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
	// rand returns a number in [0, 1): the jitter's source.
	rand func() float64
}

// next returns the wait before the next attempt and doubles the one
// after it. The wait is cur jittered down by up to a fifth (so that the
// destinations of many rooms that failed together do not retry
// together), never above max.
func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	}
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	j := time.Duration(float64(d) * 0.2 * b.rand())
	return max(d-j, 0)
}

// reset starts again from min.
func (b *backoff) reset() { b.cur = 0 }

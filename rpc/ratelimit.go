package rpc

import (
	"sync"
	"time"
)

// Rate is a token bucket's refill rate and size: Burst actions at once,
// then one every Every. A negative Burst means no limit.
type Rate struct {
	Every time.Duration
	Burst int
}

// limiter keeps one token bucket per key (an action and a user).
type limiter struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the limiter; full buckets are dropped past it.
const maxBuckets = 100_000

func newLimiter() *limiter {
	return &limiter{now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes a token from key's bucket of rate r, if there is one.
func (l *limiter) allow(key string, r Rate) bool {
	if r.Burst <= 0 {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now, r)
		}
		b = &bucket{tokens: float64(r.Burst), at: now}
		l.buckets[key] = b
	}
	if r.Every > 0 {
		b.tokens += float64(now.Sub(b.at)) / float64(r.Every)
		if b.tokens > float64(r.Burst) {
			b.tokens = float64(r.Burst)
		}
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep drops buckets that have refilled: they hold no state worth
// keeping. l.mu is held.
func (l *limiter) sweep(now time.Time, r Rate) {
	full := time.Duration(r.Burst) * r.Every
	for k, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, k)
		}
	}
}

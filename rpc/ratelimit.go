package rpc

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket's refill rate and size: Burst actions at once,
// then one every Every (never again if Every is 0). A negative Burst means
// no limit.
type Rate struct {
	Every time.Duration
	Burst int
}

// limit is r as golang.org/x/time/rate's refill rate.
func (r Rate) limit() rate.Limit {
	if r.Every <= 0 {
		return 0
	}
	return rate.Every(r.Every)
}

// limiter keeps one token bucket per key (an action and a user or an
// address). A key is used with one Rate.
type limiter struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets map[string]*rate.Limiter
}

// maxBuckets bounds the limiter; full buckets are dropped past it.
const maxBuckets = 100_000

func newLimiter() *limiter {
	return &limiter{now: time.Now, buckets: map[string]*rate.Limiter{}}
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
			l.sweep(now)
		}
		b = rate.NewLimiter(r.limit(), r.Burst)
		l.buckets[key] = b
	}
	return b.AllowN(now, 1)
}

// sweep drops buckets that have refilled: they hold no state worth
// keeping. If none has, it starts over rather than grow. l.mu is held.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(b.Burst()) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

// allowShared takes a token from key's bucket of rate r in the cluster's
// limiter, which every node shares, so that a user's limit holds
// whichever node their calls reach. When the cluster cannot answer, this
// node's own limiter decides.
func (s *Server) allowShared(ctx context.Context, key string, r Rate) bool {
	if r.Burst <= 0 {
		return true
	}
	allowed, err := s.cfg.Limiter.Allow(ctx, key, r.Every, r.Burst)
	if err != nil {
		s.limiterFallbacks.Add(1)
		return s.limiter.allow(key, r)
	}
	return allowed
}

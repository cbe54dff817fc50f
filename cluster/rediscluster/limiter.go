package rediscluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
)

// limiterScript takes a token from a bucket by GCRA: the key holds the
// bucket's theoretical arrival time in microseconds of the Redis clock
// (every node reads the same clock), and expires when the bucket is full
// again. A bucket that never refills (every 0) is a counter that lapses
// after a day.
//
// KEYS[1] the bucket; ARGV[1] microseconds per token, ARGV[2] burst.
// Returns 1 when a token was taken, 0 when the bucket is empty.
var limiterScript = redis.NewScript(`
local every = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
if every <= 0 then
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('PEXPIRE', KEYS[1], 86400000) end
  if n > burst then return 0 end
  return 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new = tat + every
if new - now > every * burst then return 0 end
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000))
return 1
`)

// limiterTimeout bounds one Allow; limiterBackoff is how long Allow
// answers ErrUnavailable at once after Redis failed, so that a Redis that
// hangs does not make every rate-limited call wait.
const (
	limiterTimeout = time.Second
	limiterBackoff = 500 * time.Millisecond
)

// Limiter is a cluster.Limiter whose token buckets are kept in Redis, so
// that a limit holds whichever node a user's calls reach.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
	// downUntil is when Allow asks Redis again after a failure (Unix
	// nanoseconds; 0: ask now).
	downUntil atomic.Int64
}

// NewLimiter returns a Limiter keeping its buckets under prefix+"limit:".
func NewLimiter(rdb redis.UniversalClient, prefix string) *Limiter {
	return &Limiter{rdb: rdb, prefix: prefix}
}

// Allow takes a token from key's bucket, which holds burst tokens and
// gets one back every every (never with every 0). A burst of 0 or less
// means no limit. When Redis cannot be reached it answers an error
// wrapping cluster.ErrUnavailable.
func (l *Limiter) Allow(ctx context.Context, key string, every time.Duration, burst int) (bool, error) {
	if burst <= 0 {
		return true, nil
	}
	if until := l.downUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return false, fmt.Errorf("rediscluster: limit %q: %w (failed a moment ago)", key, cluster.ErrUnavailable)
	}
	rctx, cancel := context.WithTimeout(ctx, limiterTimeout)
	defer cancel()
	n, err := limiterScript.Run(rctx, l.rdb, []string{l.prefix + "limit:" + key}, every.Microseconds(), burst).Int()
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up: that says nothing of Redis.
			return false, fmt.Errorf("rediscluster: limit %q: %w", key, ctx.Err())
		}
		l.downUntil.Store(time.Now().Add(limiterBackoff).UnixNano())
		return false, fmt.Errorf("rediscluster: limit %q: %w: %v", key, cluster.ErrUnavailable, err)
	}
	l.downUntil.Store(0)
	return n == 1, nil
}

var _ cluster.Limiter = (*Limiter)(nil)

package rediscluster_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/cluster/rediscluster"
)

// TestLimiterAcrossNodes: three nodes' Limiters share each bucket: a
// burst of 5 lets 5 calls through in all, however they are spread.
func TestLimiterAcrossNodes(t *testing.T) {
	opt, prefix := roomsRedis(t)
	ctx := context.Background()
	var ls []*rediscluster.Limiter
	for range 3 {
		ls = append(ls, rediscluster.NewLimiter(roomsClient(t, opt, ""), prefix))
	}
	for _, c := range []struct {
		key   string
		every time.Duration
		burst int
	}{{"comment:1", time.Hour, 5}, {"once:1", 0, 3}} {
		var allowed atomic.Int32
		var wg sync.WaitGroup
		for _, l := range ls {
			for range 2 {
				wg.Go(func() {
					for range 5 {
						ok, err := l.Allow(ctx, c.key, c.every, c.burst)
						if err != nil {
							t.Error(err)
							return
						}
						if ok {
							allowed.Add(1)
						}
					}
				})
			}
		}
		wg.Wait()
		if n := allowed.Load(); n != int32(c.burst) {
			t.Fatalf("%s: %d of 30 calls allowed, want %d", c.key, n, c.burst)
		}
	}
	// Another key has a bucket of its own, and no burst means no limit.
	if ok, err := ls[0].Allow(ctx, "comment:2", time.Hour, 1); !ok || err != nil {
		t.Fatalf("another key: %v, %v", ok, err)
	}
	if ok, err := ls[0].Allow(ctx, "comment:1", time.Hour, 0); !ok || err != nil {
		t.Fatalf("burst 0: %v, %v", ok, err)
	}
}

// TestLimiterRefills: a bucket gets a token back every every, and holds
// no more than burst.
func TestLimiterRefills(t *testing.T) {
	opt, prefix := roomsRedis(t)
	ctx := context.Background()
	a := rediscluster.NewLimiter(roomsClient(t, opt, ""), prefix)
	b := rediscluster.NewLimiter(roomsClient(t, opt, ""), prefix)
	const every = 100 * time.Millisecond
	take := func(l *rediscluster.Limiter) bool {
		ok, err := l.Allow(ctx, "like:9", every, 2)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !take(a) || !take(b) || take(a) {
		t.Fatal("a burst of 2 did not allow exactly 2")
	}
	time.Sleep(3 * every) // refills to 2, not 3
	if !take(b) || !take(a) || take(b) {
		t.Fatal("after refilling, not exactly 2 allowed")
	}
}

// TestLimiterUnreachable: without Redis, Allow answers ErrUnavailable
// quickly, every time.
func TestLimiterUnreachable(t *testing.T) {
	opt, _ := roomsRedis(t)
	l := rediscluster.NewLimiter(roomsClient(t, opt, "127.0.0.1:1"), "x:")
	start := time.Now()
	for range 20 {
		if _, err := l.Allow(context.Background(), "k", time.Second, 1); !errors.Is(err, cluster.ErrUnavailable) {
			t.Fatalf("allow: %v, want ErrUnavailable", err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("20 calls took %s", d)
	}
}

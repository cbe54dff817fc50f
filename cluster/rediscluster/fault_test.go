package rediscluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
)

// TestRedisUnreachable: node a reaches Redis through a proxy the test
// cuts. While cut, a says so, refuses new claims and keeps its own; its
// lease lapses for b, which takes over one of a's streams. Restored, a
// catches up by itself: lease back, claims re-asserted with their fences
// (one whose key and fence counter were wiped too), the taken one lost,
// commands delivered again.
func TestRedisUnreachable(t *testing.T) {
	e := newEnv(t)
	opt, _ := redis.ParseURL(e.url)
	px := newProxy(t, opt.Addr)
	a := e.node("a", fast, func(c *Config) { c.URL = px.urlFor(e.url) })
	b := e.node("b", fast)
	ctx := context.Background()
	got := make(chan cluster.Command, 10)
	a.HandleCommands(func(c cluster.Command) { got <- c })

	c1, err := a.Claim(ctx, "kept", cluster.Publisher{IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := a.Claim(ctx, "taken", cluster.Publisher{IP: "192.0.2.2"})
	if err != nil {
		t.Fatal(err)
	}
	c3, err := a.Claim(ctx, "wiped", cluster.Publisher{IP: "192.0.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	c4, err := a.Claim(ctx, "released", cluster.Publisher{IP: "192.0.2.4"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b does not see a's streams", func() bool { return len(b.Streams()) == 4 })

	// A cut shorter than the lease: nothing lost, nothing to re-assert.
	// A release that cannot reach Redis: the stream must not stay listed.
	px.setCut(true)
	if err := c4.Release(ctx); !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("release while Redis is unreachable: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	px.setCut(false)
	eventually(t, 5*time.Second, "a does not recover from a short cut", func() bool { return a.Err() == nil })
	if c1.Err() != nil || c2.Err() != nil || c3.Err() != nil {
		t.Fatalf("claims after a short cut: %v %v %v", c1.Err(), c2.Err(), c3.Err())
	}
	eventually(t, 5*time.Second, "the stream released while Redis was unreachable is still listed", func() bool {
		_, ok := b.Stream("released")
		return !ok && !e.rdb.HExists(ctx, e.k.dir(), "released").Val() && len(b.Streams()) == 3
	})

	px.setCut(true)
	eventually(t, 3*time.Second, "a does not say Redis is unreachable", func() bool {
		return errors.Is(a.Err(), cluster.ErrUnavailable)
	})
	t.Logf("a while cut: %v", a.Err())
	if _, err := a.Claim(ctx, "new", cluster.Publisher{}); !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("claim while Redis is unreachable: %v", err)
	}
	if err := c1.SetGrace(ctx, true); !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("SetGrace while Redis is unreachable: %v", err)
	}
	if s, ok := a.Stream("kept"); !ok || !s.Grace || s.Fence != c1.Fence() || len(a.Streams()) != 3 {
		t.Fatalf("a's own streams while cut: %+v", a.Streams())
	}
	if err := a.Send(ctx, cluster.Command{Node: "a", Kind: "local"}); err != nil {
		t.Fatalf("a command for a itself while cut: %v", err)
	}
	if c := <-got; c.Kind != "local" {
		t.Fatalf("got %+v", c)
	}
	if err := a.Send(ctx, cluster.Command{Node: "b", Kind: "x"}); !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("a command for b while cut: %v", err)
	}

	eventually(t, 5*time.Second, "b still sees a and its streams", func() bool {
		return nodeIDs(b.Nodes()) == "b" && len(b.Streams()) == 0
	})
	cb, err := b.Claim(ctx, "taken", cluster.Publisher{IP: "192.0.2.9"})
	if err != nil {
		t.Fatalf("b cannot claim the unreachable node's stream: %v", err)
	}
	// As if Redis had restarted empty for this stream.
	e.rdb.Del(ctx, e.k.claim("wiped"), e.k.fence("wiped"))
	select {
	case <-c1.Lost():
		t.Fatal("a's claim lost while cut")
	case <-c2.Lost():
		t.Fatal("a's claim lost while cut, before a could know")
	default:
	}

	px.setCut(false)
	took := eventually(t, 5*time.Second, "a does not recover", func() bool { return a.Err() == nil })
	t.Logf("a recovered %v after Redis came back", took)
	eventually(t, 3*time.Second, "a does not learn it lost the taken stream", func() bool {
		return errors.Is(c2.Err(), cluster.ErrLost)
	})
	if c1.Err() != nil || c3.Err() != nil {
		t.Fatalf("claims after the outage: %v, %v", c1.Err(), c3.Err())
	}
	eventually(t, 5*time.Second, "b does not see a's claims again", func() bool {
		s1, ok1 := b.Stream("kept")
		s2, _ := b.Stream("taken")
		s3, ok3 := b.Stream("wiped")
		return nodeIDs(b.Nodes()) == "a,b" && ok1 && s1.Node == "a" && s1.Fence == c1.Fence() && s1.Grace &&
			s2.Node == "b" && s2.Fence == cb.Fence() && ok3 && s3.Node == "a" && s3.Fence == c3.Fence()
	})
	if s, _ := a.Stream("taken"); s.Node != "b" {
		t.Fatalf("a sees the taken stream as %+v", s)
	}
	if _, err := a.Claim(ctx, "new", cluster.Publisher{}); err != nil {
		t.Fatalf("claim after the outage: %v", err)
	}
	// Pub/sub is back too (at most once: send until one arrives).
	eventually(t, 5*time.Second, "a gets no command from b", func() bool {
		if err := b.Send(ctx, cluster.Command{Node: "a", Kind: "back"}); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-got:
			return c.Kind == "back"
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
}

// TestNewUnreachable: New fails, saying why, when Redis cannot be reached.
func TestNewUnreachable(t *testing.T) {
	e := newEnv(t)
	opt, _ := redis.ParseURL(e.url)
	px := newProxy(t, opt.Addr)
	px.setCut(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	c, err := New(ctx, Config{URL: px.urlFor(e.url), Prefix: e.prefix, Self: cluster.Node{ID: "a"}, Logger: testLogger(t)})
	if err == nil {
		c.Close()
		t.Fatal("New succeeded without Redis")
	}
	if !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("New without Redis: %v", err)
	}
	t.Logf("New failed after %v: %v", time.Since(start), err)
}

// TestRedisRestart: a Redis of the test's own is killed and started again
// empty (no keys, no scripts): the nodes go on locally, then catch up by
// themselves: leases, claims with their fences, reports, commands.
func TestRedisRestart(t *testing.T) {
	rs := startRedis(t)
	e := newEnvAt(t, rs.url())
	a, b := e.node("a", fast), e.node("b", fast)
	ctx := context.Background()
	got := make(chan cluster.Command, 10)
	a.HandleCommands(func(c cluster.Command) { got <- c })
	c1, err := a.Claim(ctx, "s1", cluster.Publisher{IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := b.Claim(ctx, "s2", cluster.Publisher{IP: "192.0.2.2"})
	if err != nil {
		t.Fatal(err)
	}
	a.Report(cluster.Report{Viewers: map[string]int{"s2": 2}})
	b.Report(cluster.Report{Viewers: map[string]int{"s2": 3}})
	whole := func() bool {
		for _, n := range []*Cluster{a, b} {
			s1, ok1 := n.Stream("s1")
			s2, ok2 := n.Stream("s2")
			if n.Err() != nil || nodeIDs(n.Nodes()) != "a,b" || !ok1 || !ok2 || s1.Node != "a" || s1.Fence != c1.Fence() ||
				s2.Node != "b" || s2.Fence != c2.Fence() || s2.Clients != 5 {
				return false
			}
		}
		return true
	}
	eventually(t, 5*time.Second, "the view is not whole", whole)

	rs.stop()
	eventually(t, 3*time.Second, "a does not see Redis gone", func() bool { return errors.Is(a.Err(), cluster.ErrUnavailable) })
	time.Sleep(1500 * time.Millisecond) // past the lease
	if c1.Err() != nil || c2.Err() != nil {
		t.Fatalf("claims lost while Redis was down: %v, %v", c1.Err(), c2.Err())
	}
	if s, ok := a.Stream("s1"); !ok || s.Fence != c1.Fence() {
		t.Fatalf("a's own stream while Redis is down: %+v, %v", s, ok)
	}
	rs.start()
	took := eventually(t, 5*time.Second, "the view is not whole again after Redis restarted", whole)
	t.Logf("whole again %v after Redis restarted", took)
	if c1.Err() != nil || c2.Err() != nil {
		t.Fatalf("claims lost after Redis restarted: %v, %v", c1.Err(), c2.Err())
	}
	if _, err := b.Claim(ctx, "s1", cluster.Publisher{}); !errors.Is(err, cluster.ErrClaimed) {
		t.Fatalf("a second publisher after the restart: %v", err)
	}
	c3, err := b.Claim(ctx, "s3", cluster.Publisher{})
	if err != nil {
		t.Fatal(err)
	}
	if c3.Fence() <= c2.Fence() {
		t.Fatalf("a fence after the restart, %d, is not above the ones before, %d", c3.Fence(), c2.Fence())
	}
	eventually(t, 5*time.Second, "a gets no command from b", func() bool {
		if err := b.Send(ctx, cluster.Command{Node: "a", Kind: "back"}); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-got:
			return c.Kind == "back"
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
}

package rediscluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/cluster"
)

// BenchmarkClaim measures one Claim (one Lua script, one round trip to
// the local Redis) and, apart, its Release.
func BenchmarkClaim(b *testing.B) {
	e := newEnv(b)
	a := e.node("a", func(c *Config) { c.LeaseTTL, c.Refresh, c.ViewEvery = time.Hour, time.Minute, time.Hour })
	ctx := context.Background()
	b.Run("claim", func(b *testing.B) {
		i := 0
		for b.Loop() {
			cl, err := a.Claim(ctx, "s"+strconv.Itoa(i), cluster.Publisher{IP: "192.0.2.1", Protocol: "rtmp"})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cl.Release(ctx)
			b.StartTimer()
			i++
		}
	})
	b.Run("claim+release", func(b *testing.B) {
		for b.Loop() {
			cl, err := a.Claim(ctx, "s", cluster.Publisher{IP: "192.0.2.1", Protocol: "rtmp"})
			if err != nil {
				b.Fatal(err)
			}
			if err := cl.Release(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkViewRefresh measures one refresh of the view (two pipelined
// round trips) with three nodes and n streams, each node reporting
// viewers of every stream; and the cost of Streams on the request path.
func BenchmarkViewRefresh(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			// A Redis of its own, so that its command statistics are the
			// benchmark's.
			e := newEnvAt(b, startRedis(b).url())
			// Quiet background loops: the benchmark runs the refreshes.
			quiet := func(c *Config) { c.LeaseTTL, c.Refresh, c.ViewEvery = time.Hour, time.Minute, time.Hour }
			nodes := []*Cluster{e.node("a", quiet), e.node("b", quiet), e.node("c", quiet)}
			ctx := context.Background()
			viewers := map[string]int{}
			for i := range n {
				name := "s" + strconv.Itoa(i)
				if _, err := nodes[i%3].Claim(ctx, name, cluster.Publisher{IP: "192.0.2.1", Protocol: "rtmp"}); err != nil {
					b.Fatal(err)
				}
				viewers[name] = 1
			}
			for _, c := range nodes {
				c.Report(cluster.Report{Viewers: viewers, Clients: n})
			}
			for _, c := range nodes {
				if _, err := c.heartbeat(ctx); err != nil { // write the reports
					b.Fatal(err)
				}
			}
			c := nodes[0]
			b.Run("refresh", func(b *testing.B) {
				calls0, usec0 := evalStats(b, e)
				for b.Loop() {
					if err := c.refreshView(ctx); err != nil {
						b.Fatal(err)
					}
				}
				calls, usec := evalStats(b, e)
				if calls > calls0 {
					b.ReportMetric(float64(usec-usec0)/float64(calls-calls0), "redis-µs/script")
				}
			})
			if got := len(c.Streams()); got != n {
				b.Fatalf("%d streams in the view, want %d", got, n)
			}
			b.Run("Streams", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c.Streams()
				}
			})
		})
	}
}

// evalStats reads Redis's count of EVALSHA calls and the microseconds
// it spent in them.
func evalStats(b *testing.B, e *testEnv) (calls, usec int64) {
	info, err := e.rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return calls, usec
}

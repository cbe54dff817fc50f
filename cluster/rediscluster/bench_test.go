package rediscluster

import (
	"context"
	"fmt"
	"strconv"
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
			e := newEnv(b)
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
				for b.Loop() {
					if err := c.refreshView(ctx); err != nil {
						b.Fatal(err)
					}
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

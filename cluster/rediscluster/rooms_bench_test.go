package rediscluster_test

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/cluster"
)

// BenchmarkRoomsCrossNode: three nodes with 100 subscribers each in one
// room, events published in turn by the three at 200 a second (one per
// iteration: -benchtime 600x is 3 s). It reports the latency from Publish
// to each subscriber on the two other nodes (p50, p99) and the deliveries
// per second.
func BenchmarkRoomsCrossNode(b *testing.B) {
	opt, prefix := roomsRedis(b)
	live := &liveSet{ids: []string{"a", "b", "c"}}
	const subs = 100
	var (
		mu   sync.Mutex
		lats []time.Duration
		n    int
	)
	nodes := make([]*roomsPublisher, 3)
	for node, id := range live.ids {
		r := newTestRooms(b, roomsClient(b, opt, ""), prefix, id, live, 0)
		nodes[node] = &roomsPublisher{r: r, node: byte(node)}
		for range subs {
			cancel := r.Subscribe(1, func(d cluster.Delivery) {
				at := time.Unix(0, int64(binary.BigEndian.Uint64(d.Payload[1:])))
				lat := time.Since(at)
				mu.Lock()
				if int(d.Payload[0]) != node {
					lats = append(lats, lat)
				}
				n++
				mu.Unlock()
			})
			b.Cleanup(cancel)
		}
	}
	ctx := context.Background()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		<-tick.C
		if err := nodes[i%3].publish(ctx); err != nil {
			b.Fatal(err)
		}
	}
	want := 3 * subs * b.N
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := n
		mu.Unlock()
		if got >= want {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d deliveries", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lats)
	pct := func(p float64) float64 {
		return float64(lats[int(p*float64(len(lats)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(n)/elapsed.Seconds(), "deliveries/s")
}

// roomsPublisher publishes events stamped with their node and time.
type roomsPublisher struct {
	r interface {
		Publish(context.Context, int64, []byte) (uint64, error)
	}
	node byte
}

func (p *roomsPublisher) publish(ctx context.Context) error {
	var buf [9]byte
	buf[0] = p.node
	binary.BigEndian.PutUint64(buf[1:], uint64(time.Now().UnixNano()))
	_, err := p.r.Publish(ctx, 1, buf[:])
	return err
}

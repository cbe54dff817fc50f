package rediscluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/cluster/rediscluster"
)

// liveSet is a Cluster view the tests change by hand.
type liveSet struct {
	mu  sync.Mutex
	ids []string
}

func (l *liveSet) nodes() []cluster.Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]cluster.Node, len(l.ids))
	for i, id := range l.ids {
		out[i] = cluster.Node{ID: id}
	}
	return out
}

func (l *liveSet) drop(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids = slices.DeleteFunc(l.ids, func(x string) bool { return x == id })
}

// newTestRooms starts the Rooms of node id on rdb, closed at the end of
// the test.
func newTestRooms(t testing.TB, rdb redis.UniversalClient, prefix, id string, live *liveSet, history int) *rediscluster.Rooms {
	r := rediscluster.NewRooms(rdb, rediscluster.RoomsConfig{Prefix: prefix, Node: id, Nodes: live.nodes, History: history})
	t.Cleanup(func() { r.Close() })
	return r
}

// recorder keeps what a subscription delivered.
type recorder struct {
	mu sync.Mutex
	ds []cluster.Delivery
}

func (r *recorder) add(d cluster.Delivery) {
	r.mu.Lock()
	r.ds = append(r.ds, d)
	r.mu.Unlock()
}

func (r *recorder) got() []cluster.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ds)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ds)
}

// checkRun checks that ds are seqs first, first+1, ... with nothing
// missed, and returns their payloads.
func checkRun(t *testing.T, name string, ds []cluster.Delivery, first uint64) []string {
	t.Helper()
	out := make([]string, len(ds))
	for i, d := range ds {
		if d.Seq != first+uint64(i) || d.Missed != 0 {
			t.Fatalf("%s: delivery %d is seq %d (missed %d), want seq %d", name, i, d.Seq, d.Missed, first+uint64(i))
		}
		out[i] = string(d.Payload)
	}
	return out
}

// TestRoomsOrderAcrossNodes: three nodes publish into one room at once;
// every subscriber on every node gets every event once, in one order, with
// no gap.
func TestRoomsOrderAcrossNodes(t *testing.T) {
	opt, prefix := roomsRedis(t)
	live := &liveSet{ids: []string{"a", "b", "c"}}
	var nodes []*rediscluster.Rooms
	var recs []*recorder
	for _, id := range live.ids {
		r := newTestRooms(t, roomsClient(t, opt, ""), prefix, id, live, 0)
		nodes = append(nodes, r)
		for range 2 {
			rec := &recorder{}
			cancel := r.Subscribe(7, rec.add)
			t.Cleanup(cancel)
			recs = append(recs, rec)
		}
	}
	const each = 100
	ctx := context.Background()
	var wg sync.WaitGroup
	seqs := make([][]uint64, len(nodes))
	for i, r := range nodes {
		wg.Go(func() {
			for k := range each {
				seq, err := r.Publish(ctx, 7, fmt.Appendf(nil, `{"from":%d,"k":%d}`, i, k))
				if err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				seqs[i] = append(seqs[i], seq)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Each node's own events got growing numbers.
	for i, s := range seqs {
		if !slices.IsSorted(s) {
			t.Fatalf("node %d's seqs not growing: %v", i, s)
		}
	}
	for i, rec := range recs {
		roomsWait(t, 10*time.Second, fmt.Sprintf("subscriber %d gets %d events", i, 3*each), func() bool { return rec.len() >= 3*each })
	}
	time.Sleep(100 * time.Millisecond) // nothing more comes
	want := checkRun(t, "subscriber 0", recs[0].got(), 1)
	if len(want) != 3*each {
		t.Fatalf("subscriber 0 got %d events, want %d", len(want), 3*each)
	}
	for i, rec := range recs[1:] {
		if got := checkRun(t, fmt.Sprintf("subscriber %d", i+1), rec.got(), 1); !slices.Equal(got, want) {
			t.Fatalf("subscriber %d's order differs from subscriber 0's", i+1)
		}
	}
	// Every event published is there once.
	seen := map[string]bool{}
	for _, p := range want {
		seen[p] = true
	}
	for i := range nodes {
		for k := range each {
			if p := fmt.Sprintf(`{"from":%d,"k":%d}`, i, k); !seen[p] {
				t.Fatalf("event %s never delivered", p)
			}
		}
	}
}

// TestRoomsSubscribeSeesNextEvent: an event published right after
// Subscribe returns is delivered, though the subscription may not be
// confirmed by Redis yet; one published before is not.
func TestRoomsSubscribeSeesNextEvent(t *testing.T) {
	opt, prefix := roomsRedis(t)
	live := &liveSet{ids: []string{"a"}}
	r := newTestRooms(t, roomsClient(t, opt, ""), prefix, "a", live, 0)
	ctx := context.Background()
	if _, err := r.Publish(ctx, 3, []byte("before")); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		rec := &recorder{}
		cancel := r.Subscribe(int64(100+i), rec.add)
		if _, err := r.Publish(ctx, int64(100+i), []byte("first")); err != nil {
			t.Fatal(err)
		}
		roomsWait(t, 5*time.Second, "the first event", func() bool { return rec.len() == 1 })
		cancel()
	}
	rec := &recorder{}
	defer r.Subscribe(3, rec.add)()
	if _, err := r.Publish(ctx, 3, []byte("after")); err != nil {
		t.Fatal(err)
	}
	roomsWait(t, 5*time.Second, "the event after subscribing", func() bool { return rec.len() == 1 })
	time.Sleep(50 * time.Millisecond)
	if ds := rec.got(); len(ds) != 1 || string(ds[0].Payload) != "after" || ds[0].Seq != 2 {
		t.Fatalf("deliveries %+v, want only seq 2 \"after\"", ds)
	}
}

// TestRoomsGapFill: a node whose connection to Redis is cut fails to
// publish (ErrUnavailable) and, when the way is back, gets the events the
// other nodes published meanwhile from the history, in order, once.
func TestRoomsGapFill(t *testing.T) {
	opt, prefix := roomsRedis(t)
	proxy := newCutProxy(t, opt.Addr)
	live := &liveSet{ids: []string{"a", "b"}}
	a := newTestRooms(t, roomsClient(t, opt, proxy.addr()), prefix, "a", live, 0)
	b := newTestRooms(t, roomsClient(t, opt, ""), prefix, "b", live, 0)
	rec := &recorder{}
	defer a.Subscribe(9, rec.add)()
	ctx := context.Background()
	publish := func(n int, tag string) {
		for i := range n {
			if _, err := b.Publish(ctx, 9, fmt.Appendf(nil, "%s%d", tag, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(10, "x")
	roomsWait(t, 5*time.Second, "10 events", func() bool { return rec.len() == 10 })

	proxy.setCut(true)
	publish(20, "y")
	if _, err := a.Publish(ctx, 9, []byte("lost")); !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("publish while cut off: %v, want ErrUnavailable", err)
	}
	if a.Err() == nil {
		t.Fatal("Err is nil while Redis is cut off")
	}
	time.Sleep(300 * time.Millisecond)
	if n := rec.len(); n != 10 {
		t.Fatalf("%d events while cut off", n)
	}
	proxy.setCut(false)
	// Nothing more is published: the reconnection alone catches up.
	roomsWait(t, 10*time.Second, "the events published while cut off", func() bool { return rec.len() >= 30 })
	publish(1, "z")
	roomsWait(t, 5*time.Second, "the next event", func() bool { return rec.len() >= 31 })
	time.Sleep(100 * time.Millisecond)
	got := checkRun(t, "a", rec.got(), 1)
	if len(got) != 31 || got[10] != "y0" || got[29] != "y19" || got[30] != "z0" {
		t.Fatalf("a got %v", got)
	}
	roomsWait(t, 5*time.Second, "a sees Redis again", func() bool { return a.Err() == nil })
	if _, err := a.Publish(ctx, 9, []byte("back")); err != nil {
		t.Fatalf("publish after reconnecting: %v", err)
	}
	if st := a.Stats(); st.Filled < 20 || st.Missed != 0 {
		t.Fatalf("stats %+v: want 20 filled from the history, none missed", st)
	}
}

// TestRoomsSilentConnection: a connection to Redis that stays open but
// carries nothing is found dead by a ping, replaced, and what was missed
// meanwhile filled in, though nothing more is published.
func TestRoomsSilentConnection(t *testing.T) {
	opt, prefix := roomsRedis(t)
	proxy := newCutProxy(t, opt.Addr)
	live := &liveSet{ids: []string{"a", "b"}}
	a := newTestRooms(t, roomsClient(t, opt, proxy.addr()), prefix, "a", live, 0)
	b := newTestRooms(t, roomsClient(t, opt, ""), prefix, "b", live, 0)
	rec := &recorder{}
	defer a.Subscribe(4, rec.add)()
	ctx := context.Background()
	for i := range 10 {
		if i == 5 {
			roomsWait(t, 5*time.Second, "5 events", func() bool { return rec.len() == 5 })
			proxy.freeze()
		}
		if _, err := b.Publish(ctx, 4, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	roomsWait(t, 10*time.Second, "the events sent into the silent connection", func() bool { return rec.len() == 10 })
	time.Sleep(100 * time.Millisecond)
	if got := checkRun(t, "a", rec.got(), 1); len(got) != 10 || got[9] != "9" {
		t.Fatalf("a got %v", got)
	}
}

// TestRoomsSequenceStartsOver: when Redis loses a room's keys (a restart
// without persistence), its sequence starts over from 1 and subscribers
// follow it rather than take the new events for old ones.
func TestRoomsSequenceStartsOver(t *testing.T) {
	opt, prefix := roomsRedis(t)
	live := &liveSet{ids: []string{"a", "b"}}
	rdb := roomsClient(t, opt, "")
	a := newTestRooms(t, rdb, prefix, "a", live, 0)
	b := newTestRooms(t, roomsClient(t, opt, ""), prefix, "b", live, 0)
	rec := &recorder{}
	defer a.Subscribe(6, rec.add)()
	ctx := context.Background()
	for i := range 5 {
		b.Publish(ctx, 6, fmt.Appendf(nil, "old%d", i))
	}
	roomsWait(t, 5*time.Second, "5 events", func() bool { return rec.len() == 5 })
	if err := rdb.Del(ctx, prefix+"room:{6}:meta", prefix+"room:{6}:log").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if seq, err := b.Publish(ctx, 6, fmt.Appendf(nil, "new%d", i)); err != nil || seq != uint64(i+1) {
			t.Fatalf("publish after the keys were lost: seq %d, %v", seq, err)
		}
	}
	roomsWait(t, 5*time.Second, "the events of the new sequence", func() bool { return rec.len() == 8 })
	if got := checkRun(t, "a", rec.got()[5:], 1); fmt.Sprint(got) != "[new0 new1 new2]" {
		t.Fatalf("new sequence: %v", got)
	}
}

// TestRoomsMissedBeyondHistory: events older than the history are
// reported as missed on the next delivery, never delivered out of order.
func TestRoomsMissedBeyondHistory(t *testing.T) {
	opt, prefix := roomsRedis(t)
	proxy := newCutProxy(t, opt.Addr)
	live := &liveSet{ids: []string{"a", "b"}}
	a := newTestRooms(t, roomsClient(t, opt, proxy.addr()), prefix, "a", live, 10)
	b := newTestRooms(t, roomsClient(t, opt, ""), prefix, "b", live, 10)
	rec := &recorder{}
	defer a.Subscribe(9, rec.add)()
	ctx := context.Background()
	if _, err := b.Publish(ctx, 9, []byte("0")); err != nil {
		t.Fatal(err)
	}
	roomsWait(t, 5*time.Second, "the first event", func() bool { return rec.len() == 1 })
	proxy.setCut(true)
	const n = 400 // a stream trims whole nodes of 100 entries: keep it well beyond
	for i := range n {
		if _, err := b.Publish(ctx, 9, fmt.Appendf(nil, "%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	proxy.setCut(false)
	roomsWait(t, 10*time.Second, "the last event", func() bool {
		ds := rec.got()
		return ds[len(ds)-1].Seq == n+1
	})
	ds := rec.got()
	var missed uint64
	for i := 1; i < len(ds); i++ {
		if ds[i].Seq != ds[i-1].Seq+1+ds[i].Missed {
			t.Fatalf("delivery %d: seq %d after %d with %d missed", i, ds[i].Seq, ds[i-1].Seq, ds[i].Missed)
		}
		missed += ds[i].Missed
	}
	if missed == 0 || uint64(len(ds))+missed != n+1 {
		t.Fatalf("%d delivered, %d missed of %d", len(ds), missed, n+1)
	}
}

// TestRoomsPresence: presence is the union of the nodes', first and last
// are cluster-wide, and a user's place is where they first arrived.
func TestRoomsPresence(t *testing.T) {
	opt, prefix := roomsRedis(t)
	live := &liveSet{ids: []string{"a", "b", "c"}}
	a := newTestRooms(t, roomsClient(t, opt, ""), prefix, "a", live, 0)
	b := newTestRooms(t, roomsClient(t, opt, ""), prefix, "b", live, 0)
	c := newTestRooms(t, roomsClient(t, opt, ""), prefix, "c", live, 0)
	ctx := context.Background()
	user := func(id int64) cluster.PresentUser {
		return cluster.PresentUser{ID: id, User: fmt.Appendf(nil, `{"id":%d}`, id)}
	}
	enter := func(r *rediscluster.Rooms, id int64, want bool) {
		t.Helper()
		first, err := r.Enter(ctx, 5, user(id))
		if err != nil || first != want {
			t.Fatalf("enter user %d: first %v, %v; want %v", id, first, err, want)
		}
	}
	exit := func(r *rediscluster.Rooms, id int64, want bool) {
		t.Helper()
		last, err := r.Exit(ctx, 5, id)
		if err != nil || last != want {
			t.Fatalf("exit user %d: last %v, %v; want %v", id, last, err, want)
		}
	}
	online := func(r *rediscluster.Rooms) []int64 {
		t.Helper()
		us, err := r.Online(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, u := range us {
			if string(u.User) != fmt.Sprintf(`{"id":%d}`, u.ID) || u.Since.IsZero() {
				t.Fatalf("online user %+v", u)
			}
			ids = append(ids, u.ID)
		}
		return ids
	}
	enter(a, 1, true)
	enter(b, 2, true)
	enter(c, 1, false) // on a already
	enter(c, 3, true)
	enter(a, 3, false)
	enter(a, 3, false) // a second connection on a
	for _, r := range []*rediscluster.Rooms{a, b, c} {
		if got := online(r); !slices.Equal(got, []int64{1, 2, 3}) {
			t.Fatalf("online %v, want [1 2 3]", got)
		}
	}
	exit(a, 1, false) // still on c
	exit(c, 1, true)
	exit(a, 3, false) // one of a's two connections
	exit(c, 3, false) // a has one left
	exit(a, 3, true)
	exit(a, 3, false) // not there any more
	if got := online(b); !slices.Equal(got, []int64{2}) {
		t.Fatalf("online %v, want [2]", got)
	}
	// A node out of the view does not count, at once.
	enter(c, 4, true)
	live.drop("c")
	if got := online(a); !slices.Equal(got, []int64{2}) {
		t.Fatalf("online without c: %v, want [2]", got)
	}
	enter(a, 4, true) // c's user 4 counts no more
}

// vanishLog collects what HandleVanished tells.
type vanishLog struct {
	mu    sync.Mutex
	calls []string
}

func (v *vanishLog) fn(node string) func(int64, []cluster.PresentUser) {
	return func(room int64, users []cluster.PresentUser) {
		v.mu.Lock()
		defer v.mu.Unlock()
		ids := []int64{}
		for _, u := range users {
			ids = append(ids, u.ID)
		}
		v.calls = append(v.calls, fmt.Sprintf("%s: room %d users %v", node, room, ids))
	}
}

func (v *vanishLog) get() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.calls)
}

// TestRoomsVanished: when a node dies, its users that no other node has
// are told once, on one node; the others stay.
func TestRoomsVanished(t *testing.T) {
	opt, prefix := roomsRedis(t)
	live := &liveSet{ids: []string{"a", "b", "c"}}
	log := &vanishLog{}
	a := newTestRooms(t, roomsClient(t, opt, ""), prefix, "a", live, 0)
	b := newTestRooms(t, roomsClient(t, opt, ""), prefix, "b", live, 0)
	a.HandleVanished(log.fn("a"))
	b.HandleVanished(log.fn("b"))
	c := rediscluster.NewRooms(roomsClient(t, opt, ""), rediscluster.RoomsConfig{Prefix: prefix, Node: "c", Nodes: live.nodes})
	ctx := context.Background()
	for _, e := range []struct {
		r    *rediscluster.Rooms
		room int64
		user int64
	}{{c, 5, 10}, {c, 5, 11}, {a, 5, 11}, {c, 6, 12}, {b, 6, 13}} {
		if _, err := e.r.Enter(ctx, e.room, cluster.PresentUser{ID: e.user, User: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1200 * time.Millisecond) // a and b see c alive
	c.Close()                           // as if killed: its keys stay
	live.drop("c")
	roomsWait(t, 5*time.Second, "c's users told", func() bool { return len(log.get()) == 2 })
	time.Sleep(2500 * time.Millisecond) // and told once only
	var calls []string                  // without the node that told
	for _, c := range log.get() {
		calls = append(calls, c[len("a: "):])
	}
	slices.Sort(calls)
	if len(calls) != 2 || calls[0] != "room 5 users [10]" || calls[1] != "room 6 users [12]" {
		t.Fatalf("vanished calls %q", calls)
	}
	for room, want := range map[int64][]int64{5: {11}, 6: {13}} {
		us, err := a.Online(ctx, room)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, u := range us {
			ids = append(ids, u.ID)
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("room %d online %v, want %v", room, ids, want)
		}
	}
}

// TestRoomsLeftoversOfEarlierRun: a node that restarts before the others
// notice clears what its earlier run left, telling its users once.
func TestRoomsLeftoversOfEarlierRun(t *testing.T) {
	opt, prefix := roomsRedis(t)
	live := &liveSet{ids: []string{"a", "b"}}
	b := newTestRooms(t, roomsClient(t, opt, ""), prefix, "b", live, 0)
	a1 := rediscluster.NewRooms(roomsClient(t, opt, ""), rediscluster.RoomsConfig{Prefix: prefix, Node: "a", Nodes: live.nodes})
	ctx := context.Background()
	for _, u := range []int64{1, 2} {
		if _, err := a1.Enter(ctx, 8, cluster.PresentUser{ID: u, User: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Enter(ctx, 8, cluster.PresentUser{ID: 2, User: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	a1.Close()
	log := &vanishLog{}
	a2 := newTestRooms(t, roomsClient(t, opt, ""), prefix, "a", live, 0)
	a2.HandleVanished(log.fn("a"))
	roomsWait(t, 5*time.Second, "the earlier run's users told", func() bool { return len(log.get()) == 1 })
	if calls := log.get(); calls[0] != "a: room 8 users [1]" {
		t.Fatalf("calls %q", calls)
	}
	if first, err := a2.Enter(ctx, 8, cluster.PresentUser{ID: 1, User: []byte(`{}`)}); err != nil || !first {
		t.Fatalf("user 1 back: first %v, %v", first, err)
	}
}

// TestRoomsUnreachable: with no Redis, every operation fails at once with
// ErrUnavailable and nothing hangs.
func TestRoomsUnreachable(t *testing.T) {
	opt, _ := roomsRedis(t)
	rdb := roomsClient(t, opt, "127.0.0.1:1")
	r := newTestRooms(t, rdb, "x:", "a", &liveSet{ids: []string{"a"}}, 0)
	ctx := context.Background()
	start := time.Now()
	cancel := r.Subscribe(1, func(cluster.Delivery) {})
	defer cancel()
	if _, err := r.Publish(ctx, 1, []byte("x")); !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("publish: %v", err)
	}
	if _, err := r.Enter(ctx, 1, cluster.PresentUser{ID: 1}); !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("enter: %v", err)
	}
	if _, err := r.Online(ctx, 1); !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("online: %v", err)
	}
	if last, err := r.Exit(ctx, 1, 1); !errors.Is(err, cluster.ErrUnavailable) || !last {
		t.Fatalf("exit: %v, %v", last, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
}

package rpc_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/cluster/rediscluster"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/store/storetest"
)

// clusterRedis returns a client of the test Redis (MOFANG_TEST_REDIS_URL,
// else the local one) and a key prefix of the test's own, deleted at its
// end. Without a Redis the test is skipped, except in CI (CI=true).
func clusterRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	url := os.Getenv("MOFANG_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("MOFANG_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Redis at %s: %v", url, err)
		}
		t.Skipf("no Redis at %s: %v", url, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "mofangtest:" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return rdb, prefix
}

// clusterEnvs starts three API servers (nodes a, b and c) on one store
// and one Redis, as three nodes of a cluster.
func clusterEnvs(t *testing.T, dialect string, change func(node int, c *rpc.Config)) []*env {
	rdb, prefix := clusterRedis(t)
	st := storetest.Open(t, dialect)
	live := &fakeLive{}
	ids := []string{"a", "b", "c"}
	nodes := func() []cluster.Node {
		out := make([]cluster.Node, len(ids))
		for i, id := range ids {
			out[i] = cluster.Node{ID: id}
		}
		return out
	}
	var envs []*env
	for i, id := range ids {
		rooms := rediscluster.NewRooms(rdb, rediscluster.RoomsConfig{Prefix: prefix, Node: id, Nodes: nodes})
		c := cluster.NewLocal(cluster.Node{ID: id})
		t.Cleanup(func() { rooms.Close(); c.Close() }) // after the server's shutdown
		envs = append(envs, newEnvOn(t, st, live, func(cfg *rpc.Config) {
			cfg.Rooms = rooms
			cfg.Limiter = rediscluster.NewLimiter(rdb, prefix)
			cfg.Cluster = c
			change(i, cfg)
		}))
	}
	return envs
}

// TestRoomAcrossNodes has users on three API servers of one cluster in a
// live room: comments from all three reach every socket in one order,
// with seqs that grow by one; online lists are the cluster's; a user on
// several nodes joins and leaves once; a per-user limit holds across
// nodes.
func TestRoomAcrossNodes(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			envs := clusterEnvs(t, dialect, func(_ int, c *rpc.Config) {
				c.Limits.Comments = rpc.Rate{Every: time.Millisecond, Burst: 100}
				c.Limits.Likes = rpc.Rate{Every: time.Hour, Burst: 5}
			})
			testRoomAcrossNodes(t, envs)
		})
	}
}

func testRoomAcrossNodes(t *testing.T, envs []*env) {
	aliceTok, roomID, _ := envs[0].liveRoom("alice", "")
	bobTok, _ := envs[1].register("bob")
	carolTok, _ := envs[2].register("carol")
	daveTok, daveID := envs[0].register("dave")
	join := func(w *wsClient) []float64 {
		t.Helper()
		r := w.call("Live.room.join", map[string]any{"room_id": roomID})
		if r.Errno != 1000 {
			t.Fatalf("join: %+v", r)
		}
		var ids []float64
		for _, u := range r.Data["online"].([]any) {
			ids = append(ids, u.(map[string]any)["id"].(float64))
		}
		if ev := w.next(); ev.Type != "online" || len(ev.Online) != len(ids) {
			t.Fatalf("first event %+v, want the online list of %v", ev, ids)
		}
		return ids
	}
	alice := envs[0].dialWS(aliceTok, false)
	bob := envs[1].dialWS(bobTok, false)
	carol := envs[2].dialWS(carolTok, false)
	sockets := []*wsClient{alice, bob, carol}
	join(alice)
	join(bob)
	if on := join(carol); !slices.Equal(on, []float64{1, 2, 3}) {
		t.Fatalf("carol's online list on c: %v, want alice, bob, carol", on)
	}
	// Everyone sees their own join and those of the users after them,
	// once.
	for i, w := range sockets {
		for who := int64(i + 1); who <= 3; who++ {
			if ev := w.next(); ev.Type != "join" || ev.User.ID != who {
				t.Fatalf("socket %d: %+v, want the join of user %d", i, ev, who)
			}
		}
	}

	// Dave comes on all three nodes: the same online list on each, and
	// one join.
	var daves []*wsClient
	for i, e := range envs {
		d := e.dialWS(daveTok, false)
		if on := join(d); !slices.Equal(on, []float64{1, 2, 3, float64(daveID)}) {
			t.Fatalf("dave's online list on node %d: %v", i, on)
		}
		daves = append(daves, d)
	}
	for i, w := range sockets {
		if ev := w.next(); ev.Type != "join" || ev.User.ID != daveID || ev.Viewers != 4 {
			t.Fatalf("socket %d: %+v, want dave's join", i, ev)
		}
	}

	// Comments from the three nodes at once.
	const each = 15
	var wg sync.WaitGroup
	for i, w := range sockets {
		wg.Go(func() {
			for k := range each {
				if r := w.call("Live.comment", map[string]any{"room_id": roomID, "content": fmt.Sprintf("%d-%d", i, k)}); r.Errno != 1000 {
					t.Errorf("comment: %+v", r)
				}
			}
		})
	}
	wg.Wait()
	var orders [][]string
	for i, w := range append(slices.Clone(sockets), daves...) {
		var got []string
		var last uint64
		for len(got) < 3*each {
			ev := w.next("join") // dave's other sockets may still be telling
			if ev.Type != "comment" {
				t.Fatalf("socket %d: %+v among the comments", i, ev)
			}
			if last != 0 && ev.Seq != last+1 {
				t.Fatalf("socket %d: seq %d after %d", i, ev.Seq, last)
			}
			last = ev.Seq
			got = append(got, ev.Content)
		}
		orders = append(orders, got)
	}
	for i, o := range orders[1:] {
		if !slices.Equal(o, orders[0]) {
			t.Fatalf("socket %d's order\n%v\ndiffers from alice's\n%v", i+1, o, orders[0])
		}
	}

	// Likes: 5 per user, wherever they come from.
	liked := 0
	for range 3 {
		for _, d := range daves {
			r := d.call("Live.like", map[string]any{"room_id": roomID})
			switch r.Errno {
			case 1000:
				liked++
			case 1003:
			default:
				t.Fatalf("like: %+v", r)
			}
		}
	}
	if liked != 5 {
		t.Fatalf("%d of 9 likes from three nodes went through, want 5", liked)
	}

	// Dave leaves two nodes: no leave; the last: one leave, seen on
	// every node.
	daves[0].call("Live.room.leave", map[string]any{"room_id": roomID})
	daves[1].c.CloseNow()
	daves[2].call("Live.room.leave", map[string]any{"room_id": roomID})
	for i, w := range sockets {
		if ev := w.next("like"); ev.Type != "leave" || ev.User.ID != daveID || ev.Viewers != 3 {
			t.Fatalf("socket %d: %+v, want dave's leave", i, ev)
		}
		w.quiet(200*time.Millisecond, "like")
	}
}

// mesh is a cluster of API servers in one process, as a Cluster would
// make them: every node sees the others, their clients and streams, and
// commands reach the node they are for.
type mesh struct {
	mu      sync.Mutex
	ids     []string
	servers map[string]*rpc.Server
	streams map[string]cluster.Stream
}

// meshNode is one node's Cluster in a mesh.
type meshNode struct {
	*cluster.Local
	m *mesh
}

func (n meshNode) Nodes() []cluster.Node {
	var out []cluster.Node
	for _, id := range n.m.ids {
		out = append(out, cluster.Node{ID: id, URL: "http://" + id, Started: time.Unix(1700000000, 0), LastSeen: time.Now()})
	}
	return out
}

func (n meshNode) ClientLists() map[string]json.RawMessage {
	n.m.mu.Lock()
	defer n.m.mu.Unlock()
	out := map[string]json.RawMessage{}
	for id, s := range n.m.servers {
		out[id] = s.ClientReport()
	}
	return out
}

func (n meshNode) Stream(name string) (cluster.Stream, bool) {
	n.m.mu.Lock()
	defer n.m.mu.Unlock()
	s, ok := n.m.streams[name]
	return s, ok
}

func (n meshNode) Send(_ context.Context, c cluster.Command) error {
	n.m.mu.Lock()
	var to []*rpc.Server
	for id, s := range n.m.servers {
		if c.Node == "" || c.Node == id {
			to = append(to, s)
		}
	}
	n.m.mu.Unlock()
	for _, s := range to {
		if !s.RunCommand(c) {
			return fmt.Errorf("command %s not run", c.Kind)
		}
	}
	return nil
}

// TestAdminAcrossNodes: the Admin methods on one node see and act on the
// others: nodes, clients, kicks of clients and streams held elsewhere, and
// a new room password takes the room's sockets on every node out of it.
func TestAdminAcrossNodes(t *testing.T) {
	m := &mesh{ids: []string{"a", "b", "c"}, servers: map[string]*rpc.Server{}, streams: map[string]cluster.Stream{}}
	media := []*fakeMedia{{}, {}, {}}
	envs := clusterEnvs(t, "sqlite", func(i int, c *rpc.Config) {
		c.Cluster = meshNode{Local: c.Cluster.(*cluster.Local), m: m}
		c.Media = media[i]
	})
	for i, e := range envs {
		m.servers[m.ids[i]] = e.api
	}
	ctx := context.Background()
	aliceTok, roomID, stream := envs[0].liveRoom("alice", "")
	adminTok, adminID := envs[0].register("root")
	if err := envs[0].store.SetAdmin(ctx, adminID, true); err != nil {
		t.Fatal(err)
	}
	media[0].clients = []rpc.AdminClient{{ID: "a1", Stream: stream, Role: "play"}}
	media[1].clients = []rpc.AdminClient{{ID: "b1", Stream: stream, Role: "play"}, {ID: "b2", Stream: "other", Role: "play"}}
	media[1].streams = []rpc.AdminStream{{Name: "bstream", Live: true}}
	m.streams["bstream"] = cluster.Stream{Name: "bstream", Node: "b"}

	var nodes struct {
		Data struct {
			Nodes []rpc.AdminNode `json:"nodes"`
		} `json:"data"`
	}
	envs[2].callInto(adminTok, "Admin.cluster.nodes", map[string]any{}, &nodes)
	if n := nodes.Data.Nodes; len(n) != 3 || n[1].ID != "b" || n[1].URL != "http://b" || n[1].Self || !n[2].Self || n[1].Started != 1700000000 {
		t.Fatalf("nodes seen from c: %+v", n)
	}
	var cl struct {
		Data struct {
			Clients []rpc.AdminClient `json:"clients"`
			Total   int               `json:"total"`
		} `json:"data"`
	}
	envs[0].callInto(adminTok, "Admin.client.list", map[string]any{"stream": stream}, &cl)
	if cl.Data.Total != 2 || cl.Data.Clients[0].ID != "a1" || cl.Data.Clients[0].Node != "a" || cl.Data.Clients[1].ID != "b1" || cl.Data.Clients[1].Node != "b" {
		t.Fatalf("clients of %s seen from a: %+v", stream, cl.Data)
	}
	if r := envs[0].call(adminTok, "Admin.client.kick", map[string]any{"client_id": "b2"}); r.Errno != 1000 {
		t.Fatalf("kick b's client from a: %+v", r)
	}
	if r := envs[2].call(adminTok, "Admin.stream.kick", map[string]any{"stream": "bstream"}); r.Errno != 1000 {
		t.Fatalf("kick b's stream from c: %+v", r)
	}
	if r := envs[2].call(adminTok, "Admin.client.kick", map[string]any{"client_id": "nobody"}); r.Errno != 1019 {
		t.Fatalf("kick of no client: %+v", r)
	}
	if got := fmt.Sprint(media[1].kicked); got != "[client:b2 stream:bstream]" {
		t.Fatalf("b kicked %s", got)
	}
	if len(media[0].kicked)+len(media[2].kicked) != 0 {
		t.Fatalf("a and c kicked %v %v", media[0].kicked, media[2].kicked)
	}

	// A new password: bob's socket on b gets "reenter" and is out; the
	// owner's on c stays; the stream's players on b are dropped.
	bobTok, _ := envs[1].register("bob")
	bob := envs[1].dialWS(bobTok, false)
	owner := envs[2].dialWS(aliceTok, false)
	for _, w := range []*wsClient{bob, owner} {
		if r := w.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1000 {
			t.Fatalf("join: %+v", r)
		}
	}
	if r := envs[0].call(aliceTok, "Live.stream", map[string]any{"room_name": "alice's room", "password": "new"}); r.Errno != 1000 {
		t.Fatalf("new password: %+v", r)
	}
	if ev := bob.next("online", "join"); ev.Type != "reenter" {
		t.Fatalf("bob on b got %+v, want reenter", ev)
	}
	if r := bob.call("Live.comment", map[string]any{"room_id": roomID, "content": "still here?"}); r.Errno != 1014 {
		t.Fatalf("bob's comment after reenter: %+v", r)
	}
	if r := owner.call("Live.comment", map[string]any{"room_id": roomID, "content": "mine"}); r.Errno != 1000 {
		t.Fatalf("the owner's comment: %+v", r)
	}
	if got := fmt.Sprint(media[1].kicked); got != "[client:b2 stream:bstream client:b1]" {
		t.Fatalf("b kicked %s", got)
	}
}

// TestRoomWithoutRedis: a node whose Redis is out of reach goes on with
// its own members: they join, see each other's comments and joins, and
// their limits hold by the node's own limiter.
func TestRoomWithoutRedis(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	rooms := rediscluster.NewRooms(rdb, rediscluster.RoomsConfig{Prefix: "x:", Node: "a"})
	t.Cleanup(func() { rooms.Close() })
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) {
		c.Rooms = rooms
		c.Limiter = rediscluster.NewLimiter(rdb, "x:")
		c.Limits.Likes = rpc.Rate{Every: time.Hour, Burst: 3}
	})
	aliceTok, roomID, _ := e.liveRoom("alice", "")
	bobTok, _ := e.register("bob")
	alice, bob := e.dialWS(aliceTok, false), e.dialWS(bobTok, false)
	for _, w := range []*wsClient{alice, bob} {
		if r := w.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1000 {
			t.Fatalf("join: %+v", r)
		}
	}
	if r := bob.call("Live.comment", map[string]any{"room_id": roomID, "content": "anyone?"}); r.Errno != 1000 {
		t.Fatalf("comment: %+v", r)
	}
	var got []string
	for len(got) < 4 {
		ev := alice.next()
		got = append(got, ev.Type+" "+ev.Content)
		if ev.Type != "online" && ev.Seq != 0 {
			t.Fatalf("event %+v numbered without the cluster", ev)
		}
	}
	if fmt.Sprint(got) != "[online  join  join  comment anyone?]" {
		t.Fatalf("alice got %q", got)
	}
	liked := 0
	for range 5 {
		if r := bob.call("Live.like", map[string]any{"room_id": roomID}); r.Errno == 1000 {
			liked++
		}
	}
	if liked != 3 {
		t.Fatalf("%d of 5 likes went through, want 3", liked)
	}
	if st := e.api.RoomStats(); st.Unshared < 4 || e.api.LimiterFallbacks() < 5 {
		t.Fatalf("room stats %+v, limiter fallbacks %d", st, e.api.LimiterFallbacks())
	}
}

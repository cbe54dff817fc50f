package rediscluster

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/cluster"
)

// TestRegistry: three nodes see each other; a node that stops refreshing
// its lease (as if it hung or was killed) is dead for the others within
// 3 s with the default timings, and knows it itself.
func TestRegistry(t *testing.T) {
	e := newEnv(t)
	started := time.Now().Add(-time.Minute).Round(time.Millisecond)
	a := e.node("a", func(c *Config) { c.Self.Started = started })
	b := e.node("b")
	c := e.node("c")
	for _, n := range []*Cluster{a, b, c} {
		eventually(t, 5*time.Second, n.self.ID+" sees the three nodes", func() bool { return nodeIDs(n.Nodes()) == "a,b,c" })
	}
	na := b.Nodes()[0]
	if na.ID != "a" || na.URL != "http://a.test:8080" || !na.Started.Equal(started) || time.Since(na.LastSeen) > 2*time.Second {
		t.Fatalf("b sees a as %+v", na)
	}
	if err := a.Err(); err != nil {
		t.Fatalf("Err of a healthy node: %v", err)
	}

	c.pause()
	took := eventually(t, 3*time.Second, "a and b still list c 3 s after it stopped refreshing", func() bool {
		return nodeIDs(a.Nodes()) == "a,b" && nodeIDs(b.Nodes()) == "a,b"
	})
	t.Logf("c's lapse seen in %v (lease %v, view every %v)", took, DefaultLeaseTTL, DefaultViewEvery)
	if err := c.Err(); !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("Err of the node whose lease lapsed: %v", err)
	}
	if ok, _ := e.rdb.SIsMember(context.Background(), e.k.nodes(), "c").Result(); ok {
		t.Fatal("the dead node is still in the index set")
	}
}

// TestClose: Close removes the node's lease, report and claims at once,
// not when they would lapse, and leaves in Redis only keys that expire.
func TestClose(t *testing.T) {
	e := newEnv(t)
	slow := func(c *Config) {
		c.LeaseTTL, c.Refresh, c.ViewEvery = 10*time.Second, time.Second, 100*time.Millisecond
	}
	a := e.node("a", slow)
	b := e.node("b", slow)
	ctx := context.Background()
	cl, err := a.Claim(ctx, "s", cluster.Publisher{IP: "192.0.2.1", Protocol: "rtmp"})
	if err != nil {
		t.Fatal(err)
	}
	a.Report(cluster.Report{Viewers: map[string]int{"s": 1}, Clients: 1, ClientList: json.RawMessage(`[]`)})
	eventually(t, 5*time.Second, "b sees a's stream", func() bool { _, ok := b.Stream("s"); return ok })
	eventually(t, 5*time.Second, "a's report is written", func() bool { return e.rdb.Exists(ctx, e.k.report("a")).Val() == 1 })

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.rdb.Exists(ctx, e.k.lease("a"), e.k.report("a"), e.k.claim("s")).Val(); n != 0 {
		t.Fatalf("%d of a's lease, report and claim left after Close", n)
	}
	if e.rdb.SIsMember(ctx, e.k.nodes(), "a").Val() || e.rdb.HExists(ctx, e.k.dir(), "s").Val() {
		t.Fatal("a or its stream left in the index sets")
	}
	select {
	case <-cl.Lost():
	default:
		t.Fatal("the claim is not lost after Close")
	}
	if !errors.Is(cl.Err(), cluster.ErrLost) {
		t.Fatalf("claim Err after Close: %v", cl.Err())
	}
	eventually(t, 3*time.Second, "b still sees a 3 s after Close (lease 10 s)", func() bool {
		_, ok := b.Stream("s")
		return nodeIDs(b.Nodes()) == "b" && !ok
	})
	if _, err := b.Claim(ctx, "s", cluster.Publisher{}); err != nil {
		t.Fatalf("b cannot claim the closed node's stream: %v", err)
	}
	if _, err := a.Claim(ctx, "t", cluster.Publisher{}); !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("claim on a closed node: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for _, k := range e.keys() {
		if !strings.HasPrefix(k, e.prefix+"fence:") && k != e.k.dirVersion() || e.rdb.PTTL(ctx, k).Val() <= 0 {
			t.Errorf("left after every node closed: %s (ttl %v)", k, e.rdb.PTTL(ctx, k).Val())
		}
	}
}

// TestClaims: one publisher per stream in the cluster; takeover in grace
// with a higher fence; the fence stops the old owner; a dead owner's
// claim lapses and is claimed elsewhere.
func TestClaims(t *testing.T) {
	e := newEnv(t)
	a, b, c := e.node("a", fast), e.node("b", fast), e.node("c", fast)
	ctx := context.Background()

	ca, err := a.Claim(ctx, "s", cluster.Publisher{IP: "192.0.2.1", Protocol: "rtmp"})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := a.Stream("s"); !ok || s.Node != "a" || s.Fence != ca.Fence() {
		t.Fatalf("a's own stream right after its claim: %+v, %v", s, ok)
	}
	eventually(t, 5*time.Second, "b sees a's stream", func() bool {
		s, ok := b.Stream("s")
		return ok && s.Node == "a" && s.NodeURL == "http://a.test:8080" && s.Fence == ca.Fence() &&
			s.Publisher == cluster.Publisher{IP: "192.0.2.1", Protocol: "rtmp"} && !s.Grace
	})
	if _, err := b.Claim(ctx, "s", cluster.Publisher{IP: "192.0.2.2"}); !errors.Is(err, cluster.ErrClaimed) {
		t.Fatalf("second publisher on b: %v, want ErrClaimed", err)
	}
	if _, err := a.Claim(ctx, "s", cluster.Publisher{IP: "192.0.2.2"}); !errors.Is(err, cluster.ErrClaimed) {
		t.Fatalf("second publisher on a: %v, want ErrClaimed", err)
	}
	if err := ca.SetPublisher(ctx, cluster.Publisher{IP: "192.0.2.9", Protocol: "rtsp", BFrames: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b sees the new publisher", func() bool {
		s, _ := b.Stream("s")
		return s.Publisher.IP == "192.0.2.9" && s.Publisher.BFrames
	})

	// Takeover in grace.
	if err := ca.SetGrace(ctx, true); err != nil {
		t.Fatal(err)
	}
	cb, err := b.Claim(ctx, "s", cluster.Publisher{IP: "192.0.2.3", Protocol: "webrtc"})
	if err != nil {
		t.Fatalf("claim of a stream in grace: %v", err)
	}
	if cb.Fence() <= ca.Fence() {
		t.Fatalf("fence %d after %d", cb.Fence(), ca.Fence())
	}
	eventually(t, 2*time.Second, "a has not learnt it lost the stream", func() bool {
		select {
		case <-ca.Lost():
			return true
		default:
			return false
		}
	})
	if !errors.Is(ca.Err(), cluster.ErrLost) {
		t.Fatalf("Err of the old claim: %v", ca.Err())
	}
	if err := ca.SetPublisher(ctx, cluster.Publisher{IP: "198.51.100.1"}); !errors.Is(err, cluster.ErrLost) {
		t.Fatalf("old owner's write: %v", err)
	}
	if err := ca.Release(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Cluster{a, b, c} {
		eventually(t, 5*time.Second, n.self.ID+" sees b's claim", func() bool {
			s, ok := n.Stream("s")
			return ok && s.Node == "b" && s.Fence == cb.Fence() && s.Publisher.IP == "192.0.2.3" && len(n.Streams()) == 1
		})
	}

	// The fence in Redis: the old owner's token can neither write nor
	// release, whatever it believes.
	old := ca.(*claim)
	if n, err := a.assert(ctx, a.rdb, claimState{cl: old, pubJSON: `{"ip":"198.51.100.2"}`, ver: 100}, true).Int64(); err != nil || n != 0 {
		t.Fatalf("the old owner's write answered %d, %v; want 0", n, err)
	}
	if n, err := releaseScript.Run(ctx, a.rdb, []string{e.k.claim("s"), e.k.dir(), e.k.dirVersion()}, old.token, "s").Int64(); err != nil || n != 0 {
		t.Fatalf("the old owner's release answered %d, %v", n, err)
	}
	if h := e.rdb.HGetAll(ctx, e.k.claim("s")).Val(); h["node"] != "b" || h["pub"] != `{"ip":"192.0.2.3","protocol":"webrtc"}` || h["fence"] == "" {
		t.Fatalf("b's claim after the old owner's writes: %v", h)
	}

	// Release: the stream is free at once.
	if err := cb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	ca2, err := a.Claim(ctx, "s", cluster.Publisher{})
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	if ca2.Fence() <= cb.Fence() {
		t.Fatalf("fence %d after %d", ca2.Fence(), cb.Fence())
	}

	// A dead owner's claim lapses and can be claimed elsewhere.
	cc, err := c.Claim(ctx, "d", cluster.Publisher{IP: "192.0.2.4"})
	if err != nil {
		t.Fatal(err)
	}
	c.pause()
	start := time.Now()
	var cb2 cluster.Claim
	eventually(t, 3*time.Second, "the dead node's stream cannot be claimed", func() bool {
		cb2, err = b.Claim(ctx, "d", cluster.Publisher{IP: "192.0.2.5"})
		if err != nil && !errors.Is(err, cluster.ErrClaimed) {
			t.Fatalf("claim: %v", err)
		}
		return err == nil
	})
	t.Logf("dead owner's stream claimed again after %v (lease 1 s)", time.Since(start))
	if cb2.Fence() <= cc.Fence() {
		t.Fatalf("fence %d after %d", cb2.Fence(), cc.Fence())
	}
	eventually(t, 2*time.Second, "the stuck owner does not learn it lost the stream", func() bool {
		return errors.Is(cc.Err(), cluster.ErrLost)
	})
}

// TestClaimOwnGrace: a second publisher on the same node takes over a
// stream in grace; the node's first claim is lost at once.
func TestClaimOwnGrace(t *testing.T) {
	e := newEnv(t)
	a := e.node("a", fast)
	ctx := context.Background()
	c1, err := a.Claim(ctx, "s", cluster.Publisher{IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c1.SetGrace(ctx, true); err != nil {
		t.Fatal(err)
	}
	if s, _ := a.Stream("s"); !s.Grace {
		t.Fatalf("stream in grace: %+v", s)
	}
	c2, err := a.Claim(ctx, "s", cluster.Publisher{IP: "192.0.2.2"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c1.Lost():
	default:
		t.Fatal("the first claim is not lost")
	}
	if s, _ := a.Stream("s"); s.Fence != c2.Fence() || s.Publisher.IP != "192.0.2.2" || s.Grace || len(a.Streams()) != 1 {
		t.Fatalf("streams after the takeover: %+v", a.Streams())
	}
	// c2 lives on through the refreshes.
	time.Sleep(1500 * time.Millisecond)
	if c2.Err() != nil {
		t.Fatalf("claim lost after the lease's time: %v", c2.Err())
	}
}

// TestViewSums: every node sees every stream with its viewers summed over
// the live nodes, and each node's client list; a dead node's viewers
// drop out on their own.
func TestViewSums(t *testing.T) {
	e := newEnv(t)
	a, b, c := e.node("a", fast), e.node("b", fast), e.node("c", fast)
	ctx := context.Background()
	if _, err := a.Claim(ctx, "s", cluster.Publisher{IP: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, "t", cluster.Publisher{IP: "192.0.2.2"}); err != nil {
		t.Fatal(err)
	}
	a.Report(cluster.Report{Viewers: map[string]int{"s": 2}, Clients: 3, ClientList: json.RawMessage(`[{"id":"a1"}]`)})
	b.Report(cluster.Report{Viewers: map[string]int{"s": 3, "t": 1}, Clients: 4, ClientList: json.RawMessage(`[{"id":"b1"}]`)})
	c.Report(cluster.Report{Viewers: map[string]int{"s": 4, "gone": 7}, Clients: 4})
	for _, n := range []*Cluster{a, b, c} {
		eventually(t, 5*time.Second, n.self.ID+" does not sum the viewers", func() bool {
			ss := n.Streams()
			return len(ss) == 2 && ss[0].Name == "s" && ss[0].Clients == 9 && ss[0].Node == "a" &&
				ss[1].Name == "t" && ss[1].Clients == 1 && ss[1].Node == "b"
		})
		eventually(t, 5*time.Second, n.self.ID+" has not the client lists", func() bool {
			l := n.ClientLists()
			return len(l) == 3 && string(l["a"]) == `[{"id":"a1"}]` && string(l["b"]) == `[{"id":"b1"}]` && l["c"] == nil
		})
		eventually(t, 5*time.Second, n.self.ID+" has not the nodes' numbers", func() bool {
			ns := n.Nodes()
			return len(ns) == 3 && ns[0].Streams == 1 && ns[0].Clients == 3 && ns[1].Streams == 1 && ns[2].Clients == 4
		})
	}
	c.Report(cluster.Report{Viewers: map[string]int{"s": 1}})
	b.Report(cluster.Report{Viewers: map[string]int{"s": 3, "t": 1}, Clients: 4, ClientList: json.RawMessage(`[{"id":"b2"}]`)})
	eventually(t, 5*time.Second, "a new report is not summed", func() bool { s, _ := a.Stream("s"); return s.Clients == 6 })
	eventually(t, 5*time.Second, "a new client list is not read", func() bool { return string(a.ClientLists()["b"]) == `[{"id":"b2"}]` })
	c.pause()
	eventually(t, 3*time.Second, "a dead node's viewers are still counted", func() bool {
		s, _ := b.Stream("s")
		return s.Clients == 5 && len(b.ClientLists()) == 2
	})
}

// TestCommands: commands reach their node only, every node once for a
// broadcast, in order; a dead node's go nowhere; garbage on a channel is
// dropped.
func TestCommands(t *testing.T) {
	e := newEnv(t)
	nodes := map[string]*Cluster{"a": e.node("a", fast), "b": e.node("b", fast), "c": e.node("c", fast)}
	got := map[string]chan cluster.Command{}
	for id, n := range nodes {
		ch := make(chan cluster.Command, 300)
		got[id] = ch
		n.HandleCommands(func(c cluster.Command) { ch <- c })
	}
	ctx := context.Background()
	a := nodes["a"]
	next := func(id string) cluster.Command {
		t.Helper()
		select {
		case c := <-got[id]:
			return c
		case <-time.After(2 * time.Second):
			t.Fatalf("%s got no command", id)
			return cluster.Command{}
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(a.Send(ctx, cluster.Command{Node: "b", Kind: "kick-client", Arg: "x", Data: json.RawMessage(`{"why":"test"}`)}))
	must(a.Send(ctx, cluster.Command{Node: "ghost", Kind: "kick-client", Arg: "nobody"}))
	must(e.rdb.Publish(ctx, e.k.cmdNode("c"), "not json").Err())
	must(a.Send(ctx, cluster.Command{Kind: "kick-stream", Arg: "all"}))
	if c := next("b"); c.Kind != "kick-client" || c.Arg != "x" || string(c.Data) != `{"why":"test"}` || c.Node != "b" {
		t.Fatalf("b got %+v", c)
	}
	for _, id := range []string{"a", "b", "c"} {
		if c := next(id); c.Kind != "kick-stream" || c.Arg != "all" {
			t.Fatalf("%s got %+v before the broadcast", id, c)
		}
	}
	// Nothing more: a has no second copy of its broadcast.
	must(a.Send(ctx, cluster.Command{Node: "a", Kind: "mark"}))
	if c := next("a"); c.Kind != "mark" {
		t.Fatalf("a got %+v", c)
	}

	for i := range 100 {
		must(a.Send(ctx, cluster.Command{Node: "c", Kind: "n", Data: json.RawMessage(`[` + strconv.Itoa(i) + `]`)}))
	}
	for i := range 100 {
		if c := next("c"); string(c.Data) != "["+strconv.Itoa(i)+"]" {
			t.Fatalf("command %d arrived as %s", i, c.Data)
		}
	}
	for id, ch := range got {
		if len(ch) != 0 {
			t.Errorf("%s has %d commands more", id, len(ch))
		}
	}
}

// TestNodeID: a second process with a live node's ID is refused; a
// process restarted with a dead one's ID joins once the old lease lapsed.
func TestNodeID(t *testing.T) {
	e := newEnv(t)
	a := e.node("a", fast)
	cfg := Config{URL: e.url, Prefix: e.prefix, Self: cluster.Node{ID: "a"}, Logger: testLogger(t)}
	fast(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := New(ctx, cfg); err == nil || !strings.Contains(err.Error(), "in use") {
		if c != nil {
			c.Close()
		}
		t.Fatalf("second live process with ID a: %v", err)
	}
	if _, err := a.Claim(ctx, "s", cluster.Publisher{}); err != nil {
		t.Fatal(err)
	}
	a.pause() // as if killed
	a2, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("restart with a dead node's ID: %v", err)
	}
	defer a2.Close()
	if _, err := a2.Claim(ctx, "s", cluster.Publisher{}); err != nil {
		t.Fatalf("the restarted node cannot claim its old stream: %v", err)
	}
	for _, id := range []string{"", "a\nb", strings.Repeat("x", 201)} {
		if _, err := New(ctx, Config{URL: e.url, Prefix: e.prefix, Self: cluster.Node{ID: id}}); err == nil {
			t.Fatalf("node ID %q accepted", id)
		}
	}
	if _, err := New(ctx, Config{URL: "http://127.0.0.1:6379", Self: cluster.Node{ID: "x"}}); err == nil {
		t.Fatal("bad URL accepted")
	}
}

// TestCorrupt: garbage in Redis under the prefix is left out of the view
// and does not stop a claim.
func TestCorrupt(t *testing.T) {
	e := newEnv(t)
	a := e.node("a", fast)
	ctx := context.Background()
	e.rdb.Set(ctx, e.k.lease("evil"), "not json", time.Minute)
	e.rdb.SAdd(ctx, e.k.nodes(), "evil", "ghost")
	e.rdb.HSet(ctx, e.k.claim("bad"), "node", "evil", "fence", "x", "pub", "{", "since", "y")
	e.rdb.Set(ctx, e.k.report("a"), "[", time.Minute)
	e.rdb.HSet(ctx, e.k.dir(), "bad", "evil\n\nt\nx\n0\ny\n{", "none", "", "short", "a\nb")
	e.rdb.Expire(ctx, e.k.claim("bad"), time.Minute)
	time.Sleep(300 * time.Millisecond)
	if a.Err() != nil || nodeIDs(a.Nodes()) != "a" || len(a.Streams()) != 0 {
		t.Fatalf("err %v, nodes %v, streams %v", a.Err(), a.Nodes(), a.Streams())
	}
	if e.rdb.SIsMember(ctx, e.k.nodes(), "ghost").Val() || e.rdb.HExists(ctx, e.k.dir(), "none").Val() || e.rdb.HExists(ctx, e.k.dir(), "short").Val() {
		t.Fatal("members without a key are not pruned")
	}
	if _, err := a.Claim(ctx, "bad", cluster.Publisher{}); err != nil {
		t.Fatalf("claim over a corrupt claim of no live node: %v", err)
	}
	a.Report(cluster.Report{ClientList: json.RawMessage(`{broken`), Clients: 2})
	if l := a.ClientLists()["a"]; l != nil {
		t.Fatalf("a broken client list kept: %s", l)
	}
}

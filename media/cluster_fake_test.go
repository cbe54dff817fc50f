package media

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/mofang-live/mofang/cluster"
)

// fakeDir is a cluster's shared state in memory, for several engines of
// one test: the stream directory with fences and grace takeovers, as
// cluster.Local keeps it for one node. Each engine gets a fakeNode of it.
type fakeDir struct {
	mu     sync.Mutex
	nodes  map[string]*fakeNode
	claims map[string]*fakeClaim
	fences map[string]int64
}

func newFakeDir() *fakeDir {
	return &fakeDir{nodes: map[string]*fakeNode{}, claims: map[string]*fakeClaim{}, fences: map[string]int64{}}
}

// node returns the cluster of node id; its URL is set with setURL once
// the node's HTTP server listens.
func (d *fakeDir) node(id string) *fakeNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := &fakeNode{d: d, self: cluster.Node{ID: id, Started: time.Now()}}
	d.nodes[id] = n
	return n
}

// kill removes node id at once, as a lapsed lease does: its claims are
// lost and its streams leave the directory.
func (d *fakeDir) kill(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.nodes, id)
	for _, c := range d.claims {
		if c.n.self.ID == id {
			c.loseLocked(cluster.ErrLost)
		}
	}
}

// fakeNode is one node's cluster.Cluster on a fakeDir.
type fakeNode struct {
	d    *fakeDir
	self cluster.Node // guarded by d.mu
	// unavailable makes Claim fail with ErrUnavailable.
	unavailable bool
	report      cluster.Report
}

func (n *fakeNode) setURL(u string) {
	n.d.mu.Lock()
	n.self.URL = u
	n.d.mu.Unlock()
}

func (n *fakeNode) Self() cluster.Node {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	return n.self
}

func (n *fakeNode) Err() error {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	if n.unavailable {
		return cluster.ErrUnavailable
	}
	return nil
}

func (n *fakeNode) Nodes() []cluster.Node {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	var out []cluster.Node
	for _, m := range n.d.nodes {
		out = append(out, m.self)
	}
	slices.SortFunc(out, func(a, b cluster.Node) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (n *fakeNode) Claim(_ context.Context, stream string, p cluster.Publisher) (cluster.Claim, error) {
	d := n.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if n.unavailable || d.nodes[n.self.ID] != n {
		return nil, cluster.ErrUnavailable
	}
	if old := d.claims[stream]; old != nil {
		if !old.grace {
			return nil, cluster.ErrClaimed
		}
		old.loseLocked(cluster.ErrLost)
	}
	d.fences[stream]++
	c := &fakeClaim{n: n, stream: stream, fence: d.fences[stream], pub: p, since: time.Now(), lost: make(chan struct{})}
	d.claims[stream] = c
	return c, nil
}

func (n *fakeNode) Streams() []cluster.Stream {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	var out []cluster.Stream
	for _, c := range n.d.claims {
		out = append(out, c.streamLocked())
	}
	slices.SortFunc(out, func(a, b cluster.Stream) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func (n *fakeNode) Stream(name string) (cluster.Stream, bool) {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	c := n.d.claims[name]
	if c == nil {
		return cluster.Stream{}, false
	}
	return c.streamLocked(), true
}

func (n *fakeNode) Report(r cluster.Report) {
	n.d.mu.Lock()
	n.report = r
	n.d.mu.Unlock()
}

func (n *fakeNode) ClientLists() map[string]json.RawMessage {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	out := map[string]json.RawMessage{}
	for id, m := range n.d.nodes {
		out[id] = m.report.ClientList
	}
	return out
}

func (n *fakeNode) Send(context.Context, cluster.Command) error { return nil }
func (n *fakeNode) HandleCommands(func(cluster.Command))        {}

func (n *fakeNode) Close() error {
	n.d.kill(n.Self().ID)
	return nil
}

// fakeClaim is a claim of a fakeNode.
type fakeClaim struct {
	n      *fakeNode
	stream string
	fence  int64
	since  time.Time
	lost   chan struct{}

	// guarded by d.mu
	pub   cluster.Publisher
	grace bool
	err   error
}

func (c *fakeClaim) streamLocked() cluster.Stream {
	return cluster.Stream{Name: c.stream, Node: c.n.self.ID, NodeURL: c.n.self.URL, Fence: c.fence, Publisher: c.pub,
		Grace: c.grace, Since: c.since}
}

func (c *fakeClaim) Fence() int64 { return c.fence }

func (c *fakeClaim) SetGrace(_ context.Context, grace bool) error {
	c.n.d.mu.Lock()
	defer c.n.d.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.grace = grace
	return nil
}

func (c *fakeClaim) SetPublisher(_ context.Context, p cluster.Publisher) error {
	c.n.d.mu.Lock()
	defer c.n.d.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.pub = p
	return nil
}

func (c *fakeClaim) Lost() <-chan struct{} { return c.lost }

func (c *fakeClaim) Err() error {
	c.n.d.mu.Lock()
	defer c.n.d.mu.Unlock()
	return c.err
}

func (c *fakeClaim) Release(context.Context) error {
	c.n.d.mu.Lock()
	defer c.n.d.mu.Unlock()
	c.loseLocked(cluster.ErrLost)
	return nil
}

func (c *fakeClaim) loseLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	close(c.lost)
	if c.n.d.claims[c.stream] == c {
		delete(c.n.d.claims, c.stream)
	}
}

var _ cluster.Cluster = (*fakeNode)(nil)

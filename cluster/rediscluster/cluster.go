package rediscluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
)

// Config configures a Cluster.
type Config struct {
	// URL is the Redis server: redis://[user:password@]host:port/db
	// (rediss:// for TLS; go-redis's query options such as dial_timeout
	// are honoured).
	URL string
	// Self is this node; its ID is required and unique in the cluster,
	// Started defaults to now.
	Self cluster.Node
	// Prefix starts every key and channel (default "mofang:").
	Prefix string
	// LeaseTTL is how long the node's lease and claims live without a
	// refresh (default 2.5 s: a dead node is dead for everyone within
	// LeaseTTL plus ViewEvery, under 3 s).
	LeaseTTL time.Duration
	// Refresh is how often the lease, the report and the claims are
	// refreshed (default 1 s; less than LeaseTTL).
	Refresh time.Duration
	// ViewEvery is how often the view of the cluster is read (default
	// 250 ms).
	ViewEvery time.Duration
	// Logger receives the cluster's logs (default slog.Default()).
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultPrefix    = "mofang:"
	DefaultLeaseTTL  = 2500 * time.Millisecond
	DefaultRefresh   = time.Second
	DefaultViewEvery = 250 * time.Millisecond
)

// fenceTTL is how long a stream's fence counter outlives its last claim.
const fenceTTL = 24 * time.Hour

// staleAfter is the age past which the view is too old to be trusted:
// Err then reports it.
const staleAfter = 2 * time.Second

// Cluster is the cluster.Cluster of a node on a Redis shared by every
// node of the service.
type Cluster struct {
	self     cluster.Node
	instance string // random, this process's
	k        keys
	rdb      *redis.Client
	ps       *redis.PubSub
	log      *slog.Logger

	leaseTTL, refresh, viewEvery time.Duration
	opTimeout                    time.Duration // of one background round trip
	stale                        time.Duration

	view    atomic.Pointer[view]
	kick    chan struct{} // asks the heartbeat loop to write the report now
	local   chan cluster.Command
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stopped atomic.Bool // test hook: no more heartbeats (see pause)

	mu         sync.Mutex
	claims     map[string]*claim
	report     cluster.Report
	reportJSON []byte
	reportNew  bool // reportJSON not yet written
	beatAt     time.Time
	beatErr    error
	viewErr    error
	handler    func(cluster.Command)
	closed     bool
}

// New joins the cluster: it writes the node's lease, subscribes to its
// commands and reads a first view, then keeps all of it current in the
// background until Close. It fails when Redis cannot be reached or when
// another live process holds Self.ID.
func New(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := checkID(cfg.Self.ID); err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.ViewEvery <= 0 {
		cfg.ViewEvery = DefaultViewEvery
	}
	if cfg.Refresh >= cfg.LeaseTTL {
		return nil, fmt.Errorf("rediscluster: refresh %v is not shorter than the lease's %v", cfg.Refresh, cfg.LeaseTTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Self.Started.IsZero() {
		cfg.Self.Started = time.Now()
	}
	cfg.Self.LastSeen, cfg.Self.Streams, cfg.Self.Clients = time.Time{}, 0, 0
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("rediscluster: URL: %w", err)
	}
	// Fail fast while Redis is unreachable: the background loops retry
	// on their own schedule.
	if opt.DialTimeout == 0 {
		opt.DialTimeout = time.Second
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = time.Second
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = time.Second
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 1
	}
	if opt.DialerRetries == 0 {
		opt.DialerRetries = 2
	}
	opt.ContextTimeoutEnabled = true

	c := &Cluster{
		self:      cfg.Self,
		instance:  rand.Text(),
		k:         keys{cfg.Prefix},
		rdb:       redis.NewClient(opt),
		log:       cfg.Logger.With("cluster", cfg.Self.ID),
		leaseTTL:  cfg.LeaseTTL,
		refresh:   cfg.Refresh,
		viewEvery: cfg.ViewEvery,
		opTimeout: min(max(cfg.Refresh, 500*time.Millisecond), cfg.LeaseTTL),
		stale:     max(staleAfter, 4*cfg.ViewEvery),
		kick:      make(chan struct{}, 1),
		local:     make(chan cluster.Command, 256),
		claims:    map[string]*claim{},
	}
	c.view.Store(&view{})
	if err := c.join(ctx); err != nil {
		c.rdb.Close()
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(3)
	go c.runHeartbeat()
	go c.runView()
	go c.runCommands()
	return c, nil
}

// checkID refuses a node ID that is empty, long or holds control
// characters (the directory's entries are lines).
func checkID(id string) error {
	if id == "" || len(id) > 200 {
		return fmt.Errorf("rediscluster: node ID %q: want 1 to 200 bytes", id)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("rediscluster: node ID %q: control characters", id)
		}
	}
	return nil
}

// join writes the first lease (waiting out a lease of the same ID left by
// a dead process), subscribes and reads the first view.
func (c *Cluster) join(ctx context.Context) error {
	if err := loadScripts(ctx, c.rdb); err != nil {
		return fmt.Errorf("rediscluster: Redis at %s: %w: %w", c.rdb.Options().Addr, cluster.ErrUnavailable, err)
	}
	deadline := time.Now().Add(c.leaseTTL + c.refresh + 500*time.Millisecond)
	var first string
	for {
		ok, err := c.heartbeat(ctx)
		if err != nil {
			return fmt.Errorf("rediscluster: lease: %w: %w", cluster.ErrUnavailable, err)
		}
		if ok {
			break
		}
		// Another process's lease: a dead one's lapses unchanged, a live
		// one's is refreshed.
		v, err := c.rdb.Get(ctx, c.k.lease(c.self.ID)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("rediscluster: lease: %w: %w", cluster.ErrUnavailable, err)
		}
		if first == "" {
			first = v
		} else if v != "" && v != first || time.Now().After(deadline) {
			return fmt.Errorf("rediscluster: node ID %q is in use by another live process", c.self.ID)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rediscluster: lease: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	c.ps = c.rdb.Subscribe(ctx, c.k.cmdAll(), c.k.cmdNode(c.self.ID))
	for range 2 {
		if _, err := c.ps.Receive(ctx); err != nil {
			c.ps.Close()
			c.leave(ctx)
			return fmt.Errorf("rediscluster: subscribe: %w: %w", cluster.ErrUnavailable, err)
		}
	}
	if err := c.refreshView(ctx); err != nil {
		c.ps.Close()
		c.leave(ctx)
		return fmt.Errorf("rediscluster: view: %w: %w", cluster.ErrUnavailable, err)
	}
	return nil
}

// Client is the connection to Redis, for the Rooms and the Limiter of
// the same cluster. Close closes it: close them first.
func (c *Cluster) Client() redis.UniversalClient { return c.rdb }

// Self is this node.
func (c *Cluster) Self() cluster.Node { return c.self }

// Err is nil while Redis answers, the lease is current and the view
// fresh; else it wraps cluster.ErrUnavailable with the reason.
func (c *Cluster) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errLocked()
}

func (c *Cluster) errLocked() error {
	switch {
	case c.closed:
		return fmt.Errorf("rediscluster: %w: closed", cluster.ErrUnavailable)
	case c.beatErr != nil:
		return fmt.Errorf("rediscluster: lease: %w: %w", cluster.ErrUnavailable, c.beatErr)
	case time.Since(c.beatAt) > c.leaseTTL:
		return fmt.Errorf("rediscluster: %w: the lease was last written %v ago", cluster.ErrUnavailable, time.Since(c.beatAt).Round(time.Millisecond))
	case c.viewErr != nil:
		return fmt.Errorf("rediscluster: view: %w: %w", cluster.ErrUnavailable, c.viewErr)
	}
	if age := time.Since(c.view.Load().at); age > c.stale {
		return fmt.Errorf("rediscluster: %w: the view is %v old", cluster.ErrUnavailable, age.Round(time.Millisecond))
	}
	return nil
}

// errIDTaken is the heartbeat's error when another process holds the
// node's ID.
var errIDTaken = errors.New("the node ID is held by another process")

// Nodes lists the live nodes by ID, from the view; this node's own entry
// is current.
func (c *Cluster) Nodes() []cluster.Node {
	v := c.view.Load()
	out := make([]cluster.Node, 0, len(v.nodes)+1)
	for id, n := range v.nodes {
		if id != c.self.ID {
			out = append(out, n.node)
		}
	}
	c.mu.Lock()
	out = append(out, c.selfLocked())
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b cluster.Node) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// selfLocked is this node as the registry shows it now.
func (c *Cluster) selfLocked() cluster.Node {
	n := c.self
	n.LastSeen = c.beatAt
	n.Streams = len(c.claims)
	n.Clients = c.report.Clients
	return n
}

// Streams lists the streams of the cluster by name: the other nodes'
// from the view, this node's from its claims, with their viewers summed
// over every live node.
func (c *Cluster) Streams() []cluster.Stream {
	v := c.view.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	own := slices.SortedFunc(maps.Values(c.claims), func(a, b *claim) int { return cmp.Compare(a.stream, b.stream) })
	out := make([]cluster.Stream, 0, len(v.sorted)+len(own))
	i, j := 0, 0
	for i < len(v.sorted) || j < len(own) {
		switch {
		case j == len(own) || i < len(v.sorted) && v.sorted[i] < own[j].stream:
			out = append(out, c.streamLocked(v, v.streams[v.sorted[i]]))
			i++
		case i == len(v.sorted) || own[j].stream < v.sorted[i]:
			out = append(out, c.claimStreamLocked(v, own[j]))
			j++
		default: // both: the higher fence is the owner
			if e := v.streams[v.sorted[i]]; e.s.Fence > own[j].fence {
				out = append(out, c.streamLocked(v, e))
			} else {
				out = append(out, c.claimStreamLocked(v, own[j]))
			}
			i++
			j++
		}
	}
	return out
}

// Stream reports one stream of Streams.
func (c *Cluster) Stream(name string) (cluster.Stream, bool) {
	v := c.view.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, inView := v.streams[name]
	if cl := c.claims[name]; cl != nil && !(inView && e.s.Fence > cl.fence) {
		return c.claimStreamLocked(v, cl), true
	}
	if inView {
		return c.streamLocked(v, e), true
	}
	return cluster.Stream{}, false
}

// streamLocked is a stream of another node, from the view.
func (c *Cluster) streamLocked(v *view, e streamEntry) cluster.Stream {
	s := e.s
	s.Clients = v.others[s.Name] + c.report.Viewers[s.Name]
	return s
}

// claimStreamLocked is a stream of this node, from its claim.
func (c *Cluster) claimStreamLocked(v *view, cl *claim) cluster.Stream {
	return cluster.Stream{Name: cl.stream, Node: c.self.ID, NodeURL: c.self.URL, Fence: cl.fence,
		Publisher: cl.pub, Grace: cl.grace, Since: cl.since,
		Clients: v.others[cl.stream] + c.report.Viewers[cl.stream]}
}

// reportValue is a report as Redis holds it; the client list, larger
// and seldom read, is kept apart and read again only when its sum
// changed.
type reportValue struct {
	Viewers map[string]int `json:"viewers,omitempty"`
	Clients int            `json:"clients"`
	ListSum string         `json:"list_sum,omitempty"` // listSum of the client list
}

// listSum tells client lists apart.
func listSum(l []byte) string {
	if len(l) == 0 {
		return ""
	}
	h := fnv.New64a()
	h.Write(l)
	return strconv.FormatUint(h.Sum64(), 36)
}

// Report replaces this node's report; it is written at once (at most
// every 100 ms) and then kept with each refresh of the lease.
func (c *Cluster) Report(r cluster.Report) {
	r.Viewers = maps.Clone(r.Viewers)
	if len(r.ClientList) > 0 && !json.Valid(r.ClientList) {
		c.log.Warn("the report's client list is not JSON: left out")
		r.ClientList = nil
	}
	r.ClientList = slices.Clone(r.ClientList)
	b, err := json.Marshal(reportValue{Viewers: r.Viewers, Clients: r.Clients, ListSum: listSum(r.ClientList)})
	if err != nil {
		c.log.Error("cannot encode the report", "err", err)
		return
	}
	c.mu.Lock()
	c.report, c.reportJSON, c.reportNew = r, b, true
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// ClientLists returns each live node's last client list by node ID, this
// node's current.
func (c *Cluster) ClientLists() map[string]json.RawMessage {
	v := c.view.Load()
	out := make(map[string]json.RawMessage, len(v.nodes)+1)
	for id := range v.nodes {
		if id != c.self.ID {
			out[id] = v.lists[id].list
		}
	}
	c.mu.Lock()
	out[c.self.ID] = c.report.ClientList
	c.mu.Unlock()
	return out
}

// Close leaves the cluster at once: the lease, the report and the claims
// are deleted from Redis (each claim lost with cluster.ErrLost), the
// background work stops and the connection is closed.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	held := slices.Collect(maps.Values(c.claims))
	for _, cl := range held {
		cl.loseLocked(cluster.ErrLost)
	}
	c.mu.Unlock()
	c.cancel()
	c.ps.Close()
	c.wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := c.leave(ctx, held...)
	if cerr := c.rdb.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("rediscluster: close: %w", cerr)
	}
	return err
}

// leave deletes the claims, the lease and the report.
func (c *Cluster) leave(ctx context.Context, held ...*claim) error {
	_, err := c.pipeline(ctx, func(p redis.Pipeliner) {
		for _, cl := range held {
			releaseScript.EvalSha(ctx, p, []string{c.k.claim(cl.stream), c.k.dir(), c.k.dirVersion()}, cl.token, cl.stream)
		}
		leaveScript.EvalSha(ctx, p, []string{c.k.lease(c.self.ID), c.k.nodes(), c.k.report(c.self.ID), c.k.clients(c.self.ID)},
			c.instance, c.self.ID)
	})
	if err != nil {
		return fmt.Errorf("rediscluster: leave: %w", err)
	}
	return nil
}

// pipeline runs the commands fill adds in one round trip; when Redis has
// lost the scripts (it restarted), it loads them and runs it again.
func (c *Cluster) pipeline(ctx context.Context, fill func(redis.Pipeliner)) ([]redis.Cmder, error) {
	cmds, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { fill(p); return nil })
	if err != nil && hasNoScript(cmds) {
		if lerr := loadScripts(ctx, c.rdb); lerr != nil {
			return cmds, lerr
		}
		cmds, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { fill(p); return nil })
	}
	return cmds, err
}

// pause stops the heartbeats as if the process hung (for the tests).
func (c *Cluster) pause() { c.stopped.Store(true) }

// runHeartbeat refreshes the lease, the report and the claims every
// Refresh, and writes a new report soon after Report.
func (c *Cluster) runHeartbeat() {
	defer c.wg.Done()
	const minGap = 100 * time.Millisecond
	tick := time.NewTicker(c.refresh)
	defer tick.Stop()
	var soon <-chan time.Time
	last := time.Now()
	beat := func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.opTimeout)
		defer cancel()
		c.heartbeat(ctx)
		last = time.Now()
	}
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
			beat()
		case <-c.kick:
			if wait := minGap - time.Since(last); wait > 0 {
				if soon == nil {
					soon = time.After(wait)
				}
				continue
			}
			beat()
		case <-soon:
			soon = nil
			beat()
		}
	}
}

// heartbeat writes the lease and the report and keeps the claims, in one
// round trip; ok is false when another process holds the node's ID.
func (c *Cluster) heartbeat(ctx context.Context) (ok bool, err error) {
	if c.stopped.Load() {
		return false, errors.New("paused")
	}
	c.mu.Lock()
	n := c.selfLocked()
	n.LastSeen = time.Now()
	leaseJSON, err := json.Marshal(struct {
		cluster.Node
		Instance string `json:"instance"`
	}{n, c.instance})
	if err != nil {
		c.mu.Unlock()
		return false, fmt.Errorf("rediscluster: lease: %w", err)
	}
	writeReport, reportJSON, list := "0", "", ""
	if c.reportNew {
		writeReport, reportJSON, list = "1", string(c.reportJSON), string(c.report.ClientList)
	}
	states := make([]claimState, 0, len(c.claims))
	for _, cl := range c.claims {
		states = append(states, cl.stateLocked())
	}
	c.mu.Unlock()

	var beat *redis.Cmd
	asserts := make([]*redis.Cmd, len(states))
	ttl := c.leaseTTL.Milliseconds()
	_, err = c.pipeline(ctx, func(p redis.Pipeliner) {
		beat = heartbeatScript.EvalSha(ctx, p,
			[]string{c.k.lease(c.self.ID), c.k.nodes(), c.k.report(c.self.ID), c.k.clients(c.self.ID)},
			c.instance, leaseJSON, ttl, c.self.ID, writeReport, reportJSON, list)
		for i, st := range states {
			asserts[i] = c.assert(ctx, p, st, st.dirty)
		}
	})
	res, berr := beat.Int64Slice()
	if err == nil {
		err = berr
	}
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("rediscluster: heartbeat answered %v", res)
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.beatErr == nil && !c.closed {
			c.log.Warn("cannot refresh the lease", "err", err)
		}
		c.beatErr = err
		return false, err
	}
	if res[0] == 0 {
		if !errors.Is(c.beatErr, errIDTaken) && !c.beatAt.IsZero() {
			c.log.Error("another process holds this node's ID", "node", c.self.ID)
		}
		c.beatErr = errIDTaken
		return false, nil
	}
	if c.beatErr != nil {
		c.log.Info("lease refreshed again")
	}
	c.beatErr, c.beatAt = nil, now
	if writeReport == "1" && string(c.reportJSON) == reportJSON {
		c.reportNew = false
	} else if res[1] == 0 {
		c.reportNew = true // gone (Redis restarted): write it next time
	}
	var undo []*claim
	for i, st := range states {
		if u, _ := c.applyAssert(st, asserts[i]); u {
			undo = append(undo, st.cl)
		}
	}
	if len(undo) > 0 {
		go func() { // released while the heartbeat re-created them
			for _, cl := range undo {
				c.release(context.Background(), cl)
			}
		}()
	}
	return true, nil
}

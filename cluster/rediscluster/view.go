package rediscluster

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
)

// view is what the node last read of the cluster; it is replaced whole,
// never changed.
type view struct {
	at    time.Time
	nodes map[string]nodeEntry // the live nodes by ID
	// streams holds the claims of the live nodes other than this one, by
	// stream; sorted is the same by name.
	streams map[string]streamEntry
	sorted  []string
	// others sums the viewers of each stream over the live nodes other
	// than this one.
	others  map[string]int
	lists   map[string]clientList // the other live nodes' client lists
	reports map[string]decodedReport
	dir     map[string]streamEntry // every directory entry decoded, by its raw value
	// rawDir is the directory as read (field, value pairs) at version
	// dirVer: the view reads it again only when the version changes.
	rawDir []string
	dirVer string
}

// clientList is a node's client list and its listSum.
type clientList struct {
	sum  string
	list json.RawMessage
}

type nodeEntry struct {
	node     cluster.Node
	instance string
}

// streamEntry is a directory entry.
type streamEntry struct {
	s    cluster.Stream
	inst string // the owner's instance
	// token is the claim's; a node whose claim of the stream has another
	// token and a lower fence lost it.
	token string
}

// decodedReport is a report's raw value and what it says.
type decodedReport struct {
	raw string
	rv  reportValue
}

// leaseValue is a lease as Redis holds it.
type leaseValue struct {
	cluster.Node
	Instance string `json:"instance"`
}

// runView reads the view every ViewEvery.
func (c *Cluster) runView() {
	defer c.wg.Done()
	tick := time.NewTicker(c.viewEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, max(c.opTimeout, 2*c.viewEvery))
		err := c.refreshView(ctx)
		cancel()
		c.mu.Lock()
		if err != nil && c.viewErr == nil && !c.closed {
			c.log.Warn("cannot read the cluster's view", "err", err)
		} else if err == nil && c.viewErr != nil {
			c.log.Info("the cluster's view is current again")
		}
		c.viewErr = err
		c.mu.Unlock()
	}
}

// refreshView reads the registry, the reports and the directory in one
// read-only script and replaces the view (the client lists that changed
// in a second round trip); it ends this node's claims that another node
// took over, and prunes the indexes.
func (c *Cluster) refreshView(ctx context.Context) error {
	prev := c.view.Load()
	ks := []string{c.k.nodes(), c.k.dir(), c.k.dirVersion()}
	cmd := viewScript.EvalSha(ctx, c.rdb, ks, c.k.p, prev.dirVer)
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		cmd = viewScript.Eval(ctx, c.rdb, ks, c.k.p, prev.dirVer)
	}
	res, err := cmd.Slice()
	if err != nil {
		return err
	}
	if len(res) != 5 {
		return fmt.Errorf("the view script answered %d parts", len(res))
	}
	ids, leases, reports, dir := strs(res[0]), strs(res[1]), strs(res[2]), prev.rawDir
	dirVer, _ := res[3].(string)
	if res[4] != nil {
		dir = strs(res[4])
	}
	if len(leases) != len(ids) || len(reports) != len(ids) || len(dir)%2 != 0 {
		return fmt.Errorf("the view script answered %d nodes, %d leases, %d reports, %d directory fields",
			len(ids), len(leases), len(reports), len(dir))
	}

	v := &view{
		at:      time.Now(),
		dirVer:  dirVer,
		rawDir:  dir,
		nodes:   make(map[string]nodeEntry, len(ids)),
		streams: make(map[string]streamEntry, len(dir)/2),
		others:  map[string]int{},
		lists:   make(map[string]clientList, len(ids)),
		reports: make(map[string]decodedReport, len(ids)),
		dir:     make(map[string]streamEntry, len(dir)/2),
	}
	var deadNodes, fetch []string
	for i, id := range ids {
		if leases[i] == "" {
			deadNodes = append(deadNodes, id)
			continue
		}
		var lv leaseValue
		if err := json.Unmarshal([]byte(leases[i]), &lv); err != nil || lv.ID != id || lv.Instance == "" {
			c.log.Debug("unreadable lease left out", "node", id, "err", err)
			continue
		}
		v.nodes[id] = nodeEntry{node: lv.Node, instance: lv.Instance}
		if reports[i] == "" || id == c.self.ID {
			continue
		}
		r, ok := prev.reports[id]
		if !ok || r.raw != reports[i] {
			r = decodedReport{raw: reports[i]}
			if err := json.Unmarshal([]byte(r.raw), &r.rv); err != nil {
				c.log.Debug("unreadable report left out", "node", id, "err", err)
				continue
			}
		}
		v.reports[id] = r
		for name, n := range r.rv.Viewers {
			if n > 0 {
				v.others[name] += n
			}
		}
		switch old, ok := prev.lists[id]; {
		case r.rv.ListSum == "":
		case ok && old.sum == r.rv.ListSum:
			v.lists[id] = old
		default:
			fetch = append(fetch, id)
		}
	}
	if err := c.fetchLists(ctx, v, fetch); err != nil {
		return err
	}

	var stale []string // entries of dead nodes
	for i := 0; i < len(dir); i += 2 {
		name, raw := dir[i], dir[i+1]
		e, ok := prev.dir[raw]
		if !ok {
			if e, ok = decodeDirEntry(name, raw); !ok {
				c.log.Debug("unreadable directory entry", "stream", name)
				stale = append(stale, name)
				continue
			}
		}
		v.dir[raw] = e
		n, live := v.nodes[e.s.Node]
		if !live || n.instance != e.inst {
			stale = append(stale, name) // pruned once its claim lapsed
			continue
		}
		if e.s.Node == c.self.ID {
			continue // this node's are its claims
		}
		e.s.NodeURL = n.node.URL
		v.streams[name] = e
	}
	v.sorted = slices.Sorted(maps.Keys(v.streams))
	c.view.Store(v)

	c.mu.Lock()
	for _, e := range v.dir {
		cl := c.claims[e.s.Name]
		switch {
		case cl != nil && e.token != cl.token && e.s.Fence > cl.fence:
			c.log.Warn("claim lost: the stream was taken over", "stream", cl.stream, "fence", cl.fence, "by", e.s.Fence)
			cl.loseLocked(cluster.ErrLost)
		case cl == nil && e.inst == c.instance:
			// This process no longer holds it (released while Redis was
			// unreachable): pruned once its claim lapsed.
			stale = append(stale, e.s.Name)
		}
	}
	c.mu.Unlock()

	if err := c.prune(ctx, pruneNodesScript, []string{c.k.nodes()}, deadNodes, c.k.lease); err != nil {
		return err
	}
	return c.prune(ctx, pruneDirScript, []string{c.k.dir(), c.k.dirVersion()}, stale, c.k.claim)
}

// decodeDirEntry decodes a directory entry (see luaDirEntry).
func decodeDirEntry(name, raw string) (streamEntry, bool) {
	f := strings.SplitN(raw, "\n", 7)
	if len(f) != 7 || f[0] == "" {
		return streamEntry{}, false
	}
	fence, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return streamEntry{}, false
	}
	e := streamEntry{inst: f[1], token: f[2], s: cluster.Stream{Name: name, Node: f[0], Fence: fence, Grace: f[4] == "1"}}
	if ms, err := strconv.ParseInt(f[5], 10, 64); err == nil {
		e.s.Since = time.UnixMilli(ms)
	}
	if err := json.Unmarshal([]byte(f[6]), &e.s.Publisher); err != nil {
		e.s.Publisher = cluster.Publisher{}
	}
	return e, true
}

// fetchLists reads the client lists of the given nodes into v.
func (c *Cluster) fetchLists(ctx context.Context, v *view, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ks := make([]string, len(ids))
	for i, id := range ids {
		ks[i] = c.k.clients(id)
	}
	vals, err := c.rdb.MGet(ctx, ks...).Result()
	if err != nil {
		return err
	}
	for i, id := range ids {
		if s, ok := vals[i].(string); ok && json.Valid([]byte(s)) {
			v.lists[id] = clientList{sum: listSum([]byte(s)), list: json.RawMessage(s)}
		}
	}
	return nil
}

// strs is a reply's array as strings, nil elements as "".
func strs(x any) []string {
	a, _ := x.([]any)
	out := make([]string, len(a))
	for i, e := range a {
		out[i], _ = e.(string)
	}
	return out
}

// prune runs a prune script: the index keys first, then the key of each
// member, checked before its member is removed.
func (c *Cluster) prune(ctx context.Context, script *redis.Script, index, members []string, key func(string) string) error {
	if len(members) == 0 {
		return nil
	}
	ks := slices.Clone(index)
	args := make([]any, len(members))
	for i, m := range members {
		ks = append(ks, key(m))
		args[i] = m
	}
	if err := script.Run(ctx, c.rdb, ks, args...).Err(); err != nil {
		return fmt.Errorf("prune %s: %w", index[0], err)
	}
	return nil
}

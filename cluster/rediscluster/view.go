package rediscluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
)

// view is what the node last read of the cluster; it is replaced whole,
// never changed.
type view struct {
	at      time.Time
	nodes   map[string]nodeEntry   // the live nodes by ID
	streams map[string]streamEntry // the claims of live nodes by stream
	// others sums the viewers of each stream over the live nodes other
	// than this one.
	others map[string]int
	lists  map[string]json.RawMessage // the live nodes' client lists
}

type nodeEntry struct {
	node     cluster.Node
	instance string
}

type streamEntry struct {
	s     cluster.Stream
	token string
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

// claimFields are the fields of a claim the view reads, in this order.
var claimFields = []string{"node", "inst", "token", "fence", "pub", "grace", "since"}

// refreshView reads the registry, the directory and the reports in two
// round trips and replaces the view; it ends this node's claims that
// another node took over, and prunes the index sets.
func (c *Cluster) refreshView(ctx context.Context) error {
	var idsCmd, namesCmd *redis.StringSliceCmd
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		idsCmd = p.SMembers(ctx, c.k.nodes())
		namesCmd = p.SMembers(ctx, c.k.streams())
		return nil
	})
	if err != nil {
		return err
	}
	ids, names := idsCmd.Val(), namesCmd.Val()

	var leasesCmd, reportsCmd *redis.SliceCmd
	claimCmds := make([]*redis.SliceCmd, len(names))
	if len(ids) > 0 || len(names) > 0 {
		_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			if len(ids) > 0 {
				lk, rk := make([]string, len(ids)), make([]string, len(ids))
				for i, id := range ids {
					lk[i], rk[i] = c.k.lease(id), c.k.report(id)
				}
				leasesCmd = p.MGet(ctx, lk...)
				reportsCmd = p.MGet(ctx, rk...)
			}
			for i, name := range names {
				claimCmds[i] = p.HMGet(ctx, c.k.claim(name), claimFields...)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}

	v := &view{
		at:      time.Now(),
		nodes:   make(map[string]nodeEntry, len(ids)),
		streams: make(map[string]streamEntry, len(names)),
		others:  map[string]int{},
		lists:   make(map[string]json.RawMessage, len(ids)),
	}
	var deadNodes []string
	for i, id := range ids {
		s, ok := leasesCmd.Val()[i].(string)
		if !ok {
			deadNodes = append(deadNodes, id)
			continue
		}
		var lv leaseValue
		if err := json.Unmarshal([]byte(s), &lv); err != nil || lv.ID != id || lv.Instance == "" {
			c.log.Debug("unreadable lease left out", "node", id, "err", err)
			continue
		}
		v.nodes[id] = nodeEntry{node: lv.Node, instance: lv.Instance}
		r, ok := reportsCmd.Val()[i].(string)
		if !ok {
			continue
		}
		var rv reportValue
		if err := json.Unmarshal([]byte(r), &rv); err != nil {
			c.log.Debug("unreadable report left out", "node", id, "err", err)
			continue
		}
		v.lists[id] = rv.List
		if id == c.self.ID {
			continue
		}
		for name, n := range rv.Viewers {
			if n > 0 {
				v.others[name] += n
			}
		}
	}

	type taken struct {
		name  string
		fence int64
		token string
	}
	var goneStreams []string
	var takenOver []taken
	for i, name := range names {
		f := claimCmds[i].Val()
		str := func(j int) string { s, _ := f[j].(string); return s }
		if str(0) == "" {
			goneStreams = append(goneStreams, name)
			continue
		}
		fence, _ := strconv.ParseInt(str(3), 10, 64)
		takenOver = append(takenOver, taken{name, fence, str(2)})
		n, live := v.nodes[str(0)]
		if !live || n.instance != str(1) {
			continue // its node is dead: the claim lapses
		}
		e := streamEntry{token: str(2), s: cluster.Stream{Name: name, Node: n.node.ID, NodeURL: n.node.URL,
			Fence: fence, Grace: str(5) == "1"}}
		if err := json.Unmarshal([]byte(str(4)), &e.s.Publisher); err != nil {
			c.log.Debug("unreadable publisher of a claim", "stream", name, "err", err)
		}
		if ms, err := strconv.ParseInt(str(6), 10, 64); err == nil {
			e.s.Since = time.UnixMilli(ms)
		}
		v.streams[name] = e
	}
	c.view.Store(v)

	c.mu.Lock()
	for _, t := range takenOver {
		if cl := c.claims[t.name]; cl != nil && t.token != cl.token && t.fence > cl.fence {
			c.log.Warn("claim lost: the stream was taken over", "stream", t.name, "fence", cl.fence, "by", t.fence)
			cl.loseLocked(cluster.ErrLost)
		}
	}
	c.mu.Unlock()

	if err := c.prune(ctx, c.k.nodes(), deadNodes, c.k.lease); err != nil {
		return err
	}
	return c.prune(ctx, c.k.streams(), goneStreams, c.k.claim)
}

// prune removes from an index set the members whose key is gone.
func (c *Cluster) prune(ctx context.Context, set string, members []string, key func(string) string) error {
	if len(members) == 0 {
		return nil
	}
	ks := make([]string, 1, len(members)+1)
	ks[0] = set
	args := make([]any, len(members))
	for i, m := range members {
		ks = append(ks, key(m))
		args[i] = m
	}
	if err := pruneScript.Run(ctx, c.rdb, ks, args...).Err(); err != nil {
		return fmt.Errorf("prune %s: %w", set, err)
	}
	return nil
}

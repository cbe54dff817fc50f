package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/relay"
)

// The engine in a cluster. A publish of a stream new to this node claims
// it in the cluster's directory (claims, the hub's Claims); a publisher
// leaving marks the claim in grace, one back within the grace unmarks
// it, the stream's end releases it. A claim lost to another node
// disconnects this node's publisher, and the local stream, no longer
// reported as this node's, keeps its viewers through a relay from the
// new owner (media/relay). A viewer of a stream another node publishes
// starts a relay of it (the hub's OnMissingStream).

// clusterTimeout bounds each call to the cluster's shared state.
const clusterTimeout = 3 * time.Second

// claims keeps the claims of the streams this node publishes; it is the
// hub's Claims.
type claims struct {
	e    *Engine
	cl   cluster.Cluster
	self string
	log  *slog.Logger

	mu      sync.Mutex
	states  map[string]*claimState
	closing bool
	wg      sync.WaitGroup // watchers, releases, grace updates
}

// claimState is this node's hold on one stream name.
type claimState struct {
	// op orders the operations on the claim that wait on the network.
	op sync.Mutex

	// guarded by claims.mu
	refs    int           // goroutines using the state: it is kept meanwhile
	claim   cluster.Claim // nil: none held
	stream  *hub.Stream   // the local stream the claim is for
	active  bool          // a publisher of this node has the stream
	pub     cluster.Publisher
	release []cluster.Claim // claims of ended streams, to give up
}

func newClaims(e *Engine, cl cluster.Cluster) *claims {
	return &claims{e: e, cl: cl, self: cl.Self().ID, log: e.log, states: map[string]*claimState{}}
}

// acquire returns the state of name, kept until released.
func (c *claims) acquire(name string) *claimState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acquireLocked(name)
}

func (c *claims) acquireLocked(name string) *claimState {
	st := c.states[name]
	if st == nil {
		st = &claimState{}
		c.states[name] = st
	}
	st.refs++
	return st
}

// releaseState gives back a state; an idle one is forgotten.
func (c *claims) releaseState(name string, st *claimState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st.refs--
	if st.refs == 0 && st.claim == nil && st.stream == nil && len(st.release) == 0 && c.states[name] == st {
		delete(c.states, name)
	}
}

// refusal is the publisher's refusal for a failed claim.
func claimRefusal(name string, err error) error {
	if errors.Is(err, cluster.ErrClaimed) {
		return fmt.Errorf("%w (on another node)", hub.ErrAlreadyPublishing)
	}
	return &hub.RefusalError{Reason: "service unavailable", Err: fmt.Errorf("%w: claiming %s: %w", hub.ErrUnavailable, name, err)}
}

// Claim claims name for publisher p (see hub.Claims): a new claim, or
// this node's claim in grace taken back.
func (c *claims) Claim(name string, p *hub.Client) (func(*hub.Stream), error) {
	st := c.acquire(name)
	st.op.Lock()
	fail := func(err error) (func(*hub.Stream), error) {
		st.op.Unlock()
		c.releaseState(name, st)
		return nil, err
	}
	c.flush(name, st)

	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return fail(hub.ErrClosed)
	}
	if st.stream != nil && isDone(st.stream) {
		c.endedLocked(name, st, st.stream) // its end is on its way
	}
	if st.active {
		c.mu.Unlock()
		return fail(fmt.Errorf("%w (on this node)", hub.ErrAlreadyPublishing))
	}
	held, oldPub := st.claim, st.pub
	c.mu.Unlock()

	pub := cluster.Publisher{IP: p.IP().String(), Protocol: string(p.Protocol())}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if held != nil {
		// the stream's publisher is back on this node within the grace
		err := held.SetGrace(ctx, false)
		switch {
		case err == nil:
		case errors.Is(err, cluster.ErrLost) || held.Err() != nil:
			held = nil // lost meanwhile: claim it anew
		default:
			// the claim still holds: if another node takes it over
			// meanwhile, it is lost and this publisher disconnected.
			c.log.Warn("cluster: could not mark a stream's publisher back", "stream", name, "err", err)
		}
		if held != nil && pub != oldPub { // another address or protocol; B-frames found afresh
			if err := held.SetPublisher(ctx, pub); err != nil {
				c.log.Warn("cluster: could not update a stream's publisher", "stream", name, "err", err)
			}
		}
	}
	var fresh cluster.Claim
	if held == nil {
		cl, err := c.cl.Claim(ctx, name, pub)
		if err != nil {
			if !errors.Is(err, cluster.ErrClaimed) {
				c.log.Warn("cluster: claiming a stream failed", "stream", name, "err", err)
			}
			return fail(claimRefusal(name, err))
		}
		fresh = cl
	}

	return func(s *hub.Stream) {
		defer c.releaseState(name, st)
		defer st.op.Unlock()
		c.mu.Lock()
		defer c.mu.Unlock()
		if s == nil { // refused by the hub after all
			switch {
			case fresh != nil:
				st.release = append(st.release, fresh)
				c.asyncLocked(name, st, func() { c.flush(name, st) })
			case held != nil:
				c.asyncLocked(name, st, func() { c.markGrace(name, st, held) })
			}
			return
		}
		st.active = true
		st.stream = s
		st.pub = pub
		if fresh != nil {
			if st.claim != nil && st.claim != fresh {
				st.release = append(st.release, st.claim)
			}
			st.claim = fresh
			st.refs++
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer c.releaseState(name, st)
				c.watch(name, st, fresh, s)
			}()
		}
	}, nil
}

// asyncLocked runs f in a goroutine that holds a reference to st; c.mu
// is held.
func (c *claims) asyncLocked(name string, st *claimState, f func()) {
	st.refs++
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.releaseState(name, st)
		f()
	}()
}

func isDone(s *hub.Stream) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

// Unpublished marks the claim of s in grace: its publisher left.
func (c *claims) Unpublished(s *hub.Stream, _ *hub.Client) {
	name := s.Name()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.states[name]
	if st == nil || st.stream != s || !st.active || st.claim == nil {
		return
	}
	st.active = false
	held := st.claim
	c.asyncLocked(name, st, func() {
		st.op.Lock()
		defer st.op.Unlock()
		c.markGrace(name, st, held)
	})
}

// markGrace marks held in grace unless a publisher took the stream back
// meanwhile; st.op is held.
func (c *claims) markGrace(name string, st *claimState, held cluster.Claim) {
	c.mu.Lock()
	ok := !st.active && st.claim == held
	c.mu.Unlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if err := held.SetGrace(ctx, true); err != nil && !errors.Is(err, cluster.ErrLost) {
		c.log.Warn("cluster: could not mark a stream's publisher gone", "stream", name, "err", err)
	}
}

// Ended gives up the claim of s; a stream whose claim was lost is not
// reported as stopped (the node that took it over reports it).
func (c *claims) Ended(s *hub.Stream) {
	name := s.Name()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.states[name]
	if st == nil || st.stream != s {
		return
	}
	// decided before the release is queued (a released claim is lost
	// too): lost already, or the directory shows a newer claim elsewhere
	if held := st.claim; held != nil {
		cs, ok := c.cl.Stream(name)
		if held.Err() != nil || (ok && cs.Node != c.self && cs.Fence > held.Fence()) {
			s.Disown()
		}
	}
	c.endedLocked(name, st, s)
}

// endedLocked forgets the stream of st and queues its claim's release;
// c.mu is held.
func (c *claims) endedLocked(name string, st *claimState, s *hub.Stream) {
	if st.stream != s {
		return
	}
	held := st.claim
	st.claim, st.stream, st.active = nil, nil, false
	if held != nil {
		st.release = append(st.release, held)
		c.asyncLocked(name, st, func() {
			st.op.Lock()
			defer st.op.Unlock()
			c.flush(name, st)
		})
	}
}

// flush releases the claims queued in st; st.op is held.
func (c *claims) flush(name string, st *claimState) {
	c.mu.Lock()
	rel := st.release
	st.release = nil
	c.mu.Unlock()
	for _, held := range rel {
		ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
		if err := held.Release(ctx); err != nil {
			c.log.Warn("cluster: could not release a stream", "stream", name, "err", err)
		}
		cancel()
	}
}

// watch follows a claim until it is lost, given up, or the engine
// closes: it tells the directory when the stream's B-frames are found.
func (c *claims) watch(name string, st *claimState, held cluster.Claim, s *hub.Stream) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-held.Lost():
			c.lost(name, st, held)
			return
		case <-c.e.ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		current, pub := st.claim == held, st.pub
		c.mu.Unlock()
		if !current {
			return
		}
		if pub.BFrames || !c.e.streamStats(s).BFrames {
			continue
		}
		st.op.Lock()
		c.mu.Lock()
		current = st.claim == held && st.active
		pub = st.pub
		c.mu.Unlock()
		if current && !pub.BFrames {
			pub.BFrames = true
			ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
			err := held.SetPublisher(ctx, pub)
			cancel()
			if err != nil {
				c.log.Warn("cluster: could not update a stream's publisher", "stream", name, "err", err)
			} else {
				c.mu.Lock()
				if st.claim == held {
					st.pub = pub
				}
				c.mu.Unlock()
			}
		}
		st.op.Unlock()
	}
}

// lost handles a claim another node took over (or that lapsed): this
// node's publisher is disconnected, the local stream is another node's
// from now on, and its viewers stay with a relay from the new owner.
func (c *claims) lost(name string, st *claimState, held cluster.Claim) {
	c.mu.Lock()
	if c.closing || st.claim != held {
		c.mu.Unlock()
		return
	}
	s := st.stream
	st.claim, st.stream, st.active = nil, nil, false
	c.mu.Unlock()
	if s == nil {
		return
	}
	c.log.Warn("cluster: another node took the stream over", "stream", name, "err", held.Err())
	s.Disown()
	c.e.hub.DropPublisher(s)
	if s.ReaderCount() == 0 || !c.e.relays.Follow(name) {
		c.e.hub.EndStream(s, "another node took the stream over")
	}
}

// close stops the claims' handling: watchers end with the engine's
// context; releases of the streams the hub ended are waited for, up to
// timeout.
func (c *claims) close(timeout time.Duration) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		c.log.Warn("media engine: cluster releases still running after close")
	}
}

// relaySource is the node that publishes stream, when it is another
// node, from the cluster's directory.
func (e *Engine) relaySource(stream string) (relay.Source, bool) {
	cs, ok := e.cluster.Stream(stream)
	if !ok || cs.Node == e.clusterSelf || cs.NodeURL == "" {
		return relay.Source{}, false
	}
	return relay.Source{Node: cs.Node, URL: cs.NodeURL, Fence: cs.Fence, Grace: cs.Grace}, true
}

// clusterOwner reports whether another node publishes stream, and
// whether its publisher is there (not in grace).
func (e *Engine) clusterOwner(stream string) (other, publishing bool) {
	cs, ok := e.cluster.Stream(stream)
	if !ok || cs.Node == e.clusterSelf {
		return false, false
	}
	return true, !cs.Grace
}

package rediscluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
)

// Claim makes this node the publisher of a stream; see cluster.Cluster.
// It is one Lua script: refused with cluster.ErrClaimed while another
// live publisher holds the stream out of grace, and with
// cluster.ErrUnavailable while Err is not nil.
func (c *Cluster) Claim(ctx context.Context, stream string, p cluster.Publisher) (cluster.Claim, error) {
	if stream == "" {
		return nil, errors.New("rediscluster: claim: empty stream name")
	}
	if err := c.Err(); err != nil {
		return nil, fmt.Errorf("rediscluster: claim %q: %w", stream, err)
	}
	pub, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("rediscluster: claim %q: %w", stream, err)
	}
	token := rand.Text()
	for attempt := 0; ; attempt++ {
		res, err := claimScript.Run(ctx, c.rdb,
			[]string{c.k.claim(stream), c.k.fence(stream), c.k.dir(), c.k.lease(c.self.ID), c.k.dirVersion()},
			c.self.ID, c.instance, token, pub, c.leaseTTL.Milliseconds(), fenceTTL.Milliseconds(), stream, c.k.leasePrefix(),
		).Slice()
		if err != nil {
			return nil, fmt.Errorf("rediscluster: claim %q: %w: %w", stream, cluster.ErrUnavailable, err)
		}
		code, _ := res[0].(int64)
		switch {
		case code == 1 && len(res) == 3:
			fs, _ := res[1].(string)
			fence, _ := strconv.ParseInt(fs, 10, 64)
			ms, _ := res[2].(string)
			since, err := parseMillis(ms)
			if err != nil || fence <= 0 {
				return nil, fmt.Errorf("rediscluster: claim %q: Redis answered %v", stream, res)
			}
			cl := &claim{c: c, stream: stream, token: token, fence: fence, since: since, sinceMS: ms,
				lost: make(chan struct{}), pub: p, pubJSON: string(pub)}
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				c.release(context.WithoutCancel(ctx), cl)
				return nil, fmt.Errorf("rediscluster: claim %q: %w: closed", stream, cluster.ErrUnavailable)
			}
			if old := c.claims[stream]; old != nil {
				old.loseLocked(cluster.ErrLost) // taken over from this node's own publisher in grace
			}
			c.claims[stream] = cl
			c.mu.Unlock()
			return cl, nil
		case code == 0:
			holder := ""
			if len(res) > 1 {
				holder, _ = res[1].(string)
			}
			return nil, fmt.Errorf("rediscluster: claim %q: %w (node %q)", stream, cluster.ErrClaimed, holder)
		case code == -1 && attempt == 0:
			// The lease lapsed (Redis restarted empty, or a long pause):
			// write it and try once more.
			hctx, cancel := context.WithTimeout(ctx, c.opTimeout)
			_, err := c.heartbeat(hctx)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("rediscluster: claim %q: %w: %w", stream, cluster.ErrUnavailable, err)
			}
		case code == -1:
			return nil, fmt.Errorf("rediscluster: claim %q: %w: this node's lease is not its own", stream, cluster.ErrUnavailable)
		default:
			return nil, fmt.Errorf("rediscluster: claim %q: Redis answered %v", stream, res)
		}
	}
}

func parseMillis(s string) (time.Time, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// claim is a Claim of Cluster.
type claim struct {
	c       *Cluster
	stream  string
	token   string // the claim's own, random
	fence   int64
	since   time.Time
	sinceMS string
	lost    chan struct{}

	// guarded by c.mu
	pub     cluster.Publisher
	pubJSON string
	grace   bool
	ver     int64 // counts the writes of pub and grace
	dirty   bool  // pub or grace not yet written
	err     error
}

// claimState is what the scripts need of a claim, copied under c.mu.
type claimState struct {
	cl      *claim
	pubJSON string
	grace   bool
	ver     int64
	dirty   bool
}

func (cl *claim) stateLocked() claimState {
	return claimState{cl: cl, pubJSON: cl.pubJSON, grace: cl.grace, ver: cl.ver, dirty: cl.dirty}
}

// assert queues assertScript for a claim on p.
func (c *Cluster) assert(ctx context.Context, p redis.Scripter, st claimState, write bool) *redis.Cmd {
	cl := st.cl
	grace, w := "0", "0"
	if st.grace {
		grace = "1"
	}
	if write {
		w = "1"
	}
	return assertScript.EvalSha(ctx, p,
		[]string{c.k.claim(cl.stream), c.k.fence(cl.stream), c.k.dir(), c.k.lease(c.self.ID), c.k.dirVersion()},
		cl.token, cl.fence, c.self.ID, c.instance, st.pubJSON, grace, cl.sinceMS, st.ver,
		c.leaseTTL.Milliseconds(), fenceTTL.Milliseconds(), cl.stream, w)
}

// applyAssert takes in assertScript's answer for a claim; c.mu is held.
// undo is true when the script re-created a claim that was released
// meanwhile: the caller releases it again.
func (c *Cluster) applyAssert(st claimState, cmd *redis.Cmd) (undo bool, err error) {
	cl := st.cl
	code, err := cmd.Int64()
	if err != nil {
		return false, err
	}
	switch code {
	case 1, 2:
		if cl.err != nil {
			return code == 2, nil
		}
		if cl.ver == st.ver {
			cl.dirty = false
		}
		if code == 2 {
			c.log.Info("claim re-asserted", "stream", cl.stream, "fence", cl.fence)
		}
		return false, nil
	case 0:
		if cl.err == nil {
			c.log.Warn("claim lost: the stream was claimed by another publisher", "stream", cl.stream, "fence", cl.fence)
		}
		cl.loseLocked(cluster.ErrLost)
		return false, cluster.ErrLost
	default:
		return false, errors.New("this node's lease is missing")
	}
}

// Fence is the claim's fencing token.
func (cl *claim) Fence() int64 { return cl.fence }

// SetGrace marks the publisher gone or back. While Redis cannot be
// reached it answers an error that wraps cluster.ErrUnavailable, and the
// state is written when Redis is back.
func (cl *claim) SetGrace(ctx context.Context, grace bool) error {
	return cl.set(ctx, func() { cl.grace = grace })
}

// SetPublisher updates the publisher the directory shows, as SetGrace.
func (cl *claim) SetPublisher(ctx context.Context, p cluster.Publisher) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("rediscluster: stream %q: %w", cl.stream, err)
	}
	return cl.set(ctx, func() { cl.pub, cl.pubJSON = p, string(b) })
}

// set changes the claim with fn and writes it, checked against the
// claim's token.
func (cl *claim) set(ctx context.Context, fn func()) error {
	c := cl.c
	c.mu.Lock()
	if cl.err != nil {
		c.mu.Unlock()
		return cl.err
	}
	fn()
	cl.ver++
	cl.dirty = true
	st := cl.stateLocked()
	unavailable := c.errLocked()
	c.mu.Unlock()
	if unavailable != nil {
		return fmt.Errorf("rediscluster: stream %q: %w", cl.stream, unavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	cmd := c.assert(ctx, c.rdb, st, true)
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		if err := loadScripts(ctx, c.rdb); err == nil {
			cmd = c.assert(ctx, c.rdb, st, true)
		}
	}
	if err := cmd.Err(); err != nil {
		return fmt.Errorf("rediscluster: stream %q: %w: %w", cl.stream, cluster.ErrUnavailable, err)
	}
	c.mu.Lock()
	undo, err := c.applyAssert(st, cmd)
	c.mu.Unlock()
	if undo {
		c.release(ctx, cl)
		return cluster.ErrLost
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrLost):
		return cluster.ErrLost
	default:
		return fmt.Errorf("rediscluster: stream %q: %w: %w", cl.stream, cluster.ErrUnavailable, err)
	}
}

// Lost is closed when the claim is no longer this node's.
func (cl *claim) Lost() <-chan struct{} { return cl.lost }

// Err is nil while the claim holds, else cluster.ErrLost.
func (cl *claim) Err() error {
	cl.c.mu.Lock()
	defer cl.c.mu.Unlock()
	return cl.err
}

// Release gives the stream up if the claim still holds it. The claim is
// ended at once; if Redis cannot be reached, its key lapses on its own
// within LeaseTTL (and the error says so).
func (cl *claim) Release(ctx context.Context) error {
	c := cl.c
	c.mu.Lock()
	if cl.err != nil {
		c.mu.Unlock()
		return nil
	}
	cl.loseLocked(cluster.ErrLost)
	c.mu.Unlock()
	return c.release(ctx, cl)
}

func (c *Cluster) release(ctx context.Context, cl *claim) error {
	ctx, cancel := context.WithTimeout(ctx, c.opTimeout)
	defer cancel()
	err := releaseScript.Run(ctx, c.rdb, []string{c.k.claim(cl.stream), c.k.dir(), c.k.dirVersion()}, cl.token, cl.stream).Err()
	if err != nil {
		return fmt.Errorf("rediscluster: release %q: %w: %w", cl.stream, cluster.ErrUnavailable, err)
	}
	return nil
}

// loseLocked ends the claim; c.mu is held.
func (cl *claim) loseLocked(err error) {
	if cl.err != nil {
		return
	}
	cl.err = err
	close(cl.lost)
	if cl.c.claims[cl.stream] == cl {
		delete(cl.c.claims, cl.stream)
	}
}

var (
	_ cluster.Cluster = (*Cluster)(nil)
	_ cluster.Claim   = (*claim)(nil)
)

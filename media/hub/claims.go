package hub

import (
	"context"
	"time"
)

// Claims is told of the publishers of a hub's streams, for a node of a
// cluster: the node claims in the cluster's directory the streams it
// publishes, and gives them up when they end. Relay publishers are not
// told of: they publish here a stream another node owns.
type Claims interface {
	// Claim is asked before c, a publisher that is not a relay, gets
	// stream name: new here, waiting in its grace period, or fed by a
	// relay. It may wait on the network. An error refuses c: one that
	// wraps ErrAlreadyPublishing when another node publishes the stream,
	// ErrUnavailable (in a *RefusalError) when the cluster cannot tell.
	// Otherwise the hub calls done once, with the stream c now
	// publishes, or with nil when it refused c after all (closed, or
	// another publisher came first).
	Claim(name string, c *Client) (done func(*Stream), err error)
	// Unpublished is told that c, the publisher of s, left: the stream
	// waits in its grace period for a publisher to take it back.
	Unpublished(s *Stream, c *Client)
	// Ended is told that s ended, before its end is reported to the
	// EventSink (if s is still Owned then: Ended may Disown it). It must
	// not block.
	Ended(s *Stream)
}

// defaultMissingStreamWait is Config.MissingStreamWait's default.
const defaultMissingStreamWait = 3 * time.Second

// PlayStream returns the stream a reader asked for: the stream called
// name if it is here (live or in its grace period). When it is not and
// Config.OnMissingStream says it is coming (a relay from the node that
// publishes it was started), PlayStream waits until it is here with a
// key frame to start from, up to Config.MissingStreamWait or the end of
// ctx; it returns nil when there is no such stream. Relays between nodes
// must use Stream instead, never to start a relay themselves.
func (h *Hub) PlayStream(ctx context.Context, name string) *Stream {
	if s := h.Stream(name); s != nil || h.cfg.OnMissingStream == nil {
		return s
	}
	if !h.cfg.OnMissingStream(name) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.MissingStreamWait)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s := h.Stream(name)
		if s != nil && s.LastKey() != nil {
			return s
		}
		select {
		case <-t.C:
		case <-h.ctx.Done():
			return nil
		case <-ctx.Done():
			// a stream that came without a key frame yet is played
			// anyway: its readers wait for one as usual
			return h.Stream(name)
		}
	}
}

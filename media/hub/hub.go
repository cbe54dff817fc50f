// Package hub is the core of the media engine: it owns the streams, each
// with one publisher and any number of readers, the ring that is both a
// stream's GOP cache and every reader's queue, the readers' writev fan-out,
// the clients of every protocol and their stats, the Authorizer call and
// the publish events.
//
// Data moves one way, publisher → stream → readers. A protocol package
// (media/rtmp, media/rtsp, media/httpflv, ...) registers its connections
// as Clients, publishes with Publish and Stream.WritePacket, and reads
// with a Reader (a socket fed by the fan-out, in a framing the protocol
// package defines) or a Cursor (an in-process consumer that takes every
// packet in order). Protocol packages depend on the hub, never on each
// other; the engine (package media) wires them.
package hub

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Hub owns the streams: it gives a path to one publisher, lets a publisher
// that dropped take its stream back within the grace period, and ends
// streams whose publisher did not come back. Create it with New.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	events EventSink
	plays  PlayEventSink // events', if it hears of viewers; else nil

	// ctx bounds the Authorizer calls; events are given it without its
	// cancellation. It ends with Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	streams map[string]*Stream
	closed  bool

	clientsMu    sync.Mutex
	clients      map[*Client]struct{}
	goneBytesIn  uint64 // bytes of clients that left
	goneBytesOut uint64
	nextID       atomic.Uint64

	eventsMu     sync.Mutex
	eventsClosed bool
	eventCh      chan func()
	eventDone    chan struct{}

	playEventsDropped atomic.Uint64
	readersFellBehind atomic.Uint64
	readersDropped    atomic.Uint64
	refused           atomic.Uint64

	closeOnce sync.Once
}

// New returns a hub configured by cfg and starts its event worker; Close
// stops it.
func New(cfg Config) (*Hub, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		cfg:       cfg,
		log:       cfg.Logger,
		events:    cfg.Events,
		ctx:       ctx,
		cancel:    cancel,
		streams:   make(map[string]*Stream),
		clients:   make(map[*Client]struct{}),
		eventCh:   make(chan func(), cfg.eventQueue),
		eventDone: make(chan struct{}),
	}
	h.plays, _ = cfg.Events.(PlayEventSink)
	go h.runEvents()
	return h, nil
}

// runEvents delivers events in order, off the media path.
func (h *Hub) runEvents() {
	defer close(h.eventDone)
	for f := range h.eventCh {
		f()
	}
}

// eventQueue bounds the events waiting for the event goroutine: a
// stream's end reports each of its viewers' stop first (a pointer each).
// The last publishEventReserve places are kept for publish events.
const (
	eventQueue          = 1 << 16
	publishEventReserve = 1024
)

// emit queues an event call. Streams ended by Close still report
// PublishStopped; later events are dropped.
func (h *Hub) emit(f func()) {
	h.eventsMu.Lock()
	defer h.eventsMu.Unlock()
	if h.eventsClosed {
		return
	}
	select {
	case h.eventCh <- f:
	default:
		h.log.Error("event queue full, dropping event")
	}
}

// emitPlay queues a play event call, unless the queue is so full that it
// would take a place kept for publish events: then it is dropped.
func (h *Hub) emitPlay(f func()) {
	h.eventsMu.Lock()
	defer h.eventsMu.Unlock()
	if h.eventsClosed {
		return
	}
	if len(h.eventCh) >= cap(h.eventCh)-publishEventReserve {
		if n := h.playEventsDropped.Add(1); n == 1 || n%1000 == 0 {
			h.log.Warn("event queue full, dropping play events", "dropped", n)
		}
		return
	}
	h.eventCh <- f
}

// Publish makes c the publisher of stream name. It refuses a second
// publisher of a stream that has one (ErrAlreadyPublishing); a stream
// waiting in its grace period is taken back with its readers. A
// publisher that is not a relay also replaces a relay publisher (the
// stream moved to this node), and is first admitted by Config.Claims if
// set (the node claims the stream in its cluster; this may wait on the
// network). The caller calls Unpublish when its publisher leaves.
func (h *Hub) Publish(name string, c *Client) (*Stream, error) {
	if c.relay || h.cfg.Claims == nil {
		return h.publish(name, c)
	}
	// refuse at once what the claim could not change
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if s, ok := h.streams[name]; ok {
		if err := s.refusePublisher(c); err != nil {
			h.mu.Unlock()
			return nil, err
		}
	}
	h.mu.Unlock()

	done, err := h.cfg.Claims.Claim(name, c)
	if err != nil {
		return nil, err
	}
	s, err := h.publish(name, c)
	done(s)
	return s, err
}

// refusePublisher returns why c may not publish s now: s has a publisher
// that c cannot replace (only a publisher that is not a relay replaces a
// relay).
func (s *Stream) refusePublisher(c *Client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.publisher; p != nil && (!p.relay || c.relay) {
		return fmt.Errorf("%w (by %s)", ErrAlreadyPublishing, p.id)
	}
	return nil
}

func (h *Hub) publish(name string, c *Client) (*Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}

	if s, ok := h.streams[name]; ok {
		if err := s.refusePublisher(c); err != nil {
			return nil, err
		}
		s.mu.Lock()
		replaced := s.publisher // a relay, replaced by a publisher of this node
		if s.graceTimer != nil {
			s.graceTimer.Stop()
			s.graceTimer = nil
		}
		s.publisher = c
		s.lastPub = refOf(c)
		s.pubSince = time.Now()
		nReaders := len(s.readers)
		s.mu.Unlock()

		s.takeover()
		if replaced != nil && replaced.closer != nil {
			replaced.closer()
		}
		if c.relay {
			s.owned.Store(false)
			s.log.Info("relay took the stream", "client", c.id, "node", c.node, "readers", nReaders)
			return s, nil
		}
		if replaced != nil {
			s.log.Info("publisher took the stream from its relay", "client", c.id, "ip", c.IP(), "relay", replaced.id, "readers", nReaders)
		} else {
			s.log.Info("publisher took the stream back", "client", c.id, "ip", c.IP(), "readers", nReaders)
		}
		if !s.owned.Swap(true) {
			// the stream was another node's: this node publishes it now
			h.emit(func() { h.events.PublishStarted(context.WithoutCancel(h.ctx), s.streamInfo()) })
		}
		return s, nil
	}

	s := newStream(h, name)
	s.publisher = c
	s.lastPub = refOf(c)
	s.owned.Store(!c.relay)
	h.streams[name] = s
	if h.cfg.OnStreamStart != nil {
		h.cfg.OnStreamStart(s)
	}
	if c.relay {
		s.log.Info("relay started", "client", c.id, "node", c.node)
		return s, nil
	}
	s.log.Info("publish started", "client", c.id, "ip", c.IP(), "protocol", c.protocol)
	h.emit(func() { h.events.PublishStarted(context.WithoutCancel(h.ctx), s.streamInfo()) })
	return s, nil
}

// Unpublish detaches publisher c from s. Readers stay; the stream ends if
// no publisher takes it back within the grace period.
func (h *Hub) Unpublish(s *Stream, c *Client) {
	h.unpublish(s, c, false)
}

// UnpublishNow detaches publisher c from s and ends the stream at once,
// without grace (a relay nobody watches any more). It does nothing if c
// is not the publisher of s.
func (h *Hub) UnpublishNow(s *Stream, c *Client) {
	h.unpublish(s, c, true)
}

// DropPublisher disconnects the publisher of s and detaches it at once
// (its own Unpublish then does nothing): the stream waits in its grace
// period with its readers, for a relay or a publisher to take it. It
// reports whether s had a publisher.
func (h *Hub) DropPublisher(s *Stream) bool {
	pub := s.Publisher()
	if pub == nil {
		return false
	}
	h.unpublish(s, pub, false)
	if pub.closer != nil {
		pub.closer()
	}
	return true
}

func (h *Hub) unpublish(s *Stream, c *Client, now bool) {
	s.mu.Lock()
	if s.publisher != c {
		s.mu.Unlock()
		return
	}
	s.publisher = nil
	grace := h.cfg.PublisherGrace
	if grace > 0 && !now && !h.isClosed() {
		s.graceTimer = time.AfterFunc(grace, func() { h.end(s, "publisher did not come back") })
		s.mu.Unlock()
		s.log.Info("publisher left, waiting for it to come back", "client", c.id, "grace", grace)
		if !c.relay && h.cfg.Claims != nil {
			h.cfg.Claims.Unpublished(s, c)
		}
		return
	}
	s.mu.Unlock()
	h.end(s, "publisher left")
}

func (h *Hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// end ends s unless a publisher took it back: readers are disconnected and
// the stream is removed.
func (h *Hub) end(s *Stream, why string) {
	h.mu.Lock()
	s.mu.Lock()
	if s.ended || (s.publisher != nil && !h.closed) { // taken back meanwhile
		s.mu.Unlock()
		h.mu.Unlock()
		return
	}
	s.ended = true
	if s.graceTimer != nil {
		s.graceTimer.Stop()
		s.graceTimer = nil
	}
	if h.streams[s.name] == s {
		delete(h.streams, s.name)
	}
	s.mu.Unlock()
	h.mu.Unlock()

	close(s.done)
	if h.cfg.Claims != nil {
		h.cfg.Claims.Ended(s)
	}
	// Its viewers stop before it does (under its lock, as RemoveReader
	// reports them, so that none comes after).
	s.mu.Lock()
	for c := range s.readers {
		h.playStopped(c, "stream ended")
	}
	s.mu.Unlock()
	if !s.owned.Load() {
		s.log.Info("stream ended here", "reason", why)
		return
	}
	s.log.Info("stream ended", "reason", why)
	info := s.streamInfo()
	info.StoppedAt = time.Now()
	info.Reason = why
	info.BytesIn = s.bytesIn.Load()
	h.emit(func() { h.events.PublishStopped(context.WithoutCancel(h.ctx), info) })
}

// Stream returns the stream called name (without "/live/"), or nil.
func (h *Hub) Stream(name string) *Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams[name]
}

// List returns all streams, in no particular order; streams in their
// grace period are included.
func (h *Hub) List() []*Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		out = append(out, s)
	}
	return out
}

// Close ends every stream (PublishStopped is reported for each), refuses
// publishers from then on, disconnects every client and returns once the
// events are delivered. Calls after the first do nothing.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.cancel()
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		for _, s := range h.List() {
			h.end(s, "engine closed")
		}
		h.clientsMu.Lock()
		for c := range h.clients {
			if c.closer != nil {
				c.closer()
			}
		}
		h.clientsMu.Unlock()

		h.eventsMu.Lock()
		h.eventsClosed = true
		close(h.eventCh)
		h.eventsMu.Unlock()
		<-h.eventDone
	})
}

// KickStream disconnects the publisher of stream name and ends the stream at
// once, without grace: its readers are disconnected and PublishStopped is
// reported. It returns false if there is no such stream.
func (h *Hub) KickStream(name string) bool {
	s := h.Stream(name)
	if s == nil {
		return false
	}
	h.EndStream(s, "kicked")
	return true
}

// EndStream disconnects the publisher of s, if any, and ends s at once:
// its readers are disconnected (PublishStopped is reported if the
// stream is Owned).
func (h *Hub) EndStream(s *Stream, why string) {
	s.mu.Lock()
	pub := s.publisher
	s.publisher = nil
	s.mu.Unlock()
	if pub != nil && pub.closer != nil {
		pub.closer()
	}
	h.end(s, why)
}

// KickClient disconnects the client with that ID (see ClientStats.ID). A
// publisher kicked this way may come back within the grace period; use
// KickStream to end a stream. It returns false if there is no such client.
func (h *Hub) KickClient(id string) bool {
	c := h.clientByID(id)
	if c == nil || c.closer == nil {
		return false
	}
	h.log.Info("client kicked", "client", id, "ip", c.IP())
	c.closer()
	return true
}

// newClientID returns the ID of a new client of protocol proto.
func (h *Hub) newClientID(proto Protocol) string {
	return string(proto) + "-" + strconv.FormatUint(h.nextID.Add(1), 10)
}

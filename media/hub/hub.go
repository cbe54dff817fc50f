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
		eventCh:   make(chan func(), 1024),
		eventDone: make(chan struct{}),
	}
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

// Publish makes c the publisher of stream name. It refuses a second
// publisher of a stream that has one (ErrAlreadyPublishing); a stream
// waiting in its grace period is taken back with its readers. The caller
// calls Unpublish when its publisher leaves.
func (h *Hub) Publish(name string, c *Client) (*Stream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}

	if s, ok := h.streams[name]; ok {
		s.mu.Lock()
		if s.publisher != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w (by %s)", ErrAlreadyPublishing, s.publisher.id)
		}
		if s.graceTimer != nil {
			s.graceTimer.Stop()
			s.graceTimer = nil
		}
		s.publisher = c
		s.lastPub = publisherRef{id: c.id, ip: c.IP(), protocol: c.protocol}
		s.pubSince = time.Now()
		nReaders := len(s.readers)
		s.mu.Unlock()

		s.takeover()

		s.log.Info("publisher took the stream back", "client", c.id, "ip", c.IP(), "readers", nReaders)
		return s, nil
	}

	s := newStream(h, name)
	s.publisher = c
	s.lastPub = publisherRef{id: c.id, ip: c.IP(), protocol: c.protocol}
	h.streams[name] = s
	if h.cfg.OnStreamStart != nil {
		h.cfg.OnStreamStart(s)
	}
	s.log.Info("publish started", "client", c.id, "ip", c.IP(), "protocol", c.protocol)
	h.emit(func() { h.events.PublishStarted(context.WithoutCancel(h.ctx), s.streamInfo()) })
	return s, nil
}

// Unpublish detaches publisher c from s. Readers stay; the stream ends if
// no publisher takes it back within the grace period.
func (h *Hub) Unpublish(s *Stream, c *Client) {
	s.mu.Lock()
	if s.publisher != c {
		s.mu.Unlock()
		return
	}
	s.publisher = nil
	grace := h.cfg.PublisherGrace
	if grace > 0 && !h.isClosed() {
		s.graceTimer = time.AfterFunc(grace, func() { h.end(s, "publisher did not come back") })
		s.mu.Unlock()
		s.log.Info("publisher left, waiting for it to come back", "client", c.id, "grace", grace)
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
	s.log.Info("stream ended", "reason", why)
	info := s.streamInfo()
	info.StoppedAt = time.Now()
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
	s.mu.Lock()
	pub := s.publisher
	s.publisher = nil
	s.mu.Unlock()
	if pub != nil && pub.closer != nil {
		pub.closer()
	}
	h.end(s, "kicked")
	return true
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

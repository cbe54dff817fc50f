package media

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// hub owns the streams: it gives a path to one publisher, lets a publisher
// that dropped take its stream back within the grace period, and ends
// streams whose publisher did not come back.
type hub struct {
	e *Engine

	mu      sync.Mutex
	streams map[string]*stream
	closed  bool
}

func newHub(e *Engine) *hub {
	return &hub{e: e, streams: make(map[string]*stream)}
}

// publish makes c the publisher of stream name. It refuses a second
// publisher of a stream that has one; a stream waiting in its grace period is
// taken back with its readers.
func (h *hub) publish(name string, c *client) (*stream, error) {
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
		s.lastPub = publisherRef{id: c.id, ip: c.ip(), protocol: c.protocol}
		s.pubSince = time.Now()
		nReaders := len(s.readers)
		s.mu.Unlock()

		s.takeover()

		s.log.Info("publisher took the stream back", "client", c.id, "ip", c.ip(), "readers", nReaders)
		return s, nil
	}

	s := newStream(h, name)
	s.publisher = c
	s.lastPub = publisherRef{id: c.id, ip: c.ip(), protocol: c.protocol}
	h.streams[name] = s
	h.e.startSinks(s)
	s.log.Info("publish started", "client", c.id, "ip", c.ip(), "protocol", c.protocol)
	h.e.emit(func() { h.e.events.PublishStarted(context.WithoutCancel(h.e.ctx), s.streamInfo()) })
	return s, nil
}

// unpublish detaches publisher c from s. Readers stay; the stream ends if
// no publisher takes it back within the grace period.
func (h *hub) unpublish(s *stream, c *client) {
	s.mu.Lock()
	if s.publisher != c {
		s.mu.Unlock()
		return
	}
	s.publisher = nil
	grace := h.e.cfg.PublisherGrace
	if grace > 0 && !h.isClosed() {
		s.graceTimer = time.AfterFunc(grace, func() { h.end(s, "publisher did not come back") })
		s.mu.Unlock()
		s.log.Info("publisher left, waiting for it to come back", "client", c.id, "grace", grace)
		return
	}
	s.mu.Unlock()
	h.end(s, "publisher left")
}

func (h *hub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// end ends s unless a publisher took it back: readers are disconnected and
// the stream is removed.
func (h *hub) end(s *stream, why string) {
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
	h.e.emit(func() { h.e.events.PublishStopped(context.WithoutCancel(h.e.ctx), info) })
}

// get returns the stream called name, or nil.
func (h *hub) get(name string) *stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams[name]
}

// list returns all streams.
func (h *hub) list() []*stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*stream, 0, len(h.streams))
	for _, s := range h.streams {
		out = append(out, s)
	}
	return out
}

// close ends every stream.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	for _, s := range h.list() {
		h.end(s, "engine closed")
	}
}

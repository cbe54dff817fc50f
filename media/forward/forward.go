// Package forward restreams: while a stream is live on this node, it
// pushes the stream over RTMP or RTMPS to each of its room's destinations
// (another platform's ingest: YouTube, Twitch, Bilibili, or another
// MoFang), with gortmplib's client doing the handshake, connect and
// publish.
//
// Each destination reads the stream from the hub like any viewer (a hub
// Reader with the RTMP framing, shared with the RTMP players): the
// publisher never waits for it, a destination that falls behind skips to
// the newest key frame, one that stays behind or stops reading is
// dropped and connects again. A destination that fails is retried with a
// jittered exponential backoff while the live lasts. Pushes are not
// viewers: they are hub clients that never register as readers.
//
// Only the node that publishes a stream for the service pushes it
// (hub.Stream.Owned): a stream fed by a relay from another node is not
// pushed from here.
package forward

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media/hub"
)

// Target is one destination of a stream, as the Manager pushes to it.
type Target struct {
	// ID is the destination's ID (its row in the store).
	ID int64
	// URL is the server's URL, rtmp://host[:port]/app or rtmps://...,
	// without the stream key.
	URL string
	// Key is the stream key, in clear. It is never logged nor shown.
	Key string
}

// State is where a destination's push stands.
type State string

// States. A destination of a stream that is not live here has none (the
// API shows "idle").
const (
	// StateConnecting: connecting, or publishing not yet accepted.
	StateConnecting State = "connecting"
	// StateLive: the destination accepted the publish; media flows.
	StateLive State = "live"
	// StateError: the last attempt failed (Status.Reason says why); the
	// next one waits its backoff.
	StateError State = "error"
)

// Status is a destination's push as the API and the metrics show it.
type Status struct {
	// Stream is the stream pushed.
	Stream string
	// ID is the destination's ID.
	ID int64
	// Server is the destination's URL without the key.
	Server string
	State  State
	// Reason is why the last attempt failed (StateError), in words that
	// never contain the key.
	Reason string
	// BytesSent is what was sent to the destination during this live,
	// over every connection.
	BytesSent uint64
	// Since is when the destination entered its state.
	Since time.Time
	// Connects counts the connections that reached StateLive.
	Connects uint64
}

// Config configures a Manager. Zero values take the documented defaults.
type Config struct {
	// Hub is the hub whose streams are pushed.
	Hub *hub.Hub
	// Framer frames packets as RTMP chunks for a publish session that
	// announced a chunk size of 65536 on message stream 1, as
	// gortmplib's client does (media/rtmp.Framer()).
	Framer hub.Framer
	// Targets returns the destinations of stream (nil, nil: none). It is
	// called when a stream this node publishes starts, every Poll while
	// it lasts, and at once after Refresh.
	Targets func(ctx context.Context, stream string) ([]Target, error)
	// Poll is how often a live stream's destinations are read again, and
	// whether this node still publishes it checked (default 5 s).
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the wait between a destination's
	// attempts (defaults 1 s and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// ConnectTimeout bounds the dial, TLS, RTMP handshake and publish
	// (default 10 s).
	ConnectTimeout time.Duration
	// WriteTimeout drops a destination whose socket accepts nothing for
	// this long (default 10 s).
	WriteTimeout time.Duration
	// SocketSendBuffer, if positive, sets the kernel send buffer
	// (SO_SNDBUF) of each push's socket: the most a destination that
	// stops reading can hold back before the write timeout drops it.
	SocketSendBuffer int
	// TLS is the client configuration of rtmps:// destinations (default:
	// the system's roots; the server name is the URL's host).
	TLS *tls.Config
	// AllowPrivate lets destinations be on loopback, private, link-local
	// or unspecified addresses. Off (the default), a push dials public
	// addresses only (checked on the address dialed, after name
	// resolution), so that room owners cannot make the server talk to
	// the operator's internal network.
	AllowPrivate bool
	// Logger receives the pushes' logs (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Poll <= 0 {
		c.Poll = 5 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Targets == nil {
		c.Targets = func(context.Context, string) ([]Target, error) { return nil, nil }
	}
}

// Manager runs the pushes of the node's streams. Create it with New,
// hand it each new stream with Start; Close stops everything.
type Manager struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	streams map[string]*streamPush
	closed  bool
}

// New returns a Manager configured by cfg.
func New(cfg Config) *Manager {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, streams: map[string]*streamPush{}}
}

// streamPush is the pushes of one stream.
type streamPush struct {
	s       *hub.Stream
	refresh chan struct{} // buffered 1: read the targets again now

	mu      sync.Mutex
	pushers map[int64]*pusher
}

// Start follows s until it ends, pushing it to its destinations while
// this node publishes it. It does not block nor call the hub: it may run
// as the hub's OnStreamStart.
func (m *Manager) Start(s *hub.Stream) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	sp := &streamPush{s: s, refresh: make(chan struct{}, 1), pushers: map[int64]*pusher{}}
	m.streams[s.Name()] = sp
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(sp)
		m.mu.Lock()
		if m.streams[s.Name()] == sp {
			delete(m.streams, s.Name())
		}
		m.mu.Unlock()
	}()
}

// Refresh makes the pushes of stream read its destinations again now
// (one was added or removed). It does nothing when the stream is not
// here.
func (m *Manager) Refresh(stream string) {
	m.mu.Lock()
	sp := m.streams[stream]
	m.mu.Unlock()
	if sp == nil {
		return
	}
	select {
	case sp.refresh <- struct{}{}:
	default:
	}
}

// Status returns the pushes of stream, by destination ID: none when the
// stream is not live here or has no destination.
func (m *Manager) Status(stream string) map[int64]Status {
	m.mu.Lock()
	sp := m.streams[stream]
	m.mu.Unlock()
	out := map[int64]Status{}
	if sp == nil {
		return out
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for id, p := range sp.pushers {
		out[id] = p.status()
	}
	return out
}

// All returns every push of the node, by stream then destination ID.
func (m *Manager) All() []Status {
	m.mu.Lock()
	sps := make([]*streamPush, 0, len(m.streams))
	for _, sp := range m.streams {
		sps = append(sps, sp)
	}
	m.mu.Unlock()
	var out []Status
	for _, sp := range sps {
		sp.mu.Lock()
		for _, p := range sp.pushers {
			out = append(out, p.status())
		}
		sp.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.Stream != b.Stream {
			if a.Stream < b.Stream {
				return -1
			}
			return 1
		}
		return int(a.ID - b.ID)
	})
	return out
}

// Close stops every push and waits for them to end.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// run follows one stream until it ends or the Manager closes.
func (m *Manager) run(sp *streamPush) {
	s := sp.s
	log := m.log.With("stream", s.Name())
	defer m.reconcile(sp, nil, log) // stop every push
	t := time.NewTicker(m.cfg.Poll)
	defer t.Stop()
	ownedBefore := false
	for {
		owned := s.Owned()
		switch {
		case owned:
			ctx, cancel := context.WithTimeout(m.ctx, m.cfg.Poll)
			ts, err := m.cfg.Targets(ctx, s.Name())
			cancel()
			if err != nil {
				// keep what runs: a database that does not answer for a
				// moment must not cut the restreams.
				log.Warn("forward: reading the destinations", "err", err)
			} else {
				m.reconcile(sp, ts, log)
			}
		case ownedBefore:
			log.Info("forward: this node no longer publishes the stream, its pushes stop")
			m.reconcile(sp, nil, log)
		}
		ownedBefore = owned
		select {
		case <-s.Done():
			return
		case <-m.ctx.Done():
			return
		case <-t.C:
		case <-sp.refresh:
		}
	}
}

// reconcile starts the pushes of new targets and stops those of targets
// gone (or changed) and waits for them.
func (m *Manager) reconcile(sp *streamPush, ts []Target, log *slog.Logger) {
	want := make(map[int64]Target, len(ts))
	for _, t := range ts {
		want[t.ID] = t
	}
	var stopped []*pusher
	sp.mu.Lock()
	for id, p := range sp.pushers {
		if t, ok := want[id]; !ok || t != p.target {
			p.cancel()
			stopped = append(stopped, p)
			delete(sp.pushers, id)
		}
	}
	for id, t := range want {
		if _, ok := sp.pushers[id]; ok {
			continue
		}
		server := redactURL(t.URL)
		p := newPusher(m, sp.s, t, server, log.With("forward", id, "server", server))
		sp.pushers[id] = p
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			p.run()
		}()
	}
	sp.mu.Unlock()
	for _, p := range stopped {
		<-p.done
		p.log.Info("forward stopped")
	}
}

// redactURL returns the URL without credentials, query or fragment.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = nil, "", "", "", false
	return u.String()
}

// jitter is the backoffs' source of randomness.
func jitter() float64 { return rand.Float64() }

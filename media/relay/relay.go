// Package relay plays on this node the streams another node of the
// cluster publishes: it pulls a stream from the node that owns it over
// HTTP-FLV (GET <node URL>/live/<stream>.flv with a node credential),
// once per stream whatever the number of local viewers, and publishes it
// into the local hub as a relay publisher, from which every protocol of
// the node serves it.
//
// A relay follows its stream's owner in the cluster's directory: when
// the publisher moves to another node it pulls from there (the hub's
// takeover keeps the viewers and their timeline); when the stream leaves
// the directory the pull stops and the local stream waits in its grace
// period as if its publisher had left; when a publisher of this node
// takes the stream, the relay steps aside. It stops a while after the
// last local viewer left.
package relay

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media/hub"
)

// Source is the node that publishes a stream, as the cluster's directory
// shows it.
type Source struct {
	// Node is the node's ID.
	Node string
	// URL is where its media is reached over HTTP, such as
	// "http://10.0.0.5:8080".
	URL string
	// Fence is the stream's claim: a new fence means a new claim (the
	// publisher moved, or came back after its claim ended).
	Fence int64
	// Grace is true while the stream's publisher is gone and its node
	// waits for it: no media is expected meanwhile.
	Grace bool
}

// Config configures a Manager. Zero values take the documented defaults.
type Config struct {
	// Hub is the local hub relays publish into.
	Hub *hub.Hub
	// Self is this node's ID, sent to the owner as the relay parameter
	// (hub.RelayParam).
	Self string
	// Lookup returns the node that publishes stream when it is another
	// node (false when the stream is not in the directory, or is this
	// node's). It must not block: it answers from the directory's view.
	Lookup func(stream string) (Source, bool)
	// Query, if set, returns what a relay adds to its request's query
	// for stream: the node credential the owner's Authorizer checks.
	Query func(stream string) url.Values
	// Linger is how long a relay stays after the last local viewer of
	// its stream left (default 5 s).
	Linger time.Duration
	// Poll is how often a relay checks the directory for its stream's
	// owner and the stream's viewers (default 250 ms).
	Poll time.Duration
	// IdleTimeout restarts a pull that brought nothing for this long
	// while its source is not in grace (default 10 s).
	IdleTimeout time.Duration
	// Client makes the requests (default: a client whose connections
	// time out after 3 s and whose responses must start within 5 s).
	Client *http.Client
	// Logger receives the relays' logs (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Linger <= 0 {
		c.Linger = 5 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 10 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&dialer).DialContext,
			ResponseHeaderTimeout: 5 * time.Second,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       30 * time.Second,
			DisableCompression:    true,
		}}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Lookup == nil {
		c.Lookup = func(string) (Source, bool) { return Source{}, false }
	}
}

// Manager runs the node's relays, at most one per stream. Create it with
// New; Close stops them.
type Manager struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	relays map[string]*relay
	closed bool
}

// New returns a Manager configured by cfg.
func New(cfg Config) *Manager {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel, relays: map[string]*relay{}}
}

// Start starts the relay of stream when another node publishes it and no
// relay of it runs. It reports whether a relay runs now: the stream is
// then coming (a viewer may wait for it). It does not block.
func (m *Manager) Start(stream string) bool {
	if _, ok := m.cfg.Lookup(stream); !ok {
		m.mu.Lock()
		_, running := m.relays[stream]
		m.mu.Unlock()
		return running
	}
	return m.start(stream)
}

// Follow starts the relay of stream, a local stream whose publisher
// another node took over, even before the directory shows the new owner:
// the relay waits for it while the stream's viewers stay.
func (m *Manager) Follow(stream string) bool { return m.start(stream) }

func (m *Manager) start(stream string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	if _, ok := m.relays[stream]; ok {
		return true
	}
	r := &relay{m: m, name: stream, log: m.log.With("stream", stream)}
	m.relays[stream] = r
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		r.run(m.ctx)
		m.mu.Lock()
		if m.relays[stream] == r {
			delete(m.relays, stream)
		}
		m.mu.Unlock()
	}()
	return true
}

// Running returns the streams whose relay runs, in no order.
func (m *Manager) Running() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.relays))
	for name := range m.relays {
		out = append(out, name)
	}
	return out
}

// Close stops every relay (their streams go to grace, or end with the
// hub) and waits for them to finish.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	m.cfg.Client.CloseIdleConnections()
}

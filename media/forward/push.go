package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bluenviron/gortmplib"

	"github.com/mofang-live/mofang/media/hub"
)

// heldFor is how long a push must stay live for the backoff to start
// again from its minimum.
const heldFor = 10 * time.Second

// maxReason bounds a failure's reason as shown.
const maxReason = 200

// pusher pushes one stream to one destination, connecting again after
// failures, until cancelled or the stream ends.
type pusher struct {
	m      *Manager
	s      *hub.Stream
	target Target
	server string
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	bytes atomic.Uint64

	mu       sync.Mutex
	state    State
	reason   string
	since    time.Time
	connects uint64
}

func newPusher(m *Manager, s *hub.Stream, t Target, server string, log *slog.Logger) *pusher {
	ctx, cancel := context.WithCancel(m.ctx)
	return &pusher{m: m, s: s, target: t, server: server, log: log, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), state: StateConnecting, since: time.Now()}
}

func (p *pusher) status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{Stream: p.s.Name(), ID: p.target.ID, Server: p.server, State: p.state, Reason: p.reason,
		BytesSent: p.bytes.Load(), Since: p.since, Connects: p.connects}
}

func (p *pusher) setState(st State, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st == StateLive {
		p.connects++
	}
	if p.state != st || p.reason != reason {
		p.state, p.reason, p.since = st, reason, time.Now()
	}
}

// run pushes until the pusher is cancelled or the stream ends.
func (p *pusher) run() {
	defer close(p.done)
	defer p.cancel()
	cfg := &p.m.cfg
	b := backoff{min: cfg.MinBackoff, max: cfg.MaxBackoff, rand: jitter}
	if !p.waitMedia() {
		return
	}
	for {
		p.setState(StateConnecting, "")
		start := time.Now()
		live, err := p.push()
		if p.ctx.Err() != nil || errors.Is(err, hub.ErrStreamEnded) {
			return
		}
		if live && time.Since(start) >= heldFor {
			b.reset()
		}
		wait := b.next()
		reason := p.plain(err)
		p.setState(StateError, reason)
		p.log.Warn("forward failed, retrying", "reason", reason, "retry", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return
		case <-p.s.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// waitMedia waits until the stream has a key frame, so that the push
// starts at a GOP with its headers (a hub Reader started before the
// stream's first packets would wait for a key frame past the sequence
// headers) and a destination is not connected before there is anything
// to send. It reports false when the pusher or the stream ended first.
func (p *pusher) waitMedia() bool {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for p.s.LastKey() == nil {
		select {
		case <-p.ctx.Done():
			return false
		case <-p.s.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// plain is err as a reason to show: without the key, short.
func (p *pusher) plain(err error) string {
	if err == nil {
		return "the connection ended"
	}
	r := err.Error()
	if k := p.target.Key; k != "" {
		r = strings.ReplaceAll(r, k, "****")
		q := url.QueryEscape(k)
		for _, e := range []string{url.PathEscape(k), q, strings.ReplaceAll(q, "+", "%20")} {
			if e != k {
				r = strings.ReplaceAll(r, e, "****")
			}
		}
	}
	if len(r) > maxReason {
		r = r[:maxReason] + "…"
	}
	return r
}

// dialFunc dials as net.Dialer.DialContext does.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (f dialFunc) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f(ctx, network, addr)
}

// lockedConn serializes whole writes to a connection with the hub
// Reader's batches (which hold the same lock), so that gortmplib's own
// control messages (ping responses, acknowledgements) never land inside
// a chunk of media.
type lockedConn struct {
	net.Conn
	mu *sync.Mutex
}

func (c *lockedConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Conn.Write(b)
}

// countingSink counts what a hub Reader writes to the destination.
type countingSink struct {
	hub.ConnSink
	n *atomic.Uint64
}

func (cs *countingSink) WriteBuffers(bufs *net.Buffers) (int64, error) {
	n, err := cs.ConnSink.WriteBuffers(bufs)
	cs.n.Add(uint64(n))
	return n, err
}

// push makes one connection to the destination and pushes the stream
// until it fails. live reports whether the destination accepted the
// publish.
func (p *pusher) push() (live bool, err error) {
	cfg := &p.m.cfg
	u, err := url.Parse(p.target.URL)
	if err != nil {
		return false, errors.New("invalid URL")
	}
	u.Fragment, u.RawFragment = p.target.Key, "" // gortmplib takes the key as the fragment

	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	var mu sync.Mutex
	var raw net.Conn // the socket (or TLS connection) under the lock
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 15 * time.Second}
	if !cfg.AllowPrivate {
		d.ControlContext = publicOnly
	}
	dialer := dialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err == nil && cfg.SocketSendBuffer > 0 {
			if tc, ok := nc.(*net.TCPConn); ok {
				tc.SetWriteBuffer(cfg.SocketSendBuffer) //nolint:errcheck
			}
		}
		return nc, err
	})
	c := &gortmplib.Client{URL: u, Publish: true}
	if u.Scheme == "rtmps" {
		host := u.Hostname()
		c.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := cfg.TLS.Clone()
			if tc == nil {
				tc = &tls.Config{}
			}
			if tc.ServerName == "" {
				tc.ServerName = host
			}
			conn := tls.Client(nc, tc)
			if err := conn.HandshakeContext(ctx); err != nil {
				nc.Close()
				return nil, fmt.Errorf("TLS: %w", err)
			}
			raw = conn
			return &lockedConn{Conn: conn, mu: &mu}, nil
		}
	} else {
		c.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			raw = nc
			return &lockedConn{Conn: nc, mu: &mu}, nil
		}
	}
	// gortmplib closes the connection when cctx ends: that bounds the
	// handshake and commands, which have no deadline of their own.
	cctx, ccancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	err = c.Initialize(cctx)
	timedOut := cctx.Err() == context.DeadlineExceeded
	ccancel()
	if err != nil {
		if timedOut {
			return false, fmt.Errorf("no answer within %v", cfg.ConnectTimeout)
		}
		return false, fmt.Errorf("connecting: %w", err)
	}
	defer c.Close()

	h := p.m.cfg.Hub
	hc := h.NewClient(hub.ClientInfo{Protocol: hub.ProtocolForward, Remote: hub.AddrPortOf(raw.RemoteAddr()), Close: cancel})
	defer h.RemoveClient(hc)
	p.setState(StateLive, "")
	p.log.Info("forward live", "client", hc.ID())

	// drain what the destination sends (gortmplib answers its pings);
	// its end (the destination closed) ends the push.
	readErr := make(chan error, 1)
	go func() {
		for {
			if _, err := c.Read(); err != nil {
				readErr <- err
				cancel()
				return
			}
		}
	}()
	sink := &countingSink{ConnSink: hub.ConnSink{Conn: raw, Lock: &mu, Timeout: cfg.WriteTimeout}, n: &p.bytes}
	r := hub.NewReader(p.s, hc, cfg.Framer, sink, false)
	err = r.Run(ctx)
	c.Close() // ends the drain
	rerr := <-readErr
	if errors.Is(err, context.Canceled) && p.ctx.Err() == nil {
		// the drain ended the push: the destination closed or failed
		if errors.Is(rerr, io.EOF) {
			return true, errors.New("the destination closed the connection")
		}
		return true, fmt.Errorf("reading from the destination: %w", rerr)
	}
	return true, err
}

// errPrivate refuses a destination on the operator's own network.
var errPrivate = errors.New("the destination's address is private or local, which this server does not push to")

// publicOnly is a Dialer's ControlContext that refuses addresses that
// are not public.
func publicOnly(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dialing %s: %w", address, err)
	}
	if !publicAddr(ap.Addr()) {
		return errPrivate
	}
	return nil
}

// publicAddr reports whether a is an address on the internet.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(a) && // carrier-grade NAT
		!netip.MustParsePrefix("fc00::/7").Contains(a)
}

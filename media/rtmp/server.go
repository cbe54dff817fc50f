// Package rtmp is the RTMP server of the media engine: publishers feed
// streams of the hub, players are fed by the hub's fan-out in RTMP chunks
// framed once per packet and shared by every player.
package rtmp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mofang-live/mofang/internal/connlimit"
	"github.com/mofang-live/mofang/internal/proxyhdr"
	"github.com/mofang-live/mofang/media/hub"
)

// Server accepts RTMP connections. Create it with New, run it with Serve.
type Server struct {
	h   *hub.Hub
	cfg Config
	log *slog.Logger
	ln  net.Listener

	// pending caps per address the connections not admitted yet.
	pending *connlimit.Limiter

	closeOnce sync.Once
	sessions  sync.WaitGroup

	// refusals over the per-address cap, logged at most once a second.
	lastRefusalLog time.Time
	refusedSince   int
}

// newServer returns a server of h that does not listen (tests run
// sessions on other connections).
func newServer(h *hub.Hub, cfg Config) *Server {
	cfg.setDefaults()
	return &Server{h: h, cfg: cfg, log: cfg.Logger, pending: connlimit.New(cfg.MaxPendingPerIP)}
}

// New returns a server of h listening on cfg.Address (RTMPS when cfg.TLS
// is set).
func New(h *hub.Hub, cfg Config) (*Server, error) {
	s := newServer(h, cfg)
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("RTMP listen on %s: %w", s.cfg.Address, err)
	}
	// The PROXY header comes first on the wire, then TLS.
	ln = proxyhdr.Listener(ln, s.cfg.ProxyProtocolFrom)
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.ln = ln
	return s, nil
}

// Addr returns the listen address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close; each runs until its client
// leaves, it is kicked, or ctx ends (players are then disconnected). It
// returns once every connection has ended.
func (s *Server) Serve(ctx context.Context) {
	defer s.sessions.Wait()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("RTMP accept", "err", err)
			return
		}
		ip := connlimit.AddrIP(nc.RemoteAddr())
		release, ok := s.pending.Acquire(ip)
		if !ok {
			nc.Close()
			s.refusedPending(ip.String())
			continue
		}
		if ctx.Err() != nil {
			release()
			nc.Close()
			return
		}
		s.tuneConn(nc)
		c := newConn(s, nc, release)
		s.sessions.Add(1)
		go func() {
			defer s.sessions.Done()
			c.run(ctx)
		}()
	}
}

// tuneConn applies socket options to a client connection.
func (s *Server) tuneConn(nc net.Conn) {
	if s.cfg.SocketSendBuffer <= 0 {
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetWriteBuffer(s.cfg.SocketSendBuffer) //nolint:errcheck
	}
}

// refusedPending counts a connection refused because its address holds
// MaxPendingPerIP connections not yet admitted, and logs refusals at most
// once a second.
func (s *Server) refusedPending(ip string) {
	s.h.CountRefusal()
	s.refusedSince++
	if now := time.Now(); now.Sub(s.lastRefusalLog) >= time.Second {
		s.log.Warn("RTMP connections refused: too many not yet publishing or playing from one address",
			"ip", ip, "limit", s.cfg.MaxPendingPerIP, "refused", s.refusedSince)
		s.lastRefusalLog, s.refusedSince = now, 0
	}
}

// Close stops listening; the connections go on until they end (see
// Serve).
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.ln.Close() })
	return err
}

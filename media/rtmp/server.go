package media

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/mofang-live/mofang/internal/connlimit"
)

// rtmpServer accepts RTMP connections.
type rtmpServer struct {
	e  *Engine
	ln net.Listener

	closeOnce sync.Once

	// refusals over the per-address cap, logged at most once a second.
	lastRefusalLog time.Time
	refusedSince   int
}

func newRTMPServer(e *Engine, address string) (*rtmpServer, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("RTMP listen on %s: %w", address, err)
	}
	return &rtmpServer{e: e, ln: ln}, nil
}

func (s *rtmpServer) run() {
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
			s.e.log.Error("RTMP accept", "err", err)
			return
		}
		ip := connlimit.AddrIP(nc.RemoteAddr())
		release, ok := s.e.pending.Acquire(ip)
		if !ok {
			nc.Close()
			s.refusedPending(ip.String())
			continue
		}
		s.e.tuneConn(nc)
		c := newRTMPConn(s.e, nc, release)
		if !s.e.track(c.run) {
			release()
			nc.Close()
			return
		}
	}
}

// refusedPending counts a connection refused because its address holds
// MaxPendingPerIP connections not yet admitted, and logs refusals at most
// once a second.
func (s *rtmpServer) refusedPending(ip string) {
	s.e.refused.Add(1)
	s.refusedSince++
	if now := time.Now(); now.Sub(s.lastRefusalLog) >= time.Second {
		s.e.log.Warn("RTMP connections refused: too many not yet publishing or playing from one address",
			"ip", ip, "limit", s.e.cfg.MaxPendingPerIP, "refused", s.refusedSince)
		s.lastRefusalLog, s.refusedSince = now, 0
	}
}

func (s *rtmpServer) close() error {
	var err error
	s.closeOnce.Do(func() { err = s.ln.Close() })
	return err
}

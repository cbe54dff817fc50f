package media

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// rtmpServer accepts RTMP connections.
type rtmpServer struct {
	e  *Engine
	ln net.Listener

	closeOnce sync.Once
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
		s.e.tuneConn(nc)
		c := newRTMPConn(s.e, nc)
		if !s.e.track(c.run) {
			nc.Close()
			return
		}
	}
}

func (s *rtmpServer) close() error {
	var err error
	s.closeOnce.Do(func() { err = s.ln.Close() })
	return err
}

// Package srt is the SRT server of the media engine, on datarhei/gosrt
// (mediamtx's SRT library). A caller's stream ID says whether it
// publishes or reads, and which stream ("publish:<stream>?sign=...",
// "read:<stream>?sign=...", or SRS's "#!::r=live/<stream>,m=publish").
// Publishers send MPEG-TS, demuxed with mediacommon into the FLV tag
// bodies the hub carries (H.264, H.265, AAC, Opus). Readers of a stream
// share one MPEG-TS muxer fed from the stream with a hub Cursor: each
// frame is muxed once and the bytes written to every reader.
//
// Refusals are SRT handshake rejections, made before the connection is
// accepted: the stream ID, the Authorizer, a second publisher, an
// unknown stream, a limit. SRT carries a rejection code, not a reason:
// the code mirrors HTTP's (1400 bad request, 1403 forbidden, 1404 not
// found, 1407 conflict for a stream already published, 1402 overload
// for the per-address cap, 1503 when the Authorizer is down).
package srt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/mofang-live/mofang/internal/connlimit"
	"github.com/mofang-live/mofang/media/hub"
)

// Server accepts SRT connections. Create it with New, run it with Serve.
type Server struct {
	h   *hub.Hub
	cfg Config
	ln  gosrt.Listener

	// pending caps per address the requests not accepted yet.
	pending *connlimit.Limiter

	closeOnce sync.Once
	sessions  sync.WaitGroup

	mu   sync.Mutex
	outs map[*hub.Stream]*output

	// refusals over the per-address cap, logged at most once a second.
	refusalMu      sync.Mutex
	lastRefusalLog time.Time
	refusedSince   int
}

// New returns a server of h listening on cfg.Address (UDP).
func New(h *hub.Hub, cfg Config) (*Server, error) {
	cfg.setDefaults()
	conf := gosrt.DefaultConfig()
	conf.ConnectionTimeout = cfg.ReadTimeout
	conf.PeerIdleTimeout = cfg.ReadTimeout
	// writes are cut into whole TS packets, as libsrt callers send
	// them: a lost SRT packet then loses whole TS packets.
	conf.PayloadSize = srtPayload
	ln, err := gosrt.Listen("srt", cfg.Address, conf)
	if err != nil {
		return nil, fmt.Errorf("SRT listen on %s: %w", cfg.Address, err)
	}
	return &Server{
		h: h, cfg: cfg, ln: ln,
		pending: connlimit.New(cfg.MaxPendingPerIP),
		outs:    map[*hub.Stream]*output{},
	}, nil
}

// Addr returns the listen address (UDP).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connection requests until Close; each connection runs
// until its peer leaves, it is kicked, or ctx ends. It returns once every
// connection has ended.
func (s *Server) Serve(ctx context.Context) {
	defer s.sessions.Wait()
	for {
		req, err := s.ln.Accept2()
		if err != nil {
			if !errors.Is(err, gosrt.ErrListenerClosed) {
				s.cfg.Logger.Error("SRT accept", "err", err)
			}
			return
		}
		ip := connlimit.AddrIP(req.RemoteAddr())
		release, ok := s.pending.Acquire(ip)
		if !ok {
			s.refusedPending(ip.String())
			req.Reject(gosrt.REJX_OVERLOAD)
			continue
		}
		if ctx.Err() != nil {
			release()
			req.Reject(gosrt.REJ_CLOSE)
			return
		}
		s.sessions.Add(1)
		go func() {
			defer s.sessions.Done()
			newSession(s, req, release).run(ctx)
		}()
	}
}

// refusedPending counts a request rejected because its address has
// MaxPendingPerIP requests waiting, and logs such refusals at most once
// a second.
func (s *Server) refusedPending(ip string) {
	s.h.CountRefusal()
	s.refusalMu.Lock()
	defer s.refusalMu.Unlock()
	s.refusedSince++
	if now := time.Now(); now.Sub(s.lastRefusalLog) >= time.Second {
		s.cfg.Logger.Warn("SRT connections refused: too many waiting for authorization from one address",
			"ip", ip, "limit", s.cfg.MaxPendingPerIP, "refused", s.refusedSince)
		s.lastRefusalLog, s.refusedSince = now, 0
	}
}

// Close stops listening and closes every connection and output; Serve
// returns once their goroutines have ended.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.ln.Close()
		s.mu.Lock()
		outs := s.outs
		s.outs = map[*hub.Stream]*output{}
		s.mu.Unlock()
		for _, o := range outs {
			o.close()
		}
	})
	return nil
}

// output returns the MPEG-TS output of st, creating it on first use.
func (s *Server) output(st *hub.Stream) *output {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.outs[st]; ok && !o.isClosed() {
		return o
	}
	o := newOutput(s, st)
	s.outs[st] = o
	return o
}

func (s *Server) removeOutput(st *hub.Stream, o *output) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outs[st] == o {
		delete(s.outs, st)
	}
}

// BytesSent returns what the SRT output of st wrote to its readers (for
// the stream's stats: the hub counts only what its Readers send).
func (s *Server) BytesSent(st *hub.Stream) uint64 {
	s.mu.Lock()
	o := s.outs[st]
	s.mu.Unlock()
	if o == nil {
		return 0
	}
	return o.bytesOut.Load()
}

// rejection is the SRT rejection code of a refusal.
func rejection(err error) gosrt.RejectionReason {
	switch {
	case errors.Is(err, errBadStreamID), errors.Is(err, hub.ErrInvalidStreamName):
		return gosrt.REJX_BAD_REQUEST
	case errors.Is(err, hub.ErrStreamNotFound):
		return gosrt.REJX_NOTFOUND
	case errors.Is(err, hub.ErrAlreadyPublishing):
		return gosrt.REJX_CONFLICT
	case errors.Is(err, hub.ErrUnavailable):
		return gosrt.REJX_DOWN
	case errors.Is(err, hub.ErrClosed):
		return gosrt.REJ_CLOSE
	case errors.Is(err, errEncrypted):
		return gosrt.REJ_UNSECURE
	case errors.Is(err, errNotPlayable):
		return gosrt.REJX_NOTSUP_MEDIA
	}
	return gosrt.REJX_FORBIDDEN
}

// Package rtsp is the RTSP server of the media engine, on gortsplib:
// RTSP publishers (ANNOUNCE/RECORD) feed streams of the hub like RTMP ones
// (RTP → FLV/RTMP message bodies); RTSP readers get one gortsplib
// ServerStream per stream, fed once from the stream with a hub Cursor
// (FLV/RTMP bodies → RTP), which gortsplib sends to every session.
package rtsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/mofang-live/mofang/internal/proxyhdr"
	"github.com/mofang-live/mofang/media/hub"
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Address is the RTSP (TCP) listen address (default ":8554").
	Address string
	// UDPRTPAddress and UDPRTCPAddress are the UDP addresses of RTSP's UDP
	// transport; their ports must be consecutive, RTP's even. Empty: TCP
	// only.
	UDPRTPAddress  string
	UDPRTCPAddress string
	// ReadTimeout bounds reads of a connection (default 10 s).
	ReadTimeout time.Duration
	// WriteTimeout bounds writes to a connection (default 10 s).
	WriteTimeout time.Duration
	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
	// ProxyProtocolFrom are the peers whose TCP connections may start
	// with a PROXY protocol header (v1 or v2) giving the client's address;
	// other peers' connections are plain (internal/proxyhdr).
	ProxyProtocolFrom []netip.Prefix
}

// Server runs gortsplib's server: RTSP publishers (ANNOUNCE/RECORD)
// feed the hub like RTMP ones; RTSP readers get a gortsplib ServerStream per
// stream, fed once from the stream's ring (see output). Create it with New.
type Server struct {
	h   *hub.Hub
	cfg Config
	log *slog.Logger
	srv *gortsplib.Server
	ln  net.Listener

	mu   sync.Mutex
	outs map[*hub.Stream]*output
}

// session is the user data of a gortsplib session.
type session struct {
	c      *hub.Client
	stream *hub.Stream
	src    *source // when publishing
	out    *output // when playing
	reader bool

	dropped atomic.Bool // too slow, closed
}

// writeQueue is the number of RTP packets queued per RTSP session
// (a power of two): a cached GOP of up to writeQueue-2*joinMax
// packets (~2.2 MB) is given to readers joining mid-GOP.
const writeQueue = 2048

// New returns a server of h listening on cfg's addresses.
func New(h *hub.Hub, cfg Config) (*Server, error) {
	if cfg.Address == "" {
		cfg.Address = ":8554"
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{h: h, cfg: cfg, log: cfg.Logger, outs: make(map[*hub.Stream]*output)}
	s.srv = &gortsplib.Server{
		Handler:        s,
		RTSPAddress:    cfg.Address,
		UDPRTPAddress:  cfg.UDPRTPAddress,
		UDPRTCPAddress: cfg.UDPRTCPAddress,
		ReadTimeout:    cfg.ReadTimeout,
		WriteTimeout:   cfg.WriteTimeout,
		// a session's write queue holds the cached GOP a joining reader
		// gets at once (output.join), then the live packets.
		WriteQueueSize: writeQueue,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err == nil {
				ln = proxyhdr.Listener(ln, cfg.ProxyProtocolFrom)
				s.ln = ln
			}
			return ln, err
		},
	}
	if err := s.srv.Start(); err != nil {
		return nil, fmt.Errorf("RTSP listen on %s: %w", cfg.Address, err)
	}
	return s, nil
}

// Addr returns the RTSP (TCP) listen address, or nil if not listening.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the server and closes its sessions and outputs.
func (s *Server) Close() {
	s.srv.Close()
	s.mu.Lock()
	outs := s.outs
	s.outs = map[*hub.Stream]*output{}
	s.mu.Unlock()
	for _, o := range outs {
		o.close()
	}
}

// OnConnOpen registers the connection as a client.
func (s *Server) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	conn := ctx.Conn
	c := s.h.NewClient(hub.ClientInfo{
		Protocol: hub.ProtocolRTSP,
		Remote:   hub.AddrPortOf(conn.NetConn().RemoteAddr()),
		Close:    conn.Close,
		ByteCounts: func() (uint64, uint64) {
			st := conn.Stats()
			in, out := st.BytesReceived, st.BytesSent
			if ss := conn.Session(); ss != nil {
				if sst := ss.Stats(); sst != nil {
					in += sst.InboundBytes
					out += sst.OutboundBytes
				}
			}
			return in, out
		},
	})
	conn.SetUserData(c)
}

// OnConnClose unregisters the connection.
func (s *Server) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	if c, ok := ctx.Conn.UserData().(*hub.Client); ok {
		s.h.RemoveClient(c)
	}
}

// OnSessionClose detaches a publisher or reader.
func (s *Server) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	rs, ok := ctx.Session.UserData().(*session)
	if !ok {
		return
	}
	if rs.src != nil {
		s.h.Unpublish(rs.stream, rs.c)
	}
	if rs.out != nil {
		rs.out.leave(ctx.Session)
	}
	if rs.reader {
		rs.stream.RemoveReader(rs.c)
	}
}

// OnStreamWriteError drops a reader whose write queue is full: it does not
// read fast enough (or the network does not carry the stream).
func (s *Server) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	rs, ok := ctx.Session.UserData().(*session)
	if !ok || !rs.dropped.CompareAndSwap(false, true) {
		return
	}
	rs.stream.CountDroppedReader()
	s.log.Warn("reader dropped: write queue full", "client", rs.c.ID(), "ip", rs.c.IP(),
		"protocol", hub.ProtocolRTSP, "stream", rs.stream.Name(), "err", ctx.Error)
	ctx.Session.Close()
}

func connClient(conn *gortsplib.ServerConn) *hub.Client {
	c, _ := conn.UserData().(*hub.Client)
	return c
}

// target parses the stream name and query of an RTSP request.
func target(path, query string) (string, url.Values, error) {
	name, ok := strings.CutPrefix(strings.Trim(path, "/"), hub.AppName+"/")
	if !ok || !hub.ValidStreamName(name) {
		return "", nil, fmt.Errorf("%w: %q", hub.ErrInvalidStreamName, path)
	}
	q, err := parseQuery(query)
	if err != nil {
		return "", nil, err
	}
	return name, q, nil
}

func statusFor(err error) base.StatusCode {
	switch {
	case errors.Is(err, hub.ErrInvalidStreamName):
		return base.StatusBadRequest
	case errors.Is(err, hub.ErrStreamNotFound):
		return base.StatusNotFound
	case errors.Is(err, hub.ErrAlreadyPublishing):
		return base.StatusForbidden
	case errors.Is(err, hub.ErrUnavailable):
		return base.StatusServiceUnavailable
	}
	return base.StatusForbidden
}

func (s *Server) refuse(c *hub.Client, err error) (*base.Response, error) {
	s.h.CountRefusal()
	s.log.Info("RTSP client refused", "client", c.ID(), "ip", c.IP(), "err", err)
	return &base.Response{
		StatusCode: statusFor(err),
		Header:     base.Header{"X-Reason": base.HeaderValue{hub.PublicReason(err)}},
	}, nil
}

// authorizePlay checks a reader and returns the RTSP output of its stream.
func (s *Server) authorizePlay(c *hub.Client, path, query string) (*output, error) {
	name, q, err := target(path, query)
	if err != nil {
		return nil, err
	}
	req := hub.AuthRequest{Stream: name, Query: q, RemoteIP: c.IP(), Protocol: hub.ProtocolRTSP}
	if err := s.h.AuthorizePlay(req); err != nil {
		return nil, err
	}
	st := s.h.PlayStream(context.Background(), name)
	if st == nil {
		return nil, fmt.Errorf("%w: %s", hub.ErrStreamNotFound, name)
	}
	return s.output(st)
}

// output returns the RTSP output of st, creating it on first use.
func (s *Server) output(st *hub.Stream) (*output, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.outs[st]; ok && !o.isClosed() {
		if !o.staleFor(st.Headers()) {
			return o, nil
		}
		// the publisher came back with other tracks or audio settings:
		// the old description cannot describe them (its goroutine closes
		// it too when it gets there).
		go o.close()
	}
	o, err := newOutput(s, st)
	if err != nil {
		return nil, err
	}
	s.outs[st] = o
	return o, nil
}

// BytesSent returns what the RTSP output of st sent to its sessions (for
// the stream's stats: the hub counts only what its Readers send).
func (s *Server) BytesSent(st *hub.Stream) uint64 {
	s.mu.Lock()
	o := s.outs[st]
	s.mu.Unlock()
	if o == nil || o.isClosed() {
		return 0
	}
	if ss := o.ss.Stats(); ss != nil {
		return ss.OutboundBytes
	}
	return 0
}

func (s *Server) removeOutput(st *hub.Stream, o *output) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outs[st] == o {
		delete(s.outs, st)
	}
}

// OnDescribe answers with the stream's description.
func (s *Server) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	c := connClient(ctx.Conn)
	o, err := s.authorizePlay(c, ctx.Path, ctx.Query)
	if err != nil {
		res, _ := s.refuse(c, err)
		return res, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, o.ss, nil
}

// OnAnnounce makes the session the publisher of its path.
func (s *Server) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	c := connClient(ctx.Conn)
	name, q, err := target(ctx.Path, ctx.Query)
	if err != nil {
		return s.refuse(c, err)
	}
	src, err := newSource(s.log, ctx.Description)
	if err != nil {
		return &base.Response{StatusCode: base.StatusUnsupportedMediaType}, nil
	}
	req := hub.AuthRequest{Stream: name, Query: q, RemoteIP: c.IP(), Protocol: hub.ProtocolRTSP}
	if err := s.h.AuthorizePublish(req); err != nil {
		return s.refuse(c, err)
	}
	st, err := s.h.Publish(name, c)
	if err != nil {
		return s.refuse(c, err)
	}
	src.stream = st
	c.SetRole(hub.RolePublish, name)
	ctx.Session.SetUserData(&session{c: c, stream: st, src: src})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSetup accepts the setup of a publisher's medias, or returns the stream
// of a reader.
func (s *Server) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	c := connClient(ctx.Conn)
	o, err := s.authorizePlay(c, ctx.Path, ctx.Query)
	if err != nil {
		res, _ := s.refuse(c, err)
		return res, nil, nil
	}
	if _, ok := ctx.Session.UserData().(*session); !ok {
		ctx.Session.SetUserData(&session{c: c, stream: o.s, out: o})
	}
	return &base.Response{StatusCode: base.StatusOK}, o.ss, nil
}

// OnPlay counts the session as a reader.
func (s *Server) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	rs, ok := ctx.Session.UserData().(*session)
	if !ok || rs.out == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	if !rs.reader {
		if !rs.stream.AddReader(rs.c) {
			return &base.Response{StatusCode: base.StatusNotFound}, nil
		}
		rs.reader = true
		rs.c.SetRole(hub.RolePlay, rs.stream.Name())
		rs.out.join(ctx.Session)
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord starts reading the publisher's packets.
func (s *Server) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	rs, ok := ctx.Session.UserData().(*session)
	if !ok || rs.src == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	if !rs.stream.IsPublisher(rs.c) {
		return &base.Response{StatusCode: base.StatusForbidden}, nil
	}
	rs.src.start(ctx.Session)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func parseQuery(q string) (url.Values, error) {
	out := url.Values{}
	if q == "" {
		return out, nil
	}
	if _, err := hub.SplitQuery("?"+q, out); err != nil {
		return nil, err
	}
	return out, nil
}

package media

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
)

// rtspServer runs gortsplib's server: RTSP publishers (ANNOUNCE/RECORD)
// feed the hub like RTMP ones; RTSP readers get a gortsplib ServerStream per
// stream, fed once from the stream's ring (see rtspOut).
type rtspServer struct {
	e   *Engine
	srv *gortsplib.Server
	ln  net.Listener

	mu   sync.Mutex
	outs map[*stream]*rtspOut
}

// rtspSession is the user data of a gortsplib session.
type rtspSession struct {
	c      *client
	stream *stream
	src    *rtspSource // when publishing
	out    *rtspOut    // when playing
	reader bool

	dropped atomic.Bool // too slow, closed
}

// rtspWriteQueue is the number of RTP packets queued per RTSP session
// (a power of two): a cached GOP of up to rtspWriteQueue-2*rtspJoinMax
// packets (~2.2 MB) is given to readers joining mid-GOP.
const rtspWriteQueue = 2048

func newRTSPServer(e *Engine) (*rtspServer, error) {
	s := &rtspServer{e: e, outs: make(map[*stream]*rtspOut)}
	s.srv = &gortsplib.Server{
		Handler:        s,
		RTSPAddress:    e.cfg.RTSPAddress,
		UDPRTPAddress:  e.cfg.RTSPUDPRTPAddress,
		UDPRTCPAddress: e.cfg.RTSPUDPRTCPAddress,
		ReadTimeout:    e.cfg.ReadTimeout,
		WriteTimeout:   e.cfg.WriteTimeout,
		// a session's write queue holds the cached GOP a joining reader
		// gets at once (rtspOut.join), then the live packets.
		WriteQueueSize: rtspWriteQueue,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			if err == nil {
				s.ln = ln
			}
			return ln, err
		},
	}
	if err := s.srv.Start(); err != nil {
		return nil, fmt.Errorf("RTSP listen on %s: %w", e.cfg.RTSPAddress, err)
	}
	return s, nil
}

func (s *rtspServer) close() {
	s.srv.Close()
	s.mu.Lock()
	outs := s.outs
	s.outs = map[*stream]*rtspOut{}
	s.mu.Unlock()
	for _, o := range outs {
		o.close()
	}
}

// OnConnOpen registers the connection as a client.
func (s *rtspServer) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	conn := ctx.Conn
	c := s.e.newClient(ProtocolRTSP, addrPortOf(conn.NetConn().RemoteAddr()), conn.Close)
	c.byteCounts = func() (uint64, uint64) {
		st := conn.Stats()
		in, out := st.BytesReceived, st.BytesSent
		if ss := conn.Session(); ss != nil {
			if sst := ss.Stats(); sst != nil {
				in += sst.InboundBytes
				out += sst.OutboundBytes
			}
		}
		return in, out
	}
	conn.SetUserData(c)
}

// OnConnClose unregisters the connection.
func (s *rtspServer) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	if c, ok := ctx.Conn.UserData().(*client); ok {
		s.e.removeClient(c)
	}
}

// OnSessionClose detaches a publisher or reader.
func (s *rtspServer) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	rs, ok := ctx.Session.UserData().(*rtspSession)
	if !ok {
		return
	}
	if rs.src != nil {
		s.e.hub.unpublish(rs.stream, rs.c)
	}
	if rs.out != nil {
		rs.out.leave(ctx.Session)
	}
	if rs.reader {
		rs.stream.removeReader(rs.c)
	}
}

// OnStreamWriteError drops a reader whose write queue is full: it does not
// read fast enough (or the network does not carry the stream).
func (s *rtspServer) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	rs, ok := ctx.Session.UserData().(*rtspSession)
	if !ok || !rs.dropped.CompareAndSwap(false, true) {
		return
	}
	rs.stream.dropped.Add(1)
	s.e.readersDropped.Add(1)
	s.e.log.Warn("reader dropped: write queue full", "client", rs.c.id, "ip", rs.c.ip(),
		"protocol", ProtocolRTSP, "stream", rs.stream.name, "err", ctx.Error)
	ctx.Session.Close()
}

func connClient(conn *gortsplib.ServerConn) *client {
	c, _ := conn.UserData().(*client)
	return c
}

// target parses the stream name and query of an RTSP request.
func rtspTarget(path, query string) (string, url.Values, error) {
	name, ok := strings.CutPrefix(strings.Trim(path, "/"), appName+"/")
	if !ok || !validStreamName(name) {
		return "", nil, fmt.Errorf("%w: %q", ErrInvalidStreamName, path)
	}
	q, err := parseQuery(query)
	if err != nil {
		return "", nil, err
	}
	return name, q, nil
}

func statusFor(err error) base.StatusCode {
	switch {
	case errors.Is(err, ErrInvalidStreamName):
		return base.StatusBadRequest
	case errors.Is(err, ErrStreamNotFound):
		return base.StatusNotFound
	case errors.Is(err, ErrAlreadyPublishing):
		return base.StatusForbidden
	}
	return base.StatusForbidden
}

func (s *rtspServer) refuse(c *client, err error) (*base.Response, error) {
	s.e.refused.Add(1)
	s.e.log.Info("RTSP client refused", "client", c.id, "ip", c.ip(), "err", err)
	return &base.Response{
		StatusCode: statusFor(err),
		Header:     base.Header{"X-Reason": base.HeaderValue{publicReason(err)}},
	}, nil
}

// authorizePlay checks a reader and returns the RTSP output of its stream.
func (s *rtspServer) authorizePlay(c *client, path, query string) (*rtspOut, error) {
	name, q, err := rtspTarget(path, query)
	if err != nil {
		return nil, err
	}
	req := AuthRequest{Stream: name, Query: q, RemoteIP: c.ip(), Protocol: ProtocolRTSP}
	if err := s.e.authorize(false, req); err != nil {
		return nil, err
	}
	st := s.e.hub.get(name)
	if st == nil {
		return nil, fmt.Errorf("%w: %s", ErrStreamNotFound, name)
	}
	return s.output(st)
}

// output returns the RTSP output of st, creating it on first use.
func (s *rtspServer) output(st *stream) (*rtspOut, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.outs[st]; ok && !o.isClosed() {
		if !o.staleFor(st.headers.Load()) {
			return o, nil
		}
		// the publisher came back with other tracks or audio settings:
		// the old description cannot describe them (its goroutine closes
		// it too when it gets there).
		go o.close()
	}
	o, err := newRTSPOut(s, st)
	if err != nil {
		return nil, err
	}
	s.outs[st] = o
	return o, nil
}

// bytesSent returns what the RTSP output of st sent.
func (s *rtspServer) bytesSent(st *stream) uint64 {
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

func (s *rtspServer) removeOutput(st *stream, o *rtspOut) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outs[st] == o {
		delete(s.outs, st)
	}
}

// OnDescribe answers with the stream's description.
func (s *rtspServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	c := connClient(ctx.Conn)
	o, err := s.authorizePlay(c, ctx.Path, ctx.Query)
	if err != nil {
		res, _ := s.refuse(c, err)
		return res, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, o.ss, nil
}

// OnAnnounce makes the session the publisher of its path.
func (s *rtspServer) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	c := connClient(ctx.Conn)
	name, q, err := rtspTarget(ctx.Path, ctx.Query)
	if err != nil {
		return s.refuse(c, err)
	}
	src, err := newRTSPSource(s.e, ctx.Description)
	if err != nil {
		return &base.Response{StatusCode: base.StatusUnsupportedMediaType}, nil
	}
	req := AuthRequest{Stream: name, Query: q, RemoteIP: c.ip(), Protocol: ProtocolRTSP}
	if err := s.e.authorize(true, req); err != nil {
		return s.refuse(c, err)
	}
	st, err := s.e.hub.publish(name, c)
	if err != nil {
		return s.refuse(c, err)
	}
	src.stream = st
	c.setRole(RolePublish, name)
	ctx.Session.SetUserData(&rtspSession{c: c, stream: st, src: src})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSetup accepts the setup of a publisher's medias, or returns the stream
// of a reader.
func (s *rtspServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	c := connClient(ctx.Conn)
	o, err := s.authorizePlay(c, ctx.Path, ctx.Query)
	if err != nil {
		res, _ := s.refuse(c, err)
		return res, nil, nil
	}
	if _, ok := ctx.Session.UserData().(*rtspSession); !ok {
		ctx.Session.SetUserData(&rtspSession{c: c, stream: o.s, out: o})
	}
	return &base.Response{StatusCode: base.StatusOK}, o.ss, nil
}

// OnPlay counts the session as a reader.
func (s *rtspServer) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	rs, ok := ctx.Session.UserData().(*rtspSession)
	if !ok || rs.out == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	if !rs.reader {
		if !rs.stream.addReader(rs.c) {
			return &base.Response{StatusCode: base.StatusNotFound}, nil
		}
		rs.reader = true
		rs.c.setRole(RolePlay, rs.stream.name)
		rs.out.join(ctx.Session)
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord starts reading the publisher's packets.
func (s *rtspServer) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	rs, ok := ctx.Session.UserData().(*rtspSession)
	if !ok || rs.src == nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil
	}
	if !rs.stream.isPublisher(rs.c) {
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
	if _, err := splitQuery("?"+q, out); err != nil {
		return nil, err
	}
	return out, nil
}

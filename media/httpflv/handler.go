// Package httpflv serves live streams of the hub as HTTP-FLV: GET
// /live/<name>.flv answers with the FLV header, the metadata, the sequence
// headers and the cached GOP at once, then the live stream. On HTTP/1.1
// the connection is hijacked and every batch of FLV tags is one chunk of
// the chunked body, written with one writev; HTTP/2 (or a ResponseWriter
// that cannot be hijacked) goes through the ResponseWriter.
package httpflv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
)

const httpFLVResponseHead = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: video/x-flv\r\n" +
	"Transfer-Encoding: chunked\r\n" +
	"Access-Control-Allow-Origin: *\r\n" +
	"Cache-Control: no-cache, no-store\r\n" +
	"Connection: close\r\n" +
	"\r\n"

// Config configures a Handler. Zero values take the documented defaults.
type Config struct {
	// WriteTimeout bounds every write to a viewer; a viewer whose write
	// does not finish in time is dropped as too slow (default 10 s). The
	// deadline is moved lazily: a write has between 3/4 of it and all.
	WriteTimeout time.Duration
	// SocketSendBuffer, if positive, sets the kernel send buffer
	// (SO_SNDBUF) of every viewer's connection.
	SocketSendBuffer int
	// Logger receives the handler's logs (default slog.Default()).
	Logger *slog.Logger
}

// Handler serves GET /live/<name>.flv (or <name>.flv, the prefix
// stripped) from the streams of a hub. Create it with New.
type Handler struct {
	h   *hub.Hub
	cfg Config
	log *slog.Logger

	// ctx ends with Close: viewers are disconnected, new ones refused.
	ctx    context.Context
	cancel context.CancelFunc
}

// New returns a handler of the streams of h.
func New(h *hub.Hub, cfg Config) *Handler {
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Handler{h: h, cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel}
}

// Close ends the viewers' sessions; requests that come later are closed
// at once.
func (fh *Handler) Close() { fh.cancel() }

// parsePath extracts the stream name from the path of an HTTP-FLV
// request: "/live/<name>.flv", or "<name>.flv" when the prefix was stripped.
func parsePath(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimPrefix(p, hub.AppName+"/")
	name, ok := strings.CutSuffix(p, ".flv")
	if !ok || !hub.ValidStreamName(name) {
		return "", fmt.Errorf("%w: %q", hub.ErrInvalidStreamName, p)
	}
	return name, nil
}

// fileHeader returns the FLV file header for a stream with headers hs.
func fileHeader(hs *hub.Headers) []byte {
	return flv.FileHeader(hs.Audio != nil || hs.Video == nil, hs.Video != nil || hs.Audio == nil)
}

// tuneConn applies socket options to a viewer's connection.
func (fh *Handler) tuneConn(nc net.Conn) {
	if fh.cfg.SocketSendBuffer <= 0 {
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetWriteBuffer(fh.cfg.SocketSendBuffer) //nolint:errcheck
	}
}

// ServeHTTP serves GET /live/<name>.flv: the FLV header, metadata,
// sequence headers and the cached GOP at once, then the live stream.
func (fh *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch req.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "*")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	name, err := parsePath(req.URL.Path)
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	remote, _ := netip.ParseAddrPort(req.RemoteAddr)
	q := req.URL.Query()
	areq := hub.AuthRequest{Stream: name, Query: q, RemoteIP: remote.Addr().Unmap(), Protocol: hub.ProtocolHTTPFLV,
		Relay: q.Get(hub.RelayParam)}
	if err := fh.h.AuthorizePlay(areq); err != nil {
		fh.log.Info("HTTP-FLV play refused", "stream", name, "ip", areq.RemoteIP, "relay", areq.Relay, "err", err)
		http.Error(w, "refused: "+hub.PublicReason(err), hub.HTTPStatus(err))
		return
	}
	var s *hub.Stream
	if areq.Relay != "" {
		// another node pulls what is published here, never what this
		// node relays itself (no chains, no loops), and never starts a
		// relay here.
		if s = fh.h.Stream(name); s != nil && s.Stats().Relay {
			s = nil
		}
	} else {
		s = fh.h.PlayStream(req.Context(), name)
	}
	if s == nil {
		fh.h.CountRefusal()
		http.Error(w, "stream not found", http.StatusNotFound)
		return
	}
	info := hub.ClientInfo{Protocol: hub.ProtocolHTTPFLV, Remote: remote, Relay: areq.Relay != "", Node: areq.Relay}
	if req.Method == http.MethodHead {
		h.Set("Content-Type", "video/x-flv")
		w.WriteHeader(http.StatusOK)
		return
	}

	var hj http.Hijacker
	if req.ProtoMajor == 1 {
		hj, _ = w.(http.Hijacker)
	}
	if hj == nil {
		fh.serveBuffered(w, req, s, info)
		return
	}
	hc, brw, err := hj.Hijack()
	if err != nil {
		fh.serveBuffered(w, req, s, info)
		return
	}
	_ = brw // the request has no body; pipelined requests are ignored
	// The viewer is served on a goroutine of its own and ServeHTTP
	// returns: the HTTP server's buffers and its connection goroutine's
	// stack are freed (about 20 KiB per viewer).
	go fh.serveHijacked(hc, s, info, name)
}

// serveHijacked sends s to the viewer on the hijacked connection hc.
func (fh *Handler) serveHijacked(hc net.Conn, s *hub.Stream, info hub.ClientInfo, name string) {
	// Close the connection as the HTTP server handed it over (a wrapper
	// may give back a per-address slot on Close), but write to the socket
	// underneath so that a batch is one writev.
	defer hc.Close()
	nc := socketOf(hc)

	info.Close = func() { hc.Close() }
	c := fh.h.NewClient(info)
	defer fh.h.RemoveClient(c)
	if fh.ctx.Err() != nil {
		return
	}
	nc.SetDeadline(time.Time{}) //nolint:errcheck
	fh.tuneConn(nc)

	ctx, cancel := context.WithCancel(fh.ctx)
	defer cancel()
	var wmu sync.Mutex
	r := hub.NewReader(s, c, Framer(), &hub.ConnSink{Conn: nc, Lock: &wmu, Timeout: fh.cfg.WriteTimeout}, true)
	if !s.AddReader(c) {
		return
	}
	defer s.RemoveReader(c)
	c.SetRole(hub.RolePlay, name)

	// the response head goes out unframed; the FLV header opens the first chunk.
	head := net.Buffers{[]byte(httpFLVResponseHead)}
	n, err := (&hub.ConnSink{Conn: nc, Lock: &wmu, Timeout: fh.cfg.WriteTimeout}).WriteBuffers(&head)
	c.AddBytesOut(int(n))
	if err != nil {
		return
	}
	r.QueueRaw(fileHeader(s.Headers()))

	// the client sends nothing more; a read returns when it leaves.
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel()
		var b [512]byte
		for {
			if _, err := nc.Read(b[:]); err != nil {
				return
			}
		}
	}()
	err = r.Run(ctx)
	if errors.Is(err, hub.ErrStreamEnded) {
		// end the chunked body cleanly so that players see the end of the stream.
		end := net.Buffers{[]byte("0\r\n\r\n")}
		(&hub.ConnSink{Conn: nc, Lock: &wmu, Timeout: time.Second}).WriteBuffers(&end) //nolint:errcheck
	}
	hc.Close()
	<-readDone
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, hub.ErrStreamEnded) {
		fh.log.Debug("HTTP-FLV reader ended", "client", c.ID(), "err", err)
	}
}

// socketOf returns the connection under the wrappers of nc that have an
// Unwrap method (a listener's per-address cap, say): net.Buffers is
// written with one writev only to a *net.TCPConn, and socket options need
// it too.
func socketOf(nc net.Conn) net.Conn {
	for {
		u, ok := nc.(interface{ Unwrap() net.Conn })
		if !ok {
			return nc
		}
		nc = u.Unwrap()
	}
}

// rwSink writes batches through an http.ResponseWriter, for HTTP/2 or
// wrapped writers that cannot be hijacked.
type rwSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (ws *rwSink) WriteBuffers(bufs *net.Buffers) (int64, error) {
	ws.rc.SetWriteDeadline(time.Now().Add(ws.timeout)) //nolint:errcheck
	var n int64
	for _, b := range *bufs {
		m, err := ws.w.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	*bufs = nil
	return n, ws.rc.Flush()
}

func (fh *Handler) serveBuffered(w http.ResponseWriter, req *http.Request, s *hub.Stream, info hub.ClientInfo) {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	info.Close = cancel
	c := fh.h.NewClient(info)
	defer fh.h.RemoveClient(c)
	stop := context.AfterFunc(fh.ctx, cancel)
	defer stop()

	h := w.Header()
	h.Set("Content-Type", "video/x-flv")
	h.Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		fh.log.Info("HTTP-FLV: response writer cannot flush", "err", err)
		return
	}
	r := hub.NewReader(s, c, Framer(), &rwSink{w: w, rc: rc, timeout: fh.cfg.WriteTimeout}, false)
	if !s.AddReader(c) {
		return
	}
	defer s.RemoveReader(c)
	c.SetRole(hub.RolePlay, s.Name())
	r.QueueRaw(fileHeader(s.Headers()))
	if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fh.log.Debug("HTTP-FLV reader ended", "client", c.ID(), "err", fmt.Errorf("%w", err))
	}
}

package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

const httpFLVResponseHead = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: video/x-flv\r\n" +
	"Transfer-Encoding: chunked\r\n" +
	"Access-Control-Allow-Origin: *\r\n" +
	"Cache-Control: no-cache, no-store\r\n" +
	"Connection: close\r\n" +
	"\r\n"

// serveHTTPFLV serves GET /live/<name>.flv: the FLV header, metadata,
// sequence headers and the cached GOP at once, then the live stream.
func (e *Engine) serveHTTPFLV(w http.ResponseWriter, req *http.Request) {
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

	name, err := parseHTTPFLVPath(req.URL.Path)
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	remote, _ := netip.ParseAddrPort(req.RemoteAddr)
	areq := AuthRequest{Stream: name, Query: req.URL.Query(), RemoteIP: remote.Addr().Unmap(), Protocol: ProtocolHTTPFLV}
	if err := e.authorize(false, areq); err != nil {
		e.log.Info("HTTP-FLV play refused", "stream", name, "ip", areq.RemoteIP, "err", err)
		http.Error(w, "forbidden: "+publicReason(err), http.StatusForbidden)
		return
	}
	s := e.hub.get(name)
	if s == nil {
		e.refused.Add(1)
		http.Error(w, "stream not found", http.StatusNotFound)
		return
	}
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
		e.serveHTTPFLVBuffered(w, req, s, remote)
		return
	}
	hc, brw, err := hj.Hijack()
	if err != nil {
		e.serveHTTPFLVBuffered(w, req, s, remote)
		return
	}
	// Close the connection as the HTTP server handed it over (a wrapper
	// may give back a per-address slot on Close), but write to the socket
	// underneath so that a batch is one writev.
	defer hc.Close()
	nc := socketOf(hc)
	_ = brw // the request has no body; pipelined requests are ignored

	c := e.newClient(ProtocolHTTPFLV, remote, func() { hc.Close() })
	defer e.removeClient(c)
	if e.isClosed() {
		return
	}
	nc.SetDeadline(time.Time{}) //nolint:errcheck
	e.tuneConn(nc)

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var wmu sync.Mutex
	r := newReader(s, c, formatFLV, &connSink{conn: nc, wmu: &wmu, timeout: e.cfg.WriteTimeout}, true)
	if !s.addReader(r.c) {
		return
	}
	defer s.removeReader(r.c)
	c.setRole(RolePlay, name)

	// the response head goes out unframed; the FLV header opens the first chunk.
	head := net.Buffers{[]byte(httpFLVResponseHead)}
	n, err := (&connSink{conn: nc, wmu: &wmu, timeout: e.cfg.WriteTimeout}).writeBuffers(&head)
	c.bytesOut.Add(uint64(n))
	if err != nil {
		return
	}
	hs := s.headers.Load()
	r.queueRaw(flv.FileHeader(hs.audio != nil || hs.video == nil, hs.video != nil || hs.audio == nil))

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
	err = r.run(ctx)
	if errors.Is(err, errStreamEnded) {
		// end the chunked body cleanly so that players see the end of the stream.
		end := net.Buffers{[]byte("0\r\n\r\n")}
		(&connSink{conn: nc, wmu: &wmu, timeout: time.Second}).writeBuffers(&end) //nolint:errcheck
	}
	hc.Close()
	<-readDone
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errStreamEnded) {
		e.log.Debug("HTTP-FLV reader ended", "client", c.id, "err", err)
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

func (ws *rwSink) writeBuffers(bufs *net.Buffers) (int64, error) {
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

func (e *Engine) serveHTTPFLVBuffered(w http.ResponseWriter, req *http.Request, s *stream, remote netip.AddrPort) {
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	c := e.newClient(ProtocolHTTPFLV, remote, cancel)
	defer e.removeClient(c)
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()

	h := w.Header()
	h.Set("Content-Type", "video/x-flv")
	h.Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		e.log.Info("HTTP-FLV: response writer cannot flush", "err", err)
		return
	}
	r := newReader(s, c, formatFLV, &rwSink{w: w, rc: rc, timeout: e.cfg.WriteTimeout}, false)
	if !s.addReader(r.c) {
		return
	}
	defer s.removeReader(r.c)
	c.setRole(RolePlay, s.name)
	hs := s.headers.Load()
	r.queueRaw(flv.FileHeader(hs.audio != nil || hs.video == nil, hs.video != nil || hs.audio == nil))
	if err := r.run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		e.log.Debug("HTTP-FLV reader ended", "client", c.id, "err", fmt.Errorf("%w", err))
	}
}

package media

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/webrtc"
)

// WebRTC in the engine: every stream, whatever its source, is played over
// WHEP from one webrtc.Output per stream, made on the first WHEP request
// and fed from a hub Cursor by one goroutine until the stream ends; a WHIP
// publisher is a publisher of the hub like an RTMP one, whose own Opus
// also goes straight to the stream's Output.

// rtcOutput is the WHEP output of one stream.
type rtcOutput struct {
	out *webrtc.Output
	// goneBytes counts what closed sessions sent, for the stream's
	// BytesOut.
	goneBytes atomic.Uint64
}

// rtcState is the engine's WebRTC side.
type rtcState struct {
	mu      sync.Mutex
	outputs map[*hub.Stream]*rtcOutput
	inputs  sync.Map // *hub.Stream → *webrtc.Input, the stream's WHIP publisher
	wg      sync.WaitGroup
}

// webrtcServer returns the WebRTC server, nil when it is off or not
// started.
func (e *Engine) webrtcServer() *webrtc.Server {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rtc
}

// rtcOutputOf returns the WHEP output of s, creating it (and starting its
// feeder) when create is set. It returns nil once s has ended.
func (e *Engine) rtcOutputOf(srv *webrtc.Server, s *hub.Stream, create bool) *rtcOutput {
	e.rtcs.mu.Lock()
	defer e.rtcs.mu.Unlock()
	if o := e.rtcs.outputs[s]; o != nil || !create {
		return o
	}
	select {
	case <-s.Done():
		return nil
	default:
	}
	o := &rtcOutput{out: srv.NewOutput(webrtc.OutputConfig{
		Name: s.Name(),
		OnKeyFrameRequest: func() {
			if in, ok := e.rtcs.inputs.Load(s); ok {
				in.(*webrtc.Input).RequestKeyFrame()
			}
		},
	})}
	if e.rtcs.outputs == nil {
		e.rtcs.outputs = map[*hub.Stream]*rtcOutput{}
	}
	e.rtcs.outputs[s] = o
	e.rtcs.wg.Add(1)
	go func() {
		defer e.rtcs.wg.Done()
		e.feedWebRTC(s, o.out)
	}()
	return o
}

// feedWebRTC feeds out from s, from its newest key frame, until the
// stream ends; then it closes out and its sessions.
func (e *Engine) feedWebRTC(s *hub.Stream, out *webrtc.Output) {
	defer func() {
		e.rtcs.mu.Lock()
		delete(e.rtcs.outputs, s)
		e.rtcs.mu.Unlock()
		out.Close() //nolint:errcheck
	}()
	cur := s.NewCursor(hub.FromKey)
	headers := func() {
		h := s.Headers()
		if h == nil {
			return
		}
		ts := uint32(0)
		if p := cur.Peek(); p != nil {
			ts = p.Timestamp()
		}
		for _, p := range []*hub.Packet{h.Meta, h.Video, h.Audio} {
			if p != nil {
				out.WritePacket(p.Type(), ts, p.Body())
			}
		}
	}
	headers()
	for {
		p, skipped, err := cur.Next(e.ctx)
		if err != nil {
			return
		}
		if skipped > 0 {
			s.Logger().Warn("WebRTC output fell behind the stream, skipping", "packets", skipped)
			headers()
			continue
		}
		out.WritePacket(p.Type(), p.Timestamp(), p.Body())
	}
}

// rtcBytesOut is what the WHEP sessions of s sent.
func (e *Engine) rtcBytesOut(s *hub.Stream) uint64 {
	o := e.rtcOutputOf(nil, s, false)
	if o == nil {
		return 0
	}
	n := o.goneBytes.Load()
	for _, st := range o.out.Stats() {
		n += st.BytesSent
	}
	return n
}

// rtcBFrames reports whether the WHEP output of s saw B-frames.
func (e *Engine) rtcBFrames(s *hub.Stream) bool {
	o := e.rtcOutputOf(nil, s, false)
	return o != nil && o.out.HasBFrames()
}

// splitWebRTCPath splits "/live/<name>/whep", "/live/<name>/whip" and the
// session resources "/live/<name>/whep/<id>" (or without "/live/").
func splitWebRTCPath(p string) (name, kind, id string, ok bool) {
	p = strings.TrimPrefix(strings.TrimPrefix(p, "/"), hub.AppName+"/")
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 || (parts[1] != "whep" && parts[1] != "whip") || !hub.ValidStreamName(parts[0]) {
		return "", "", "", false
	}
	if len(parts) == 3 {
		if parts[2] == "" {
			return "", "", "", false
		}
		id = parts[2]
	}
	return parts[0], parts[1], id, true
}

// serveWebRTC serves the WHEP and WHIP endpoints and session resources.
func (e *Engine) serveWebRTC(w http.ResponseWriter, req *http.Request, name, kind, id string) {
	srv := e.webrtcServer()
	if srv == nil {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		http.Error(w, "WebRTC is not enabled on this server", http.StatusNotFound)
		return
	}
	if id != "" {
		srv.ServeSession(w, req, id)
		return
	}
	if req.Method != http.MethodPost {
		// OPTIONS (CORS preflight, ICE servers) and refusals of other
		// methods need no authorization and touch no stream.
		if kind == "whep" {
			srv.ServeWHEP(w, req, nil)
		} else {
			srv.ServeWHIP(w, req, nil, webrtc.InputOptions{})
		}
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch")
	remote, _ := netip.ParseAddrPort(req.RemoteAddr)
	areq := AuthRequest{Stream: name, Query: req.URL.Query(), RemoteIP: remote.Addr().Unmap(), Protocol: ProtocolWebRTC}
	if kind == "whep" {
		e.serveWHEP(w, req, srv, areq, remote)
	} else {
		e.serveWHIP(w, req, srv, areq, remote)
	}
}

// serveWHEP answers a WHEP offer: authorized as a play, for a live
// stream without B-frames; the session is a client and a reader of the
// stream until it ends.
func (e *Engine) serveWHEP(w http.ResponseWriter, req *http.Request, srv *webrtc.Server, areq AuthRequest, remote netip.AddrPort) {
	if err := e.hub.AuthorizePlay(areq); err != nil {
		http.Error(w, "refused: "+hub.PublicReason(err), hub.HTTPStatus(err))
		return
	}
	s := e.hub.PlayStream(req.Context(), areq.Stream)
	if s == nil {
		e.hub.CountRefusal()
		http.Error(w, "stream not found", http.StatusNotFound)
		return
	}
	if s.Stats().BFrames {
		e.hub.CountRefusal()
		http.Error(w, webrtc.ErrBFrames.Error(), http.StatusConflict)
		return
	}
	o := e.rtcOutputOf(srv, s, true)
	if o == nil {
		e.hub.CountRefusal()
		http.Error(w, "stream not found", http.StatusNotFound)
		return
	}
	sess := srv.ServeWHEP(w, req, o.out)
	if sess == nil {
		return
	}
	c := e.hub.NewClient(hub.ClientInfo{
		Protocol: hub.ProtocolWebRTC,
		Remote:   remote,
		Close:    func() { sess.Close() }, //nolint:errcheck
		ByteCounts: func() (uint64, uint64) {
			st := sess.Stats()
			return st.BytesReceived, st.BytesSent
		},
	})
	c.SetRole(hub.RolePlay, s.Name())
	if !s.AddReader(c) {
		sess.Close() //nolint:errcheck
	}
	e.rtcs.wg.Add(1)
	go func() {
		defer e.rtcs.wg.Done()
		<-sess.Done()
		s.RemoveReader(c)
		o.goneBytes.Add(sess.Stats().BytesSent)
		e.hub.RemoveClient(c)
	}()
}

// serveWHIP answers a WHIP offer: authorized as a publish, refused while
// the stream has a publisher; the Input then publishes the stream like
// any other publisher.
func (e *Engine) serveWHIP(w http.ResponseWriter, req *http.Request, srv *webrtc.Server, areq AuthRequest, remote netip.AddrPort) {
	if err := e.hub.AuthorizePublish(areq); err != nil {
		http.Error(w, "refused: "+hub.PublicReason(err), hub.HTTPStatus(err))
		return
	}
	// refused before the answer, as the publish itself would refuse it
	// after: a publisher here (a relay from another node gives way), or
	// another node's publisher; the cluster unreachable.
	s := e.hub.Stream(areq.Stream)
	var st hub.StreamStats
	if s != nil {
		st = s.Stats()
	}
	if other, publishing := e.clusterOwner(areq.Stream); (st.Publishing && !st.Relay) || (other && publishing) {
		e.hub.CountRefusal()
		http.Error(w, hub.ErrAlreadyPublishing.Error(), http.StatusConflict)
		return
	}
	if err := e.cluster.Err(); err != nil && !(s != nil && st.Owned && !st.Publishing) {
		e.hub.CountRefusal()
		e.log.Warn("WHIP publisher refused: the cluster is unavailable", "stream", areq.Stream, "err", err)
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	p := &whipPublisher{e: e, ready: make(chan struct{})}
	p.c = e.hub.NewClient(hub.ClientInfo{
		Protocol: hub.ProtocolWebRTC,
		Remote:   remote,
		// Asynchronous: Input.Close waits for the handler's Close, which
		// removes the client, and the hub may call this with its client
		// table locked.
		Close: func() {
			if in := p.in.Load(); in != nil {
				go in.Close() //nolint:errcheck
			}
		},
		ByteCounts: func() (uint64, uint64) {
			if in := p.in.Load(); in != nil {
				st := in.Stats()
				return st.BytesReceived, st.BytesSent
			}
			return 0, 0
		},
	})
	in := srv.ServeWHIP(w, req, p, webrtc.InputOptions{})
	if in == nil {
		e.hub.RemoveClient(p.c)
		return
	}
	p.in.Store(in)
	s, err := e.hub.Publish(areq.Stream, p.c)
	if err != nil {
		// another publisher came meanwhile: the answer is sent, the
		// session ends at once.
		e.hub.CountRefusal()
		e.log.Info("WHIP publisher refused", "stream", areq.Stream, "ip", remote.Addr(), "err", err)
		close(p.ready)
		in.Close() //nolint:errcheck
		return
	}
	p.c.SetRole(hub.RolePublish, s.Name())
	p.s = s
	e.rtcs.inputs.Store(s, in)
	close(p.ready)
}

// whipPublisher is the InputHandler of a WHIP publisher: what it sends
// goes to its stream, its Opus to the stream's WHEP output as well. The
// Input serializes the calls.
type whipPublisher struct {
	e     *Engine
	c     *hub.Client
	in    atomic.Pointer[webrtc.Input]
	ready chan struct{} // closed once s is set (or the publish failed)
	s     *hub.Stream   // nil: refused

	// of the Input's goroutine
	opusHead []byte         // the Opus sequence start, for outputs made later
	lastOut  *webrtc.Output // the output the head was given to
}

func (p *whipPublisher) stream() *hub.Stream {
	<-p.ready // closed right after the answer is written: a short wait
	return p.s
}

// WritePacket writes a tag to the stream.
func (p *whipPublisher) WritePacket(typ uint8, ts uint32, body []byte) {
	if s := p.stream(); s != nil {
		s.WritePacket(typ, ts, body)
	}
}

// WriteOpus gives the publisher's Opus to the stream's WHEP output (if
// any: it is made on the first WHEP request), on the stream's timeline.
func (p *whipPublisher) WriteOpus(ts uint32, body []byte) {
	s := p.stream()
	if s == nil {
		return
	}
	head := false
	if a, err := flv.ParseAudioTag(body); err == nil && a.IsSequenceHeader() {
		p.opusHead = append(p.opusHead[:0], body...)
		head = true
	}
	o := p.e.rtcOutputOf(nil, s, false)
	if o == nil {
		return
	}
	ts = s.OutputTimestamp(ts)
	if o.out != p.lastOut {
		// an output made after the head was sent gets it first
		p.lastOut = o.out
		if !head && p.opusHead != nil {
			o.out.WriteOpus(ts, p.opusHead)
		}
	}
	o.out.WriteOpus(ts, body)
}

// Close ends the publish.
func (p *whipPublisher) Close(err error) {
	if s := p.stream(); s != nil {
		if in := p.in.Load(); in != nil {
			p.e.rtcs.inputs.CompareAndDelete(s, in)
		}
		p.e.hub.Unpublish(s, p.c)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		p.e.log.Debug("WHIP session ended", "client", p.c.ID(), "err", err)
	}
	p.e.hub.RemoveClient(p.c)
}

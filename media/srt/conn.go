package srt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/mofang-live/mofang/media/hub"
)

// admitTimeouts is how many ReadTimeouts an accepted publisher has to
// send the program map of its MPEG-TS (and, for AAC, a first frame),
// however busy it keeps the connection.
const admitTimeouts = 3

// errEncrypted refuses a caller that set a passphrase: streams are
// protected by their signs, not by SRT encryption.
var errEncrypted = errors.New("SRT encryption (passphrase) is not supported")

// errNotPlayable refuses a reader of a stream with no H.264, H.265, AAC
// or Opus track.
var errNotPlayable = errors.New("the stream has no track MPEG-TS over SRT carries (H.264, H.265, AAC, Opus)")

// session is one SRT connection, from its request to its end.
type session struct {
	srv *Server
	h   *hub.Hub
	log *slog.Logger
	req gosrt.ConnRequest
	c   *hub.Client

	// release gives back the request's slot among its address's
	// pending ones (Config.MaxPendingPerIP).
	release func()

	mu     sync.Mutex
	conn   gosrt.Conn // once accepted
	closed bool
}

func newSession(srv *Server, req gosrt.ConnRequest, release func()) *session {
	ss := &session{srv: srv, h: srv.h, log: srv.cfg.Logger, req: req, release: release}
	ss.c = srv.h.NewClient(hub.ClientInfo{
		Protocol:   hub.ProtocolSRT,
		Remote:     hub.AddrPortOf(req.RemoteAddr()),
		Close:      ss.close,
		ByteCounts: ss.byteCounts,
	})
	return ss
}

// close closes the connection, or makes accept fail if it is not accepted
// yet (kicks, the server's context).
func (ss *session) close() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.closed = true
	if ss.conn != nil {
		ss.conn.Close()
	}
}

// byteCounts returns the bytes gosrt received from and sent to the peer,
// headers and retransmissions included.
func (ss *session) byteCounts() (in, out uint64) {
	ss.mu.Lock()
	conn := ss.conn
	ss.mu.Unlock()
	if conn == nil {
		return 0, 0
	}
	var st gosrt.Statistics
	conn.Stats(&st)
	return st.Accumulated.ByteRecv, st.Accumulated.ByteSent
}

// accept accepts the request; the pending slot is given back.
func (ss *session) accept() (gosrt.Conn, error) {
	ss.mu.Lock()
	closed := ss.closed
	ss.mu.Unlock()
	if closed { // kicked, or the server is closing
		ss.req.Reject(gosrt.REJ_CLOSE)
		return nil, errors.New("closed before it was accepted")
	}
	conn, err := ss.req.Accept()
	if err != nil {
		return nil, fmt.Errorf("SRT accept: %w", err)
	}
	ss.release()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		conn.Close()
		return nil, errors.New("closed before it was accepted")
	}
	ss.conn = conn
	return conn, nil
}

// reject refuses the request with the rejection code of err.
func (ss *session) reject(err error) {
	code := rejection(err)
	ss.req.Reject(code)
	ss.log.Info("SRT client refused", "client", ss.c.ID(), "ip", ss.c.IP(), "code", int(code),
		"reason", hub.PublicReason(err), "err", err)
}

// run handles the request until the connection ends.
func (ss *session) run(ctx context.Context) {
	defer ss.release()
	defer ss.h.RemoveClient(ss.c)
	stop := context.AfterFunc(ctx, ss.close)
	defer stop()
	defer ss.close()

	id, err := parseStreamID(ss.req.StreamId())
	if err == nil && ss.req.IsEncrypted() {
		err = errEncrypted
	}
	if err != nil {
		ss.h.CountRefusal()
		ss.reject(err)
		return
	}
	if id.publish {
		err = ss.publish(id)
	} else {
		err = ss.play(ctx, id)
	}
	switch {
	case err == nil, errors.Is(err, io.EOF):
	case errors.Is(err, errTSTooLarge), errors.Is(err, errNoTracks):
		ss.h.CountRefusal()
		ss.log.Warn("SRT publisher closed: invalid or oversized MPEG-TS", "client", ss.c.ID(), "ip", ss.c.IP(), "err", err)
	default:
		ss.log.Info("SRT connection ended", "client", ss.c.ID(), "ip", ss.c.IP(), "err", err)
	}
}

func (ss *session) authRequest(id streamID) hub.AuthRequest {
	return hub.AuthRequest{Stream: id.name, Query: id.query, RemoteIP: ss.c.IP(), Protocol: hub.ProtocolSRT}
}

// publish makes the caller the publisher of its stream and reads its
// MPEG-TS until it leaves. Refusals are rejections of the request.
func (ss *session) publish(id streamID) error {
	h := ss.h
	if err := h.AuthorizePublish(ss.authRequest(id)); err != nil {
		ss.reject(err)
		return nil
	}
	st, err := h.Publish(id.name, ss.c)
	if err != nil {
		h.CountRefusal()
		ss.reject(err)
		return nil
	}
	defer h.Unpublish(st, ss.c)
	conn, err := ss.accept()
	if err != nil {
		return err
	}
	ss.c.SetRole(hub.RolePublish, id.name)

	timeout := ss.srv.cfg.ReadTimeout
	r := newIdleReader(conn, timeout, ss.close)
	defer r.stop()
	admit := time.AfterFunc(admitTimeouts*timeout, ss.close)
	dm, err := newDemuxer(r, st.WritePacket)
	admit.Stop()
	if err != nil {
		return err
	}
	if sk := dm.Skipped(); len(sk) > 0 {
		ss.log.Info("SRT publisher: tracks not carried", "client", ss.c.ID(), "stream", id.name, "codecs", sk)
	}
	for {
		if err := dm.Read(); err != nil {
			if n, last := dm.DecodeErrors(); n > 0 {
				ss.log.Info("SRT publisher: parts of the MPEG-TS skipped as invalid", "client", ss.c.ID(), "count", n, "last", last)
			}
			return err
		}
	}
}

// play sends the stream's MPEG-TS to the caller until it leaves or the
// stream ends.
func (ss *session) play(ctx context.Context, id streamID) error {
	h := ss.h
	if err := h.AuthorizePlay(ss.authRequest(id)); err != nil {
		ss.reject(err)
		return nil
	}
	st := h.PlayStream(ctx, id.name)
	if st == nil {
		h.CountRefusal()
		ss.reject(fmt.Errorf("%w: %s", hub.ErrStreamNotFound, id.name))
		return nil
	}
	if hs := st.Headers(); (hs.Video != nil || hs.Audio != nil) && !tracksOf(hs).any() {
		h.CountRefusal()
		ss.reject(errNotPlayable)
		return nil
	}
	out := ss.srv.output(st)
	conn, err := ss.accept()
	if err != nil {
		return err
	}
	if !st.AddReader(ss.c) {
		return nil
	}
	defer st.RemoveReader(ss.c)
	ss.c.SetRole(hub.RolePlay, id.name)
	rd := &reader{conn: conn, c: ss.c}
	if !out.join(rd) {
		return nil
	}
	defer out.leave(rd)
	// a reader sends nothing but control packets (gosrt handles them):
	// Read returns once the connection closes, when the peer leaves, is
	// silent for ReadTimeout, or is dropped.
	buf := make([]byte, 1500)
	for {
		if _, err := conn.Read(buf); err != nil {
			rd.leaving.Store(true)
			return nil
		}
	}
}

// idleReader reads a connection and closes it (with onIdle) when no
// data comes for timeout: gosrt's connections have no read deadline.
type idleReader struct {
	r       io.Reader
	timeout time.Duration
	timer   *time.Timer
	last    time.Time
}

func newIdleReader(r io.Reader, timeout time.Duration, onIdle func()) *idleReader {
	return &idleReader{r: r, timeout: timeout, timer: time.AfterFunc(timeout, onIdle), last: time.Now()}
}

// Read reads from the connection; the timer is reset at most every
// timeout/4.
func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		if now := time.Now(); now.Sub(ir.last) > ir.timeout/4 {
			ir.last = now
			ir.timer.Reset(ir.timeout)
		}
	}
	return n, err
}

func (ir *idleReader) stop() { ir.timer.Stop() }

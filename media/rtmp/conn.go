package media

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/mofang-live/mofang/media/flv"
)

// RTMP message types handled here.
const (
	rtmpTypeSetChunkSize  = 1
	rtmpTypeAbort         = 2
	rtmpTypeAck           = 3
	rtmpTypeUserControl   = 4
	rtmpTypeWindowAckSize = 5
	rtmpTypeCommandAMF3   = 17
	rtmpTypeDataAMF0      = 18
	rtmpTypeCommandAMF0   = 20
)

// gortmplib writes the message stream ID big endian; this is stream 1 on the wire.
const rtmpMsgStreamID1 = 0x1000000

// rtmpAdmitTimeouts is how many ReadTimeouts a connection has, from its
// accept, to finish the handshake and ask to publish or play; messages do
// not extend it.
const rtmpAdmitTimeouts = 3

// rtmpPlayerIdleTimeouts is how many ReadTimeouts a player may stay
// silent. Players are sent a ping every ReadTimeout, and answer it (ffmpeg,
// librtmp, gortmplib do); they also send acknowledgements.
const rtmpPlayerIdleTimeouts = 6

// rtmpConn is one RTMP connection. gortmplib does the handshake and the
// AMF0 coding and frames outgoing messages; rtmpChunkReader reassembles
// incoming messages within limits; this type runs the command exchange, so
// it sees the app, tcUrl and stream key as sent and can refuse with the
// proper status codes. Publishers' message bodies are taken as they are
// (they are the FLV tag bodies); players are fed by a reader that writes
// shared chunks.
type rtmpConn struct {
	e   *Engine
	nc  net.Conn
	wmu sync.Mutex // held by every write: writeMsg and the reader's connSink
	cc  *countingConn
	c   *client

	// release gives back the connection's slot among its address's
	// connections not yet admitted (Config.MaxPendingPerIP).
	release func()

	br *rtmpChunkReader
	mw *message.Writer // used under wmu only, through writeMsg

	app, tcURL string
}

// rtmpOut counts the bytes written to a connection. Its writes come from
// the message writer under rtmpConn.wmu.
type rtmpOut struct {
	nc net.Conn
	c  *client
}

func (o *rtmpOut) Write(b []byte) (int, error) {
	n, err := o.nc.Write(b)
	o.c.bytesOut.Add(uint64(n))
	return n, err
}

// rtmpCommand is a parsed AMF0 command.
type rtmpCommand struct {
	name string
	txn  float64
	args []any // after the command object
	obj  any
}

// newRTMPConn returns the session of nc; release gives back its pending slot.
func newRTMPConn(e *Engine, nc net.Conn, release func()) *rtmpConn {
	rc := &rtmpConn{e: e, nc: nc, release: release}
	rc.c = e.newClient(ProtocolRTMP, addrPortOf(nc.RemoteAddr()), func() { nc.Close() })
	rc.cc = &countingConn{Conn: nc, c: rc.c, wmu: &rc.wmu}
	return rc
}

func (rc *rtmpConn) run() {
	defer rc.e.removeClient(rc.c)
	defer rc.release()
	defer rc.nc.Close()
	log := rc.e.log.With("client", rc.c.id, "ip", rc.c.ip())
	err := rc.serve()
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, errStreamEnded):
		log.Debug("RTMP connection closed", "err", err)
	case errors.Is(err, errRTMPLimit):
		rc.e.refused.Add(1)
		log.Warn("RTMP connection closed: invalid or oversized input", "err", err)
	default:
		log.Info("RTMP connection closed", "err", err)
	}
}

// readDeadline returns when the next read must end: ReadTimeout from
// now, but not after admitBy.
func readDeadline(timeout time.Duration, admitBy time.Time) time.Time {
	d := time.Now().Add(timeout)
	if d.After(admitBy) {
		return admitBy
	}
	return d
}

func (rc *rtmpConn) serve() error {
	timeout := rc.e.cfg.ReadTimeout
	// The handshake and the commands up to publish or play must be done
	// by admitBy, however busy the client keeps the connection.
	admitBy := time.Now().Add(rtmpAdmitTimeouts * timeout)
	if err := rc.nc.SetDeadline(readDeadline(timeout, admitBy)); err != nil {
		return err
	}
	bcr := bytecounter.NewReader(rc.cc)
	keyIn, _, err := handshake.DoServer(struct {
		io.Reader
		io.Writer
	}{bcr, rc.cc}, false)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if keyIn != nil {
		return errors.New("handshake: encrypted RTMP (RTMPE) is not supported")
	}
	bcw := bytecounter.NewWriter(&rtmpOut{nc: rc.nc, c: rc.c})
	rc.mw = message.NewWriter(bcw, bcw, false)
	rc.br = newRTMPChunkReader(bcr, bcr.Count, func(count uint32) error {
		return rc.writeMsg(&message.Acknowledge{Value: count})
	}, rtmpCommandLimits)

	for {
		if err := rc.nc.SetReadDeadline(readDeadline(timeout, admitBy)); err != nil {
			return err
		}
		raw, err := rc.br.Read()
		if err != nil {
			return err
		}
		cmd, ok, err := rc.handleMessage(raw)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		switch cmd.name {
		case "connect":
			if err := rc.onConnect(cmd); err != nil {
				return err
			}
		case "createStream":
			if err := rc.writeCommand(3, 0, "_result", cmd.txn, nil, float64(1)); err != nil {
				return err
			}
		case "releaseStream", "FCPublish", "getStreamLength", "_checkbw":
			// no answer needed by ffmpeg, OBS or flash-style players.
		case "publish":
			return rc.onPublish(cmd)
		case "play":
			return rc.onPlay(cmd)
		case "deleteStream", "closeStream", "FCUnpublish":
			return nil
		}
	}
}

// handleMessage handles protocol control messages and returns commands.
func (rc *rtmpConn) handleMessage(raw rtmpMessage) (rtmpCommand, bool, error) {
	switch raw.Type {
	case rtmpTypeSetChunkSize:
		if len(raw.Body) < 4 {
			return rtmpCommand{}, false, errors.New("invalid SetChunkSize")
		}
		if err := rc.br.setChunkSize(binary.BigEndian.Uint32(raw.Body)); err != nil {
			return rtmpCommand{}, false, err
		}
	case rtmpTypeAbort:
		if len(raw.Body) >= 4 {
			rc.br.abort(binary.BigEndian.Uint32(raw.Body))
		}
	case rtmpTypeWindowAckSize:
		if len(raw.Body) >= 4 {
			rc.br.setWindowAckSize(binary.BigEndian.Uint32(raw.Body))
		}
	case rtmpTypeUserControl:
		if len(raw.Body) == 6 && binary.BigEndian.Uint16(raw.Body) == uint16(message.UserControlTypePingRequest) {
			err := rc.writeMsg(&message.UserControlPingResponse{ServerTime: binary.BigEndian.Uint32(raw.Body[2:])})
			return rtmpCommand{}, false, err
		}
	case rtmpTypeCommandAMF0, rtmpTypeCommandAMF3:
		cmd, err := parseRTMPCommand(raw.Type, raw.Body)
		if err != nil {
			return cmd, false, err
		}
		return cmd, true, nil
	}
	return rtmpCommand{}, false, nil
}

// parseRTMPCommand decodes an AMF0 command (or an AMF3 command carrying AMF0).
func parseRTMPCommand(typ uint8, body []byte) (rtmpCommand, error) {
	var cmd rtmpCommand
	if typ == rtmpTypeCommandAMF3 {
		if len(body) < 1 {
			return cmd, errors.New("empty AMF3 command")
		}
		body = body[1:]
	}
	d, err := amf0.Unmarshal(body)
	if err != nil {
		return cmd, fmt.Errorf("invalid command: %w", err)
	}
	if len(d) < 2 {
		return cmd, errors.New("invalid command: too few values")
	}
	var ok bool
	if cmd.name, ok = d[0].(string); !ok {
		return cmd, errors.New("invalid command: no name")
	}
	if cmd.txn, ok = d[1].(float64); !ok {
		return cmd, errors.New("invalid command: no transaction ID")
	}
	if len(d) > 2 {
		cmd.obj = d[2]
		cmd.args = d[3:]
	}
	return cmd, nil
}

// writeMsg writes a message, within WriteTimeout. It is safe to call from
// the player's goroutines while the reader writes media.
func (rc *rtmpConn) writeMsg(m message.Message) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	if err := rc.nc.SetWriteDeadline(time.Now().Add(rc.e.cfg.WriteTimeout)); err != nil {
		return err
	}
	return rc.mw.Write(m)
}

func (rc *rtmpConn) writeCommand(csid byte, msid uint32, name string, txn float64, args ...any) error {
	return rc.writeMsg(&message.CommandAMF0{
		ChunkStreamID:   csid,
		MessageStreamID: msid,
		Name:            name,
		CommandID:       int(txn),
		Arguments:       args,
	})
}

func statusObject(level, code, description string) amf0.Object {
	return amf0.Object{
		{Key: "level", Value: level},
		{Key: "code", Value: code},
		{Key: "description", Value: description},
	}
}

// writeStatus sends an onStatus on stream 1.
func (rc *rtmpConn) writeStatus(txn float64, level, code, description string) error {
	return rc.writeCommand(5, rtmpMsgStreamID1, "onStatus", txn, nil, statusObject(level, code, description))
}

func (rc *rtmpConn) onConnect(cmd rtmpCommand) error {
	var obj amf0.Object
	switch o := cmd.obj.(type) {
	case amf0.Object:
		obj = o
	case amf0.ECMAArray:
		obj = amf0.Object(o)
	default:
		return errors.New("invalid connect command")
	}
	rc.app, _ = obj.GetString("app")
	rc.tcURL, _ = obj.GetString("tcUrl")
	if rc.tcURL == "" {
		rc.tcURL, _ = obj.GetString("tcurl")
	}
	rc.tcURL = strings.Trim(rc.tcURL, "'")

	app, _, _ := strings.Cut(rc.app, "?")
	app, _, _ = strings.Cut(strings.Trim(app, "/"), "/")
	if app != appName && app != "" {
		rc.e.refused.Add(1)
		err := rc.writeCommand(3, 0, "_error", cmd.txn, nil,
			statusObject("error", "NetConnection.Connect.Rejected", "unknown application; use rtmp://host/live"))
		rc.drain()
		if err != nil {
			return err
		}
		return fmt.Errorf("connect refused: unknown app %q", app)
	}

	for _, m := range []message.Message{
		&message.SetWindowAckSize{Value: 2500000},
		&message.SetPeerBandwidth{Value: 2500000, Type: 2},
		&message.SetChunkSize{Value: rtmpOutChunkSize},
	} {
		if err := rc.writeMsg(m); err != nil {
			return err
		}
	}
	return rc.writeCommand(3, 0, "_result", cmd.txn,
		amf0.Object{
			{Key: "fmsVer", Value: "FMS/3,5,7,7009"},
			{Key: "capabilities", Value: float64(31)},
		},
		amf0.Object{
			{Key: "level", Value: "status"},
			{Key: "code", Value: "NetConnection.Connect.Success"},
			{Key: "description", Value: "Connection succeeded."},
			{Key: "objectEncoding", Value: float64(0)},
		})
}

// drain gives the peer a moment to read a refusal before the connection is
// closed, so that the close does not reset it away.
func (rc *rtmpConn) drain() {
	rc.nc.SetReadDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
	io.Copy(io.Discard, rc.nc)                             //nolint:errcheck
}

// refuse sends an error onStatus and closes after a moment.
func (rc *rtmpConn) refuse(txn float64, code string, err error) error {
	werr := rc.writeStatus(txn, "error", code, publicReason(err))
	rc.drain()
	if werr != nil {
		return werr
	}
	return fmt.Errorf("refused (%s): %w", code, err)
}

func (rc *rtmpConn) streamKey(cmd rtmpCommand) string {
	if len(cmd.args) > 0 {
		if s, ok := cmd.args[0].(string); ok {
			return s
		}
	}
	return ""
}

func (rc *rtmpConn) onPublish(cmd rtmpCommand) error {
	e := rc.e
	name, q, err := parseRTMPTarget(rc.app, rc.tcURL, rc.streamKey(cmd))
	if err != nil {
		e.refused.Add(1)
		return rc.refuse(cmd.txn, "NetStream.Publish.BadName", err)
	}
	req := AuthRequest{Stream: name, Query: q, RemoteIP: rc.c.ip(), Protocol: ProtocolRTMP}
	if err := e.authorize(true, req); err != nil {
		return rc.refuse(cmd.txn, "NetStream.Publish.Unauthorized", err)
	}
	s, err := e.hub.publish(name, rc.c)
	if err != nil {
		e.refused.Add(1)
		return rc.refuse(cmd.txn, "NetStream.Publish.BadName", err)
	}
	defer e.hub.unpublish(s, rc.c)
	rc.release()
	rc.br.setLimits(rtmpMediaLimits)
	rc.c.setRole(RolePublish, name)

	if err := rc.writeStatus(cmd.txn, "status", "NetStream.Publish.Start", "publishing "+name); err != nil {
		return err
	}
	return rc.readPublisher(s)
}

// readPublisher reads media messages and hands their bodies to the stream.
func (rc *rtmpConn) readPublisher(s *stream) error {
	timeout := rc.e.cfg.ReadTimeout
	// the read deadline is moved at most every timeout/4 (a system call).
	var lastDeadline time.Time
	for {
		if now := time.Now(); now.Sub(lastDeadline) > timeout/4 {
			lastDeadline = now
			if err := rc.nc.SetReadDeadline(now.Add(timeout)); err != nil {
				return err
			}
		}
		raw, err := rc.br.Read()
		if err != nil {
			return err
		}
		ts := raw.Timestamp
		switch raw.Type {
		case flv.TagAudio, flv.TagVideo:
			if len(raw.Body) == 0 {
				continue
			}
			s.writePacket(raw.Type, ts, raw.Body)
		case rtmpTypeDataAMF0:
			if body := metadataBody(raw.Body); body != nil {
				s.writePacket(flv.TagScript, ts, body)
			}
		default:
			cmd, ok, err := rc.handleMessage(raw)
			if err != nil {
				return err
			}
			if ok {
				switch cmd.name {
				case "FCUnpublish", "deleteStream", "closeStream":
					return nil
				}
			}
		}
	}
}

// metadataBody returns the body of a script message for readers: the
// "@setDataFrame" wrapper publishers use is removed. Unparseable bodies are
// dropped.
func metadataBody(body []byte) []byte {
	d, err := amf0.Unmarshal(body)
	if err != nil || len(d) == 0 {
		return nil
	}
	if name, _ := d[0].(string); name == "@setDataFrame" {
		out, err := d[1:].Marshal()
		if err != nil {
			return nil
		}
		return out
	}
	return body
}

func (rc *rtmpConn) onPlay(cmd rtmpCommand) error {
	e := rc.e
	name, q, err := parseRTMPTarget(rc.app, rc.tcURL, rc.streamKey(cmd))
	if err != nil {
		e.refused.Add(1)
		return rc.refuse(cmd.txn, "NetStream.Play.StreamNotFound", err)
	}
	req := AuthRequest{Stream: name, Query: q, RemoteIP: rc.c.ip(), Protocol: ProtocolRTMP}
	if err := e.authorize(false, req); err != nil {
		return rc.refuse(cmd.txn, "NetStream.Play.Failed", err)
	}
	s := e.hub.get(name)
	if s == nil {
		e.refused.Add(1)
		return rc.refuse(cmd.txn, "NetStream.Play.StreamNotFound", fmt.Errorf("%w: %s", ErrStreamNotFound, name))
	}

	for _, m := range []message.Message{
		&message.UserControlStreamIsRecorded{StreamID: 1},
		&message.UserControlStreamBegin{StreamID: 1},
	} {
		if err := rc.writeMsg(m); err != nil {
			return err
		}
	}
	for _, st := range [][2]string{
		{"NetStream.Play.Reset", "play reset " + name},
		{"NetStream.Play.Start", "play start " + name},
		{"NetStream.Data.Start", "data start"},
		{"NetStream.Play.PublishNotify", "publish notify"},
	} {
		if err := rc.writeStatus(cmd.txn, "status", st[0], st[1]); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	r := newReader(s, rc.c, formatRTMP, &connSink{conn: rc.nc, wmu: &rc.wmu, timeout: e.cfg.WriteTimeout}, false)
	if !s.addReader(r.c) {
		return errStreamEnded
	}
	defer s.removeReader(r.c)
	rc.release()
	rc.c.setRole(RolePlay, name)

	// a player sends little (acks, ping responses, deleteStream); reading
	// it tells us at once when it leaves, and a player silent for longer
	// than idle is gone. The pings make players talk.
	idle := rtmpPlayerIdleTimeouts * e.cfg.ReadTimeout
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel()
		err := rc.readPlayer(idle)
		switch {
		case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		case isTimeout(err) && ctx.Err() == nil:
			e.log.Info("RTMP player silent, disconnected", "client", rc.c.id, "ip", rc.c.ip(), "idle", idle)
		case errors.Is(err, errRTMPLimit):
			e.refused.Add(1)
			e.log.Warn("RTMP player closed: invalid or oversized input", "client", rc.c.id, "ip", rc.c.ip(), "err", err)
		default:
			e.log.Debug("RTMP player read ended", "client", rc.c.id, "err", err)
		}
	}()
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		rc.pingPlayer(ctx)
	}()
	err = r.run(ctx)
	if errors.Is(err, errStreamEnded) {
		rc.writeEndOfStream(name)
	}
	rc.nc.Close()
	cancel()
	<-readDone
	<-pingDone
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// readPlayer reads a player's messages until it leaves (nil), stays silent
// for idle, or fails.
func (rc *rtmpConn) readPlayer(idle time.Duration) error {
	for {
		if err := rc.nc.SetReadDeadline(time.Now().Add(idle)); err != nil {
			return err
		}
		raw, err := rc.br.Read()
		if err != nil {
			return err
		}
		cmd, ok, err := rc.handleMessage(raw)
		if err != nil {
			return err
		}
		if ok && (cmd.name == "deleteStream" || cmd.name == "closeStream") {
			return nil
		}
	}
}

// pingPlayer sends a ping request every ReadTimeout until ctx ends, so
// that a player answers even when it has nothing else to send.
func (rc *rtmpConn) pingPlayer(ctx context.Context) {
	start := time.Now()
	t := time.NewTicker(rc.e.cfg.ReadTimeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ms := uint32(time.Since(start) / time.Millisecond)
			if err := rc.writeMsg(&message.UserControlPingRequest{ServerTime: ms}); err != nil {
				return
			}
		}
	}
}

// writeEndOfStream tells a player that the stream has ended with an
// onStatus NetStream.Play.UnpublishNotify, framed like media packets (type 0
// chunk on the data chunk stream) because the player's reader goroutine may
// use the message writer concurrently.
func (rc *rtmpConn) writeEndOfStream(name string) {
	body, err := amf0.Data{"onStatus", float64(0), nil,
		statusObject("status", "NetStream.Play.UnpublishNotify", name+" is now unpublished")}.Marshal()
	if err != nil {
		return
	}
	p := &packet{typ: rtmpTypeCommandAMF0, body: body}
	bufs := net.Buffers(p.rtmpBufs())
	sink := &connSink{conn: rc.nc, wmu: &rc.wmu, timeout: time.Second}
	sink.writeBuffers(&bufs) //nolint:errcheck
}

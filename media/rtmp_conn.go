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
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

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

// rtmpConn is one RTMP connection. gortmplib does the handshake, the chunk
// reassembly of incoming messages and the AMF0 coding; this type runs the
// command exchange, so it sees the app, tcUrl and stream key as sent and can
// refuse with the proper status codes. Publishers' message bodies are taken
// as they are (they are the FLV tag bodies); players are fed by a reader
// that writes shared chunks.
type rtmpConn struct {
	e   *Engine
	nc  net.Conn
	wmu sync.Mutex
	cc  *countingConn
	c   *client

	br *rawmessage.Reader
	mw *message.Writer

	app, tcURL string
}

// rtmpCommand is a parsed AMF0 command.
type rtmpCommand struct {
	name string
	txn  float64
	args []any // after the command object
	obj  any
}

func newRTMPConn(e *Engine, nc net.Conn) *rtmpConn {
	rc := &rtmpConn{e: e, nc: nc}
	rc.c = e.newClient(ProtocolRTMP, addrPortOf(nc.RemoteAddr()), func() { nc.Close() })
	rc.cc = &countingConn{Conn: nc, c: rc.c, wmu: &rc.wmu}
	return rc
}

func (rc *rtmpConn) run() {
	defer rc.e.removeClient(rc.c)
	defer rc.nc.Close()
	log := rc.e.log.With("client", rc.c.id, "ip", rc.c.ip())
	err := rc.serve()
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, errStreamEnded):
		log.Debug("RTMP connection closed", "err", err)
	default:
		log.Info("RTMP connection closed", "err", err)
	}
}

func (rc *rtmpConn) serve() error {
	timeout := rc.e.cfg.ReadTimeout
	if err := rc.nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	bcr := bytecounter.NewReader(rc.cc)
	bcw := bytecounter.NewWriter(rc.cc)
	keyIn, _, err := handshake.DoServer(struct {
		io.Reader
		io.Writer
	}{bcr, bcw}, false)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if keyIn != nil {
		return errors.New("handshake: encrypted RTMP (RTMPE) is not supported")
	}
	rc.mw = message.NewWriter(bcw, bcw, false)
	rc.br = rawmessage.NewReader(bcr, bcr, func(count uint32) error {
		return rc.mw.Write(&message.Acknowledge{Value: count})
	})

	for {
		if err := rc.nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
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
func (rc *rtmpConn) handleMessage(raw *rawmessage.Message) (rtmpCommand, bool, error) {
	switch raw.Type {
	case rtmpTypeSetChunkSize:
		if len(raw.Body) < 4 {
			return rtmpCommand{}, false, errors.New("invalid SetChunkSize")
		}
		if err := rc.br.SetChunkSize(binary.BigEndian.Uint32(raw.Body) & 0x7fffffff); err != nil {
			return rtmpCommand{}, false, err
		}
	case rtmpTypeAbort:
		if len(raw.Body) >= 4 {
			rc.br.AbortChunkStream(binary.BigEndian.Uint32(raw.Body))
		}
	case rtmpTypeWindowAckSize:
		if len(raw.Body) >= 4 {
			rc.br.SetWindowAckSize(binary.BigEndian.Uint32(raw.Body))
		}
	case rtmpTypeUserControl:
		if len(raw.Body) == 6 && binary.BigEndian.Uint16(raw.Body) == uint16(message.UserControlTypePingRequest) {
			err := rc.mw.Write(&message.UserControlPingResponse{ServerTime: binary.BigEndian.Uint32(raw.Body[2:])})
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

func (rc *rtmpConn) writeCommand(csid byte, msid uint32, name string, txn float64, args ...any) error {
	return rc.mw.Write(&message.CommandAMF0{
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
		if err := rc.mw.Write(m); err != nil {
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
	rc.c.setRole(RolePublish, name)

	if err := rc.writeStatus(cmd.txn, "status", "NetStream.Publish.Start", "publishing "+name); err != nil {
		return err
	}
	return rc.readPublisher(s)
}

// readPublisher reads media messages and hands their bodies to the stream.
func (rc *rtmpConn) readPublisher(s *stream) error {
	timeout := rc.e.cfg.ReadTimeout
	if err := rc.nc.SetWriteDeadline(time.Time{}); err != nil {
		return err
	}
	var lastDeadline time.Time
	for {
		if now := time.Now(); now.Sub(lastDeadline) > time.Second {
			lastDeadline = now
			if err := rc.nc.SetReadDeadline(now.Add(timeout)); err != nil {
				return err
			}
		}
		raw, err := rc.br.Read()
		if err != nil {
			return err
		}
		ts := uint32(raw.Timestamp / time.Millisecond)
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
		if err := rc.mw.Write(m); err != nil {
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
	rc.c.setRole(RolePlay, name)

	// a player sends little (acks, pings, deleteStream); reading it tells
	// us at once when it leaves.
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel()
		rc.nc.SetReadDeadline(time.Time{}) //nolint:errcheck
		for {
			raw, err := rc.br.Read()
			if err != nil {
				return
			}
			cmd, ok, err := rc.handleMessage(raw)
			if err != nil {
				return
			}
			if ok && (cmd.name == "deleteStream" || cmd.name == "closeStream") {
				return
			}
		}
	}()
	err = r.run(ctx)
	if errors.Is(err, errStreamEnded) {
		rc.writeEndOfStream(name)
	}
	rc.nc.Close()
	<-readDone
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
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

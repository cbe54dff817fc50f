package rtmp

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
	"github.com/mofang-live/mofang/media/hub"
)

// RTMP message types handled here.
const (
	typeSetChunkSize  = 1
	typeAbort         = 2
	typeAck           = 3
	typeUserControl   = 4
	typeWindowAckSize = 5
	typeCommandAMF3   = 17
	typeDataAMF0      = 18
	typeCommandAMF0   = 20
)

// gortmplib writes the message stream ID big endian; this is stream 1 on the wire.
const msgStreamID1 = 0x1000000

// admitTimeouts is how many ReadTimeouts a connection has, from its
// accept, to finish the handshake and ask to publish or play; messages do
// not extend it.
const admitTimeouts = 3

// playerIdleTimeouts is how many ReadTimeouts a player may stay
// silent. Players are sent a ping every ReadTimeout, and answer it (ffmpeg,
// librtmp, gortmplib do); they also send acknowledgements.
const playerIdleTimeouts = 6

// playerReadBuffer is the read buffer of a player's connection (see
// chunkReader.shrink).
const playerReadBuffer = 512

// conn is one RTMP connection. gortmplib does the handshake and the
// AMF0 coding and frames outgoing messages; chunkReader reassembles
// incoming messages within limits; this type runs the command exchange, so
// it sees the app, tcUrl and stream key as sent and can refuse with the
// proper status codes. Publishers' message bodies are taken as they are
// (they are the FLV tag bodies); players are fed by a reader that writes
// shared chunks.
type conn struct {
	srv *Server
	h   *hub.Hub
	nc  net.Conn
	wmu sync.Mutex // held by every write: writeMsg and the reader's ConnSink
	cc  *hub.CountingConn
	c   *hub.Client

	// release gives back the connection's slot among its address's
	// connections not yet admitted (Config.MaxPendingPerIP).
	release func()

	br *chunkReader
	mw *message.Writer // used under wmu only, through writeMsg

	app, tcURL string
}

// outCounter counts the bytes written to a connection. Its writes come from
// the message writer under conn.wmu.
type outCounter struct {
	nc net.Conn
	c  *hub.Client
}

func (o *outCounter) Write(b []byte) (int, error) {
	n, err := o.nc.Write(b)
	o.c.AddBytesOut(n)
	return n, err
}

// command is a parsed AMF0 command.
type command struct {
	name string
	txn  float64
	args []any // after the command object
	obj  any
}

// newConn returns the session of nc; release gives back its pending slot.
func newConn(srv *Server, nc net.Conn, release func()) *conn {
	rc := &conn{srv: srv, h: srv.h, nc: nc, release: release}
	rc.c = srv.h.NewClient(hub.ClientInfo{Protocol: hub.ProtocolRTMP, Remote: hub.AddrPortOf(nc.RemoteAddr()), Close: func() { nc.Close() }})
	rc.cc = hub.NewCountingConn(nc, rc.c, &rc.wmu)
	return rc
}

// run serves the connection until it ends; ctx ending ends a player.
func (rc *conn) run(ctx context.Context) {
	defer rc.h.RemoveClient(rc.c)
	defer rc.release()
	defer rc.nc.Close()
	log := rc.srv.log.With("client", rc.c.ID(), "ip", rc.c.IP())
	err := rc.serve(ctx)
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, hub.ErrStreamEnded):
		log.Debug("RTMP connection closed", "err", err)
	case errors.Is(err, errLimit):
		rc.h.CountRefusal()
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

func (rc *conn) serve(ctx context.Context) error {
	timeout := rc.srv.cfg.ReadTimeout
	// The handshake and the commands up to publish or play must be done
	// by admitBy, however busy the client keeps the connection.
	admitBy := time.Now().Add(admitTimeouts * timeout)
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
	bcw := bytecounter.NewWriter(&outCounter{nc: rc.nc, c: rc.c})
	rc.mw = message.NewWriter(bcw, bcw, false)
	rc.br = newChunkReader(bcr, bcr.Count, func(count uint32) error {
		return rc.writeMsg(&message.Acknowledge{Value: count})
	}, commandLimits)

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
			return rc.onPlay(ctx, cmd)
		case "deleteStream", "closeStream", "FCUnpublish":
			return nil
		}
	}
}

// handleMessage handles protocol control messages and returns commands.
func (rc *conn) handleMessage(raw rawMessage) (command, bool, error) {
	switch raw.Type {
	case typeSetChunkSize:
		if len(raw.Body) < 4 {
			return command{}, false, errors.New("invalid SetChunkSize")
		}
		if err := rc.br.setChunkSize(binary.BigEndian.Uint32(raw.Body)); err != nil {
			return command{}, false, err
		}
	case typeAbort:
		if len(raw.Body) >= 4 {
			rc.br.abort(binary.BigEndian.Uint32(raw.Body))
		}
	case typeWindowAckSize:
		if len(raw.Body) >= 4 {
			rc.br.setWindowAckSize(binary.BigEndian.Uint32(raw.Body))
		}
	case typeUserControl:
		if len(raw.Body) == 6 && binary.BigEndian.Uint16(raw.Body) == uint16(message.UserControlTypePingRequest) {
			err := rc.writeMsg(&message.UserControlPingResponse{ServerTime: binary.BigEndian.Uint32(raw.Body[2:])})
			return command{}, false, err
		}
	case typeCommandAMF0, typeCommandAMF3:
		cmd, err := parseCommand(raw.Type, raw.Body)
		if err != nil {
			return cmd, false, err
		}
		return cmd, true, nil
	}
	return command{}, false, nil
}

// parseCommand decodes an AMF0 command (or an AMF3 command carrying AMF0).
func parseCommand(typ uint8, body []byte) (command, error) {
	var cmd command
	if typ == typeCommandAMF3 {
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
func (rc *conn) writeMsg(m message.Message) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	if err := rc.nc.SetWriteDeadline(time.Now().Add(rc.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	return rc.mw.Write(m)
}

func (rc *conn) writeCommand(csid byte, msid uint32, name string, txn float64, args ...any) error {
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
func (rc *conn) writeStatus(txn float64, level, code, description string) error {
	return rc.writeCommand(5, msgStreamID1, "onStatus", txn, nil, statusObject(level, code, description))
}

func (rc *conn) onConnect(cmd command) error {
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
	if app != hub.AppName && app != "" {
		rc.h.CountRefusal()
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
		&message.SetChunkSize{Value: outChunkSize},
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
func (rc *conn) drain() {
	rc.nc.SetReadDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
	io.Copy(io.Discard, rc.nc)                             //nolint:errcheck
}

// refuse sends an error onStatus and closes after a moment.
func (rc *conn) refuse(txn float64, code string, err error) error {
	werr := rc.writeStatus(txn, "error", code, hub.PublicReason(err))
	rc.drain()
	if werr != nil {
		return werr
	}
	return fmt.Errorf("refused (%s): %w", code, err)
}

func (rc *conn) streamKey(cmd command) string {
	if len(cmd.args) > 0 {
		if s, ok := cmd.args[0].(string); ok {
			return s
		}
	}
	return ""
}

func (rc *conn) onPublish(cmd command) error {
	h := rc.h
	name, q, err := parseTarget(rc.app, rc.tcURL, rc.streamKey(cmd))
	if err != nil {
		h.CountRefusal()
		return rc.refuse(cmd.txn, "NetStream.Publish.BadName", err)
	}
	req := hub.AuthRequest{Stream: name, Query: q, RemoteIP: rc.c.IP(), Protocol: hub.ProtocolRTMP}
	if err := h.AuthorizePublish(req); err != nil {
		return rc.refuse(cmd.txn, "NetStream.Publish.Unauthorized", err)
	}
	s, err := h.Publish(name, rc.c)
	if err != nil {
		h.CountRefusal()
		return rc.refuse(cmd.txn, "NetStream.Publish.BadName", err)
	}
	defer h.Unpublish(s, rc.c)
	rc.release()
	rc.br.setLimits(mediaLimits)
	rc.c.SetRole(hub.RolePublish, name)

	if err := rc.writeStatus(cmd.txn, "status", "NetStream.Publish.Start", "publishing "+name); err != nil {
		return err
	}
	return rc.readPublisher(s)
}

// readPublisher reads media messages and hands their bodies to the stream.
func (rc *conn) readPublisher(s *hub.Stream) error {
	timeout := rc.srv.cfg.ReadTimeout
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
			s.WritePacket(raw.Type, ts, raw.Body)
		case typeDataAMF0:
			if body := metadataBody(raw.Body); body != nil {
				s.WritePacket(flv.TagScript, ts, body)
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

func (rc *conn) onPlay(ctx context.Context, cmd command) error {
	h := rc.h
	name, q, err := parseTarget(rc.app, rc.tcURL, rc.streamKey(cmd))
	if err != nil {
		h.CountRefusal()
		return rc.refuse(cmd.txn, "NetStream.Play.StreamNotFound", err)
	}
	req := hub.AuthRequest{Stream: name, Query: q, RemoteIP: rc.c.IP(), Protocol: hub.ProtocolRTMP}
	if err := h.AuthorizePlay(req); err != nil {
		return rc.refuse(cmd.txn, "NetStream.Play.Failed", err)
	}
	s := h.PlayStream(ctx, name)
	if s == nil {
		h.CountRefusal()
		return rc.refuse(cmd.txn, "NetStream.Play.StreamNotFound", fmt.Errorf("%w: %s", hub.ErrStreamNotFound, name))
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

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := hub.NewReader(s, rc.c, Framer(), &hub.ConnSink{Conn: rc.nc, Lock: &rc.wmu, Timeout: rc.srv.cfg.WriteTimeout}, false)
	if !s.AddReader(rc.c) {
		return hub.ErrStreamEnded
	}
	defer s.RemoveReader(rc.c)
	rc.release()
	rc.c.SetRole(hub.RolePlay, name)
	rc.br.shrink(playerReadBuffer)

	// a player sends little (acks, ping responses, deleteStream); reading
	// it tells us at once when it leaves, and a player silent for longer
	// than idle is gone. The pings make players talk.
	idle := playerIdleTimeouts * rc.srv.cfg.ReadTimeout
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel()
		err := rc.readPlayer(idle)
		switch {
		case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		case isTimeout(err) && ctx.Err() == nil:
			rc.srv.log.Info("RTMP player silent, disconnected", "client", rc.c.ID(), "ip", rc.c.IP(), "idle", idle)
		case errors.Is(err, errLimit):
			h.CountRefusal()
			rc.srv.log.Warn("RTMP player closed: invalid or oversized input", "client", rc.c.ID(), "ip", rc.c.IP(), "err", err)
		default:
			rc.srv.log.Debug("RTMP player read ended", "client", rc.c.ID(), "err", err)
		}
	}()
	stopPings := rc.pingPlayer(ctx)
	err = r.Run(ctx)
	if errors.Is(err, hub.ErrStreamEnded) {
		rc.writeEndOfStream(name)
	}
	rc.nc.Close()
	cancel()
	<-readDone
	stopPings()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// readPlayer reads a player's messages until it leaves (nil), stays silent
// for idle, or fails.
func (rc *conn) readPlayer(idle time.Duration) error {
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

// pingPlayer sends a ping request every ReadTimeout until ctx ends or the
// returned stop is called, so that a player answers even when it has
// nothing else to send. It runs on a timer, not a goroutine of its own:
// one goroutine stack less per player.
func (rc *conn) pingPlayer(ctx context.Context) (stop func()) {
	start := time.Now()
	every := rc.srv.cfg.ReadTimeout
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	ping := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped || ctx.Err() != nil {
			return
		}
		ms := uint32(time.Since(start) / time.Millisecond)
		if err := rc.writeMsg(&message.UserControlPingRequest{ServerTime: ms}); err != nil {
			return
		}
		t.Reset(every)
	}
	mu.Lock()
	t = time.AfterFunc(every, ping)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// writeEndOfStream tells a player that the stream has ended with an
// onStatus NetStream.Play.UnpublishNotify, framed like media packets (type 0
// chunk on the data chunk stream) because the player's reader goroutine may
// use the message writer concurrently.
func (rc *conn) writeEndOfStream(name string) {
	body, err := amf0.Data{"onStatus", float64(0), nil,
		statusObject("status", "NetStream.Play.UnpublishNotify", name+" is now unpublished")}.Marshal()
	if err != nil {
		return
	}
	var scratch hub.Scratch
	bufs := net.Buffers(frame(typeCommandAMF0, 0, body, &scratch))
	sink := &hub.ConnSink{Conn: rc.nc, Lock: &rc.wmu, Timeout: time.Second}
	sink.WriteBuffers(&bufs) //nolint:errcheck
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

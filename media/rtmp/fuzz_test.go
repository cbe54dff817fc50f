package rtmp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/mofang-live/mofang/media/hub"
)

// rtmpFuzzSeeds are chunk sequences a hostile client may send after the
// handshake: invalid chunk sizes followed by chunk header floods, huge
// message lengths, many chunk streams, aborts, extended timestamps and a
// normal publish.
func rtmpFuzzSeeds(tb testing.TB) [][]byte {
	cat := func(b ...[]byte) []byte { return bytes.Join(b, nil) }
	flood := bytes.Repeat([]byte{0xc3}, 4096)
	connect := rtmpCommandMsg(tb, 3, 0, "connect", float64(1), amf0.Object{{Key: "app", Value: "live"}, {Key: "tcUrl", Value: "rtmp://h/live"}})
	publish := cat(connect,
		rtmpCommandMsg(tb, 3, 0, "createStream", float64(2), nil),
		rtmpCommandMsg(tb, 8, 1, "publish", float64(3), nil, "room", "live"))

	var seeds [][]byte
	for _, size := range []uint32{0, 1, 127, 128, 4096, 0xffffff, 0x7fffffff, 1 << 31, 0xffffffff} {
		seeds = append(seeds,
			cat(rtmpControlMsg(typeSetChunkSize, size), chunk0(3, typeCommandAMF0, 0, 1000), flood),
			cat(publish, rtmpControlMsg(typeSetChunkSize, size), chunk0(6, flvTagVideo, 1, 10<<20), flood))
	}
	// huge message lengths, before and after publish.
	seeds = append(seeds,
		cat(chunk0(3, typeCommandAMF0, 0, 0xffffff), make([]byte, 128)),
		cat(publish, chunk0(6, flvTagVideo, 1, 0xffffff), make([]byte, 128), []byte{0xc6}, make([]byte, 128)))
	// many chunk streams holding partial messages, in the 1, 2 and 3 byte forms.
	var many []byte
	for i := 0; i < 300; i++ {
		switch {
		case i < 62:
			many = append(many, chunk0(byte(2+i), flvTagVideo, 1, 60000)...)
		case i < 200:
			h := chunk0(0, flvTagVideo, 1, 60000)
			many = append(many, append([]byte{0, byte(i)}, h[1:]...)...)
		default:
			h := chunk0(1, flvTagVideo, 1, 60000)
			many = append(many, append([]byte{1, byte(i), byte(i >> 8)}, h[1:]...)...)
		}
		many = append(many, make([]byte, 128)...)
	}
	seeds = append(seeds, many, cat(publish, many))
	// abort of a partial message, then its chunk stream reused.
	abort := rtmpControlMsg(typeAbort, 6)
	seeds = append(seeds, cat(publish, chunk0(6, flvTagVideo, 1, 1000), make([]byte, 128), abort,
		rtmpMsg(6, flvTagVideo, 1, []byte{0x17, 0, 0, 0, 0})))
	// type 1, 2, 3 headers, extended timestamps, a tiny ack window.
	ext := chunk0(4, flvTagAudio, 1, 4)
	ext[1], ext[2], ext[3] = 0xff, 0xff, 0xff
	seeds = append(seeds, cat(publish, rtmpControlMsg(typeWindowAckSize, 1),
		ext, []byte{0x01, 0, 0, 0}, []byte{0xaf, 0, 0x12, 0x10},
		[]byte{0x44, 0, 0, 10, 0, 0, 2, flvTagAudio, 0xaf, 1},
		[]byte{0x84, 0xff, 0xff, 0xff, 0, 0, 0, 40, 0xaf, 1},
		[]byte{0xc4, 0, 0, 0, 50, 0xaf, 1},
		[]byte{0xc5}, []byte{0x85, 0, 0, 1}))
	// a ping request and user control messages of odd sizes.
	seeds = append(seeds, cat(rtmpMsg(2, typeUserControl, 0, []byte{0, 6, 0, 0, 0, 1}),
		rtmpMsg(2, typeUserControl, 0, []byte{0, 6}), rtmpMsg(2, typeSetChunkSize, 0, []byte{0})))
	return seeds
}

const flvTagAudio = 8

// nopConn is a connection whose deadlines do nothing (writes go elsewhere).
type nopConn struct{ net.Conn }

func (nopConn) SetWriteDeadline(time.Time) error { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }

// FuzzRTMPChunkReader feeds chunks to the chunk reader and the control
// message handling (chunk size, abort, window, pings) and checks that the
// limits hold: no message over the cap, bytes held in partial messages
// within the budget, chunk size within [128, 2^24-1].
func FuzzRTMPChunkReader(f *testing.F) {
	for _, s := range rtmpFuzzSeeds(f) {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, small bool) {
		lim := commandLimits
		if small {
			lim = limits{maxMessage: 4096, maxBuffered: 8192, prealloc: 1000, maxStreams: 8}
		}
		srv := &Server{cfg: Config{WriteTimeout: time.Second}}
		bcw := bytecounter.NewWriter(io.Discard)
		rc := &conn{srv: srv, nc: nopConn{}, mw: message.NewWriter(bcw, bcw, false)}
		in := bytes.NewReader(data)
		acks := 0
		rc.br = newChunkReader(in, func() uint64 { return uint64(len(data) - in.Len()) },
			func(uint32) error { acks++; return nil }, lim)
		for {
			msg, err := rc.br.Read()
			if r := rc.br; r.buffered < 0 || r.buffered > lim.maxBuffered || len(r.streams) > lim.maxStreams ||
				r.chunkSize < minChunkSize || r.chunkSize > maxChunkSize {
				t.Fatalf("limits broken: buffered %d, streams %d, chunk size %d", r.buffered, len(r.streams), r.chunkSize)
			}
			held := 0
			for _, cs := range rc.br.streams {
				held += cap(cs.body)
			}
			if held != rc.br.buffered {
				t.Fatalf("held %d bytes, counted %d", held, rc.br.buffered)
			}
			if err != nil {
				return
			}
			if len(msg.Body) > lim.maxMessage {
				t.Fatalf("message of %d bytes", len(msg.Body))
			}
			if _, _, err := rc.handleMessage(msg); err != nil {
				return
			}
			if acks > len(data)/4096+1 {
				t.Fatalf("%d acknowledgements for %d bytes", acks, len(data))
			}
		}
	})
}

// rtmpFuzzHandshake is a plain client handshake: C0, C1 and C2.
var rtmpFuzzHandshake = append([]byte{3}, make([]byte, 2*1536)...)

// FuzzRTMPSession runs a whole server session (handshake, commands,
// publish with the media path) on the fuzzed bytes that follow a valid
// handshake. The session must end, without a panic, once the client has
// sent everything and hung up.
func FuzzRTMPSession(f *testing.F) {
	for _, s := range rtmpFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		h, err := hub.New(hub.Config{PublisherGrace: -1, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		srvConn, cli := net.Pipe()
		rc := newConn(newServer(h, Config{Logger: log}), srvConn, func() {})
		done := make(chan struct{})
		go func() {
			defer close(done)
			rc.run(context.Background())
		}()
		go io.Copy(io.Discard, cli)  //nolint:errcheck
		cli.Write(rtmpFuzzHandshake) //nolint:errcheck
		cli.Write(data)              //nolint:errcheck
		cli.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("session still running 10 s after the client left")
		}
	})
}

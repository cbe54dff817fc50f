package rtmp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/handshake"

	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// rawRTMP is a hand-driven RTMP client: it sends what the test tells it,
// hostile or not, and notices when the server closes the connection.
type rawRTMP struct {
	t      *testing.T
	nc     net.Conn
	w      *bufio.Writer
	closed chan struct{}
	got    atomic.Uint64 // bytes received
	keep   bool          // keep received bytes in recv
	recv   mediatest.LockedBuffer
}

// dialRTMPRaw connects to s and does the plain handshake.
func dialRTMPRaw(t *testing.T, s *Server) *rawRTMP {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if _, _, err := handshake.DoClient(nc, false, false); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	nc.SetDeadline(time.Time{}) //nolint:errcheck
	return startRawRTMP(t, nc)
}

func startRawRTMP(t *testing.T, nc net.Conn) *rawRTMP {
	c := &rawRTMP{t: t, nc: nc, w: bufio.NewWriterSize(nc, 64<<10), closed: make(chan struct{})}
	go func() {
		defer close(c.closed)
		buf := make([]byte, 32<<10)
		for {
			n, err := nc.Read(buf)
			c.got.Add(uint64(n))
			if c.keep {
				c.recv.Write(buf[:n]) //nolint:errcheck
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

// isClosed waits up to d for the server to close the connection.
func (c *rawRTMP) isClosed(d time.Duration) bool {
	select {
	case <-c.closed:
		return true
	case <-time.After(d):
		return false
	}
}

// write queues raw bytes; write errors (the server closed) are ignored.
func (c *rawRTMP) write(b ...[]byte) {
	for _, p := range b {
		c.w.Write(p) //nolint:errcheck
	}
}

func (c *rawRTMP) flush() { c.w.Flush() } //nolint:errcheck

// chunk0 returns a type 0 chunk header of a message on csid (< 64).
func chunk0(csid byte, typ byte, msid uint32, length int) []byte {
	h := []byte{csid & 0x3f, 0, 0, 0, byte(length >> 16), byte(length >> 8), byte(length), typ, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(h[8:], msid)
	return h
}

// rtmpMsg returns a whole message as one type 0 chunk (body within the
// chunk size in force).
func rtmpMsg(csid, typ byte, msid uint32, body []byte) []byte {
	return append(chunk0(csid, typ, msid, len(body)), body...)
}

func rtmpControlMsg(typ byte, v uint32) []byte {
	return rtmpMsg(2, typ, 0, binary.BigEndian.AppendUint32(nil, v))
}

func rtmpCommandMsg(t testing.TB, csid byte, msid uint32, d ...any) []byte {
	t.Helper()
	body, err := amf0.Data(d).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return rtmpMsg(csid, typeCommandAMF0, msid, body)
}

// play sends what a player sends up to play (chunk size 4096 first).
func (c *rawRTMP) play(name string) {
	c.write(rtmpControlMsg(typeSetChunkSize, 4096),
		rtmpCommandMsg(c.t, 3, 0, "connect", float64(1), amf0.Object{{Key: "app", Value: "live"}, {Key: "tcUrl", Value: "rtmp://127.0.0.1/live"}}),
		rtmpCommandMsg(c.t, 3, 0, "createStream", float64(2), nil),
		rtmpCommandMsg(c.t, 8, 1, "play", float64(3), nil, name))
	c.flush()
}

// liveHeap returns the bytes of live heap objects.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func rtmpBytesIn(h *hub.Hub) uint64 {
	var n uint64
	for _, c := range h.Clients() {
		if c.Protocol == hub.ProtocolRTMP {
			n += c.BytesIn
		}
	}
	return n
}

// TestRTMPChunkSizeFlood sends an invalid chunk size, then a flood of
// 1-byte chunk headers continuing one message, before any command. The
// server must close the connection at the chunk size, and the flood must
// not be stored.
func TestRTMPChunkSizeFlood(t *testing.T) {
	const flood = 2 << 20
	for _, size := range []uint32{0, 1, 127, 1 << 31, 0xffffffff} {
		t.Run(strconv.FormatUint(uint64(size), 10), func(t *testing.T) {
			h, e := newTestEnv(t, hub.Config{}, Config{ReadTimeout: 30 * time.Second})
			c := dialRTMPRaw(t, e)
			before := liveHeap()
			c.write(rtmpControlMsg(typeSetChunkSize, size), chunk0(3, typeCommandAMF0, 0, 10<<20))
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				c.write(bytes.Repeat([]byte{0xc3}, flood))
				c.flush()
			}()
			closed := c.isClosed(5 * time.Second)
			if !closed {
				// let the server take in the flood before measuring.
				mediatest.WaitFor(t, 20*time.Second, "server reading the flood", func() bool { return rtmpBytesIn(h) >= flood })
			}
			<-wrote
			grown := int64(liveHeap()) - int64(before)
			t.Logf("SetChunkSize %d + %d bytes of chunk headers: connection closed %v, live heap grew %.1f MiB",
				size, flood, closed, float64(grown)/(1<<20))
			if !closed {
				t.Errorf("the server kept the connection after SetChunkSize %d", size)
			}
			if grown > 4<<20 {
				t.Errorf("live heap grew by %d bytes", grown)
			}
		})
	}
}

// TestRTMPPartialMessageFlood starts messages on many chunk streams and
// never finishes them, before any command: the server must refuse to hold
// them (a message size cap and a cap on the bytes held per connection).
func TestRTMPPartialMessageFlood(t *testing.T) {
	for _, c := range []struct {
		name    string
		length  int // declared message size
		partial int // bytes sent of each message
	}{
		{"large messages", 8 << 20, 256 << 10},
		{"many small messages", 60000, 59904},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, e := newTestEnv(t, hub.Config{}, Config{ReadTimeout: 30 * time.Second})
			rc := dialRTMPRaw(t, e)
			before := liveHeap()
			const streams = 60
			var sent atomic.Int64
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				for csid := byte(3); csid < 3+streams; csid++ {
					rc.write(chunk0(csid, flvTagVideo, 1, c.length), make([]byte, 128))
				}
				for off := 128; off < c.partial; off += 128 {
					for csid := byte(3); csid < 3+streams; csid++ {
						rc.write([]byte{0xc0 | csid}, make([]byte, 128))
					}
					sent.Store(int64(off * streams))
				}
				rc.flush()
			}()
			closed := rc.isClosed(5 * time.Second)
			if !closed {
				mediatest.WaitFor(t, 20*time.Second, "server reading the messages", func() bool {
					return rtmpBytesIn(h) >= uint64(streams*(c.partial-256))
				})
			}
			<-wrote
			grown := int64(liveHeap()) - int64(before)
			t.Logf("%d chunk streams × %d of %d bytes: connection closed %v, live heap grew %.1f MiB",
				streams, c.partial, c.length, closed, float64(grown)/(1<<20))
			if !closed {
				t.Errorf("the server holds %d partial messages", streams)
			}
			if grown > 2<<20 {
				t.Errorf("live heap grew by %d bytes", grown)
			}
		})
	}
}

const flvTagVideo = 9

// TestRTMPAdmissionDeadline keeps a connection busy with acknowledgements
// and never asks to publish or play: the server must close it once the
// handshake and command phase has run out of time, however active it is.
func TestRTMPAdmissionDeadline(t *testing.T) {
	_, e := newTestEnv(t, hub.Config{}, Config{ReadTimeout: 500 * time.Millisecond})
	c := dialRTMPRaw(t, e)
	start := time.Now()
	for i := 0; i < 100; i++ {
		c.write(rtmpControlMsg(typeAck, uint32(i)))
		c.flush()
		if c.isClosed(200 * time.Millisecond) {
			t.Logf("closed after %v", time.Since(start))
			return
		}
	}
	t.Fatalf("connection still open after %v of acknowledgements", time.Since(start))
}

// TestRTMPPlayerIdle checks that a player that sends nothing (no acks, no
// ping responses) is disconnected, while ffmpeg playing for longer than the
// idle timeout is not.
func TestRTMPPlayerIdle(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h, e := newTestEnv(t, hub.Config{}, Config{ReadTimeout: 500 * time.Millisecond})
	publishClip(t, rtmpURL(e, "/live/idle"))
	mediatest.WaitLive(t, h, "idle")

	silent := dialRTMPRaw(t, e)
	silent.play("idle")
	mediatest.WaitFor(t, 10*time.Second, "silent player receiving", func() bool { return silent.got.Load() > 100000 })
	start := time.Now()
	if !silent.isClosed(20 * time.Second) {
		t.Errorf("a player that sends nothing is still connected after %v", time.Since(start))
	} else {
		t.Logf("silent player dropped %v after it started receiving", time.Since(start))
	}

	// ffmpeg answers pings: it plays 6 s, twice the idle timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-i", rtmpURL(e, "/live/idle"), "-t", "6", "-c", "copy", "-f", "null", "-progress", "pipe:1", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg player: %v: %s", err, stderr.String())
	}
	played := lastProgressTime(string(out))
	t.Logf("ffmpeg played %v", played)
	if played < 5500*time.Millisecond {
		t.Errorf("ffmpeg played %v of 6 s: %s", played, stderr.String())
	}
}

// lastProgressTime returns the last out_time_us of ffmpeg's -progress output.
func lastProgressTime(out string) time.Duration {
	var d time.Duration
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "out_time_us="); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				d = time.Duration(n) * time.Microsecond
			}
		}
	}
	return d
}

// TestRTMPPendingPerIP checks the cap on connections of one address that
// have not been admitted to publish or play.
func TestRTMPPendingPerIP(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h, e := newTestEnv(t, hub.Config{}, Config{MaxPendingPerIP: 3, ReadTimeout: 30 * time.Second})
	// an admitted publisher and player hold no slot.
	publishClip(t, rtmpURL(e, "/live/capped"))
	mediatest.WaitLive(t, h, "capped")
	player := dialRTMPRaw(t, e)
	player.play("capped")
	mediatest.WaitFor(t, 10*time.Second, "player receiving", func() bool { return player.got.Load() > 10000 })

	var pending []*rawRTMP
	for i := 0; i < 3; i++ {
		pending = append(pending, dialRTMPRaw(t, e))
	}
	refusedBefore := h.Counters().ClientsRefused
	nc, err := net.DialTimeout("tcp", e.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	if _, _, err := handshake.DoClient(nc, false, false); err == nil {
		t.Fatalf("a 4th pending connection was served")
	} else if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("a 4th pending connection was not closed: %v", err)
	}
	// the server counts the refusal after closing, so the client may see
	// the close first.
	mediatest.WaitFor(t, 5*time.Second, "the refusal counted", func() bool {
		return h.Counters().ClientsRefused == refusedBefore+1
	})

	// a slot is given back when its connection closes.
	pending[0].nc.Close()
	mediatest.WaitFor(t, 5*time.Second, "slot released", func() bool {
		return e.pending.Count(netip.MustParseAddr("127.0.0.1")) == 2
	})
	dialRTMPRaw(t, e)
	select {
	case <-player.closed:
		t.Errorf("the player was disconnected")
	default:
	}
}

// BenchmarkRTMPChunkReader reads 100 KB video messages in 4096-byte chunks,
// as a publisher sends them.
func BenchmarkRTMPChunkReader(b *testing.B) {
	const size, chunk = 100_000, 4096
	var msg []byte
	msg = append(msg, chunk0(6, flvTagVideo, 1, size)...)
	for off := 0; off < size; off += chunk {
		if off > 0 {
			msg = append(msg, 0xc6)
		}
		msg = append(msg, make([]byte, min(chunk, size-off))...)
	}
	data := append(rtmpControlMsg(typeSetChunkSize, chunk), bytes.Repeat(msg, 64)...)
	b.SetBytes(int64(64 * size))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := newChunkReader(bytes.NewReader(data), nil, nil, mediaLimits)
		for {
			m, err := r.Read()
			if err != nil {
				break
			}
			if m.Type == typeSetChunkSize {
				r.setChunkSize(binary.BigEndian.Uint32(m.Body)) //nolint:errcheck
			}
		}
	}
}

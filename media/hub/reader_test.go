package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

// synthetic media: 30 fps video with a key frame every 30 frames, AAC.
var (
	synthVideoSeq = []byte{0x17, 0, 0, 0, 0, 1, 0x4d, 0x40, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x4d, 0x40, 0x1e, 1, 0, 1, 0x68}
	synthAudioSeq = []byte{0xaf, 0, 0x12, 0x10}
)

func synthFrame(key bool, size int) []byte {
	b := make([]byte, 5+size)
	b[0], b[1] = 0x27, 1
	if key {
		b[0] = 0x17
	}
	return b
}

func synthAudio() []byte {
	b := make([]byte, 2+200)
	b[0], b[1] = 0xaf, 1
	return b
}

func newSilentEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func newSynthStream(t testing.TB, e *Engine, name string) (*stream, *client) {
	t.Helper()
	pub := e.newClient(ProtocolRTMP, netip.MustParseAddrPort("127.0.0.1:1"), nil)
	s, err := e.hub.publish(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	s.writePacket(flv.TagVideo, 0, synthVideoSeq)
	s.writePacket(flv.TagAudio, 0, synthAudioSeq)
	return s, pub
}

// feed writes n frames (with audio between them) starting at frame i.
func feed(s *stream, from, n int) {
	for i := from; i < from+n; i++ {
		ts := uint32(i * 33)
		s.writePacket(flv.TagVideo, ts, synthFrame(i%30 == 0, 3000))
		s.writePacket(flv.TagAudio, ts+10, synthAudio())
	}
}

// blockSink blocks each write until released.
type blockSink struct {
	release chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	writes  int
}

func (bs *blockSink) writeBuffers(bufs *net.Buffers) (int64, error) {
	if bs.entered != nil {
		bs.entered <- struct{}{}
	}
	if bs.release != nil {
		<-bs.release
	}
	var n int64
	for _, b := range *bufs {
		n += int64(len(b))
	}
	bs.mu.Lock()
	bs.writes++
	bs.mu.Unlock()
	*bufs = nil
	return n, nil
}

func TestReaderStartsAtKeyFrame(t *testing.T) {
	e := newSilentEngine(t, Config{})
	s, _ := newSynthStream(t, e, "gop")
	feed(s, 0, 45) // key at frame 30
	c := e.newClient(ProtocolHTTPFLV, netip.MustParseAddrPort("127.0.0.1:2"), nil)
	r := newReader(s, c, formatFLV, &blockSink{}, false)
	r.start()
	p := s.packetAt(r.cursor)
	if p == nil || !p.key || p.ts != 30*33 {
		t.Fatalf("reader starts at %+v", p)
	}
	// headers first, stamped with the key frame's time
	if r.n != 2*3 {
		t.Fatalf("queued %d buffers before the GOP", r.n)
	}
	if got := r.arr[1][4:7]; got[0] != 0 || got[1] != byte(990>>8) || got[2] != byte(990&0xff) {
		t.Errorf("header timestamp %v", got)
	}
}

// TestReaderSkipsAndDrops blocks a reader: the publisher never waits, the
// reader skips to the newest key frame and is dropped when it stays behind.
func TestReaderSkipsAndDrops(t *testing.T) {
	e := newSilentEngine(t, Config{RingSize: 256, ReaderQueue: 40, MaxReaderSkips: 2})
	s, _ := newSynthStream(t, e, "lag")
	feed(s, 0, 1)

	c := e.newClient(ProtocolRTMP, netip.MustParseAddrPort("127.0.0.1:3"), nil)
	bs := &blockSink{release: make(chan struct{}), entered: make(chan struct{})}
	r := newReader(s, c, formatRTMP, bs, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.run(ctx) }()

	frame := 1
	for round := 1; ; round++ {
		select {
		case <-bs.entered: // the reader is stuck in a write
		case err := <-done:
			if !errors.Is(err, errReaderTooSlow) {
				t.Fatalf("reader ended with %v", err)
			}
			if round != 4 || s.fellBehind.Load() != 3 || s.dropped.Load() != 1 || e.Counters().ReadersDropped != 1 {
				t.Errorf("round %d: fell behind %d, dropped %d", round, s.fellBehind.Load(), s.dropped.Load())
			}
			return
		case <-ctx.Done():
			t.Fatal("timeout")
		}
		start := time.Now()
		feed(s, frame, 100) // 200 packets: far more than the reader queue
		frame += 100
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("publisher took %v for 200 packets with a stuck reader", d)
		}
		bs.release <- struct{}{}
		if round < 4 {
			waitFor(t, 2*time.Second, "skip", func() bool { return s.fellBehind.Load() >= uint64(round) })
		}
	}
}

func TestRTMPChunking(t *testing.T) {
	for _, c := range []struct {
		size int
		ts   uint32
		bufs int
	}{
		{100, 1000, 2},
		{rtmpOutChunkSize, 1000, 2},
		{rtmpOutChunkSize + 1, 1000, 4},
		{3*rtmpOutChunkSize + 5, 0x1000000, 8},
	} {
		p := &packet{typ: flv.TagVideo, ts: c.ts, body: make([]byte, c.size)}
		bufs := p.rtmpBufs()
		if len(bufs) != c.bufs {
			t.Errorf("size %d: %d buffers, want %d", c.size, len(bufs), c.bufs)
		}
		total := 0
		for i, b := range bufs {
			if i > 0 && i%2 == 0 {
				want := 1
				if c.ts >= 0xFFFFFF {
					want = 5
				}
				if len(b) != want || b[0] != 0xC0|rtmpCSIDVideo {
					t.Errorf("continuation header %x", b)
				}
			}
			total += len(b)
		}
		hdr := 12
		if c.ts >= 0xFFFFFF {
			hdr = 16
		}
		if total < c.size+hdr {
			t.Errorf("size %d: total %d", c.size, total)
		}
		if h := bufs[0]; h[0] != rtmpCSIDVideo || h[7] != flv.TagVideo || h[8] != 1 {
			t.Errorf("header %x", h)
		}
	}
}

// discardConn is a net.Conn whose writes vanish.
type countSink struct{ n atomic.Int64 }

func (cs *countSink) writeBuffers(bufs *net.Buffers) (int64, error) {
	var n int64
	for _, b := range *bufs {
		n += int64(len(b))
	}
	*bufs = nil
	cs.n.Add(n)
	return n, nil
}

// BenchmarkFanout publishes packets to 1 or 200 readers of one format that
// write to a counting sink; one op is one packet delivered to every reader.
// allocs/op stay at the publisher's own (packet + wake-up channel),
// independent of the number of readers: readers allocate nothing.
func BenchmarkFanout(b *testing.B) {
	for _, bc := range []struct {
		format  outFormat
		readers int
	}{{formatRTMP, 1}, {formatRTMP, 200}, {formatFLV, 1}, {formatFLV, 200}} {
		format, readers := bc.format, bc.readers
		name := map[outFormat]string{formatRTMP: "rtmp", formatFLV: "flv"}[format] + "/viewers=" + fmt.Sprint(readers)
		b.Run(name, func(b *testing.B) {
			e := newSilentEngine(b, Config{RingSize: 4096, ReaderQueue: 4000, WriteCoalesce: -1})
			s, _ := newSynthStream(b, e, "bench")
			feed(s, 0, 1)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			sinks := make([]*countSink, readers)
			rs := make([]*reader, readers)
			for i := range readers {
				sinks[i] = &countSink{}
				c := e.newClient(ProtocolRTMP, netip.MustParseAddrPort("127.0.0.1:5"), nil)
				rs[i] = newReader(s, c, format, sinks[i], format == formatFLV)
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := rs[i].run(ctx); err != nil && !errors.Is(err, context.Canceled) {
						b.Errorf("reader %d: %v", i, err)
					}
				}()
			}
			frames := make([][]byte, 30)
			for i := range frames {
				frames[i] = synthFrame(i == 0, 4000)
			}
			// readers start at the newest key frame: let them all start
			// before publishing, so that they get every packet.
			for _, sk := range sinks {
				for sk.n.Load() == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
			b.ReportAllocs()
			b.SetBytes(4005)
			b.ResetTimer()
			for i := range b.N {
				s.writePacket(flv.TagVideo, uint32(i*33), frames[i%30])
				if i%256 == 0 { // let readers keep up within the ring
					want := int64(i-512) * 4005
					deadline := time.Now().Add(time.Second)
					for _, sk := range sinks {
						for sk.n.Load() < want && time.Now().Before(deadline) {
							time.Sleep(10 * time.Microsecond)
						}
					}
				}
			}
			b.StopTimer()
			cancel()
			wg.Wait()
			var total int64
			for _, sk := range sinks {
				total += sk.n.Load()
			}
			b.ReportMetric(float64(total)/float64(readers)/float64(b.N), "B/viewer/op")
			if n := s.fellBehind.Load(); n > 0 {
				b.Logf("readers fell behind %d times", n)
			}
		})
	}
}

// FuzzStreamWritePacket feeds arbitrary message bodies to a stream: the
// classification (tag parsing, key frame detection, SPS/AAC config and
// metadata parsing) must not panic, and readers can still frame the result.
func FuzzStreamWritePacket(f *testing.F) {
	f.Add(uint8(flv.TagVideo), synthVideoSeq)
	f.Add(uint8(flv.TagVideo), synthFrame(true, 8))
	f.Add(uint8(flv.TagVideo), []byte{0x81, 'h', 'v', 'c', '1', 0, 0, 0, 0, 0, 0, 2, 0x26, 1})
	f.Add(uint8(flv.TagVideo), []byte{0x83, 'a', 'v', '0', '1', 0x0a, 0})
	f.Add(uint8(flv.TagAudio), synthAudioSeq)
	f.Add(uint8(flv.TagScript), []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 3, 0, 5, 'w', 'i', 'd', 't', 'h', 0, 0x40, 0x84, 0, 0, 0, 0, 0, 0, 0, 0, 9})
	e, err := New(Config{DisableRTMP: true, DisableRTSP: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	pub := e.newClient(ProtocolRTMP, netip.MustParseAddrPort("127.0.0.1:1"), nil)
	s, err := e.hub.publish("fuzz", pub)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		b := append([]byte(nil), body...)
		s.writePacket([3]uint8{flv.TagAudio, flv.TagVideo, flv.TagScript}[typ%3], 0, b)
		if p := s.packetAt(s.writeSeq.Load() - 1); p != nil {
			p.rtmpBufs()
			p.flvBufs()
		}
		s.stats()
	})
}

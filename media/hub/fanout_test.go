package hub_test

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
	"github.com/mofang-live/mofang/media/httpflv"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/rtmp"
)

// The fan-out benchmark and the packet fuzzer use the real framings of
// media/rtmp and media/httpflv, which the hub's own tests cannot import,
// and the synthetic media of those tests (export_test.go).

// countSink counts what it is given, and writes nothing.
type countSink struct{ n atomic.Int64 }

func (cs *countSink) WriteBuffers(bufs *net.Buffers) (int64, error) {
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
		format  string
		framer  hub.Framer
		readers int
	}{{"rtmp", rtmp.Framer(), 1}, {"rtmp", rtmp.Framer(), 200}, {"flv", httpflv.Framer(), 1}, {"flv", httpflv.Framer(), 200}} {
		framer, readers := bc.framer, bc.readers
		name := bc.format + "/viewers=" + fmt.Sprint(readers)
		b.Run(name, func(b *testing.B) {
			h := hub.NewSilentHub(b, hub.Config{RingSize: 4096, ReaderQueue: 4000, WriteCoalesce: -1})
			s, _ := hub.NewSynthStream(b, h, "bench")
			hub.Feed(s, 0, 1)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			sinks := make([]*countSink, readers)
			rs := make([]*hub.Reader, readers)
			for i := range readers {
				sinks[i] = &countSink{}
				c := h.NewClient(hub.ClientInfo{Protocol: hub.ProtocolRTMP, Remote: netip.MustParseAddrPort("127.0.0.1:5")})
				rs[i] = hub.NewReader(s, c, framer, sinks[i], bc.format == "flv")
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := rs[i].Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
						b.Errorf("reader %d: %v", i, err)
					}
				}()
			}
			frames := make([][]byte, 30)
			for i := range frames {
				frames[i] = hub.SynthFrame(i == 0, 4000)
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
				s.WritePacket(flv.TagVideo, uint32(i*33), frames[i%30])
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
			if n := s.Stats().ReadersFellBehind; n > 0 {
				b.Logf("readers fell behind %d times", n)
			}
		})
	}
}

// FuzzStreamWritePacket feeds arbitrary message bodies to a stream: the
// classification (tag parsing, key frame detection, SPS/AAC config and
// metadata parsing) must not panic, and readers can still frame the result.
func FuzzStreamWritePacket(f *testing.F) {
	f.Add(uint8(flv.TagVideo), hub.SynthVideoSeq)
	f.Add(uint8(flv.TagVideo), hub.SynthFrame(true, 8))
	f.Add(uint8(flv.TagVideo), []byte{0x81, 'h', 'v', 'c', '1', 0, 0, 0, 0, 0, 0, 2, 0x26, 1})
	f.Add(uint8(flv.TagVideo), []byte{0x83, 'a', 'v', '0', '1', 0x0a, 0})
	f.Add(uint8(flv.TagAudio), hub.SynthAudioSeq)
	f.Add(uint8(flv.TagScript), []byte{2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 3, 0, 5, 'w', 'i', 'd', 't', 'h', 0, 0x40, 0x84, 0, 0, 0, 0, 0, 0, 0, 0, 9})
	h, err := hub.New(hub.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	defer h.Close()
	pub := h.NewClient(hub.ClientInfo{Protocol: hub.ProtocolRTMP, Remote: netip.MustParseAddrPort("127.0.0.1:1")})
	s, err := h.Publish("fuzz", pub)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ uint8, body []byte) {
		b := append([]byte(nil), body...)
		s.WritePacket([3]uint8{flv.TagAudio, flv.TagVideo, flv.TagScript}[typ%3], 0, b)
		if p := s.Last(); p != nil {
			p.Framed(rtmp.Framer())
			p.Framed(httpflv.Framer())
		}
		s.Stats()
	})
}

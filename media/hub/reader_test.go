package hub

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
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

func newSilentHub(t testing.TB, cfg Config) *Hub {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// newClient registers a client of proto at remote, that cannot be kicked.
func newClient(h *Hub, proto Protocol, remote string) *Client {
	return h.NewClient(ClientInfo{Protocol: proto, Remote: netip.MustParseAddrPort(remote)})
}

func newSynthStream(t testing.TB, h *Hub, name string) (*Stream, *Client) {
	t.Helper()
	pub := newClient(h, ProtocolRTMP, "127.0.0.1:1")
	s, err := h.Publish(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	s.WritePacket(flv.TagVideo, 0, synthVideoSeq)
	s.WritePacket(flv.TagAudio, 0, synthAudioSeq)
	return s, pub
}

// feed writes n frames (with audio between them) starting at frame i.
func feed(s *Stream, from, n int) {
	for i := from; i < from+n; i++ {
		ts := uint32(i * 33)
		s.WritePacket(flv.TagVideo, ts, synthFrame(i%30 == 0, 3000))
		s.WritePacket(flv.TagAudio, ts+10, synthAudio())
	}
}

// tagFramer frames packets as FLV tags, as media/httpflv does (which the
// hub's own tests cannot import).
func tagFramer() Framer {
	return Framer{Framing: FramingFLV, Build: buildTag}
}

func buildTag(p *Packet, s *Scratch) [][]byte {
	flv.PutTagHeader(s.Header[:flv.TagHeaderSize], p.typ, len(p.body), p.ts)
	flv.PutPrevTagSize(s.Header[flv.TagHeaderSize:], len(p.body))
	s.Bufs[0] = s.Header[:flv.TagHeaderSize]
	s.Bufs[1] = p.body
	s.Bufs[2] = s.Header[flv.TagHeaderSize : flv.TagHeaderSize+flv.PrevTagSizeSize]
	return s.Bufs[:]
}

// waitFor polls cond every 50 ms until it holds, failing t after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// blockSink blocks each write until released.
type blockSink struct {
	release chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	writes  int
}

func (bs *blockSink) WriteBuffers(bufs *net.Buffers) (int64, error) {
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
	h := newSilentHub(t, Config{})
	s, _ := newSynthStream(t, h, "gop")
	feed(s, 0, 45) // key at frame 30
	c := newClient(h, ProtocolHTTPFLV, "127.0.0.1:2")
	r := NewReader(s, c, tagFramer(), &blockSink{}, false)
	r.start()
	p := s.packetAt(r.cursor)
	if p == nil || !p.key || p.ts != 30*33 {
		t.Fatalf("reader starts at %+v", p)
	}
	// headers first, stamped with the key frame's time
	if r.n != 2*3 {
		t.Fatalf("queued %d buffers before the GOP", r.n)
	}
	if got := r.arr.bufs[1][4:7]; got[0] != 0 || got[1] != byte(990>>8) || got[2] != byte(990&0xff) {
		t.Errorf("header timestamp %v", got)
	}
}

// TestReaderSkipsAndDrops blocks a reader: the publisher never waits, the
// reader skips to the newest key frame and is dropped when it stays behind.
func TestReaderSkipsAndDrops(t *testing.T) {
	h := newSilentHub(t, Config{RingSize: 256, ReaderQueue: 40, MaxReaderSkips: 2})
	s, _ := newSynthStream(t, h, "lag")
	feed(s, 0, 1)

	c := newClient(h, ProtocolRTMP, "127.0.0.1:3")
	bs := &blockSink{release: make(chan struct{}), entered: make(chan struct{})}
	r := NewReader(s, c, tagFramer(), bs, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	frame := 1
	for round := 1; ; round++ {
		select {
		case <-bs.entered: // the reader is stuck in a write
		case err := <-done:
			if !errors.Is(err, errReaderTooSlow) {
				t.Fatalf("reader ended with %v", err)
			}
			if round != 4 || s.fellBehind.Load() != 3 || s.dropped.Load() != 1 || h.Counters().ReadersDropped != 1 {
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

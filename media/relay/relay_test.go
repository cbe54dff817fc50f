package relay

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/httpflv"
	"github.com/mofang-live/mofang/media/hub"
)

// Synthetic H.264 + AAC: sequence headers, frames (a key frame every
// 10), audio.
var (
	videoSeq = []byte{0x17, 0, 0, 0, 0, 1, 0x4d, 0x40, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x4d, 0x40, 0x1e, 1, 0, 1, 0x68}
	audioSeq = []byte{0xaf, 0, 0x12, 0x10}
)

func frame(key bool) []byte {
	b := make([]byte, 5+500)
	b[0], b[1] = 0x27, 1
	if key {
		b[0] = 0x17
	}
	return b
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newHub(t testing.TB, grace time.Duration) *hub.Hub {
	t.Helper()
	h, err := hub.New(hub.Config{Logger: quiet(), PublisherGrace: grace, WriteCoalesce: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// origin is a node publishing stream "s" with synthetic media, served
// over HTTP-FLV.
type origin struct {
	h   *hub.Hub
	srv *httptest.Server
}

func newOrigin(t testing.TB) *origin {
	t.Helper()
	h := newHub(t, time.Hour)
	fh := httpflv.New(h, httpflv.Config{Logger: quiet()})
	srv := httptest.NewServer(fh)
	t.Cleanup(func() { srv.Close(); fh.Close() })
	pub := h.NewClient(hub.ClientInfo{Protocol: hub.ProtocolRTMP, Remote: netip.MustParseAddrPort("127.0.0.1:1")})
	s, err := h.Publish("s", pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.WritePacket(flv.TagVideo, 0, videoSeq)
		s.WritePacket(flv.TagAudio, 0, audioSeq)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; i++ {
			s.WritePacket(flv.TagVideo, uint32(i*20), frame(i%10 == 0))
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	return &origin{h: h, srv: srv}
}

// relays returns the relay readers of stream s on h.
func relays(h *hub.Hub) []hub.ClientStats {
	var out []hub.ClientStats
	for _, c := range h.Clients() {
		if c.Relay && c.Role == hub.RolePlay {
			out = append(out, c)
		}
	}
	return out
}

// directory is a Lookup the test changes.
type directory struct {
	mu  sync.Mutex
	src Source
	ok  bool
}

func (d *directory) set(src Source, ok bool) {
	d.mu.Lock()
	d.src, d.ok = src, ok
	d.mu.Unlock()
}

func (d *directory) lookup(string) (Source, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.src, d.ok
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counter reads a stream with a cursor, counting frames and noting
// timestamps going backwards.
type counter struct {
	frames    atomic.Int64
	backwards atomic.Bool
}

func count(ctx context.Context, s *hub.Stream) *counter {
	c := &counter{}
	go func() {
		cur := s.NewCursor(hub.FromKey)
		last := int64(-1)
		for {
			p, _, err := cur.Next(ctx)
			if err != nil {
				return
			}
			if p == nil || p.Type() != flv.TagVideo || p.Header() {
				continue
			}
			if int64(p.Timestamp()) < last {
				c.backwards.Store(true)
			}
			last = int64(p.Timestamp())
			c.frames.Add(1)
		}
	}()
	return c
}

// TestRelayFollowsOwner: one relay per stream pulls from the owner the
// directory shows, moves with it keeping the local stream and its
// timeline, lets the stream wait in its grace period while the owner is
// gone and resumes when it is back, and ends once the linger after the
// last viewer is over.
func TestRelayFollowsOwner(t *testing.T) {
	a1, a2 := newOrigin(t), newOrigin(t)
	b := newHub(t, 5*time.Second)
	dir := &directory{}
	dir.set(Source{Node: "A1", URL: a1.srv.URL, Fence: 1}, true)
	var queries atomic.Value
	m := New(Config{Hub: b, Self: "B", Lookup: dir.lookup, Logger: quiet(),
		Query: func(stream string) url.Values {
			queries.Store(stream)
			return url.Values{"node": {"secret"}}
		},
		Linger: 300 * time.Millisecond, Poll: 20 * time.Millisecond})
	defer m.Close()

	if !m.Start("s") || !m.Start("s") || len(m.Running()) != 1 {
		t.Fatalf("Start: running %v", m.Running())
	}
	var s *hub.Stream
	waitFor(t, 2*time.Second, "the relayed stream with a key frame", func() bool {
		s = b.Stream("s")
		return s != nil && s.LastKey() != nil
	})
	if st := s.Stats(); !st.Relay || st.Origin != "A1" || st.Owned || !st.Publishing {
		t.Errorf("relayed stream: %+v", st)
	}
	if q, _ := queries.Load().(string); q != "s" {
		t.Errorf("Query asked for %q", q)
	}
	if rs := relays(a1.h); len(rs) != 1 || rs[0].Node != "B" {
		t.Fatalf("A1's relay readers: %+v", rs)
	}
	if st := a1.h.Stream("s").Stats(); st.ReaderCount != 0 || st.Relays != 1 {
		t.Errorf("A1 counts the relay as a viewer: %d viewers, %d relays", st.ReaderCount, st.Relays)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	viewer := b.NewClient(hub.ClientInfo{Protocol: hub.ProtocolRTMP})
	s.AddReader(viewer)
	frames := count(ctx, s)
	waitFor(t, 2*time.Second, "frames from A1", func() bool { return frames.frames.Load() > 10 })

	// the publisher moves to A2
	dir.set(Source{Node: "A2", URL: a2.srv.URL, Fence: 2}, true)
	waitFor(t, 2*time.Second, "the relay from A2", func() bool {
		st := s.Stats()
		return st.Origin == "A2" && len(relays(a1.h)) == 0 && len(relays(a2.h)) == 1
	})
	n := frames.frames.Load()
	waitFor(t, 2*time.Second, "frames from A2", func() bool { return frames.frames.Load() > n+10 })
	if b.Stream("s") != s {
		t.Fatal("the move made a new local stream")
	}

	// the owner leaves the directory: the stream waits in grace
	dir.set(Source{}, false)
	waitFor(t, 2*time.Second, "the stream in grace", func() bool {
		return !s.Stats().Publishing && len(relays(a2.h)) == 0
	})
	if b.Stream("s") != s || s.ReaderCount() != 1 {
		t.Fatal("the viewer lost its stream")
	}
	dir.set(Source{Node: "A2", URL: a2.srv.URL, Fence: 3}, true)
	n = frames.frames.Load()
	waitFor(t, 2*time.Second, "frames again", func() bool { return s.Stats().Publishing && frames.frames.Load() > n+10 })
	if frames.backwards.Load() {
		t.Error("timestamps went backwards across the moves")
	}

	// the last viewer leaves: the relay ends after the linger
	s.RemoveReader(viewer)
	left := time.Now()
	waitFor(t, 2*time.Second, "the relay ended", func() bool {
		return len(m.Running()) == 0 && b.Stream("s") == nil && len(relays(a2.h)) == 0
	})
	if d := time.Since(left); d < 300*time.Millisecond {
		t.Errorf("the relay ended %v after the last viewer, before its linger", d)
	}
}

// TestRelayStepsAside: a publisher of this node takes the stream from
// the relay; the relay ends and leaves the stream to it.
func TestRelayStepsAside(t *testing.T) {
	a := newOrigin(t)
	b := newHub(t, 5*time.Second)
	dir := &directory{}
	dir.set(Source{Node: "A", URL: a.srv.URL, Fence: 1}, true)
	m := New(Config{Hub: b, Self: "B", Lookup: dir.lookup, Logger: quiet(), Poll: 20 * time.Millisecond})
	defer m.Close()
	m.Start("s")
	waitFor(t, 2*time.Second, "the relayed stream", func() bool { s := b.Stream("s"); return s != nil && s.LastKey() != nil })
	s := b.Stream("s")
	s.AddReader(b.NewClient(hub.ClientInfo{Protocol: hub.ProtocolRTMP}))
	local := b.NewClient(hub.ClientInfo{Protocol: hub.ProtocolRTMP})
	if s2, err := b.Publish("s", local); err != nil || s2 != s {
		t.Fatalf("local publisher: %v", err)
	}
	waitFor(t, 2*time.Second, "the relay gone", func() bool { return len(m.Running()) == 0 && len(relays(a.h)) == 0 })
	if !s.IsPublisher(local) || b.Stream("s") != s {
		t.Error("the relay took the stream back from the local publisher")
	}
}

// TestRelayHostileOwner: an owner answering an error, garbage, an
// oversized tag or nothing at all makes the relay retry with a bounded
// backoff, never crash nor hang; Close ends it at once.
func TestRelayHostileOwner(t *testing.T) {
	header := flv.FileHeader(true, true)
	hdr := append(append([]byte{}, header...), 0, 0, 0, 0)
	for name, answer := range map[string]func(w http.ResponseWriter, r *http.Request){
		"404":     func(w http.ResponseWriter, r *http.Request) { http.Error(w, "stream not found", http.StatusNotFound) },
		"garbage": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>hello</html>")) }, //nolint:errcheck
		"huge tag": func(w http.ResponseWriter, r *http.Request) {
			w.Write(append(hdr, flv.TagVideo, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0)) //nolint:errcheck
		},
		"silent": func(w http.ResponseWriter, r *http.Request) {
			w.Write(hdr) //nolint:errcheck
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		},
	} {
		t.Run(name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if r.URL.Query().Get(hub.RelayParam) != "B" || r.URL.Path != "/live/s.flv" {
					t.Errorf("relay request %s", r.URL)
				}
				answer(w, r)
			}))
			defer srv.Close()
			b := newHub(t, 5*time.Second)
			m := New(Config{Hub: b, Self: "B", Logger: quiet(), Poll: 20 * time.Millisecond, IdleTimeout: 200 * time.Millisecond,
				Lookup: func(string) (Source, bool) { return Source{Node: "A", URL: srv.URL}, true }})
			m.Start("s")
			s := b.NewClient(hub.ClientInfo{Protocol: hub.ProtocolRTMP})
			viewerStream := func() {
				if st := b.Stream("s"); st != nil {
					st.AddReader(s)
				}
			}
			waitFor(t, 3*time.Second, "retries", func() bool { viewerStream(); return requests.Load() >= 3 })
			if n := requests.Load(); n > 20 {
				t.Errorf("%d requests: the backoff does not hold", n)
			}
			if st := b.Stream("s"); st != nil && st.LastKey() != nil {
				t.Error("a key frame from nowhere")
			}
			done := make(chan struct{})
			go func() { m.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				t.Fatal("Close hangs")
			}
		})
	}
}

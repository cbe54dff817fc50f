package webrtc

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestAbandonedOffers: offers whose peer never does ICE are answered, then
// freed after ConnectTimeout: sessions, goroutines, file descriptors and
// memory go back to where they were.
func TestAbandonedOffers(t *testing.T) {
	n, wave := 1000, 1000
	if raceEnabled {
		// the race detector allows 8128 goroutines at once and pion runs
		// about ten per peer connection: the same offers in waves
		wave = 250
	}
	srv := newTestServer(t, Config{ConnectTimeout: time.Second, TranscodeIdle: time.Second})
	out := srv.NewOutput(OutputConfig{Name: "idle"})
	defer out.Close()
	feedStart(out, readTags(t, clipNoB(t)))
	offers := make([]string, 10)
	for i := range offers {
		offers[i] = makeOffer(t, webrtc.RTPTransceiverDirectionRecvonly, codecH264, codecOpus)
	}
	// settle, then measure
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.GC()
	g0, fd0 := runtime.NumGoroutine(), openFDs(t)
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)

	start := time.Now()
	peak := 0
	for i := range n {
		if i > 0 && i%wave == 0 {
			for srv.Sessions() > 0 && time.Since(start) < time.Minute {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if _, _, err := out.NewSession(context.Background(), offers[i%len(offers)], netip.AddrPort{}); err != nil {
			t.Fatalf("offer %d: %v", i, err)
		}
		if v := srv.Sessions(); v > peak {
			peak = v
		}
	}
	t.Logf("%d offers answered in %v; %d sessions at most, %d goroutines", n, time.Since(start), peak, runtime.NumGoroutine())
	deadline := time.Now().Add(30 * time.Second)
	for srv.Sessions() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if v := srv.Sessions(); v != 0 {
		t.Fatalf("%d sessions still open 30 s after the last offer", v)
	}
	if v := out.Viewers(); v != 0 {
		t.Fatalf("%d viewers still counted", v)
	}
	// pion's goroutines end shortly after Close returns
	var g1, fd1 int
	for time.Now().Before(deadline) {
		g1, fd1 = runtime.NumGoroutine(), openFDs(t)
		if g1 <= g0+5 && fd1 <= fd0+2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	runtime.GC()
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	t.Logf("all freed %v after the first offer: goroutines %d -> %d, fds %d -> %d, heap %d -> %d KiB",
		time.Since(start), g0, g1, fd0, fd1, m0.HeapInuse>>10, m1.HeapInuse>>10)
	if g1 > g0+5 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("goroutines %d -> %d\n%s", g0, g1, buf[:min(len(buf), 8000)])
	}
	if fd1 > fd0+2 {
		t.Errorf("file descriptors %d -> %d", fd0, fd1)
	}
	if m1.HeapInuse > m0.HeapInuse+32<<20 {
		t.Errorf("heap in use %d -> %d KiB", m0.HeapInuse>>10, m1.HeapInuse>>10)
	}
}

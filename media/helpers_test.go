package media

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// The engine's tests are end to end: publishers and readers of different
// protocols through the whole engine. Each protocol's own tests are in its
// package.

// testClip is the H.264+AAC clip the tests publish.
func testClip(t testing.TB) string { return mediatest.ClipPath(t) }

// needFFmpeg fails t unless ffmpeg and ffprobe are installed.
func needFFmpeg(t testing.TB) { t.Helper(); mediatest.NeedFFmpeg(t) }

func newTestEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if cfg.RTMPAddress == "" {
		cfg.RTMPAddress = "127.0.0.1:0"
	}
	if cfg.RTSPAddress == "" {
		cfg.RTSPAddress = "127.0.0.1:0"
	}
	if cfg.SRTAddress == "" {
		cfg.SRTAddress = "127.0.0.1:0"
	}
	if cfg.WebRTCUDPAddress == "" {
		cfg.WebRTCUDPAddress = "127.0.0.1:0"
	}
	if cfg.RTSPUDPRTPAddress == "" && !cfg.DisableRTSPUDP {
		cfg.RTSPUDPRTPAddress, cfg.RTSPUDPRTCPAddress = mediatest.FreeUDPPair(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = mediatest.Logger(t)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func newSilentEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.WebRTCUDPAddress == "" {
		cfg.WebRTCUDPAddress = "127.0.0.1:0"
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// newSynthStream publishes a stream with synthetic H.264 and AAC headers.
func newSynthStream(t testing.TB, e *Engine, name string) *hub.Stream {
	t.Helper()
	pub := e.hub.NewClient(hub.ClientInfo{Protocol: ProtocolRTMP, Remote: netip.MustParseAddrPort("127.0.0.1:1")})
	s, err := e.hub.Publish(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	s.WritePacket(flv.TagVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 0x4d, 0x40, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x4d, 0x40, 0x1e, 1, 0, 1, 0x68})
	s.WritePacket(flv.TagAudio, 0, []byte{0xaf, 0, 0x12, 0x10})
	return s
}

func rtmpURL(e *Engine, pathAndQuery string) string {
	return "rtmp://" + e.RTMPAddr().String() + pathAndQuery
}

func rtspURL(e *Engine, pathAndQuery string) string {
	return "rtsp://" + e.RTSPAddr().String() + pathAndQuery
}

func newFLVServer(t testing.TB, e *Engine) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/live/", e.HTTPHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// startFFmpeg runs ffmpeg with args; it is killed at the end of the test.
func startFFmpeg(t testing.TB, args ...string) *mediatest.Proc {
	t.Helper()
	return mediatest.StartFFmpeg(t, args...)
}

// publishClip publishes the clip in a loop, at real time, as RTMP.
func publishClip(t testing.TB, url string) *mediatest.Proc {
	return startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", testClip(t), "-c", "copy", "-f", "flv", url)
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	mediatest.WaitFor(t, timeout, what, cond)
}

// waitLive waits until stream name has video and audio headers.
func waitLive(t testing.TB, e *Engine, name string) {
	t.Helper()
	mediatest.WaitLive(t, e.hub, name)
}

// ffprobe reads url and returns its streams.
func ffprobe(t testing.TB, url string, extra ...string) ([]mediatest.ProbeStream, error) {
	t.Helper()
	return mediatest.ProbeStreams(t, url, extra...)
}

func checkClipStreams(t testing.TB, ss []mediatest.ProbeStream) {
	t.Helper()
	mediatest.CheckClipStreams(t, ss)
}

// startFLVCounter reads an HTTP-FLV stream in the background.
func startFLVCounter(t testing.TB, ctx context.Context, url string) *mediatest.FLVCounter {
	t.Helper()
	return mediatest.StartFLVCounter(t, ctx, url)
}

package rtmp

import (
	"context"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// newTestEnv returns a hub and an RTMP server of it on 127.0.0.1, both
// logging to the test log and closed at the end of the test as the engine
// closes them.
func newTestEnv(t testing.TB, hcfg hub.Config, cfg Config) (*hub.Hub, *Server) {
	t.Helper()
	log := mediatest.Logger(t)
	if hcfg.Logger == nil {
		hcfg.Logger = log
	}
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	h, err := hub.New(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(h, cfg)
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		s.Close() //nolint:errcheck
		h.Close()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("RTMP sessions still running 5 s after close")
		}
	})
	return h, s
}

func rtmpURL(s *Server, pathAndQuery string) string {
	return "rtmp://" + s.Addr().String() + pathAndQuery
}

// publishClip publishes the clip in a loop, at real time, as RTMP.
func publishClip(t testing.TB, url string) *mediatest.Proc {
	return mediatest.StartFFmpeg(t, "-re", "-stream_loop", "-1", "-i", mediatest.ClipPath(t), "-c", "copy", "-f", "flv", url)
}

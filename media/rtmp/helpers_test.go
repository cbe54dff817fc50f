package rtmp

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// waitExit waits for ffmpeg to exit and returns its stderr.
func waitExit(t *testing.T, p *mediatest.Proc, timeout time.Duration) string {
	t.Helper()
	select {
	case <-p.Done:
	case <-time.After(timeout):
		t.Fatalf("ffmpeg still running after %v (silent hang?); stderr: %s", timeout, p.Stderr.String())
	}
	return p.Stderr.String()
}

// signAuth accepts sign=good only, and records requests.
type signAuth struct {
	mu   sync.Mutex
	reqs []hub.AuthRequest
}

func (a *signAuth) check(req hub.AuthRequest) error {
	a.mu.Lock()
	a.reqs = append(a.reqs, req)
	a.mu.Unlock()
	switch req.Query.Get("sign") {
	case "good":
		return nil
	case "":
		return hub.Refusal("missing sign")
	}
	return fmt.Errorf("checking the sign: %w", &hub.RefusalError{Reason: "wrong or expired sign", Err: errors.New("mac mismatch")})
}

func (a *signAuth) AuthorizePublish(_ context.Context, req hub.AuthRequest) error {
	return a.check(req)
}

func (a *signAuth) AuthorizePlay(_ context.Context, req hub.AuthRequest) error {
	return a.check(req)
}

func (a *signAuth) last() hub.AuthRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reqs[len(a.reqs)-1]
}

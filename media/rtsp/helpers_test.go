package rtsp

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

// newTestEnv returns a hub and an RTSP server of it on 127.0.0.1 (TCP and
// UDP), both logging to the test log and closed at the end of the test.
func newTestEnv(t testing.TB, hcfg hub.Config) (*hub.Hub, *Server) {
	t.Helper()
	log := mediatest.Logger(t)
	if hcfg.Logger == nil {
		hcfg.Logger = log
	}
	h, err := hub.New(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	rtp, rtcp := mediatest.FreeUDPPair(t)
	s, err := New(h, Config{Address: "127.0.0.1:0", UDPRTPAddress: rtp, UDPRTCPAddress: rtcp, Logger: log})
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		h.Close()
	})
	return h, s
}

func rtspURL(s *Server, pathAndQuery string) string {
	return "rtsp://" + s.Addr().String() + pathAndQuery
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

// signAuth accepts sign=good only.
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

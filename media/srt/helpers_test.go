package srt

import (
	"context"
	"fmt"
	"strings"
	"testing"

	gosrt "github.com/datarhei/gosrt"
	"github.com/datarhei/gosrt/packet"

	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// newTestEnv returns a hub and an SRT server of it on 127.0.0.1, both
// logging to the test log and closed at the end of the test.
func newTestEnv(t testing.TB, hcfg hub.Config, cfg Config) (*hub.Hub, *Server) {
	t.Helper()
	log := mediatest.Logger(t)
	if hcfg.Logger == nil {
		hcfg.Logger = log
	}
	h, err := hub.New(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Address = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	s, err := New(h, cfg)
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(context.Background())
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
		h.Close()
	})
	return h, s
}

// srtURL is the ffmpeg URL of stream ID id on s.
func srtURL(s *Server, id string) string {
	return fmt.Sprintf("srt://%s?streamid=%s", s.Addr(), id)
}

// dial connects to s with gosrt and stream ID id.
func dial(s *Server, id string) (gosrt.Conn, error) {
	conf := gosrt.DefaultConfig()
	conf.StreamId = id
	return gosrt.Dial("srt", s.Addr().String(), conf)
}

// rejectedWith reports whether err is gosrt's rejection of a dial with
// code.
func rejectedWith(err error, code gosrt.RejectionReason) bool {
	return err != nil && strings.Contains(err.Error(), "connection rejected: "+packet.HandshakeType(code).String())
}

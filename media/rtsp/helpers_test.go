package rtsp

import (
	"testing"

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

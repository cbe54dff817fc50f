package rtmp

import (
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

func TestRTMPPublishPlay(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h, srv := newTestEnv(t, hub.Config{}, Config{})
	publishClip(t, rtmpURL(srv, "/live/room1?sign=abc"))
	mediatest.WaitLive(t, h, "room1")

	ss, err := mediatest.ProbeStreams(t, rtmpURL(srv, "/live/room1"))
	if err != nil {
		t.Fatal(err)
	}
	mediatest.CheckClipStreams(t, ss)

	st := h.Stream("room1").Stats()
	if st.Width != 640 || st.Height != 360 || st.VideoCodec != "h264" || st.AudioCodec != "aac" {
		t.Errorf("stats %+v", st)
	}
	t.Logf("stats: %+v", st)
}

func TestRTMPRefusals(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	auth := &mediatest.SignAuth{}
	h, e := newTestEnv(t, hub.Config{Authorizer: auth}, Config{})

	// OBS style: the sign in the stream key.
	pub := publishClip(t, rtmpURL(e, "/live/room4?sign=good"))
	mediatest.WaitLive(t, h, "room4")
	if req := auth.Last(); req.Stream != "room4" || req.Protocol != hub.ProtocolRTMP || !req.RemoteIP.IsLoopback() {
		t.Errorf("auth request %+v", req)
	}

	for _, c := range []struct {
		name, url, want string
	}{
		{"no sign", "/live/room5", "missing sign"},
		{"wrong sign", "/live/room5?sign=bad", "wrong or expired sign"},
		{"second publisher", "/live/room4?sign=good", "already being published"},
		{"bad app", "/other/room5?sign=good", "unknown application"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mediatest.StartFFmpeg(t, "-re", "-i", mediatest.ClipPath(t), "-c", "copy", "-f", "flv", rtmpURL(e, c.url))
			out := p.WaitExit(t, 10*time.Second)
			if p.Err == nil {
				t.Fatalf("ffmpeg succeeded")
			}
			if !strings.Contains(out, c.want) {
				t.Errorf("ffmpeg stderr %q does not contain %q", out, c.want)
			}
		})
	}

	// players
	if _, err := mediatest.ProbeStreams(t, rtmpURL(e, "/live/room4?sign=bad")); err == nil || !strings.Contains(err.Error(), "wrong or expired sign") {
		t.Errorf("play with a bad sign: %v", err)
	}
	if _, err := mediatest.ProbeStreams(t, rtmpURL(e, "/live/nosuch?sign=good")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("play of an unknown stream: %v", err)
	}
	// sign in the tcUrl/app query
	ss, err := mediatest.ProbeStreams(t, "rtmp://"+e.Addr().String()+"/live?sign=good/room4", "-rtmp_app", "live?sign=good", "-rtmp_playpath", "room4")
	if err != nil {
		t.Fatal(err)
	}
	mediatest.CheckClipStreams(t, ss)

	// the first publisher is unaffected.
	select {
	case <-pub.Done:
		t.Fatalf("first publisher ended: %s", pub.Stderr.String())
	default:
	}
	s := h.Stream("room4")
	if s == nil {
		t.Fatal("stream room4 gone after refusals")
	}
	if st := s.Stats(); !st.Live || st.PublisherIP.String() != "127.0.0.1" {
		t.Errorf("stream after refusals: %+v", st)
	}
	if h.Counters().ClientsRefused < 5 {
		t.Errorf("counters %+v", h.Counters())
	}
}

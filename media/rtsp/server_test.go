package rtsp

import (
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// The RTMP publishers of these tests are mediatest.Publish: an RTMP
// publisher's messages, published in process (media/rtsp has no RTMP
// server).

func TestRTSPPlayFromRTMP(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h, e := newTestEnv(t, hub.Config{})
	mediatest.PublishClip(t, h, "rtspout")
	mediatest.WaitLive(t, h, "rtspout")
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			ss, err := mediatest.ProbeStreams(t, rtspURL(e, "/live/rtspout"), "-rtsp_transport", transport)
			if err != nil {
				t.Fatal(err)
			}
			mediatest.CheckClipStreams(t, ss)
		})
	}

	// an RTSP reader is counted while it plays and gone when it leaves.
	p := mediatest.StartFFmpeg(t, "-rtsp_transport", "tcp", "-i", rtspURL(e, "/live/rtspout"), "-t", "20", "-f", "null", "-")
	mediatest.WaitFor(t, 5*time.Second, "RTSP reader counted", func() bool {
		return h.Stream("rtspout").Stats().Readers[hub.ProtocolRTSP] == 1
	})
	var found bool
	for _, c := range h.Clients() {
		if c.Protocol == hub.ProtocolRTSP && c.Role == hub.RolePlay && c.Path == "/live/rtspout" {
			found = true
		}
	}
	if !found {
		t.Errorf("no RTSP player in %+v", h.Clients())
	}
	p.Kill()
	mediatest.WaitFor(t, 2*time.Second, "RTSP reader gone", func() bool {
		return h.Stream("rtspout").Stats().Readers[hub.ProtocolRTSP] == 0
	})
}

func TestRTSPRefusals(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h, e := newTestEnv(t, hub.Config{Authorizer: &mediatest.SignAuth{}})
	mediatest.PublishClip(t, h, "rtsp8")
	mediatest.WaitLive(t, h, "rtsp8")

	p := mediatest.StartFFmpeg(t, "-re", "-i", mediatest.ClipPath(t), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
		rtspURL(e, "/live/rtsp9?sign=bad"))
	if out := p.WaitExit(t, 10*time.Second); p.Err == nil || !strings.Contains(out, "403") {
		t.Errorf("publish with a bad sign: %v %q", p.Err, out)
	}
	p = mediatest.StartFFmpeg(t, "-re", "-i", mediatest.ClipPath(t), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
		rtspURL(e, "/live/rtsp8?sign=good"))
	if out := p.WaitExit(t, 10*time.Second); p.Err == nil || !strings.Contains(out, "403") {
		t.Errorf("second publisher: %v %q", p.Err, out)
	}
	if _, err := mediatest.ProbeStreams(t, rtspURL(e, "/live/rtsp8?sign=bad"), "-rtsp_transport", "tcp"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("play with a bad sign: %v", err)
	}
	if _, err := mediatest.ProbeStreams(t, rtspURL(e, "/live/nosuch?sign=good"), "-rtsp_transport", "tcp"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("play of an unknown stream: %v", err)
	}
	ss, err := mediatest.ProbeStreams(t, rtspURL(e, "/live/rtsp8?sign=good"), "-rtsp_transport", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	mediatest.CheckClipStreams(t, ss)
	if st := h.Stream("rtsp8").Stats(); !st.Live || st.Protocol != hub.ProtocolRTMP {
		t.Errorf("first publisher affected: %+v", st)
	}
}

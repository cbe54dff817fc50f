package media

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

func TestRTSPPlayFromRTMP(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{})
	publishClip(t, rtmpURL(e, "/live/rtspout"))
	waitLive(t, e, "rtspout")
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			ss, err := ffprobe(t, rtspURL(e, "/live/rtspout"), "-rtsp_transport", transport)
			if err != nil {
				t.Fatal(err)
			}
			checkClipStreams(t, ss)
		})
	}

	// an RTSP reader is counted while it plays and gone when it leaves.
	p := startFFmpeg(t, "-rtsp_transport", "tcp", "-i", rtspURL(e, "/live/rtspout"), "-t", "20", "-f", "null", "-")
	waitFor(t, 5*time.Second, "RTSP reader counted", func() bool {
		st, _ := e.Stream("rtspout")
		return st.Readers[ProtocolRTSP] == 1
	})
	var found bool
	for _, c := range e.Clients() {
		if c.Protocol == ProtocolRTSP && c.Role == RolePlay && c.Path == "/live/rtspout" {
			found = true
		}
	}
	if !found {
		t.Errorf("no RTSP player in %+v", e.Clients())
	}
	p.kill()
	waitFor(t, 2*time.Second, "RTSP reader gone", func() bool {
		st, _ := e.Stream("rtspout")
		return st.Readers[ProtocolRTSP] == 0
	})
}

func TestRTSPPublish(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{})
	srv := newFLVServer(t, e)
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			name := "rtspin" + transport
			p := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", testClip(t), "-c", "copy",
				"-f", "rtsp", "-rtsp_transport", transport, rtspURL(e, "/live/"+name+"?sign=x"))
			waitLive(t, e, name)
			st, _ := e.Stream(name)
			if st.Protocol != ProtocolRTSP || st.Width != 640 || st.Height != 360 {
				t.Errorf("stats %+v", st)
			}
			ss, err := ffprobe(t, rtmpURL(e, "/live/"+name))
			if err != nil {
				t.Fatal(err)
			}
			checkClipStreams(t, ss)
			ss, err = ffprobe(t, srv.URL+"/live/"+name+".flv")
			if err != nil {
				t.Fatal(err)
			}
			checkClipStreams(t, ss)
			p.kill()
		})
	}
}

func TestRTSPRefusals(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{Authorizer: &signAuth{}})
	publishClip(t, rtmpURL(e, "/live/rtsp8?sign=good"))
	waitLive(t, e, "rtsp8")

	p := startFFmpeg(t, "-re", "-i", testClip(t), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
		rtspURL(e, "/live/rtsp9?sign=bad"))
	if out := waitExit(t, p, 10*time.Second); p.err == nil || !strings.Contains(out, "403") {
		t.Errorf("publish with a bad sign: %v %q", p.err, out)
	}
	p = startFFmpeg(t, "-re", "-i", testClip(t), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp",
		rtspURL(e, "/live/rtsp8?sign=good"))
	if out := waitExit(t, p, 10*time.Second); p.err == nil || !strings.Contains(out, "403") {
		t.Errorf("second publisher: %v %q", p.err, out)
	}
	if _, err := ffprobe(t, rtspURL(e, "/live/rtsp8?sign=bad"), "-rtsp_transport", "tcp"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("play with a bad sign: %v", err)
	}
	if _, err := ffprobe(t, rtspURL(e, "/live/nosuch?sign=good"), "-rtsp_transport", "tcp"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("play of an unknown stream: %v", err)
	}
	ss, err := ffprobe(t, rtspURL(e, "/live/rtsp8?sign=good"), "-rtsp_transport", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	checkClipStreams(t, ss)
	if st, _ := e.Stream("rtsp8"); !st.Live || st.Protocol != ProtocolRTMP {
		t.Errorf("first publisher affected: %+v", st)
	}
}

// TestRTSPH265 publishes H.265 + Opus over RTSP: it is read back over RTSP
// (RTP → Enhanced RTMP bodies → RTP) and over HTTP-FLV as Enhanced FLV.
func TestRTSPH265(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{})
	srv := newFLVServer(t, e)
	startFFmpeg(t, "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error",
		"-c:a", "libopus", "-f", "rtsp", "-rtsp_transport", "tcp", rtspURL(e, "/live/hevc"))
	waitFor(t, 15*time.Second, "H.265 stream", func() bool {
		st, ok := e.Stream("hevc")
		return ok && st.VideoCodec == "h265" && st.AudioCodec == "opus" && st.BytesIn > 20000
	})
	st, _ := e.Stream("hevc")
	if st.Width != 320 || st.Height != 240 {
		t.Errorf("stats %+v", st)
	}
	ss, err := ffprobe(t, rtspURL(e, "/live/hevc"), "-rtsp_transport", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	var video, audio bool
	for _, s := range ss {
		switch s.CodecType {
		case "video":
			video = true
			if s.CodecName != "hevc" || s.Width != 320 || s.Height != 240 {
				t.Errorf("video %+v", s)
			}
		case "audio":
			audio = true
			if s.CodecName != "opus" {
				t.Errorf("audio %+v", s)
			}
		}
	}
	if !video || !audio {
		t.Errorf("streams %+v", ss)
	}

	res, err := http.Get(srv.URL + "/live/hevc.flv")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	fr := &flv.Reader{R: res.Body}
	var seq, key int
	for n := 0; n < 20 && key == 0; n++ {
		tag, err := fr.ReadTag()
		if err != nil {
			t.Fatal(err)
		}
		if tag.Type != flv.TagVideo {
			continue
		}
		v, err := flv.ParseVideoTag(tag.Body)
		if err != nil || !v.Enhanced || v.FourCC != flv.FourCCHEVC {
			t.Fatalf("video tag %+v %v", v, err)
		}
		if v.IsSequenceHeader() {
			seq++
		} else if v.IsKeyFrame() {
			key++
		}
	}
	if seq == 0 || key == 0 {
		t.Errorf("sequence headers %d, key frames %d", seq, key)
	}
}

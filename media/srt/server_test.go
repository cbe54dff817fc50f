package srt

import (
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// TestSRTPublishAndRead publishes the clip over SRT with ffmpeg and reads
// it back over SRT with ffprobe.
func TestSRTPublishAndRead(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h, s := newTestEnv(t, hub.Config{Authorizer: &mediatest.SignAuth{}}, Config{})
	mediatest.StartFFmpeg(t, "-re", "-stream_loop", "-1", "-i", mediatest.ClipPath(t), "-c", "copy",
		"-f", "mpegts", srtURL(s, "publish:srtin?sign=good"))
	mediatest.WaitLive(t, h, "srtin")
	st := h.Stream("srtin").Stats()
	if st.Protocol != hub.ProtocolSRT || st.VideoCodec != "h264" || st.AudioCodec != "aac" || st.Width != 640 || st.Height != 360 {
		t.Errorf("stats %+v", st)
	}
	ss, err := mediatest.ProbeStreams(t, srtURL(s, "read:srtin?sign=good"))
	if err != nil {
		t.Fatal(err)
	}
	mediatest.CheckClipStreams(t, ss)
	_ = strings.Contains
	_ = time.Second
}

func TestZZProbeTiming(t *testing.T) {
	h, s := newTestEnv(t, hub.Config{}, Config{})
	mediatest.PublishClip(t, h, "x")
	mediatest.WaitLive(t, h, "x")
	time.Sleep(1500 * time.Millisecond)
	for _, extra := range [][]string{nil, {"-analyzeduration", "1000000"}} {
		start := time.Now()
		ss, err := mediatest.ProbeStreams(t, srtURL(s, "read:x"), extra...)
		t.Log(time.Since(start), err, ss)
	}
}

func TestZZJoinBurst(t *testing.T) {
	h, s := newTestEnv(t, hub.Config{}, Config{})
	mediatest.PublishClip(t, h, "x")
	mediatest.WaitLive(t, h, "x")
	time.Sleep(1700 * time.Millisecond)
	start := time.Now()
	c, err := dial(s, "read:x")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Log("dial", time.Since(start))
	buf := make([]byte, 2000)
	total := 0
	for time.Since(start) < 1500*time.Millisecond {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if total == 0 {
			t.Log("first", time.Since(start))
		}
		total += n
		if total > 100000 && total-n <= 100000 {
			t.Log("100k", time.Since(start))
		}
	}
	t.Log(total)
}

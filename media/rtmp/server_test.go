package media

import (
	"testing"
	"time"
)

func TestRTMPPublishPlay(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{})
	publishClip(t, rtmpURL(e, "/live/room1?sign=abc"))
	waitLive(t, e, "room1")

	ss, err := ffprobe(t, rtmpURL(e, "/live/room1"))
	if err != nil {
		t.Fatal(err)
	}
	checkClipStreams(t, ss)

	st, _ := e.Stream("room1")
	if st.Width != 640 || st.Height != 360 || st.VideoCodec != "h264" || st.AudioCodec != "aac" {
		t.Errorf("stats %+v", st)
	}
	t.Logf("stats: %+v", st)
	_ = time.Second
}

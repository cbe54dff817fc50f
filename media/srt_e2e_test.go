package media

import (
	"fmt"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// An SRT publisher read over RTMP, HTTP-FLV, HLS and SRT, and SRT's
// refusals, through the engine. media/srt's own tests are in its package.

func srtURL(e *Engine, streamID string) string {
	return fmt.Sprintf("srt://%s?streamid=%s", e.SRTAddr(), streamID)
}

func TestSRTPublishThroughEngine(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{Authorizer: &mediatest.SignAuth{}})
	srv := newFLVServer(t, e)
	const name = "srtlive"
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", testClip(t), "-c", "copy",
		"-f", "mpegts", srtURL(e, "publish:"+name+"?sign=good"))
	waitLive(t, e, name)
	if st, _ := e.Stream(name); st.Protocol != ProtocolSRT || st.Width != 640 || st.Height != 360 {
		t.Errorf("stats %+v", st)
	}

	for proto, url := range map[string]string{
		"RTMP":     rtmpURL(e, "/live/"+name+"?sign=good"),
		"HTTP-FLV": srv.URL + "/live/" + name + ".flv?sign=good",
	} {
		ss, err := ffprobe(t, url)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		checkClipStreams(t, ss)
	}
	// HLS has a playlist once a segment is complete.
	var ss []mediatest.ProbeStream
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		ss, err = ffprobe(t, srv.URL+"/live/"+name+"/index.m3u8?sign=good")
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("HLS: %v", err)
	}
	checkClipStreams(t, ss)
	ss, err = ffprobe(t, srtURL(e, "read:"+name+"?sign=good"), "-analyzeduration", "1000000")
	if err != nil {
		t.Fatalf("SRT: %v", err)
	}
	checkClipStreams(t, ss)

	// an SRT reader's bytes are the stream's.
	before, _ := e.Stream(name)
	startFFmpeg(t, "-i", srtURL(e, "read:"+name+"?sign=good"), "-c", "copy", "-f", "null", "-")
	waitFor(t, 10*time.Second, "SRT reader counted", func() bool {
		st, _ := e.Stream(name)
		return st.Readers[ProtocolSRT] == 1 && st.BytesOut > before.BytesOut+100000
	})
	var srtPub, srtPlay bool
	for _, c := range e.Clients() {
		if c.Protocol == ProtocolSRT && c.Role == RolePublish && c.BytesIn > 100000 {
			srtPub = true
		}
		if c.Protocol == ProtocolSRT && c.Role == RolePlay && c.Path == "/live/"+name {
			srtPlay = true
		}
	}
	if !srtPub || !srtPlay {
		t.Errorf("SRT publisher %v, player %v in %+v", srtPub, srtPlay, e.Clients())
	}

	// refusals: a wrong sign, a stream that is not live, a second
	// publisher; each counted once.
	refused := e.Counters().ClientsRefused
	p := startFFmpeg(t, "-re", "-i", testClip(t), "-c", "copy", "-f", "mpegts", srtURL(e, "publish:other?sign=bad"))
	if out := p.WaitExit(t, 10*time.Second); p.Err == nil {
		t.Errorf("published with a wrong sign: %s", out)
	}
	if _, err := ffprobe(t, srtURL(e, "read:nosuch?sign=good")); err == nil {
		t.Error("played a stream that is not live")
	}
	p = startFFmpeg(t, "-re", "-i", testClip(t), "-c", "copy", "-f", "mpegts", srtURL(e, "publish:"+name+"?sign=good"))
	if out := p.WaitExit(t, 10*time.Second); p.Err == nil {
		t.Errorf("a second publisher published: %s", out)
	}
	if got := e.Counters().ClientsRefused - refused; got != 3 {
		t.Errorf("%d refusals counted, want 3", got)
	}
	if _, ok := e.Stream("other"); ok {
		t.Error("a refused publisher made a stream")
	}
	if st, _ := e.Stream(name); !st.Publishing || st.Protocol != ProtocolSRT {
		t.Errorf("the first publisher affected: %+v", st)
	}
}

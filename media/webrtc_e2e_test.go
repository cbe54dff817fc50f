package media

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"

	"github.com/mofang-live/mofang/media/internal/mediatest"
	"github.com/mofang-live/mofang/media/record"
	"github.com/mofang-live/mofang/media/webrtc/client"
)

// publishNoB publishes the test clip over RTMP in a loop, re-encoded
// without B-frames (as WebRTC needs), with AAC.
func publishNoB(t testing.TB, url string) *mediatest.Proc {
	return startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", testClip(t),
		"-c:v", "libx264", "-bf", "0", "-preset", "veryfast", "-g", "30", "-c:a", "aac", "-f", "flv", url)
}

// clientOf returns the engine's client of protocol p and role r on
// stream name.
func clientOf(e *Engine, p Protocol, r Role, name string) (ClientStats, bool) {
	for _, c := range e.Clients() {
		if c.Protocol == p && c.Role == r && c.Stream == name {
			return c, true
		}
	}
	return ClientStats{}, false
}

// TestWHEPPlaysRTMP: a stream published over RTMP (H.264 without
// B-frames + AAC) plays over WHEP: the H.264 decodes at 640x360 and Opus
// (transcoded from the AAC) arrives; the viewer is a webrtc reader of the
// stream and a client admins can kick, which ends the session.
func TestWHEPPlaysRTMP(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{DisableRTSP: true, HLS: "off"})
	srv := newFLVServer(t, e)
	publishNoB(t, rtmpURL(e, "/live/rtc"))
	mediatest.WaitMedia(t, e.hub, "rtc")

	dir := t.TempDir()
	vf, err := os.Create(filepath.Join(dir, "video.h264"))
	if err != nil {
		t.Fatal(err)
	}
	hw := h264writer.NewWith(vf)
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := client.Play(ctx, client.PlayerConfig{URL: srv.URL + "/live/rtc/whep", OnPacket: func(kind string, pkt *rtp.Packet) {
		if kind == "video" {
			mu.Lock()
			_ = hw.WriteRTP(pkt)
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	st, _ := e.Stream("rtc")
	if st.Readers[ProtocolWebRTC] != 1 || st.ReaderCount != 1 {
		t.Errorf("readers = %v (%d), want one webrtc reader", st.Readers, st.ReaderCount)
	}
	c, ok := clientOf(e, ProtocolWebRTC, RolePlay, "rtc")
	if !ok {
		t.Fatalf("no webrtc play client in %+v", e.Clients())
	}
	waitFor(t, 30*time.Second, "3 s of video and audio over WHEP", func() bool {
		v, a, _, _ := p.Packets()
		return v > 300 && a > 150
	})
	mu.Lock()
	hw.Close()
	mu.Unlock()
	vs := mediatest.Probe(t, filepath.Join(dir, "video.h264"), "-count_frames")
	v, ok := vs.Stream("video")
	if !ok || v.CodecName != "h264" || v.Width != 640 || v.Height != 360 {
		t.Fatalf("WHEP video = %+v, want H.264 640x360", vs)
	}
	if st, _ := e.Stream("rtc"); st.BytesOut == 0 {
		t.Error("the stream's BytesOut does not count WHEP")
	}

	if !e.KickClient(c.ID) {
		t.Fatal("KickClient of the WHEP viewer failed")
	}
	select {
	case <-p.Failed():
	case <-time.After(30 * time.Second):
		t.Fatal("the kicked WHEP viewer's connection stays up")
	}
	waitFor(t, 10*time.Second, "the kicked viewer gone from the stream", func() bool {
		st, _ := e.Stream("rtc")
		_, still := clientOf(e, ProtocolWebRTC, RolePlay, "rtc")
		return st.ReaderCount == 0 && !still
	})
}

// recSink records what the recorder reports.
type recSink struct {
	mu    sync.Mutex
	ended []record.Info
}

func (r *recSink) Started(context.Context, record.Info) (int64, error) { return 1, nil }
func (r *recSink) Ended(_ context.Context, _ int64, info record.Info) {
	r.mu.Lock()
	r.ended = append(r.ended, info)
	r.mu.Unlock()
}

// makeWHIPFiles makes the WHIP publisher's input: Annex-B H.264 baseline
// and Ogg Opus with one packet per page.
func makeWHIPFiles(t testing.TB) (h264, ogg string) {
	dir := t.TempDir()
	h264, ogg = filepath.Join(dir, "clip.h264"), filepath.Join(dir, "clip.ogg")
	for _, args := range [][]string{
		{"-i", testClip(t), "-an", "-c:v", "libx264", "-bf", "0", "-profile:v", "baseline", "-g", "30", "-preset", "veryfast", "-f", "h264", h264},
		{"-i", testClip(t), "-vn", "-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2", "-page_duration", "1", "-f", "ogg", ogg},
	} {
		full := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)
		if b, err := exec.Command("ffmpeg", full...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", full, err, b)
		}
	}
	return h264, ogg
}

// whipPublish publishes the files over WHIP to url, looping, until ctx
// ends.
func whipPublish(t testing.TB, ctx context.Context, url string, header http.Header, h264, ogg string) *client.Publisher {
	t.Helper()
	pub, err := client.Publish(ctx, client.PublisherConfig{URL: url, Header: header})
	if err != nil {
		t.Fatalf("WHIP publish: %v", err)
	}
	loop := func(send func(io.Reader) error, path string) {
		for ctx.Err() == nil {
			f, err := os.Open(path)
			if err != nil {
				return
			}
			err = send(f)
			f.Close()
			if err != nil {
				return
			}
		}
	}
	go loop(func(r io.Reader) error { return client.SendH264(ctx, pub.Video, r, 30) }, h264)
	go loop(func(r io.Reader) error { return client.SendOgg(ctx, pub.Audio, r) }, ogg)
	return pub
}

// TestWHIPPlaysEverywhere: a WHIP publisher (H.264 + Opus) is a stream
// like any other: live with the publisher's address, played back over
// RTMP, HTTP-FLV and HLS with H.264 and AAC, over WHEP, recorded, and
// kicked.
func TestWHIPPlaysEverywhere(t *testing.T) {
	needFFmpeg(t)
	sink := &recSink{}
	e := newTestEngine(t, Config{DisableRTSP: true, PublisherGrace: -1, RecordDir: t.TempDir(), Recordings: sink})
	srv := newFLVServer(t, e)
	h264, ogg := makeWHIPFiles(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub := whipPublish(t, ctx, srv.URL+"/live/whip/whip", nil, h264, ogg)
	defer pub.Close()

	waitFor(t, 30*time.Second, "the WHIP stream with H.264 and AAC", func() bool {
		st, ok := e.Stream("whip")
		return ok && st.Live && st.VideoCodec == "h264" && st.AudioCodec == "aac"
	})
	st, _ := e.Stream("whip")
	if st.Protocol != ProtocolWebRTC || st.PublisherIP.String() != "127.0.0.1" {
		t.Errorf("publisher = %s from %v, want webrtc from 127.0.0.1", st.Protocol, st.PublisherIP)
	}
	if _, ok := clientOf(e, ProtocolWebRTC, RolePublish, "whip"); !ok {
		t.Errorf("no webrtc publish client in %+v", e.Clients())
	}
	for _, u := range []string{rtmpURL(e, "/live/whip"), srv.URL + "/live/whip.flv", srv.URL + "/live/whip/index.m3u8"} {
		ss, err := ffprobe(t, u)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		var v, a string
		for _, s := range ss {
			switch s.CodecType {
			case "video":
				v = s.CodecName
			case "audio":
				a = s.CodecName
			}
		}
		if v != "h264" || a != "aac" {
			t.Errorf("%s: video %q audio %q, want h264 and aac", u, v, a)
		}
	}

	// WHEP: the publisher's own Opus, no AAC→Opus transcoding
	p, err := client.Play(ctx, client.PlayerConfig{URL: srv.URL + "/live/whip/whep"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "video and audio over WHEP", func() bool {
		v, a, _, _ := p.Packets()
		return v > 100 && a > 50
	})
	if o := e.rtcOutputOf(nil, e.hub.Stream("whip"), false); o == nil || o.out.Transcoding() {
		t.Error("the WHEP output of a WHIP stream transcodes AAC back to Opus")
	}
	p.Close()

	// an admin's kick ends the WHIP session and the stream
	if !e.KickStream("whip") {
		t.Fatal("KickStream of the WHIP stream failed")
	}
	select {
	case <-pub.Failed():
	case <-time.After(30 * time.Second):
		t.Fatal("the kicked WHIP publisher's connection stays up")
	}
	waitFor(t, 30*time.Second, "the WHIP stream ended and its recording finished", func() bool {
		_, ok := e.Stream("whip")
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return !ok && len(sink.ended) > 0
	})
	sink.mu.Lock()
	info := sink.ended[0]
	sink.mu.Unlock()
	if info.VideoCodec != "h264" || info.AudioCodec != "aac" || info.Duration < time.Second || info.Status != record.StatusDone {
		t.Errorf("recording = %+v, want a done h264+aac recording of a few seconds", info)
	}
}

// postSDP posts offer to url and returns the status and body.
func postSDP(t testing.TB, url, offer string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/sdp", strings.NewReader(offer))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWebRTCRefusals: WHEP of no stream (404), of a stream with B-frames
// (409 naming the OBS fix, and the stream's stats say so), WHIP of a
// stream an RTMP publisher has (409), garbage SDP (400), a session that
// does not exist (404).
func TestWebRTCRefusals(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{DisableRTSP: true, HLS: "off"})
	srv := newFLVServer(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, err := client.Play(ctx, client.PlayerConfig{URL: srv.URL + "/live/none/whep"}); !isStatus(err, http.StatusNotFound) {
		t.Errorf("WHEP of no stream: %v, want 404", err)
	}
	// x264's defaults: B-frames
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", testClip(t), "-c:v", "libx264", "-bf", "2", "-preset", "veryfast",
		"-c:a", "aac", "-f", "flv", rtmpURL(e, "/live/bf"))
	mediatest.WaitMedia(t, e.hub, "bf")
	_, err := client.Play(ctx, client.PlayerConfig{URL: srv.URL + "/live/bf/whep"})
	if !isStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "bframes=0") {
		t.Errorf("WHEP of a stream with B-frames: %v, want 409 naming bframes=0", err)
	}
	if st, _ := e.Stream("bf"); !st.BFrames {
		t.Error("StreamStats.BFrames is false for a stream with B-frames")
	}
	// WHIP of a stream with an RTMP publisher
	if _, err := client.Publish(ctx, client.PublisherConfig{URL: srv.URL + "/live/bf/whip"}); !isStatus(err, http.StatusConflict) {
		t.Errorf("WHIP of a published stream: %v, want 409", err)
	}
	if _, ok := clientOf(e, ProtocolWebRTC, RolePublish, "bf"); ok {
		t.Error("a refused WHIP publisher is left as a client")
	}
	// garbage
	if code, _ := postSDP(t, srv.URL+"/live/nob/whip", "v=0 garbage"); code != http.StatusBadRequest {
		t.Errorf("WHIP with garbage SDP: %d, want 400", code)
	}
	if _, ok := e.Stream("nob"); ok {
		t.Error("a WHIP offer with garbage SDP published the stream")
	}
	publishNoB(t, rtmpURL(e, "/live/nob"))
	mediatest.WaitMedia(t, e.hub, "nob")
	if code, _ := postSDP(t, srv.URL+"/live/nob/whep", "v=0 garbage"); code != http.StatusBadRequest {
		t.Errorf("WHEP with garbage SDP: %d, want 400", code)
	}
	if st, _ := e.Stream("nob"); st.BFrames {
		t.Error("StreamStats.BFrames is true for a stream without B-frames")
	}
	for _, u := range []string{"/live/nob/whep/0123456789abcdef0123456789abcdef", "/live/nob/whip/nope"} {
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("DELETE %s: %d, want 404", u, resp.StatusCode)
		}
	}
	// OPTIONS needs no sign and answers CORS
	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/live/nob/whep", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
	}
	// the HLS and FLV routes are intact
	if code, _ := postSDP(t, srv.URL+"/live/nob/index.m3u8", ""); code == http.StatusCreated {
		t.Error("POST to HLS answered as WHEP")
	}
}

// isStatus reports whether err is a client.StatusError with code.
func isStatus(err error, code int) bool {
	se, ok := err.(*client.StatusError)
	return ok && se.Code == code
}

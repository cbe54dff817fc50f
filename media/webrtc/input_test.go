package webrtc

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/webrtc/client"
)

// clipH264 is the test clip's video as Annex-B H.264 baseline, no B-frames.
func clipH264(t testing.TB) string {
	return testFile(t, "clip.h264", "-i", "IN", "-an", "-c:v", "libx264", "-bf", "0", "-profile:v", "baseline",
		"-g", "30", "-preset", "veryfast", "-f", "h264", "OUT")
}

// clipOgg is the test clip's audio as Ogg Opus, one packet per page.
func clipOgg(t testing.TB) string {
	return testFile(t, "clip.ogg", "-i", "IN", "-vn", "-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2",
		"-page_duration", "1", "-f", "ogg", "OUT")
}

// flvHandler is an InputHandler that writes an FLV file and keeps the
// Opus it is handed as OpusHandler.
type flvHandler struct {
	mu     sync.Mutex
	f      *os.File
	tags   []flv.Tag
	opus   []flv.Tag
	closed chan struct{}
	err    error
	calls  int // concurrent calls seen (must stay 0 or 1)
	busy   int
}

func newFLVHandler(t testing.TB, path string) *flvHandler {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(flv.FileHeader(true, true)); err != nil {
		t.Fatal(err)
	}
	return &flvHandler{f: f, closed: make(chan struct{})}
}

func (h *flvHandler) enter() {
	h.mu.Lock()
	h.busy++
	if h.busy > h.calls {
		h.calls = h.busy
	}
}

func (h *flvHandler) leave() {
	h.busy--
	h.mu.Unlock()
}

func (h *flvHandler) WritePacket(typ uint8, ts uint32, body []byte) {
	h.enter()
	defer h.leave()
	h.tags = append(h.tags, flv.Tag{Type: typ, Timestamp: ts, Body: body})
	_, _ = h.f.Write(flv.AppendTag(nil, typ, ts, body))
}

func (h *flvHandler) WriteOpus(ts uint32, body []byte) {
	h.enter()
	defer h.leave()
	h.opus = append(h.opus, flv.Tag{Type: flv.TagAudio, Timestamp: ts, Body: body})
}

func (h *flvHandler) Close(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
	h.f.Close()
	close(h.closed)
}

// publishClip publishes the test clip's H.264 and Opus over WHIP in real
// time and ends the session. The files must exist (clipH264, clipOgg)
// when it runs in another goroutine than the test's.
func publishClip(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	h264 := filepath.Join(testdataDir, "clip.h264")
	ogg := filepath.Join(testdataDir, "clip.ogg")
	pub, err := client.Publish(ctx, client.PublisherConfig{URL: url})
	if err != nil {
		t.Error(err) // may run in a goroutine of the test
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		f, err := os.Open(h264)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		if err := client.SendH264(ctx, pub.Video, f, 30); err != nil {
			t.Error(err)
		}
	}()
	go func() {
		defer wg.Done()
		f, err := os.Open(ogg)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		if err := client.SendOgg(ctx, pub.Audio, f); err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	time.Sleep(300 * time.Millisecond)
	if err := pub.Close(); err != nil {
		t.Errorf("DELETE: %v", err)
	}
}

// TestWHIPPublishToFLV publishes H.264 + Opus from files over WHIP; the
// handler's packets, written as FLV, play in ffprobe with H.264 and AAC,
// and the original Opus goes to the OpusHandler.
func TestWHIPPublishToFLV(t *testing.T) {
	srv := newTestServer(t, Config{})
	dir := t.TempDir()
	h := newFLVHandler(t, filepath.Join(dir, "pub.flv"))
	url := newHTTPFront(t, srv).addInput("pub", func() InputHandler { return h })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clipH264(t)
	clipOgg(t)
	publishClip(t, ctx, url)
	select {
	case <-h.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("handler not closed after DELETE")
	}
	if h.err != nil {
		t.Errorf("Close(%v), want nil after DELETE", h.err)
	}
	if h.calls > 1 {
		t.Errorf("handler called %d times at once", h.calls)
	}
	streams := ffprobe(t, filepath.Join(dir, "pub.flv"))
	var video, audio *probeStream
	for i := range streams {
		switch streams[i].CodecType {
		case "video":
			video = &streams[i]
		case "audio":
			audio = &streams[i]
		}
	}
	if video == nil || video.CodecName != "h264" || video.Width != 640 || video.Height != 360 {
		t.Fatalf("video = %+v, want H.264 640x360 (streams %+v)", video, streams)
	}
	if n, _ := strconv.Atoi(video.NbReadFrames); n < 150 {
		t.Errorf("video has %d frames, want at least 150 of 180", n)
	}
	if audio == nil || audio.CodecName != "aac" {
		t.Fatalf("audio = %+v, want AAC", audio)
	}
	if n, _ := strconv.Atoi(audio.NbReadFrames); n < 200 {
		t.Errorf("audio has %d AAC frames, want at least 200 (4 s)", n)
	}
	if e := decodeErrors(t, "-i", filepath.Join(dir, "pub.flv")); e != "" {
		t.Errorf("FLV does not decode cleanly: %s", e)
	}
	checkTimeline(t, h.tags)

	// the original Opus, as Enhanced RTMP bodies with an RFC 7845 OpusHead
	if len(h.opus) < 250 {
		t.Fatalf("%d Opus bodies, want at least 250 (5 s)", len(h.opus))
	}
	a, err := flv.ParseAudioTag(h.opus[0].Body)
	if err != nil || !a.IsSequenceHeader() || a.FourCC != flv.FourCCOpus {
		t.Fatalf("first Opus body %x: %v, want a sequence start", h.opus[0].Body, err)
	}
	head, err := parseOpusHead(a.Data)
	if err != nil || head.channels != 2 || head.inputSampleRate != 48000 {
		t.Errorf("OpusHead %+v %v, want 2 channels at 48000 Hz (little-endian)", head, err)
	}
}

// checkTimeline checks that each track's timestamps never go back and that
// audio and video start together.
func checkTimeline(t *testing.T, tags []flv.Tag) {
	t.Helper()
	last := map[uint8]uint32{}
	first := map[uint8]uint32{}
	for _, tag := range tags {
		if l, ok := last[tag.Type]; ok && tag.Timestamp < l {
			t.Fatalf("type %d timestamp %d after %d", tag.Type, tag.Timestamp, l)
		}
		if _, ok := first[tag.Type]; !ok {
			first[tag.Type] = tag.Timestamp
		}
		last[tag.Type] = tag.Timestamp
	}
	// The tracks start together, give or take the wait for the first key
	// frame (a few hundred ms on a loaded machine); a timeline that is off
	// by the RTP clocks' random offsets would be seconds or hours apart.
	d := int64(first[flv.TagAudio]) - int64(first[flv.TagVideo])
	if d < -1000 || d > 1000 {
		t.Errorf("audio starts at %d ms, video at %d ms", first[flv.TagAudio], first[flv.TagVideo])
	}
	t.Logf("video %d..%d ms, audio %d..%d ms", first[flv.TagVideo], last[flv.TagVideo], first[flv.TagAudio], last[flv.TagAudio])
}

package webrtc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/mofang-live/mofang/media/webrtc/client"
)

// TestWHEPPlaysClip plays the test clip (H.264 without B-frames + AAC)
// fed as FLV bodies: the player's H.264 decodes at 640x360 and the Opus
// transcoded from the AAC decodes too.
func TestWHEPPlaysClip(t *testing.T) {
	tags := readTags(t, clipNoB(t))
	srv := newTestServer(t, Config{})
	out := srv.NewOutput(OutputConfig{Name: "clip"})
	defer out.Close()
	url := newHTTPFront(t, srv).addOutput("clip", out)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		feed(ctx, out, tags, 1)
	}()

	dir := t.TempDir()
	vf, err := os.Create(filepath.Join(dir, "video.h264"))
	if err != nil {
		t.Fatal(err)
	}
	hw := h264writer.NewWith(vf)
	ow, err := oggwriter.New(filepath.Join(dir, "audio.ogg"), 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	p, err := client.Play(ctx, client.PlayerConfig{URL: url, OnPacket: func(kind string, pkt *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		if kind == "video" {
			_ = hw.WriteRTP(pkt)
		} else {
			_ = ow.WriteRTP(pkt)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if n := out.Viewers(); n != 1 {
		t.Errorf("Viewers() = %d, want 1", n)
	}
	<-fed
	time.Sleep(500 * time.Millisecond)
	st := out.Stats()
	if err := p.Close(); err != nil {
		t.Errorf("DELETE: %v", err)
	}
	mu.Lock()
	hw.Close()
	ow.Close()
	mu.Unlock()

	if len(st) != 1 || st[0].PacketsSent == 0 || st[0].BytesSent == 0 || !st[0].Connected {
		t.Errorf("stats = %+v, want one connected viewer with packets sent", st)
	}
	vp, ap, _, _ := p.Packets()
	t.Logf("received %d video and %d audio packets; first video after %v", vp, ap, p.FirstVideo())

	vs := ffprobe(t, filepath.Join(dir, "video.h264"))
	if len(vs) != 1 || vs[0].CodecName != "h264" || vs[0].Width != 640 || vs[0].Height != 360 {
		t.Fatalf("video = %+v, want one H.264 640x360 stream", vs)
	}
	if n, _ := strconv.Atoi(vs[0].NbReadFrames); n < 120 {
		t.Errorf("video has %d frames, want at least 120 of the clip's 180", n)
	}
	if e := decodeErrors(t, "-i", filepath.Join(dir, "video.h264")); e != "" {
		t.Errorf("video does not decode cleanly: %s", e)
	}
	as := ffprobe(t, filepath.Join(dir, "audio.ogg"))
	if len(as) != 1 || as[0].CodecName != "opus" {
		t.Fatalf("audio = %+v, want one Opus stream", as)
	}
	if n, _ := strconv.Atoi(as[0].NbReadFrames); n < 150 {
		t.Errorf("audio has %d Opus frames, want at least 150 (3 s)", n)
	}
	if e := decodeErrors(t, "-i", filepath.Join(dir, "audio.ogg")); e != "" {
		t.Errorf("audio does not decode cleanly: %s", e)
	}
	// the session is gone from the server and the output
	deadline := time.Now().Add(5 * time.Second)
	for (out.Viewers() != 0 || srv.Sessions() != 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if out.Viewers() != 0 || srv.Sessions() != 0 {
		t.Errorf("after DELETE: %d viewers, %d sessions", out.Viewers(), srv.Sessions())
	}
	_ = errors.New
}

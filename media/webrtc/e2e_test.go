package webrtc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/webrtc/client"
)

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// TestTranscoderOnlyWithViewers: the AAC→Opus transcoder of a stream runs
// only while it has WHEP viewers, and stops TranscodeIdle after the last
// one left.
func TestTranscoderOnlyWithViewers(t *testing.T) {
	srv := newTestServer(t, Config{TranscodeIdle: 300 * time.Millisecond})
	out := srv.NewOutput(OutputConfig{Name: "aac"})
	defer out.Close()
	url := newHTTPFront(t, srv).addOutput("aac", out)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go feed(ctx, out, readTags(t, clipNoB(t)), 1)
	time.Sleep(500 * time.Millisecond)
	if out.Transcoding() {
		t.Fatal("transcoding without viewers")
	}
	players := make([]*client.Player, 2)
	for i := range players {
		p, err := client.Play(ctx, client.PlayerConfig{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		players[i] = p
	}
	tc := out.tc.Load()
	if tc == nil || !out.Transcoding() {
		t.Fatal("no transcoder with two viewers")
	}
	if !waitFor(5*time.Second, func() bool {
		_, a0, _, _ := players[0].Packets()
		_, a1, _, _ := players[1].Packets()
		return a0 > 20 && a1 > 20
	}) {
		t.Fatal("viewers get no Opus")
	}
	if out.tc.Load() != tc {
		t.Error("a second transcoder was started for the second viewer")
	}
	players[0].Close()
	time.Sleep(600 * time.Millisecond)
	if !out.Transcoding() {
		t.Fatal("transcoder stopped while a viewer remains")
	}
	players[1].Close()
	if !waitFor(5*time.Second, func() bool { return !out.Transcoding() }) {
		t.Fatal("transcoder still running after the last viewer left")
	}
	select {
	case <-tc.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("ffmpeg did not exit")
	}
}

// relay is an InputHandler feeding an Output, as the engine does for a
// WHIP stream played over WHEP: video and AAC through WritePacket, the
// publisher's Opus through WriteOpus.
type relay struct {
	out    *Output
	mu     sync.Mutex
	aac    int
	closed chan struct{}
}

func (r *relay) WritePacket(typ uint8, ts uint32, body []byte) {
	if typ == flv.TagAudio {
		r.mu.Lock()
		r.aac++
		r.mu.Unlock()
	}
	r.out.WritePacket(typ, ts, body)
}

func (r *relay) WriteOpus(ts uint32, body []byte) { r.out.WriteOpus(ts, body) }

func (r *relay) Close(error) { close(r.closed) }

// TestWHIPToWHEP: a WHIP publisher is played over WHEP with its own Opus
// (no transcoding back from AAC), and viewers' key frame requests reach
// the publisher.
func TestWHIPToWHEP(t *testing.T) {
	srv := newTestServer(t, Config{})
	front := newHTTPFront(t, srv)
	var in *Input
	var inMu sync.Mutex
	out := srv.NewOutput(OutputConfig{Name: "live", OnKeyFrameRequest: func() {
		inMu.Lock()
		defer inMu.Unlock()
		if in != nil {
			in.RequestKeyFrame()
		}
	}})
	defer out.Close()
	r := &relay{out: out, closed: make(chan struct{})}
	playURL := front.addOutput("live", out)
	pubURL := front.addInput("live", func() InputHandler { return r })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clipH264(t)
	clipOgg(t)
	go publishClip(t, ctx, pubURL)
	if !waitFor(5*time.Second, func() bool { return srv.Sessions() == 1 }) {
		t.Fatal("no WHIP session")
	}
	inMu.Lock()
	srv.mu.Lock()
	for _, res := range srv.resources {
		in, _ = res.(*Input)
	}
	srv.mu.Unlock()
	inMu.Unlock()

	var mu sync.Mutex
	var firstVideo, firstAudio time.Time
	start := time.Now()
	p, err := client.Play(ctx, client.PlayerConfig{URL: playURL, OnPacket: func(kind string, _ *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if kind == "video" && firstVideo.IsZero() {
			firstVideo = now
		}
		if kind == "audio" && firstAudio.IsZero() {
			firstAudio = now
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !waitFor(10*time.Second, func() bool { v, a, _, _ := p.Packets(); return v > 100 && a > 50 }) {
		v, a, _, _ := p.Packets()
		t.Fatalf("viewer got %d video and %d audio packets", v, a)
	}
	mu.Lock()
	t.Logf("first video %v, first audio %v after Play", firstVideo.Sub(start), firstAudio.Sub(start))
	mu.Unlock()
	if out.Transcoding() {
		t.Error("the Output transcodes AAC although the publisher's Opus is there")
	}
	r.mu.Lock()
	aac := r.aac
	r.mu.Unlock()
	if aac < 20 {
		t.Errorf("the hub got %d AAC bodies", aac)
	}
	// a viewer's PLI reaches the publisher
	plis := in.Stats().PLIs
	out.requestKeyFrame()
	time.Sleep(1100 * time.Millisecond)
	out.requestKeyFrame()
	if !waitFor(2*time.Second, func() bool { return in.Stats().PLIs > plis }) {
		t.Error("no PLI sent to the publisher after a viewer asked")
	}
	<-r.closed
}

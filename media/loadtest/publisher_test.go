package loadtest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media"
)

func testClip(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is required (make test installs it): %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "clip.mp4")
}

// startEngine starts a media engine with RTMP on a free loopback port
// and HTTP-FLV/HLS at e.HTTPHandler(), closed when the test ends.
func startEngine(t *testing.T) *media.Engine {
	t.Helper()
	e, err := media.New(media.Config{
		RTMPAddress:   "127.0.0.1:0",
		DisableRTSP:   true,
		DisableWebRTC: true,
		DisableSRT:    true,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestLoadClip(t *testing.T) {
	c, err := LoadClip(context.Background(), "", testClip(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.AAC == nil || len(c.SPS) == 0 || len(c.PPS) == 0 {
		t.Fatalf("clip lacks parameters: aac %v, sps %d, pps %d bytes", c.AAC, len(c.SPS), len(c.PPS))
	}
	var video, keys, audio int
	for _, f := range c.Frames {
		if f.Video {
			video++
			if f.Key {
				keys++
			}
		} else {
			audio++
		}
	}
	// the clip is 6 s of 30 fps video with AAC audio.
	if video != 180 || keys == 0 || audio < 200 || !c.Frames[0].Key {
		t.Errorf("%d video frames (%d key), %d audio frames, first key %v", video, keys, audio, c.Frames[0].Key)
	}
	if c.Duration < 5900*time.Millisecond || c.Duration > 6100*time.Millisecond {
		t.Errorf("duration %v, want 6 s", c.Duration)
	}
}

func TestParseClipRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"empty":     "",
		"not FLV":   "GIF89a.....",
		"no frames": "FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00",
	} {
		if _, err := ParseClip(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestPublisher publishes the clip with the Go publisher for longer than
// one pass, and checks with ffprobe over HTTP-FLV that the stream goes on
// past the clip's end with growing timestamps.
func TestPublisher(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatalf("ffprobe is required (make test installs it): %v", err)
	}
	clip, err := LoadClip(context.Background(), "", testClip(t))
	if err != nil {
		t.Fatal(err)
	}
	e := startEngine(t)
	srv := httptest.NewServer(e.HTTPHandler())
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	p := &Publisher{URL: "rtmp://" + e.RTMPAddr().String() + "/live/gopub", Clip: clip}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-read_intervals", "%+9",
		"-show_entries", "packet=stream_index,pts_time", "-of", "csv=p=0",
		srv.URL+"/live/gopub.flv").Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var last, first float64 = -1, -1
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		idx, pts, ok := strings.Cut(line, ",")
		if !ok || idx != "0" {
			continue
		}
		v, err := strconv.ParseFloat(pts, 64)
		if err != nil {
			continue
		}
		if first < 0 {
			first = v
		}
		last = v
		n++
	}
	if n < 200 || last-first < 7 {
		t.Errorf("ffprobe saw %d video packets from %.2f to %.2f s; want a stream past the 6 s clip", n, first, last)
	}
	if p.Frames() == 0 || p.BytesSent() == 0 {
		t.Errorf("publisher counted %d frames, %d bytes", p.Frames(), p.BytesSent())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("publisher: %v", err)
	}
}

// TestRunRooms runs a small many-rooms load against an engine in this
// process: every viewer of every protocol must be served.
func TestRunRooms(t *testing.T) {
	clip, err := LoadClip(context.Background(), "", testClip(t))
	if err != nil {
		t.Fatal(err)
	}
	e := startEngine(t)
	srv := httptest.NewServer(e.HTTPHandler())
	defer srv.Close()
	var rooms []Room
	for i := range 3 {
		name := "room" + strconv.Itoa(i)
		rtmp := "rtmp://" + e.RTMPAddr().String() + "/live/" + name
		rooms = append(rooms, Room{PublishURL: rtmp, RTMPURL: rtmp,
			FLVURL: srv.URL + "/live/" + name + ".flv", HLSURL: srv.URL + "/live/" + name + "/index.m3u8"})
	}
	var out strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// 4 s steps: over 2 s, a viewer on a machine busy with the rest of
	// the suite (and the race detector) once got under 90% of the bitrate.
	res, err := RunRooms(ctx, RoomsOptions{Rooms: rooms, Clip: clip, Steps: []int{2, 3}, RTMP: 1, FLV: 1, HLS: 1,
		StepDuration: 4 * time.Second, ServerPID: os.Getpid(), Out: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	last := res[len(res)-1]
	if len(res) != 2 || last.Viewers != 9 || last.Failed != 0 || last.Served != 9 || last.Publishing != 3 {
		t.Errorf("results %+v", res)
	}
	if res[0].IdlePercentPerRoom <= 0 || last.CPUPercent <= 0 {
		t.Errorf("no CPU figures: %+v", res)
	}
}

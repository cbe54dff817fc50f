package hls

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/mofang-live/mofang/media/flv"
)

// lavfiTags encodes secs of a test pattern at rate (ffmpeg's frame rate
// syntax) with H.264 (x264 defaults: B-frames), a key frame every gop
// frames, and AAC, as FLV tags: what an RTMP publisher sends.
func lavfiTags(t *testing.T, rate string, gop, secs int) []flv.Tag {
	t.Helper()
	needTool(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate="+rate, "-f", "lavfi", "-i", "sine=sample_rate=44100",
		"-t", strconv.Itoa(secs), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gop), "-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0",
		"-c:a", "aac", "-f", "flv", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.String())
	}
	r := flv.Reader{R: bytes.NewReader(out)}
	var tags []flv.Tag
	for {
		tag, err := r.ReadTag()
		if errors.Is(err, io.EOF) {
			return tags
		}
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tag)
	}
}

// syncBuffer is a log destination for a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLowLatencyRegularParts: for 30, 25 and 29.97 fps lives, every part
// but the last of a segment lasts the same whole number of frames (6, 5,
// 6: 200, 200, 200.2 ms), PART-TARGET never changes, and gohlslib's "this
// will cause an error in iOS clients" warning is not logged.
func TestLowLatencyRegularParts(t *testing.T) {
	for _, tc := range []struct {
		rate   string
		fps    float64
		gop    int
		frames int
	}{
		{"30", 30, 30, 6},
		{"25", 25, 25, 5},
		{"30000/1001", 30000.0 / 1001, 60, 6},
	} {
		t.Run(strings.ReplaceAll(tc.rate, "/", ":"), func(t *testing.T) {
			tags := lavfiTags(t, tc.rate, tc.gop, 12)
			var log syncBuffer
			m := newMuxer(t, Config{Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			srv := serve(t, m)
			want := time.Duration(float64(tc.frames) / tc.fps * float64(time.Second))
			wantTarget := time.Duration(math.Ceil(float64(want)/float64(time.Millisecond))) * time.Millisecond
			parts := 0
			for i, tag := range tags {
				if err := m.WritePacket(tag.Type, tag.Timestamp, tag.Body); err != nil {
					t.Fatal(err)
				}
				if i%100 != 99 || !m.Ready() {
					continue
				}
				// a player's view as the live goes on
				_, media := mediaPlaylist(t, srv.URL+"/live/test/")
				var pl playlist.Media
				if err := pl.Unmarshal([]byte(media)); err != nil {
					t.Fatalf("parse playlist: %v", err)
				}
				if pl.PartInf == nil || pl.PartInf.PartTarget != wantTarget {
					t.Errorf("PART-TARGET %+v, want %v", pl.PartInf, wantTarget)
				}
				for _, s := range pl.Segments {
					for j, p := range s.Parts {
						if j == len(s.Parts)-1 {
							continue // the last part of a segment ends at its key frame
						}
						parts++
						if d := p.Duration - want; d > time.Millisecond || d < -time.Millisecond {
							t.Errorf("part %s lasts %v, want %v (%d frames)", p.URI, p.Duration, want, tc.frames)
						}
					}
				}
			}
			if parts < 20 {
				t.Errorf("only %d parts seen", parts)
			}
			if l := log.String(); strings.Contains(l, "iOS") {
				t.Errorf("log of a regular live warns about iOS:\n%s", l)
			}
		})
	}
}

func TestPartFrames(t *testing.T) {
	for _, tc := range []struct {
		f      frameDuration
		frames int
	}{
		{newFrameDuration(3000, 1), 6},    // 30 fps: 200 ms
		{newFrameDuration(3600, 1), 5},    // 25 fps: 200 ms
		{newFrameDuration(3003, 1), 6},    // 29.97 fps: 200.2 ms
		{newFrameDuration(1500, 1), 12},   // 60 fps
		{newFrameDuration(3750, 1), 5},    // 24 fps: 208.3 ms
		{newFrameDuration(15015, 4), 5},   // 23.976 fps
		{newFrameDuration(6000, 1), 3},    // 15 fps
		{newFrameDuration(18000, 1), 1},   // 5 fps
		{newFrameDuration(90000, 1), 1},   // 1 fps
		{newFrameDuration(375, 1), 48},    // 240 fps
		{newFrameDuration(90090, 60), 12}, // 59.94 fps: 1501.5 ticks
	} {
		n, partMin := partFrames(tc.f, 200*time.Millisecond)
		if n != tc.frames {
			t.Errorf("%v: %d frames, want %d", tc.f, n, tc.frames)
		}
		// gohlslib's rules: the cut comes at the n-th frame (after n-1
		// frames are shorter than partMin, n frames are not), and
		// partMin is over 85% of the n frames it spans.
		fd := tc.f.duration()
		span := time.Duration(n) * fd
		if partMin <= time.Duration(n-1)*fd || partMin > span || float64(partMin) <= 0.85*float64(span) {
			t.Errorf("%v: part min %v for %d frames of %v", tc.f, partMin, n, fd)
		}
	}
}

func TestFrameDurations(t *testing.T) {
	for _, tc := range []struct {
		rate string
		want frameDuration
	}{
		{"30", frameDuration{3000, 1}},
		{"30000/1001", frameDuration{3003, 1}},
		{"24000/1001", frameDuration{15015, 4}},
		{"25", frameDuration{3600, 1}},
	} {
		var got frameDuration
		for _, tag := range lavfiTags(t, tc.rate, 10, 1) {
			if v, err := flv.ParseVideoTag(tag.Body); err == nil && tag.Type == flv.TagVideo && v.IsSequenceHeader() {
				c, err := parseVideoConfig(v)
				if err != nil {
					t.Fatal(err)
				}
				got = c.frame
			}
		}
		if got != tc.want {
			t.Errorf("SPS of %s fps: frame of %v ticks, want %v", tc.rate, got, tc.want)
		}
	}
	// measured on millisecond timestamps
	for _, tc := range []struct {
		span int64
		n    int
		want frameDuration
	}{
		{233, 7, frameDuration{3000, 1}},    // 30 fps, 8 frames
		{280, 7, frameDuration{3600, 1}},    // 25 fps
		{3337, 100, frameDuration{3003, 1}}, // 29.97 fps
		{1001, 24, frameDuration{15015, 4}}, // 23.976 fps
		{100, 2, frameDuration{}},           // too few frames
		{0, 10, frameDuration{}},
	} {
		if got := measuredFrameDuration(tc.span, tc.n); got != tc.want {
			t.Errorf("%d frames over %d ms: %v, want %v", tc.n, tc.span, got, tc.want)
		}
	}
}

func TestFrameGrid(t *testing.T) {
	// 29.97 fps with FLV's millisecond timestamps, B-frames (PTS order
	// 0 3 1 2 ...): back on the 3003-tick grid.
	g := newFrameGrid(frameDuration{3003, 1})
	for _, k := range []int64{0, 3, 1, 2, 6, 4, 5, 9, 7, 8, 1000, 998, 999} {
		ms := int64(math.Round(float64(k) * 1001 / 30))
		if got := g.snap(ms * 90); got != k*3003 {
			t.Errorf("frame %d at %d ms: %d, want %d", k, ms, got, k*3003)
		}
	}
	// a jump off the grid starts a new one.
	const jump = 1665*3003 + 1500
	if got := g.snap(jump); got != jump {
		t.Errorf("off-grid PTS moved to %d", got)
	}
	if got := g.snap(jump + 3003 + 45); got != jump+3003 {
		t.Errorf("next frame of the new grid: %d", got)
	}
}

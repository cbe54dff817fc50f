// Package mediatest gives the media packages' tests the test clip (as a
// file, or as FLV tags made once per process by ffmpeg), ffmpeg and
// ffprobe runners, a publisher that feeds a hub stream from ffmpeg, and
// waits and readers shared by the packages' tests. ffmpeg and ffprobe are
// required: their absence fails the test, it is not skipped.
package mediatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

// ClipPath is the 6 s test clip: 640x360 30 fps H.264 main, GOP 30, AAC
// 44.1 kHz stereo.
func ClipPath(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "clip.mp4")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test clip: %v", err)
	}
	return p
}

// NeedTool fails t unless the named program is installed.
func NeedTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is required (make test installs it): %v", name, err)
	}
}

var (
	mu    sync.Mutex
	cache = map[string][]flv.Tag{}
)

// ClipTags returns the tags of the test clip remuxed (or transcoded with
// extra ffmpeg output args) to FLV by ffmpeg.
func ClipTags(t testing.TB, args ...string) []flv.Tag {
	t.Helper()
	NeedTool(t, "ffmpeg")
	key := strings.Join(args, " ")
	mu.Lock()
	defer mu.Unlock()
	if tags, ok := cache[key]; ok {
		return tags
	}
	if len(args) == 0 {
		args = []string{"-c", "copy"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", append(append([]string{"-v", "error", "-i", ClipPath(t)}, args...), "-f", "flv", "-")...)
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
			break
		}
		if err != nil {
			t.Fatalf("read FLV: %v", err)
		}
		tags = append(tags, tag)
	}
	cache[key] = tags
	return tags
}

// ProbeStream is one stream as ffprobe reports it.
type ProbeStream struct {
	CodecType  string `json:"codec_type"`
	CodecName  string `json:"codec_name"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
}

// ProbeResult is what Probe reads.
type ProbeResult struct {
	Streams []ProbeStream `json:"streams"`
	Format  struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// Probe runs ffprobe on url with a deadline.
func Probe(t testing.TB, url string, extra ...string) ProbeResult {
	t.Helper()
	NeedTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-v", "error", "-print_format", "json", "-show_streams", "-show_format"}, extra...)
	cmd := exec.CommandContext(ctx, "ffprobe", append(args, url)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", url, err, stderr.String())
	}
	var res ProbeResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output: %v: %s", err, out)
	}
	return res
}

// Stream returns the first stream of a type ("video", "audio").
func (p ProbeResult) Stream(typ string) (ProbeStream, bool) {
	for _, s := range p.Streams {
		if s.CodecType == typ {
			return s, true
		}
	}
	return ProbeStream{}, false
}

package record

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

// clipPath is the 6 s test clip: 640x360 30 fps H.264 main, GOP 30, AAC
// 44.1 kHz stereo.
func clipPath(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "clip.mp4")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("test clip: %v", err)
	}
	return p
}

func needTool(t testing.TB, name string) {
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

var (
	clipMu    sync.Mutex
	clipCache = map[string][]flv.Tag{}
)

// clipTags returns the tags of the test clip remuxed (or transcoded with
// extra ffmpeg output args) to FLV by ffmpeg.
func clipTags(t testing.TB, args ...string) []flv.Tag {
	t.Helper()
	needTool(t, "ffmpeg")
	key := strings.Join(args, " ")
	clipMu.Lock()
	defer clipMu.Unlock()
	if tags, ok := clipCache[key]; ok {
		return tags
	}
	if len(args) == 0 {
		args = []string{"-c", "copy"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", append(append([]string{"-v", "error", "-i", clipPath(t)}, args...), "-f", "flv", "-")...)
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
	clipCache[key] = tags
	return tags
}

// feed writes tags to rec with timestamps shifted by offset ms.
func feed(rec *Recording, tags []flv.Tag, offset uint32) {
	for _, tag := range tags {
		rec.WritePacket(tag.Type, tag.Timestamp+offset, tag.Body)
	}
}

type probeStream struct {
	CodecType string `json:"codec_type"`
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

type probeResult struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// ffprobe runs ffprobe on url with a deadline.
func ffprobe(t testing.TB, url string, extra ...string) probeResult {
	t.Helper()
	needTool(t, "ffprobe")
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
	var res probeResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output: %v: %s", err, out)
	}
	return res
}

func (p probeResult) stream(typ string) (probeStream, bool) {
	for _, s := range p.Streams {
		if s.CodecType == typ {
			return s, true
		}
	}
	return probeStream{}, false
}

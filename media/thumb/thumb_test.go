package thumb

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyFrame is the first access unit of the test clip (640x360 H.264) in
// Annex-B, parameter sets first, as ffmpeg's h264_mp4toannexb makes it.
func keyFrame(t *testing.T) []byte {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is required (make test installs it): %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	clip := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "clip.mp4")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", clip,
		"-frames:v", "1", "-c:v", "copy", "-bsf:v", "h264_mp4toannexb", "-an", "-f", "h264", "pipe:1").Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("extracting a key frame: %v", err)
	}
	return out
}

// source is a Source of a fixed frame.
type source struct {
	frame Frame
	err   error
	done  chan struct{}
}

func newSource(f Frame) *source { return &source{frame: f, done: make(chan struct{})} }

func (s *source) KeyFrame() (Frame, error) { return s.frame, s.err }
func (s *source) Done() <-chan struct{}    { return s.done }

// script writes an executable shell script standing in for ffmpeg.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ffmpeg")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestPictureIsTheKeyFrame: ffmpeg decodes the key frame into a JPEG
// that Go's image/jpeg reads, at the configured height (never larger
// than the video), keeping the aspect ratio.
func TestPictureIsTheKeyFrame(t *testing.T) {
	frame := keyFrame(t)
	for _, c := range []struct{ height, w, h int }{{0, 640, 360}, {180, 320, 180}, {720, 640, 360}} {
		m := New(Config{Height: c.height, Logger: quiet()})
		pic, err := m.Picture(context.Background(), "s", newSource(Frame{Codec: H264, AnnexB: frame}))
		m.Close()
		if err != nil {
			t.Fatalf("height %d: %v", c.height, err)
		}
		img, err := jpeg.Decode(bytes.NewReader(pic.JPEG))
		if err != nil {
			t.Fatalf("height %d: not a JPEG: %v", c.height, err)
		}
		if b := img.Bounds(); b.Dx() != c.w || b.Dy() != c.h {
			t.Fatalf("height %d: picture %dx%d, want %dx%d", c.height, b.Dx(), b.Dy(), c.w, c.h)
		}
	}
}

// TestOneDecodePerInterval: callers at once share one decode; within the
// interval the cached picture is served; after it, a new key frame is
// decoded once more, and the same key frame again is not decoded at all.
func TestOneDecodePerInterval(t *testing.T) {
	frame := keyFrame(t)
	m := New(Config{Interval: 300 * time.Millisecond, Logger: quiet()})
	defer m.Close()
	src := newSource(Frame{Codec: H264, AnnexB: frame, ID: 1})
	var wg sync.WaitGroup
	pics := make([][]byte, 8)
	for i := range pics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := m.Picture(context.Background(), "s", src)
			if err != nil {
				t.Error(err)
			}
			pics[i] = p.JPEG
		}()
	}
	wg.Wait()
	if got := m.Stats().Decodes; got != 1 {
		t.Fatalf("8 callers at once: %d decodes, want 1", got)
	}
	for _, p := range pics {
		if !bytes.Equal(p, pics[0]) {
			t.Fatal("callers got different pictures")
		}
	}
	if _, err := m.Picture(context.Background(), "s", src); err != nil || m.Stats().Decodes != 1 {
		t.Fatalf("within the interval: %v, %d decodes", err, m.Stats().Decodes)
	}
	time.Sleep(350 * time.Millisecond)
	if _, err := m.Picture(context.Background(), "s", src); err != nil || m.Stats().Decodes != 1 {
		t.Fatalf("the same key frame after the interval: %v, %d decodes, want it reused", err, m.Stats().Decodes)
	}
	src.frame.ID = 2
	time.Sleep(350 * time.Millisecond)
	if _, err := m.Picture(context.Background(), "s", src); err != nil || m.Stats().Decodes != 2 {
		t.Fatalf("a new key frame after the interval: %v, %d decodes, want 2", err, m.Stats().Decodes)
	}

	// The stream ends: its picture is forgotten.
	close(src.done)
	deadline := time.Now().Add(5 * time.Second)
	for {
		m.mu.Lock()
		n := len(m.entries)
		m.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the picture of an ended stream is kept")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBounds: a hung ffmpeg is killed at the timeout, an output over the
// cap is refused, a failure is not retried within the interval, and
// decodes of different streams never run more at once than allowed.
func TestBounds(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		runs := filepath.Join(t.TempDir(), "runs")
		m := New(Config{FFmpeg: script(t, "echo run >> "+runs+"\nexec sleep 30"), Timeout: 300 * time.Millisecond, Logger: quiet()})
		defer m.Close()
		src := newSource(Frame{Codec: H264, AnnexB: []byte{0, 0, 0, 1}})
		start := time.Now()
		_, err := m.Picture(context.Background(), "s", src)
		if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "did not finish") {
			t.Fatalf("hung ffmpeg: %v", err)
		}
		t.Logf("a hung ffmpeg was given up after %v", time.Since(start).Round(time.Millisecond))
		if _, err := m.Picture(context.Background(), "s", src); !errors.Is(err, ErrDecode) {
			t.Fatalf("again within the interval: %v", err)
		}
		if b, _ := os.ReadFile(runs); strings.Count(string(b), "run") != 1 {
			t.Fatalf("ffmpeg ran %d times, want once per interval", strings.Count(string(b), "run"))
		}
		if s := m.Stats(); s.Failures != 1 || s.Decodes != 0 || s.Running != 0 {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("cap", func(t *testing.T) {
		m := New(Config{FFmpeg: script(t, "cat > /dev/null; head -c 100000 /dev/zero"), MaxBytes: 1000, Logger: quiet()})
		defer m.Close()
		_, err := m.Picture(context.Background(), "s", newSource(Frame{Codec: H264, AnnexB: []byte{0, 0, 0, 1}}))
		if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "exceeds 1000 bytes") {
			t.Fatalf("output over the cap: %v", err)
		}
	})
	t.Run("not a JPEG", func(t *testing.T) {
		m := New(Config{FFmpeg: script(t, "cat > /dev/null; echo hello"), Logger: quiet()})
		defer m.Close()
		_, err := m.Picture(context.Background(), "s", newSource(Frame{Codec: H264, AnnexB: []byte{0, 0, 0, 1}}))
		if !errors.Is(err, ErrDecode) {
			t.Fatalf("output not a JPEG: %v", err)
		}
	})
	t.Run("semaphore", func(t *testing.T) {
		dir := t.TempDir()
		// a run that finds another running leaves a mark
		body := "cat > /dev/null; mkdir " + dir + "/running 2>/dev/null || echo overlap >> " + dir + "/overlaps\n" +
			"echo run >> " + dir + "/runs; sleep 0.2; rmdir " + dir + "/running 2>/dev/null; exit 1"
		m := New(Config{FFmpeg: script(t, body), MaxDecodes: 1, Timeout: 10 * time.Second, Logger: quiet()})
		defer m.Close()
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.Picture(context.Background(), string(rune('a'+i)), newSource(Frame{Codec: H264, AnnexB: []byte{0, 0, 0, 1}}))
			}()
		}
		wg.Wait()
		runs, _ := os.ReadFile(dir + "/runs")
		overlaps, _ := os.ReadFile(dir + "/overlaps")
		if strings.Count(string(runs), "run") != 4 || len(overlaps) != 0 {
			t.Fatalf("4 streams, 1 slot: %d runs, overlaps %q", strings.Count(string(runs), "run"), overlaps)
		}
	})
}

// TestWithoutFFmpeg: no ffmpeg means ErrUnavailable, logged once; a
// stream without a decodable key frame is ErrNoPicture, and ffmpeg is
// not run for it.
func TestWithoutFFmpeg(t *testing.T) {
	var logs syncBuffer
	m := New(Config{FFmpeg: filepath.Join(t.TempDir(), "no-ffmpeg"), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer m.Close()
	src := newSource(Frame{Codec: H264, AnnexB: []byte{0, 0, 0, 1}})
	for range 3 {
		if _, err := m.Picture(context.Background(), "s", src); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("without ffmpeg: %v", err)
		}
	}
	if n := strings.Count(logs.String(), "ffmpeg not found"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}

	runs := filepath.Join(t.TempDir(), "runs")
	m2 := New(Config{FFmpeg: script(t, "echo run >> "+runs), Logger: quiet()})
	defer m2.Close()
	for _, s := range []*source{{err: ErrNoPicture, done: make(chan struct{})}, newSource(Frame{Codec: "av1"})} {
		if _, err := m2.Picture(context.Background(), "s", s); !errors.Is(err, ErrNoPicture) {
			t.Fatalf("no key frame: %v", err)
		}
	}
	if _, err := os.Stat(runs); err == nil {
		t.Fatal("ffmpeg ran for a stream without a picture")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

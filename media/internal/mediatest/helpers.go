package media

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// testClip is the H.264+AAC clip the tests publish.
func testClip(t testing.TB) string { return mediatest.ClipPath(t) }

// needFFmpeg fails t unless ffmpeg and ffprobe are installed.
func needFFmpeg(t testing.TB) {
	t.Helper()
	mediatest.NeedTool(t, "ffmpeg")
	mediatest.NeedTool(t, "ffprobe")
}

// testLogger writes engine logs to the test log.
type testLogWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testLogWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func newTestEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if cfg.RTMPAddress == "" {
		cfg.RTMPAddress = "127.0.0.1:0"
	}
	if cfg.RTSPAddress == "" {
		cfg.RTSPAddress = "127.0.0.1:0"
	}
	if cfg.RTSPUDPRTPAddress == "" && !cfg.DisableRTSPUDP {
		cfg.RTSPUDPRTPAddress, cfg.RTSPUDPRTCPAddress = freeUDPPair(t)
	}
	lw := &testLogWriter{t: t}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		lw.mu.Lock()
		lw.done = true
		lw.mu.Unlock()
	})
	return e
}

func rtmpURL(e *Engine, pathAndQuery string) string {
	return "rtmp://" + e.RTMPAddr().String() + pathAndQuery
}

// ffmpegProc is a running ffmpeg.
type ffmpegProc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startFFmpeg runs ffmpeg with args; it is killed at the end of the test.
func startFFmpeg(t testing.TB, args ...string) *ffmpegProc {
	t.Helper()
	args = append([]string{"-hide_banner", "-loglevel", "error", "-nostdin"}, args...)
	cmd := exec.Command("ffmpeg", args...)
	p := &ffmpegProc{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *ffmpegProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill() //nolint:errcheck
	<-p.done
}

// publishClip publishes the clip in a loop, at real time, as RTMP.
func publishClip(t testing.TB, url string) *ffmpegProc {
	return startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", testClip(t), "-c", "copy", "-f", "flv", url)
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLive waits until stream name has video and audio headers.
func waitLive(t testing.TB, e *Engine, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, ok := e.Stream(name)
		if ok && st.Live && st.VideoCodec != "" && st.AudioCodec != "" && st.BytesIn > 100000 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s not live after 10 s: %+v", name, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type probeStream struct {
	CodecType  string `json:"codec_type"`
	CodecName  string `json:"codec_name"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
}

// ffprobe reads url and returns its streams.
func ffprobe(t testing.TB, url string, extra ...string) ([]probeStream, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args := append([]string{"-v", "error", "-rw_timeout", "10000000"}, extra...)
	args = append(args, "-show_streams", "-of", "json", url)
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w: %s", url, err, stderr.String())
	}
	var res struct {
		Streams []probeStream `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, err
	}
	return res.Streams, nil
}

func checkClipStreams(t testing.TB, ss []probeStream) {
	t.Helper()
	var v, a bool
	for _, s := range ss {
		switch s.CodecType {
		case "video":
			if s.CodecName != "h264" || s.Width != 640 || s.Height != 360 {
				t.Errorf("video stream %+v, want h264 640x360", s)
			}
			v = true
		case "audio":
			if s.CodecName != "aac" {
				t.Errorf("audio stream %+v, want aac", s)
			}
			a = true
		}
	}
	if !v || !a {
		t.Errorf("streams %+v: want video and audio", ss)
	}
}

// discard reads r until it fails.
func discard(r io.Reader) { io.Copy(io.Discard, r) } //nolint:errcheck

var _ = net.Dial

// flvCounter reads an HTTP-FLV stream in the background.
type flvCounter struct {
	mu        sync.Mutex
	n         int64
	lastVideo int64
	backwards bool
	readErr   error
	done      bool
}

func startFLVCounter(t testing.TB, ctx context.Context, url string) *flvCounter {
	t.Helper()
	c := &flvCounter{lastVideo: -1}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	go func() {
		defer res.Body.Close()
		fr := &flv.Reader{R: res.Body}
		for {
			tag, err := fr.ReadTag()
			c.mu.Lock()
			if err != nil {
				if err != io.EOF && ctx.Err() == nil {
					c.readErr = err
				}
				c.done = true
				c.mu.Unlock()
				return
			}
			c.n += int64(len(tag.Body))
			if tag.Type == flv.TagVideo {
				if int64(tag.Timestamp) < c.lastVideo {
					c.backwards = true
				}
				c.lastVideo = int64(tag.Timestamp)
			}
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *flvCounter) bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *flvCounter) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

func (c *flvCounter) isDone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

func (c *flvCounter) nonMonotonic() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.backwards
}

// freeUDPPair finds two free consecutive UDP ports on 127.0.0.1, the first even.
func freeUDPPair(t testing.TB) (string, string) {
	t.Helper()
	for range 100 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if port%2 != 0 {
			port++
		}
		a := fmt.Sprintf("127.0.0.1:%d", port)
		b := fmt.Sprintf("127.0.0.1:%d", port+1)
		c1, err1 := net.ListenPacket("udp", a)
		c2, err2 := net.ListenPacket("udp", b)
		if c1 != nil {
			c1.Close()
		}
		if c2 != nil {
			c2.Close()
		}
		if err1 == nil && err2 == nil {
			return a, b
		}
	}
	t.Fatal("no free UDP port pair")
	return "", ""
}

func rtspURL(e *Engine, pathAndQuery string) string {
	return "rtsp://" + e.RTSPAddr().String() + pathAndQuery
}

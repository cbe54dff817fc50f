package mediatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
)

// NeedFFmpeg fails t unless ffmpeg and ffprobe are installed.
func NeedFFmpeg(t testing.TB) {
	t.Helper()
	NeedTool(t, "ffmpeg")
	NeedTool(t, "ffprobe")
}

// logWriter writes logs to the test log until the test has ended.
type logWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

// Logger returns a logger (level info) that writes to t's log, and drops
// what comes after the test's cleanups that were registered after the
// call (so: call it first, then register the Close of what logs to it).
func Logger(t testing.TB) *slog.Logger {
	lw := &logWriter{t: t}
	t.Cleanup(func() {
		lw.mu.Lock()
		lw.done = true
		lw.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// Proc is a running ffmpeg.
type Proc struct {
	cmd *exec.Cmd
	// Stderr is what ffmpeg logged.
	Stderr *LockedBuffer
	// Done is closed when ffmpeg has exited; Err is then its exit error.
	Done chan struct{}
	Err  error
	// fed, if set, is closed when Publish is done with the stream.
	fed chan struct{}
}

// LockedBuffer is a bytes.Buffer safe for concurrent use.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartFFmpeg runs ffmpeg with args; it is killed at the end of the test.
func StartFFmpeg(t testing.TB, args ...string) *Proc {
	t.Helper()
	return startFFmpeg(t, nil, args...)
}

func startFFmpeg(t testing.TB, stdout *os.File, args ...string) *Proc {
	t.Helper()
	args = append([]string{"-hide_banner", "-loglevel", "error", "-nostdin"}, args...)
	cmd := exec.Command("ffmpeg", args...)
	p := &Proc{cmd: cmd, Stderr: &LockedBuffer{}, Done: make(chan struct{})}
	cmd.Stderr = p.Stderr
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.Err = cmd.Wait()
		close(p.Done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// WaitExit waits up to timeout for ffmpeg to exit and returns its stderr;
// it fails t if ffmpeg is still running then.
func (p *Proc) WaitExit(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case <-p.Done:
	case <-time.After(timeout):
		t.Fatalf("ffmpeg still running after %v (silent hang?); stderr: %s", timeout, p.Stderr.String())
	}
	return p.Stderr.String()
}

// Kill kills ffmpeg and waits for it to exit (and, for Publish, for the
// stream to be unpublished).
func (p *Proc) Kill() {
	select {
	case <-p.Done:
	default:
		p.cmd.Process.Kill() //nolint:errcheck
		<-p.Done
	}
	if p.fed != nil {
		<-p.fed
	}
}

// Publish runs ffmpeg with args (its input and codec options) writing FLV
// to a pipe, and publishes the tags to stream name of h as they come: the
// same message bodies an RTMP publisher sends (ffmpeg's FLV has no
// "@setDataFrame" wrapper to remove), so a protocol package's tests get
// the stream of an RTMP publisher without RTMP. The publisher is
// registered as an RTMP client of 127.0.0.1. When ffmpeg exits (Kill),
// the stream is unpublished.
func Publish(t testing.TB, h *hub.Hub, name string, args ...string) *Proc {
	t.Helper()
	NeedTool(t, "ffmpeg")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := h.NewClient(hub.ClientInfo{Protocol: hub.ProtocolRTMP, Remote: netip.MustParseAddrPort("127.0.0.1:1"),
		Close: func() { pr.Close() }})
	s, err := h.Publish(name, c)
	if err != nil {
		pr.Close()
		pw.Close()
		h.RemoveClient(c)
		t.Fatalf("publish %s: %v", name, err)
	}
	c.SetRole(hub.RolePublish, name)
	p := startFFmpeg(t, pw, append(args, "-f", "flv", "pipe:1")...)
	pw.Close()
	p.fed = make(chan struct{})
	go func() {
		defer close(p.fed)
		defer h.RemoveClient(c)
		defer h.Unpublish(s, c)
		defer pr.Close()
		fr := &flv.Reader{R: pr}
		for {
			tag, err := fr.ReadTag()
			if err != nil {
				return
			}
			if len(tag.Body) == 0 && tag.Type != flv.TagScript {
				continue
			}
			s.WritePacket(tag.Type, tag.Timestamp, tag.Body)
		}
	}()
	return p
}

// PublishClip publishes the test clip in a loop, at real time, with Publish.
func PublishClip(t testing.TB, h *hub.Hub, name string) *Proc {
	t.Helper()
	return Publish(t, h, name, "-re", "-stream_loop", "-1", "-i", ClipPath(t), "-c", "copy")
}

// WaitFor polls cond every 50 ms until it holds, failing t after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitLive waits until stream name of h is live with video and audio
// headers and 100 kB received.
func WaitLive(t testing.TB, h *hub.Hub, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st hub.StreamStats
		s := h.Stream(name)
		if s != nil {
			st = s.Stats()
			if st.Live && st.VideoCodec != "" && st.AudioCodec != "" && st.BytesIn > 100000 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s not live after 10 s: %+v", name, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitMedia waits until stream name of h has video and audio and a key
// frame (generous: ffmpeg encodes live on a loaded machine).
func WaitMedia(t testing.TB, h *hub.Hub, name string) {
	t.Helper()
	WaitFor(t, 30*time.Second, "stream "+name+" with video and audio", func() bool {
		s := h.Stream(name)
		if s == nil {
			return false
		}
		st := s.Stats()
		return st.Publishing && st.VideoCodec != "" && st.AudioCodec != "" && s.LastKey() != nil
	})
}

// ProbeStreams reads url with ffprobe and returns its streams.
func ProbeStreams(t testing.TB, url string, extra ...string) ([]ProbeStream, error) {
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
		Streams []ProbeStream `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, err
	}
	return res.Streams, nil
}

// CheckClipStreams checks that ss are the test clip's: H.264 640x360 and AAC.
func CheckClipStreams(t testing.TB, ss []ProbeStream) {
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

// FLVCounter reads an HTTP-FLV stream in the background.
type FLVCounter struct {
	mu        sync.Mutex
	n         int64
	lastVideo int64
	backwards bool
	readErr   error
	done      bool
}

// StartFLVCounter gets url and reads its FLV tags until ctx ends or the
// stream does.
func StartFLVCounter(t testing.TB, ctx context.Context, url string) *FLVCounter {
	t.Helper()
	c := &FLVCounter{lastVideo: -1}
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

// Bytes returns the tag body bytes read.
func (c *FLVCounter) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Err returns the read error, if the stream did not end cleanly.
func (c *FLVCounter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

// IsDone reports whether the stream has ended.
func (c *FLVCounter) IsDone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

// NonMonotonic reports whether video timestamps went backwards.
func (c *FLVCounter) NonMonotonic() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.backwards
}

// FreeUDPPair finds two free consecutive UDP ports on 127.0.0.1, the first even.
func FreeUDPPair(t testing.TB) (string, string) {
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

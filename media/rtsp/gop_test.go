package rtsp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// publishLongGOP publishes a live encode as an RTMP publisher would
// (mediatest.Publish): 640x360 30 fps H.264 with a key frame every 2 s
// (B-frames on) and 44.1 kHz AAC.
func publishLongGOP(t *testing.T, h *hub.Hub, name string) {
	t.Helper()
	mediatest.Publish(t, h, name, "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k")
	mediatest.WaitMedia(t, h, name)
}

// waitMidGOP waits until the newest packet of stream name is between from
// and to after its newest key frame.
func waitMidGOP(t *testing.T, h *hub.Hub, name string, from, to time.Duration) {
	t.Helper()
	s := h.Stream(name)
	if s == nil {
		t.Fatalf("no stream %s", name)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if kp, np := s.LastKey(), s.Last(); kp != nil && np != nil {
			d := time.Duration(int64(np.Timestamp())-int64(kp.Timestamp())) * time.Millisecond
			if d >= from && d <= to {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("stream %s never %v–%v into a GOP", name, from, to)
}

type probePacket struct {
	CodecType string `json:"codec_type"`
	Flags     string `json:"flags"`
	PTSTime   string `json:"pts_time"`
}

// probePackets returns the first n packets ffprobe reads from an RTSP URL
// over transport.
func probePackets(t *testing.T, url, transport string, n int) []probePacket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", transport,
		"-show_packets", "-show_entries", "packet=codec_type,flags,pts_time",
		"-read_intervals", "%+#"+strconv.Itoa(n), "-of", "json", url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("ffprobe %s: %v: %s", url, err, stderr.String())
		return nil
	}
	var res struct {
		Packets []probePacket `json:"packets"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Error(err)
	}
	return res.Packets
}

// decodeErrors decodes d of an RTSP URL with ffmpeg over transport and
// returns what it logged at level warning or above (decoding errors, RTP
// packets missed).
func decodeErrors(t *testing.T, url, transport string, d time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-v", "warning",
		"-rtsp_transport", transport, "-i", url, "-t", strconv.FormatFloat(d.Seconds(), 'f', 1, 64), "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("ffmpeg: %v: %s", err, out)
	}
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(out), "\n") {
		// ffmpeg 5.1's output side rounding millisecond timestamps to
		// 1/30 s, not the input: RTMP input gets it too.
		if !strings.Contains(l, "non monotonically increasing dts to muxer") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// checkFirstKey fails t unless the first video packet of pkts is a key frame.
func checkFirstKey(t *testing.T, who string, pkts []probePacket) {
	t.Helper()
	for _, p := range pkts {
		if p.CodecType != "video" {
			continue
		}
		if !strings.Contains(p.Flags, "K") {
			t.Errorf("%s: first video packet %+v is not a key frame", who, p)
		}
		return
	}
	t.Errorf("%s: no video packet in %+v", who, pkts)
}

// TestRTSPJoinAtKeyFrame: an RTSP viewer joining in the middle of a GOP
// starts at the cached key frame, like RTMP and HTTP-FLV viewers: its first
// video packet is a key frame and it decodes without errors. The first
// viewer (which creates the stream's RTSP output), later ones, over TCP
// and UDP, one at a time and several at once.
func TestRTSPJoinAtKeyFrame(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h, e := newTestEnv(t, hub.Config{})
	publishLongGOP(t, h, "gop")
	url := rtspURL(e, "/live/gop")
	for i, tr := range []string{"tcp", "tcp", "tcp", "udp"} {
		waitMidGOP(t, h, "gop", 900*time.Millisecond, 1300*time.Millisecond)
		checkFirstKey(t, fmt.Sprintf("viewer %d (%s)", i, tr), probePackets(t, url, tr, 20))
	}
	for _, tr := range []string{"tcp", "udp"} {
		waitMidGOP(t, h, "gop", 900*time.Millisecond, 1300*time.Millisecond)
		if out := decodeErrors(t, url, tr, 3*time.Second); out != "" {
			t.Errorf("decoding a viewer that joined mid-GOP over %s:\n%s", tr, out)
		}
	}

	// several viewers joining at once, while another one plays. Over TCP:
	// gortsplib v5.6.5 races (data race, server_stream.go:256 vs
	// server_session.go:1116) when a UDP session sets up while another
	// session sets up its second track.
	playing := mediatest.StartFFmpeg(t, "-rtsp_transport", "tcp", "-i", url, "-f", "null", "-")
	waitMidGOP(t, h, "gop", 900*time.Millisecond, 1300*time.Millisecond)
	var wg sync.WaitGroup
	outs := make([]string, 4)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = decodeErrors(t, url, "tcp", 3*time.Second)
		}()
	}
	wg.Wait()
	for i, out := range outs {
		if out != "" {
			t.Errorf("viewer %d of 4 joining at once:\n%s", i, out)
		}
	}
	playing.Kill()
	if out := playing.Stderr.String(); out != "" {
		t.Errorf("viewer playing while others joined:\n%s", out)
	}
}

package media

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// RTSP publishers read over RTMP, HTTP-FLV and RTSP, and an RTMP publisher
// back with other settings read over RTSP, HTTP-FLV and HLS: through the
// engine. media/rtsp's own tests are in its package.

func TestRTSPPublish(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{})
	srv := newFLVServer(t, e)
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			name := "rtspin" + transport
			p := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", testClip(t), "-c", "copy",
				"-f", "rtsp", "-rtsp_transport", transport, rtspURL(e, "/live/"+name+"?sign=x"))
			waitLive(t, e, name)
			st, _ := e.Stream(name)
			if st.Protocol != ProtocolRTSP || st.Width != 640 || st.Height != 360 {
				t.Errorf("stats %+v", st)
			}
			ss, err := ffprobe(t, rtmpURL(e, "/live/"+name))
			if err != nil {
				t.Fatal(err)
			}
			checkClipStreams(t, ss)
			ss, err = ffprobe(t, srv.URL+"/live/"+name+".flv")
			if err != nil {
				t.Fatal(err)
			}
			checkClipStreams(t, ss)
			p.Kill()
		})
	}
}

// TestRTSPH265 publishes H.265 + Opus over RTSP: it is read back over RTSP
// (RTP → Enhanced RTMP bodies → RTP) and over HTTP-FLV as Enhanced FLV.
func TestRTSPH265(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{})
	srv := newFLVServer(t, e)
	startFFmpeg(t, "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error",
		"-c:a", "libopus", "-f", "rtsp", "-rtsp_transport", "tcp", rtspURL(e, "/live/hevc"))
	waitFor(t, 15*time.Second, "H.265 stream", func() bool {
		st, ok := e.Stream("hevc")
		return ok && st.VideoCodec == "h265" && st.AudioCodec == "opus" && st.BytesIn > 20000
	})
	st, _ := e.Stream("hevc")
	if st.Width != 320 || st.Height != 240 {
		t.Errorf("stats %+v", st)
	}
	ss, err := ffprobe(t, rtspURL(e, "/live/hevc"), "-rtsp_transport", "tcp")
	if err != nil {
		t.Fatal(err)
	}
	var video, audio bool
	for _, s := range ss {
		switch s.CodecType {
		case "video":
			video = true
			if s.CodecName != "hevc" || s.Width != 320 || s.Height != 240 {
				t.Errorf("video %+v", s)
			}
		case "audio":
			audio = true
			if s.CodecName != "opus" {
				t.Errorf("audio %+v", s)
			}
		}
	}
	if !video || !audio {
		t.Errorf("streams %+v", ss)
	}

	res, err := http.Get(srv.URL + "/live/hevc.flv")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	fr := &flv.Reader{R: res.Body}
	var seq, key int
	for n := 0; n < 20 && key == 0; n++ {
		tag, err := fr.ReadTag()
		if err != nil {
			t.Fatal(err)
		}
		if tag.Type != flv.TagVideo {
			continue
		}
		v, err := flv.ParseVideoTag(tag.Body)
		if err != nil || !v.Enhanced || v.FourCC != flv.FourCCHEVC {
			t.Fatalf("video tag %+v %v", v, err)
		}
		if v.IsSequenceHeader() {
			seq++
		} else if v.IsKeyFrame() {
			key++
		}
	}
	if seq == 0 || key == 0 {
		t.Errorf("sequence headers %d, key frames %d", seq, key)
	}
}

// publishSettings publishes a live encode over RTMP: 320x240 30 fps H.264
// of the given profile, 1 s GOP, AAC at the given sample rate.
func publishSettings(t *testing.T, e *Engine, name, profile string, rate int) *mediatest.Proc {
	t.Helper()
	return startFFmpeg(t, "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate="+strconv.Itoa(rate),
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", profile, "-pix_fmt", "yuv420p",
		"-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k", "-f", "flv", rtmpURL(e, "/live/"+name))
}

// probed is what ffprobe says of a URL's streams.
type probed struct {
	video, profile string
	audio          string
	rate           string
	channels       int
}

func probeCodecs(t *testing.T, url string, extra ...string) (probed, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-v", "error", "-rw_timeout", "10000000"}, extra...)
	args = append(args, "-show_streams", "-of", "json", url)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffprobe", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return probed{}, &probeError{err: err, stderr: stderr.String()}
	}
	var res struct {
		Streams []struct {
			CodecType  string `json:"codec_type"`
			CodecName  string `json:"codec_name"`
			Profile    string `json:"profile"`
			SampleRate string `json:"sample_rate"`
			Channels   int    `json:"channels"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return probed{}, err
	}
	var c probed
	for _, s := range res.Streams {
		switch s.CodecType {
		case "video":
			c.video, c.profile = s.CodecName, s.Profile
		case "audio":
			c.audio, c.rate, c.channels = s.CodecName, s.SampleRate, s.Channels
		}
	}
	return c, nil
}

type probeError struct {
	err    error
	stderr string
}

func (e *probeError) Error() string { return e.err.Error() + ": " + e.stderr }

// TestRTSPRepublishNewSettings: a publisher back within the grace with
// other settings (48 kHz High instead of 44.1 kHz Main) is described with
// the new ones over RTSP (DESCRIBE), HTTP-FLV and HLS.
func TestRTSPRepublishNewSettings(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{PublisherGrace: 30 * time.Second})
	srv := newFLVServer(t, e)
	const name = "resettings"
	urls := map[string]string{
		"RTSP":     rtspURL(e, "/live/"+name),
		"HTTP-FLV": srv.URL + "/live/" + name + ".flv",
		"HLS":      srv.URL + "/live/" + name + "/index.m3u8",
	}
	check := func(want probed) {
		t.Helper()
		for _, proto := range []string{"RTSP", "HTTP-FLV", "HLS"} {
			var got probed
			var err error
			// HLS switches at the publisher's first key frame after a
			// segment's worth of media: retry for a while.
			deadline := time.Now().Add(20 * time.Second)
			for {
				var extra []string
				if proto == "RTSP" {
					extra = []string{"-rtsp_transport", "tcp"}
				}
				got, err = probeCodecs(t, urls[proto], extra...)
				if err == nil && got == want || proto != "HLS" || time.Now().After(deadline) {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("%s: %v", proto, err)
			} else if got != want {
				t.Errorf("%s: %+v, want %+v", proto, got, want)
			}
		}
	}

	p := publishSettings(t, e, name, "main", 44100)
	mediatest.WaitMedia(t, e.hub, name)
	check(probed{video: "h264", profile: "Main", audio: "aac", rate: "44100", channels: 1})

	p.Kill()
	waitFor(t, 10*time.Second, "publisher gone", func() bool {
		st, _ := e.Stream(name)
		return !st.Publishing
	})
	before, _ := e.Stream(name)
	publishSettings(t, e, name, "high", 48000)
	waitFor(t, 30*time.Second, "publisher back with 48 kHz", func() bool {
		st, _ := e.Stream(name)
		return st.Publishing && st.AudioSampleRate == 48000 && st.BytesIn > before.BytesIn+50000
	})
	check(probed{video: "h264", profile: "High", audio: "aac", rate: "48000", channels: 1})
}

package media

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/mofang-live/mofang/media/flv"
)

// publishSettings publishes a live encode over RTMP: 320x240 30 fps H.264
// of the given profile, 1 s GOP, AAC at the given sample rate.
func publishSettings(t *testing.T, e *Engine, name, profile string, rate int) *ffmpegProc {
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
	waitMedia(t, e, name)
	check(probed{video: "h264", profile: "Main", audio: "aac", rate: "44100", channels: 1})

	p.kill()
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

// TestRTSPRepublishHeaders: codec parameters that change invalidate the
// cached GOP (a new reader waits for a key frame coded with them instead
// of getting old frames with new headers), and a publisher taking a stream
// back replaces all the previous one's headers: a track it does not have
// is not announced to new readers.
func TestRTSPRepublishHeaders(t *testing.T) {
	e := newSilentEngine(t, Config{})
	s, pub := newSynthStream(t, e, "hdr")
	feed(s, 0, 40) // key frames at 0 and 30
	start := func() *reader {
		r := newReader(s, e.newClient(ProtocolRTMP, netip.MustParseAddrPort("127.0.0.1:2"), nil), formatFLV, nil, false)
		r.start()
		return r
	}
	r := start()
	if r.waitKey || s.packetAt(r.cursor) == nil || !s.packetAt(r.cursor).key {
		t.Fatalf("reader before the change: cursor %d waitKey %v", r.cursor, r.waitKey)
	}

	// the same header again keeps the GOP.
	s.writePacket(flv.TagVideo, 1400, synthVideoSeq)
	if r := start(); r.waitKey {
		t.Fatal("an identical sequence header dropped the cached GOP")
	}

	// publisher back with another SPS and no audio.
	e.hub.unpublish(s, pub)
	pub2 := e.newClient(ProtocolRTMP, netip.MustParseAddrPort("127.0.0.1:3"), nil)
	if s2, err := e.hub.publish("hdr", pub2); err != nil || s2 != s {
		t.Fatalf("takeover: %v", err)
	}
	newSeq := bytes.Clone(synthVideoSeq)
	newSeq[6] = 0x64 // High profile
	s.writePacket(flv.TagVideo, 0, newSeq)
	r = start()
	if !r.waitKey {
		t.Errorf("new codec parameters: reader starts at cursor %d in the old GOP", r.cursor)
	}
	if hs := s.headers.Load(); !bytes.Equal(hs.video.body, newSeq) {
		t.Errorf("video header % x", hs.video.body)
	}
	s.writePacket(flv.TagVideo, 10, synthFrame(true, 100))
	hs := s.headers.Load()
	if hs.audio != nil {
		t.Error("the previous publisher's audio header is still announced")
	}
	r = start()
	if r.waitKey || s.packetAt(r.cursor) == nil || !bytes.Equal(s.packetAt(r.cursor).body, synthFrame(true, 100)) {
		t.Errorf("reader after the new key frame: cursor %d waitKey %v", r.cursor, r.waitKey)
	}
	if st, _ := e.Stream("hdr"); st.AudioCodec != "" || st.VideoCodec != "h264" {
		t.Errorf("stats after the takeover: video %q audio %q", st.VideoCodec, st.AudioCodec)
	}
	// audio only publisher: its packets are key packets.
	e.hub.unpublish(s, pub2)
	pub3 := e.newClient(ProtocolRTMP, netip.MustParseAddrPort("127.0.0.1:4"), nil)
	if _, err := e.hub.publish("hdr", pub3); err != nil {
		t.Fatal(err)
	}
	s.writePacket(flv.TagAudio, 0, synthAudioSeq)
	s.writePacket(flv.TagAudio, 23, synthAudio())
	if hs := s.headers.Load(); hs.video != nil || hs.audio == nil {
		t.Errorf("headers after an audio-only takeover: video %v audio %v", hs.video != nil, hs.audio != nil)
	}
	if r := start(); r.waitKey {
		t.Error("audio-only publisher: no key packet to start at")
	}
}

// describeH264 returns the SPS that an RTSP DESCRIBE of url announces.
func describeH264(t *testing.T, url string) []byte {
	t.Helper()
	u, err := base.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatalf("DESCRIBE %s: %v", url, err)
	}
	var f *format.H264
	if desc.FindFormat(&f) == nil {
		t.Fatalf("no H.264 in %+v", desc)
	}
	sps, _ := f.SafeParams()
	return sps
}

// TestRTSPRepublishVideoParams: a publisher back with other video
// parameters only (High instead of Main, same audio) keeps the RTSP
// viewers playing (new parameter sets in band) and new DESCRIBEs announce
// the new SPS.
func TestRTSPRepublishVideoParams(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{PublisherGrace: 30 * time.Second})
	const name = "revideo"
	url := rtspURL(e, "/live/"+name)
	p := publishSettings(t, e, name, "main", 44100)
	waitMedia(t, e, name)
	if sps := describeH264(t, url); len(sps) < 2 || sps[1] != 77 {
		t.Fatalf("SPS % x, want Main profile (77)", sps)
	}
	viewer := startFFmpeg(t, "-rtsp_transport", "tcp", "-i", url, "-f", "null", "-")
	waitFor(t, 10*time.Second, "RTSP viewer", func() bool {
		st, _ := e.Stream(name)
		return st.Readers[ProtocolRTSP] == 1
	})

	p.kill()
	waitFor(t, 10*time.Second, "publisher gone", func() bool {
		st, _ := e.Stream(name)
		return !st.Publishing
	})
	publishSettings(t, e, name, "high", 44100)
	waitFor(t, 30*time.Second, "publisher back", func() bool {
		st, _ := e.Stream(name)
		return st.Publishing && st.VideoCodec == "h264"
	})
	waitFor(t, 10*time.Second, "High profile SPS in DESCRIBE", func() bool {
		sps := describeH264(t, url)
		return len(sps) > 1 && sps[1] == 100
	})
	time.Sleep(time.Second) // the viewer would be closed by now if the output were rebuilt
	select {
	case <-viewer.done:
		t.Fatalf("the RTSP viewer was disconnected: %v %s", viewer.err, viewer.stderr.String())
	default:
	}
	if st, _ := e.Stream(name); st.Readers[ProtocolRTSP] < 1 {
		t.Errorf("RTSP viewers %v", st.Readers)
	}
}

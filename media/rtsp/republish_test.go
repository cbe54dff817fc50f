package rtsp

import (
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// publishSettings publishes a live encode as an RTMP publisher would
// (mediatest.Publish): 320x240 30 fps H.264 of the given profile, 1 s GOP,
// AAC at the given sample rate.
func publishSettings(t *testing.T, h *hub.Hub, name, profile string, rate int) *mediatest.Proc {
	t.Helper()
	return mediatest.Publish(t, h, name, "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate="+strconv.Itoa(rate),
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", profile, "-pix_fmt", "yuv420p",
		"-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k")
}

// stats returns the stats of stream name, zero if there is none.
func stats(h *hub.Hub, name string) hub.StreamStats {
	if s := h.Stream(name); s != nil {
		return s.Stats()
	}
	return hub.StreamStats{}
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
	mediatest.NeedFFmpeg(t)
	h, e := newTestEnv(t, hub.Config{PublisherGrace: 30 * time.Second})
	const name = "revideo"
	url := rtspURL(e, "/live/"+name)
	p := publishSettings(t, h, name, "main", 44100)
	mediatest.WaitMedia(t, h, name)
	if sps := describeH264(t, url); len(sps) < 2 || sps[1] != 77 {
		t.Fatalf("SPS % x, want Main profile (77)", sps)
	}
	viewer := mediatest.StartFFmpeg(t, "-rtsp_transport", "tcp", "-i", url, "-f", "null", "-")
	mediatest.WaitFor(t, 10*time.Second, "RTSP viewer", func() bool {
		return stats(h, name).Readers[hub.ProtocolRTSP] == 1
	})

	p.Kill()
	mediatest.WaitFor(t, 10*time.Second, "publisher gone", func() bool {
		return !stats(h, name).Publishing
	})
	publishSettings(t, h, name, "high", 44100)
	mediatest.WaitFor(t, 30*time.Second, "publisher back", func() bool {
		st := stats(h, name)
		return st.Publishing && st.VideoCodec == "h264"
	})
	mediatest.WaitFor(t, 10*time.Second, "High profile SPS in DESCRIBE", func() bool {
		sps := describeH264(t, url)
		return len(sps) > 1 && sps[1] == 100
	})
	time.Sleep(time.Second) // the viewer would be closed by now if the output were rebuilt
	select {
	case <-viewer.Done:
		t.Fatalf("the RTSP viewer was disconnected: %v %s", viewer.Err, viewer.Stderr.String())
	default:
	}
	if st := stats(h, name); st.Readers[hub.ProtocolRTSP] < 1 {
		t.Errorf("RTSP viewers %v", st.Readers)
	}
}

package media

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

// publishOpusRTSP publishes a sine as Opus with channels channels over RTSP.
func publishOpusRTSP(t *testing.T, e *Engine, name string, channels int) {
	t.Helper()
	startFFmpeg(t, "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-ac", strconv.Itoa(channels), "-c:a", "libopus", "-b:a", "64k",
		"-f", "rtsp", "-rtsp_transport", "tcp", rtspURL(e, "/live/"+name))
	waitFor(t, 15*time.Second, "Opus stream "+name, func() bool {
		st, ok := e.Stream(name)
		return ok && st.AudioCodec == "opus" && st.BytesIn > 4000
	})
}

// flvOpusHead reads an HTTP-FLV stream up to its audio sequence header and
// returns the OpusHead in it.
func flvOpusHead(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	fr := &flv.Reader{R: res.Body}
	for range 50 {
		tag, err := fr.ReadTag()
		if err != nil {
			t.Fatal(err)
		}
		if tag.Type != flv.TagAudio {
			continue
		}
		a, err := flv.ParseAudioTag(tag.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !a.IsSequenceHeader() {
			t.Fatalf("audio frame before the sequence header")
		}
		if a.FourCC != flv.FourCCOpus {
			t.Fatalf("audio codec %q", a.CodecName())
		}
		return bytes.Clone(a.Data)
	}
	t.Fatal("no audio sequence header in the first 50 tags")
	return nil
}

// TestRTSPOpusHeadToFLV: Opus published over RTSP reaches HTTP-FLV with an
// OpusHead laid out as RFC 7845 says (little-endian fields), for mono and
// stereo publishers.
func TestRTSPOpusHeadToFLV(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{})
	srv := newFLVServer(t, e)
	for _, ch := range []int{1, 2} {
		name := "opus" + strconv.Itoa(ch)
		publishOpusRTSP(t, e, name, ch)
		got := flvOpusHead(t, srv.URL+"/live/"+name+".flv")
		want := []byte{
			'O', 'p', 'u', 's', 'H', 'e', 'a', 'd',
			1,          // version
			byte(ch),   // channel count
			0x00, 0x0f, // pre-skip 3840, little-endian
			0x80, 0xbb, 0x00, 0x00, // input sample rate 48000, little-endian
			0x00, 0x00, // output gain
			0, // channel mapping family
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%d channels: OpusHead % x, want % x", ch, got, want)
		}
		if st, _ := e.Stream(name); st.AudioSampleRate != 48000 || st.AudioChannels != ch {
			t.Errorf("%d channels: stats %d Hz, %d channels", ch, st.AudioSampleRate, st.AudioChannels)
		}
	}
}

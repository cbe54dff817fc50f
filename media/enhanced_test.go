package media

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"

	"github.com/mofang-live/mofang/media/flv"
)

// TestEnhancedRTMPH265 publishes H.265 over Enhanced RTMP with gortmplib
// (which leaves the frame type of coded frames at 0) and reads it back over
// HTTP-FLV: the bodies pass through, key frames are found and flagged.
func TestEnhancedRTMPH265(t *testing.T) {
	e := newTestEngine(t, Config{})
	srv := newFLVServer(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	u, _ := url.Parse(rtmpURL(e, "/live/hevc"))
	c := &gortmplib.Client{URL: u, Publish: true}
	if err := c.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	track := &gortmplib.Track{Codec: &codecs.H265{}} // gortmplib's default VPS/SPS/PPS
	atrack := &gortmplib.Track{Codec: &codecs.Opus{IDHeader: &opus.IDHeader{Version: 1, ChannelCount: 2, InputSampleRate: 48000}}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{track, atrack}}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	idr := []byte{19 << 1, 1, 0xaf, 0x01, 0x02}
	trail := []byte{1 << 1, 1, 0xd0, 0x03}
	frame := 0
	write := func(n int) error {
		for range n {
			au := [][]byte{trail}
			if frame%10 == 0 {
				au = [][]byte{idr}
			}
			ts := time.Duration(frame) * 40 * time.Millisecond
			if err := w.WriteH265(track, ts, ts, au); err != nil {
				return err
			}
			if err := w.WriteOpus(atrack, ts, []byte{0xfc, 0xff, 0xfe}); err != nil {
				return err
			}
			frame++
		}
		return nil
	}
	if err := write(15); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "stream", func() bool {
		st, ok := e.Stream("hevc")
		return ok && st.VideoCodec == "h265" && st.AudioCodec == "opus" && st.BytesIn > 0
	})

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/live/hevc.flv", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	// keep publishing (real-time-ish) while the reader reads.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wdone := make(chan struct{})
	defer func() { wcancel(); <-wdone }()
	go func() {
		defer close(wdone)
		for wctx.Err() == nil && frame < 1000 {
			if write(1) != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	fr := &flv.Reader{R: res.Body}
	var seq, keys, inter, opusSeq, opusFrames int
	for seq+keys+inter < 12 {
		tag, err := fr.ReadTag()
		if err != nil {
			t.Fatal(err)
		}
		if tag.Type == flv.TagAudio {
			a, err := flv.ParseAudioTag(tag.Body)
			if err != nil || a.CodecName() != "opus" || !a.Enhanced {
				t.Fatalf("audio tag %+v %v", a, err)
			}
			if a.IsSequenceHeader() {
				opusSeq++
			} else {
				opusFrames++
			}
		}
		if tag.Type != flv.TagVideo {
			continue
		}
		v, err := flv.ParseVideoTag(tag.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Enhanced || v.CodecName() != "h265" {
			t.Fatalf("video tag %+v", v)
		}
		switch {
		case v.IsSequenceHeader():
			seq++
			if _, err := flv.ParseHEVCConfig(v.Data); err != nil {
				t.Errorf("hvcC: %v", err)
			}
		case v.IsKeyFrame():
			if seq == 0 {
				t.Fatal("key frame before the sequence header")
			}
			keys++
		default:
			if keys == 0 {
				t.Fatal("inter frame before the first key frame")
			}
			if v.FrameType != flv.FrameInter {
				t.Errorf("frame type %d", v.FrameType)
			}
			inter++
		}
	}
	st, _ := e.Stream("hevc")
	if st.Width == 0 || st.Height == 0 {
		t.Errorf("no size from the HEVC SPS: %+v", st)
	}
	if opusSeq != 1 || opusFrames == 0 || st.AudioChannels != 2 {
		t.Errorf("opus: %d sequence headers, %d frames, stats %+v", opusSeq, opusFrames, st)
	}
	t.Logf("seq %d keys %d inter %d, stats %dx%d", seq, keys, inter, st.Width, st.Height)
}

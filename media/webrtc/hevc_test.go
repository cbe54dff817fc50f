package webrtc

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/pion/rtp"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/webrtc/client"
)

// hevcTags makes Enhanced RTMP H.265 tag bodies (what OBS sends with
// HEVC) from an Annex-B H.265 file of the test clip at 30 fps.
func hevcTags(t testing.TB) []flv.Tag {
	path := testFile(t, "clip.h265", "-i", "IN", "-an", "-c:v", "libx265", "-x265-params", "bframes=0:keyint=30:log-level=error",
		"-f", "hevc", "OUT")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nalus [][]byte
	for _, n := range bytes.Split(data, []byte{0, 0, 1}) {
		n = bytes.TrimRight(n, "\x00")
		if len(n) > 2 {
			nalus = append(nalus, n)
		}
	}
	var tags []flv.Tag
	var vps, sps, pps []byte
	var au [][]byte
	frame := 0
	flush := func() {
		if len(au) == 0 {
			return
		}
		key := false
		body := []byte{0, 'h', 'v', 'c', '1'}
		for _, n := range au {
			if typ := (n[0] >> 1) & 0x3f; typ >= 16 && typ <= 21 {
				key = true
			}
			l := len(n)
			body = append(body, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
			body = append(body, n...)
		}
		ft := flv.FrameInter
		if key {
			ft = flv.FrameKey
		}
		body[0] = 0x80 | ft<<4 | flv.VideoCodedFramesX
		tags = append(tags, flv.Tag{Type: flv.TagVideo, Timestamp: uint32(frame * 100 / 3), Body: body})
		frame++
		au = nil
	}
	for _, n := range nalus {
		switch typ := (n[0] >> 1) & 0x3f; {
		case typ == 32:
			vps = n
		case typ == 33:
			sps = n
		case typ == 34:
			pps = n
			if len(tags) == 0 {
				seq, err := flv.AppendHEVCConfig([]byte{0x80 | flv.FrameKey<<4 | flv.VideoSequenceStart, 'h', 'v', 'c', '1'}, vps, sps, pps)
				if err != nil {
					t.Fatal(err)
				}
				tags = append(tags, flv.Tag{Type: flv.TagVideo, Body: seq})
			}
		case typ < 32:
			if len(n) > 2 && n[2]&0x80 != 0 { // first_slice_segment_in_pic_flag
				flush()
			}
			au = append(au, n)
		}
	}
	flush()
	return tags
}

// TestWHEPPlaysH265: an H.265 stream plays to a player that offers H.265
// (with the parameter sets in front of key frames), and a player that
// offers only H.264 is told why it cannot.
func TestWHEPPlaysH265(t *testing.T) {
	tags := hevcTags(t)
	srv := newTestServer(t, Config{})
	out := srv.NewOutput(OutputConfig{Name: "hevc"})
	defer out.Close()
	url := newHTTPFront(t, srv).addOutput("hevc", out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		feed(ctx, out, tags, 1)
	}()

	resp, body := post(t, url, "application/sdp", makeOffer(t, 2 /* recvonly */, codecH264, codecOpus))
	if resp.StatusCode != 422 || !bytesContains(body, "H.265") {
		t.Errorf("H.264-only player: %d %q, want 422 naming H.265", resp.StatusCode, body)
	}

	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "video.h265"))
	if err != nil {
		t.Fatal(err)
	}
	// depacketized with gortsplib's RFC 7798 decoder
	dec := &rtph265.Decoder{}
	if err := dec.Init(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	p, err := client.Play(ctx, client.PlayerConfig{URL: url, NoAudio: true, OnPacket: func(kind string, pkt *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		cp := *pkt // the player reuses pkt; the decoder keeps fragments
		cp.Payload = bytes.Clone(pkt.Payload)
		au, err := dec.Decode(&cp)
		if err != nil {
			return
		}
		for _, n := range au {
			f.Write([]byte{0, 0, 0, 1})
			f.Write(n)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	<-fed
	time.Sleep(300 * time.Millisecond)
	p.Close()
	mu.Lock()
	f.Close()
	mu.Unlock()
	vs := ffprobe(t, filepath.Join(dir, "video.h265"))
	if len(vs) != 1 || vs[0].CodecName != "hevc" || vs[0].Width != 640 || vs[0].Height != 360 {
		t.Fatalf("video = %+v, want H.265 640x360", vs)
	}
	if n, _ := strconv.Atoi(vs[0].NbReadFrames); n < 120 {
		t.Errorf("%d frames, want at least 120", n)
	}
	if e := decodeErrors(t, "-i", filepath.Join(dir, "video.h265")); e != "" {
		t.Errorf("video does not decode cleanly: %s", e)
	}
}

func bytesContains(s, sub string) bool { return bytes.Contains([]byte(s), []byte(sub)) }

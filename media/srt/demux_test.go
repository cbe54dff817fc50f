package srt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// tsOf runs ffmpeg with args (input and codec options) and returns the
// MPEG-TS it writes.
func tsOf(t testing.TB, args ...string) []byte {
	t.Helper()
	mediatest.NeedTool(t, "ffmpeg")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", append(append([]string{"-v", "error"}, args...), "-f", "mpegts", "-")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, stderr.String())
	}
	return out
}

// clipTS is the test clip as MPEG-TS, as ffmpeg sends it.
func clipTS(t testing.TB) []byte {
	return tsOf(t, "-i", mediatest.ClipPath(t), "-c", "copy")
}

// hevcOpusTS is 1 s of 320x240 H.265 (a key frame every 10 frames) with
// stereo Opus.
func hevcOpusTS(t testing.TB) []byte {
	return tsOf(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=1",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=10:log-level=error",
		"-c:a", "libopus", "-ac", "2")
}

// demuxAll demuxes ts and returns the tags written.
func demuxAll(t testing.TB, ts []byte) []flv.Tag {
	t.Helper()
	var tags []flv.Tag
	d, err := newDemuxer(bytes.NewReader(ts), func(typ uint8, ts uint32, body []byte) {
		tags = append(tags, flv.Tag{Type: typ, Timestamp: ts, Body: body})
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if err := d.Read(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	if n, last := d.DecodeErrors(); n > 0 {
		t.Errorf("%d decode errors, last %v", n, last)
	}
	return tags
}

// muxAll publishes tags into a hub stream and muxes what a reader's
// output reads of it into MPEG-TS.
func muxAll(t testing.TB, tags []flv.Tag) []byte {
	t.Helper()
	h, err := hub.New(hub.Config{PublisherGrace: -1, RingSize: 4096, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := h.NewClient(hub.ClientInfo{Protocol: hub.ProtocolRTMP, Remote: netip.MustParseAddrPort("127.0.0.1:1")})
	s, err := h.Publish("mux", c)
	if err != nil {
		t.Fatal(err)
	}
	cur := s.NewCursor(hub.FromFirst)
	for _, tag := range tags {
		s.WritePacket(tag.Type, tag.Timestamp, tag.Body)
	}
	h.Unpublish(s, c)
	var out []byte
	var m *tsMuxer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		p, _, err := cur.Next(ctx)
		if errors.Is(err, hub.ErrStreamEnded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if m == nil {
			if !p.Key() {
				continue
			}
			if m, err = newTSMuxer(tracksOf(s.Headers())); err != nil {
				t.Fatal(err)
			}
		}
		b, err := m.mux(p)
		if err != nil {
			t.Fatalf("mux %d at %d: %v", p.Type(), p.Timestamp(), err)
		}
		out = append(out, b...)
	}
}

// frame is a media frame of a tag, comparable across muxings: video as
// its NAL units without parameter sets and delimiters.
type frame struct {
	video  bool
	ts     uint32
	cts    int32
	key    bool
	header bool
	data   []byte
}

func framesOf(t testing.TB, tags []flv.Tag) []frame {
	t.Helper()
	var out []frame
	for _, tag := range tags {
		switch tag.Type {
		case flv.TagVideo:
			v, err := flv.ParseVideoTag(tag.Body)
			if err != nil {
				t.Fatalf("video tag at %d: %v", tag.Timestamp, err)
			}
			f := frame{video: true, ts: tag.Timestamp, cts: v.CompositionTime, key: v.IsKeyFrame(), header: v.IsSequenceHeader()}
			if f.header {
				p, err := flv.ParseVideoParams(v)
				if err != nil {
					t.Fatalf("video sequence header: %v", err)
				}
				f.data = append(append(append([]byte(nil), p.VPS...), p.SPS...), p.PPS...)
			} else {
				nalus, err := flv.SplitNALUs(v.Data, 4, nil)
				if err != nil {
					t.Fatalf("video frame at %d: %v", tag.Timestamp, err)
				}
				for _, n := range nalus {
					if v.FourCC == flv.FourCCAVC {
						switch h264.NALUType(n[0] & 0x1f) {
						case h264.NALUTypeSPS, h264.NALUTypePPS, h264.NALUTypeAccessUnitDelimiter:
							continue
						}
					}
					f.data = append(f.data, n...)
				}
			}
			out = append(out, f)
		case flv.TagAudio:
			a, err := flv.ParseAudioTag(tag.Body)
			if err != nil {
				t.Fatalf("audio tag at %d: %v", tag.Timestamp, err)
			}
			out = append(out, frame{ts: tag.Timestamp, header: a.IsSequenceHeader(), data: a.Data})
		}
	}
	return out
}

// media returns the frames of one kind, sequence headers left out,
// from the first video key frame (or the first frame) on.
func media(fs []frame, video bool) []frame {
	var out []frame
	for _, f := range fs {
		if f.header || f.video != video || (video && len(out) == 0 && !f.key) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// sameFrames compares the frames of two muxings; timestamps may differ by
// a constant (each timeline starts at its first timestamp) and by 1 ms
// of rounding. The last video frame of an MPEG-TS file may be missing:
// a video PES has no length, it ends when the next one starts.
func sameFrames(t *testing.T, what string, got, want []frame) {
	t.Helper()
	if len(got) != len(want) && !(len(want) > 0 && want[0].video && len(got) == len(want)-1) || len(got) == 0 {
		t.Fatalf("%s: %d frames, want %d", what, len(got), len(want))
	}
	shift := int64(want[0].ts) - int64(got[0].ts)
	for i := range got {
		g, w := got[i], want[i]
		if d := int64(g.ts) + shift - int64(w.ts); d < -1 || d > 1 || g.key != w.key || !bytes.Equal(g.data, w.data) {
			t.Fatalf("%s frame %d: ts %d (+%d) key %v %d bytes, want ts %d key %v %d bytes", what, i, g.ts, shift, g.key, len(g.data), w.ts, w.key, len(w.data))
		}
		if d := g.cts - w.cts; d < -1 || d > 1 {
			t.Fatalf("%s frame %d: composition time %d, want %d", what, i, g.cts, w.cts)
		}
	}
}

// TestDemuxClip demuxes the clip as ffmpeg sends it over SRT: the same
// frames as ffmpeg's FLV of it, behind an AVC sequence header of 640x360
// and the AAC one.
func TestDemuxClip(t *testing.T) {
	tags := demuxAll(t, clipTS(t))
	if len(tags) < 3 || tags[0].Type != flv.TagAudio {
		t.Fatalf("%d tags; the first should be the AAC sequence header", len(tags))
	}
	var video *flv.VideoParams
	for _, tag := range tags {
		if v, err := flv.ParseVideoTag(tag.Body); tag.Type == flv.TagVideo && err == nil && v.IsSequenceHeader() {
			p, err := flv.ParseVideoParams(v)
			if err != nil {
				t.Fatal(err)
			}
			video = &p
			break
		}
	}
	if video == nil || video.FourCC != flv.FourCCAVC || video.Width != 640 || video.Height != 360 {
		t.Fatalf("video sequence header %+v", video)
	}
	a, err := flv.ParseAudioTag(tags[0].Body)
	if err != nil || !a.IsSequenceHeader() {
		t.Fatalf("audio sequence header %+v, %v", a, err)
	}
	if p, err := flv.ParseAudioParams(a); err != nil || p.AAC.SampleRate != 44100 || p.AAC.ChannelCount != 2 {
		t.Fatalf("AAC config %+v, %v", p, err)
	}
	got, want := framesOf(t, tags), framesOf(t, mediatest.ClipTags(t))
	sameFrames(t, "video", media(got, true), media(want, true))
	sameFrames(t, "audio", media(got, false), media(want, false))
}

// TestTSRoundTrip muxes the clip's FLV tags to MPEG-TS as SRT readers
// get it, and demuxes that as an SRT publisher's: the same frames come
// back.
func TestTSRoundTrip(t *testing.T) {
	want := framesOf(t, mediatest.ClipTags(t))
	got := framesOf(t, demuxAll(t, muxAll(t, mediatest.ClipTags(t))))
	sameFrames(t, "video", media(got, true), media(want, true))
	sameFrames(t, "audio", media(got, false), media(want, false))
}

// TestTSRoundTripHEVCOpus demuxes H.265 and Opus from ffmpeg's MPEG-TS,
// muxes them back and demuxes them again.
func TestTSRoundTripHEVCOpus(t *testing.T) {
	tags := demuxAll(t, hevcOpusTS(t))
	var hevc, opus bool
	for _, tag := range tags {
		switch tag.Type {
		case flv.TagVideo:
			v, err := flv.ParseVideoTag(tag.Body)
			if err != nil || !v.Enhanced || v.FourCC != flv.FourCCHEVC {
				t.Fatalf("video tag %+v, %v", v, err)
			}
			if v.IsSequenceHeader() {
				p, err := flv.ParseVideoParams(v)
				if err != nil || p.Width != 320 || p.Height != 240 {
					t.Fatalf("HEVC config %+v, %v", p, err)
				}
				hevc = true
			}
		case flv.TagAudio:
			a, err := flv.ParseAudioTag(tag.Body)
			if err != nil || a.FourCC != flv.FourCCOpus {
				t.Fatalf("audio tag %+v, %v", a, err)
			}
			if a.IsSequenceHeader() {
				p, err := flv.ParseAudioParams(a)
				if err != nil || p.Channels != 2 {
					t.Fatalf("OpusHead %+v, %v", p, err)
				}
				opus = true
			}
		}
	}
	if !hevc || !opus {
		t.Fatalf("sequence headers: HEVC %v, Opus %v", hevc, opus)
	}
	want := framesOf(t, tags)
	got := framesOf(t, demuxAll(t, muxAll(t, tags)))
	sameFrames(t, "video", media(got, true), media(want, true))
	sameFrames(t, "audio", media(got, false), media(want, false))
	if keys := countKeys(media(want, true)); keys < 2 {
		t.Errorf("%d key frames", keys)
	}
}

func countKeys(fs []frame) int {
	n := 0
	for _, f := range fs {
		if f.key {
			n++
		}
	}
	return n
}

// tsPacket returns an MPEG-TS packet of pid, starting a payload or not.
func tsPacket(pid uint16, start bool, cc uint8) []byte {
	p := make([]byte, tsPacketSize)
	p[0], p[1], p[2], p[3] = tsSyncByte, byte(pid>>8)&0x1f, byte(pid), 0x10|cc&0xf
	if start {
		p[1] |= 0x40
		copy(p[4:], []byte{0, 0, 1, 0xe0, 0, 0})
	}
	return p
}

func TestTSGuard(t *testing.T) {
	t.Run("framing", func(t *testing.T) {
		a, b := tsPacket(256, true, 0), tsPacket(257, false, 1)
		in := bytes.Join([][]byte{[]byte("junk"), a, []byte{1, 2, 3}, b, a[:100]}, nil)
		got, err := io.ReadAll(newTSGuard(&oneByteReader{in}, maxPESPending))
		if err != nil || !bytes.Equal(got, append(append([]byte(nil), a...), b...)) {
			t.Fatalf("read %d bytes, %v; want the two packets", len(got), err)
		}
	})
	t.Run("payload never ending", func(t *testing.T) {
		var in []byte
		in = append(in, tsPacket(256, true, 0)...)
		for i := range 100 {
			in = append(in, tsPacket(256, false, uint8(i+1))...)
		}
		_, err := io.ReadAll(newTSGuard(bytes.NewReader(in), 50*tsPacketSize))
		if !errors.Is(err, errTSTooLarge) {
			t.Fatalf("err %v, want %v", err, errTSTooLarge)
		}
	})
	t.Run("across PIDs", func(t *testing.T) {
		var in []byte
		for pid := range uint16(100) {
			in = append(in, tsPacket(256+pid, true, 0)...)
		}
		_, err := io.ReadAll(newTSGuard(bytes.NewReader(in), 50*tsPacketSize))
		if !errors.Is(err, errTSTooLarge) {
			t.Fatalf("err %v, want %v", err, errTSTooLarge)
		}
	})
	t.Run("payloads that end", func(t *testing.T) {
		var in []byte
		for i := range 1000 {
			in = append(in, tsPacket(256, i%10 == 0, uint8(i))...)
		}
		got, err := io.ReadAll(newTSGuard(bytes.NewReader(in), 50*tsPacketSize))
		if err != nil || len(got) != len(in) {
			t.Fatalf("read %d of %d bytes: %v", len(got), len(in), err)
		}
	})
}

// oneByteReader returns its bytes one at a time.
type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

// FuzzDemux feeds arbitrary bytes to an SRT publisher's demuxer: it
// ends with an error, never a panic or a hang, and every body it writes
// is a valid FLV tag body.
func FuzzDemux(f *testing.F) {
	clip := clipTS(f)
	hevc := hevcOpusTS(f)
	f.Add(clip[:min(len(clip), 40*tsPacketSize)])
	f.Add(hevc[:min(len(hevc), 60*tsPacketSize)])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{tsSyncByte}, 3*tsPacketSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := newDemuxer(bytes.NewReader(data), func(typ uint8, _ uint32, body []byte) {
			var err error
			switch typ {
			case flv.TagVideo:
				_, err = flv.ParseVideoTag(body)
			case flv.TagAudio:
				_, err = flv.ParseAudioTag(body)
			default:
				t.Fatalf("tag type %d", typ)
			}
			if err != nil {
				t.Fatalf("invalid body written: %v", err)
			}
		})
		if err != nil {
			return
		}
		for range len(data) + 10 {
			if err := d.Read(); err != nil {
				return
			}
		}
		t.Fatalf("%d bytes read more than %d times", len(data), len(data)+10)
	})
}

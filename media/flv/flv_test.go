package flv

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

var (
	avcSeq    = []byte{0x17, 0, 0, 0, 0, 1, 0x4d, 0x40, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x4d, 0x40, 0x1e, 1, 0, 2, 0x68, 0xee}
	avcKey    = []byte{0x17, 1, 0, 0, 0x21, 0, 0, 0, 2, 0x65, 0x88}
	avcInter  = []byte{0x27, 1, 0xff, 0xff, 0xfe, 0, 0, 0, 2, 0x41, 0x9a}
	aacSeq    = []byte{0xaf, 0, 0x12, 0x10}
	aacRaw    = []byte{0xaf, 1, 0x21, 0x10}
	hevcExSeq = append([]byte{0x90, 'h', 'v', 'c', '1'}, make([]byte, 23)...)
	hevcExKey = []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 0x10, 0, 0, 0, 1, 0x26}
	av1ExX    = []byte{0xa3, 'a', 'v', '0', '1', 0x12, 0}
	opusExSeq = []byte{0x90, 'O', 'p', 'u', 's', 'O', 'p', 'u', 's', 'H', 'e', 'a', 'd'}
)

func TestParseVideoTag(t *testing.T) {
	for _, c := range []struct {
		name     string
		body     []byte
		codec    string
		key, seq bool
		cts      int32
		dataLen  int
	}{
		{"avc seq", avcSeq, "h264", false, true, 0, len(avcSeq) - 5},
		{"avc key", avcKey, "h264", true, false, 0x21, 6},
		{"avc inter", avcInter, "h264", false, false, -2, 6},
		{"hevc ex seq", hevcExSeq, "h265", false, true, 0, 23},
		{"hevc ex key", hevcExKey, "h265", true, false, 0x10, 5},
		{"av1 ex framesx", av1ExX, "av1", false, false, 0, 2},
	} {
		v, err := ParseVideoTag(c.body)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if v.CodecName() != c.codec || v.IsKeyFrame() != c.key || v.IsSequenceHeader() != c.seq ||
			v.CompositionTime != c.cts || len(v.Data) != c.dataLen {
			t.Errorf("%s: %+v", c.name, v)
		}
	}
	for _, b := range [][]byte{nil, {0x17}, {0x17, 9, 0, 0, 0}, {0x9f, 'a', 'v', 'c', '1'}, {0x91, 'a', 'v', 'c', '1', 0}} {
		if _, err := ParseVideoTag(b); err == nil {
			t.Errorf("%x: no error", b)
		}
	}
}

func TestParseAudioTag(t *testing.T) {
	a, err := ParseAudioTag(aacSeq)
	if err != nil || !a.IsSequenceHeader() || a.CodecName() != "aac" || !a.Stereo || a.Rate != 3 || len(a.Data) != 2 {
		t.Errorf("aac seq: %+v %v", a, err)
	}
	a, err = ParseAudioTag(aacRaw)
	if err != nil || a.IsSequenceHeader() || a.PacketType != AudioCodedFrames {
		t.Errorf("aac raw: %+v %v", a, err)
	}
	a, err = ParseAudioTag(opusExSeq)
	if err != nil || !a.IsSequenceHeader() || a.CodecName() != "opus" || !a.Enhanced {
		t.Errorf("opus: %+v %v", a, err)
	}
	a, err = ParseAudioTag([]byte{0x2f, 1, 2})
	if err != nil || a.CodecName() != "mp3" || a.IsSequenceHeader() {
		t.Errorf("mp3: %+v %v", a, err)
	}
	for _, b := range [][]byte{nil, {0xaf}, {0xaf, 7}, {0x90, 'O'}, {0x9f, 'O', 'p', 'u', 's'}} {
		if _, err := ParseAudioTag(b); err == nil {
			t.Errorf("%x: no error", b)
		}
	}
}

func TestAVCConfig(t *testing.T) {
	sps := []byte{0x67, 0x4d, 0x40, 0x1e, 0xab}
	pps := []byte{0x68, 0xee, 0x3c}
	rec, err := AppendAVCConfig(nil, sps, pps)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseAVCConfig(rec)
	if err != nil {
		t.Fatal(err)
	}
	if c.LengthSize != 4 || len(c.SPS) != 1 || !bytes.Equal(c.SPS[0], sps) || len(c.PPS) != 1 || !bytes.Equal(c.PPS[0], pps) || c.Profile != 0x4d {
		t.Errorf("%+v", c)
	}
	for i := range rec {
		if _, err := ParseAVCConfig(rec[:i]); err == nil && i < len(rec)-len(pps) {
			t.Errorf("truncated to %d: no error", i)
		}
	}
}

func TestSplitNALUs(t *testing.T) {
	nalus, err := SplitNALUs([]byte{0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41}, 4, nil)
	if err != nil || len(nalus) != 2 || len(nalus[0]) != 2 || nalus[1][0] != 0x41 {
		t.Errorf("%x %v", nalus, err)
	}
	if _, err := SplitNALUs([]byte{0, 0, 0, 9, 1}, 4, nil); !errors.Is(err, ErrShort) {
		t.Errorf("err %v", err)
	}
}

func TestMuxRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	buf.Write(FileHeader(true, true))
	tags := []Tag{{TagScript, 0, []byte{2, 0, 1, 'x'}}, {TagVideo, 0, avcSeq}, {TagAudio, 0, aacSeq},
		{TagVideo, 0x12345678, avcKey}, {TagAudio, 0xFFFFFF, aacRaw}}
	for _, tg := range tags {
		buf.Write(AppendTag(nil, tg.Type, tg.Timestamp, tg.Body))
	}
	r := &Reader{R: &buf}
	for i, want := range tags {
		got, err := r.ReadTag()
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != want.Type || got.Timestamp != want.Timestamp || !bytes.Equal(got.Body, want.Body) {
			t.Errorf("tag %d: %+v, want %+v", i, got, want)
		}
	}
	if !r.HasAudio || !r.HasVideo {
		t.Error("header flags")
	}
	if _, err := r.ReadTag(); err != io.EOF {
		t.Errorf("after last tag: %v", err)
	}
}

func FuzzParseVideoTag(f *testing.F) {
	for _, b := range [][]byte{avcSeq, avcKey, avcInter, hevcExSeq, hevcExKey, av1ExX, {0xd5, 'a', 'v', 'c', '1', 0}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseVideoTag(b)
		if err != nil {
			return
		}
		if len(v.Data) > len(b) {
			t.Fatal("data longer than body")
		}
		if v.IsSequenceHeader() {
			if p, err := ParseVideoParams(v); err == nil && (len(p.SPS) == 0 || len(p.PPS) == 0) {
				t.Fatalf("video params without SPS or PPS: %+v", p)
			}
		} else if v.FourCC == FourCCAVC || v.FourCC == FourCCHEVC {
			SplitNALUs(v.Data, 4, nil) //nolint:errcheck
		}
	})
}

func FuzzParseAudioTag(f *testing.F) {
	for _, b := range [][]byte{aacSeq, aacRaw, opusExSeq, {0x2f, 1}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAudioTag(b)
		if err == nil && len(a.Data) > len(b) {
			t.Fatal("data longer than body")
		}
		if err == nil && a.IsSequenceHeader() {
			if p, err := ParseAudioParams(a); err == nil && p.ClockRate <= 0 {
				t.Fatalf("audio params without a clock rate: %+v", p)
			}
		}
	})
}

func FuzzParseAVCConfig(f *testing.F) {
	rec, _ := AppendAVCConfig(nil, []byte{0x67, 0x4d, 0x40, 0x1e}, []byte{0x68})
	f.Add(rec)
	f.Add([]byte{1, 0x64, 0, 0x1f, 0xff, 0xe2, 0, 1, 0x67, 0, 1, 0x67, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseAVCConfig(b)
		if err != nil {
			return
		}
		for _, s := range append(c.SPS, c.PPS...) {
			if len(s) > len(b) {
				t.Fatal("parameter set longer than record")
			}
		}
	})
}

func FuzzParseHEVCConfig(f *testing.F) {
	rec := make([]byte, 23)
	rec[0], rec[21], rec[22] = 1, 3, 1
	rec = append(rec, 0x21, 0, 1, 0, 2, 0x42, 0x01)
	f.Add(rec)
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseHEVCConfig(b) //nolint:errcheck
	})
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	buf.Write(FileHeader(true, true))
	buf.Write(AppendTag(nil, TagVideo, 40, avcKey))
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &Reader{R: bytes.NewReader(b)}
		for range 100 {
			tag, err := r.ReadTag()
			if err != nil {
				return
			}
			out := AppendTag(nil, tag.Type, tag.Timestamp, tag.Body)
			if len(out) != TagHeaderSize+len(tag.Body)+PrevTagSizeSize {
				t.Fatal("bad re-mux size")
			}
		}
	})
}

func TestHEVCConfigRoundTrip(t *testing.T) {
	// gortmplib's default parameter sets (1920x1080 Main).
	vps := []byte{0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0xb0, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x7b, 0x18, 0xb0, 0x24}
	sps := []byte{0x42, 0x01, 0x01, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0xb0, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x7b, 0xa0, 0x07, 0x82, 0x00, 0x88, 0x7d, 0xb6, 0x71, 0x8b, 0x92, 0x44, 0x80, 0x53, 0x88, 0x88, 0x92, 0xcf, 0x24, 0xa6, 0x92, 0x72, 0xc9, 0x12, 0x49, 0x22, 0xdc, 0x91, 0xaa, 0x48, 0xfc, 0xa2, 0x23, 0xff, 0x00, 0x01, 0x00, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x01}
	pps := []byte{0x44, 0x01, 0xc0, 0x25, 0x2f, 0x05, 0x32, 0x40}
	rec, err := AppendHEVCConfig(nil, vps, sps, pps)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseHEVCConfig(rec)
	if err != nil {
		t.Fatal(err)
	}
	if c.LengthSize != 4 || !bytes.Equal(c.VPS[0], vps) || !bytes.Equal(c.SPS[0], sps) || !bytes.Equal(c.PPS[0], pps) {
		t.Errorf("%+v", c)
	}
	if rec[1] != 0x02 || rec[12] != 0x7b { // Main 10 profile, level 4.1
		t.Errorf("profile/level bytes %x %x", rec[1], rec[12])
	}
}

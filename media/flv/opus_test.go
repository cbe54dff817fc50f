package flv

import (
	"bytes"
	"reflect"
	"testing"
)

// ffmpegOpusHead is the OpusHead ffmpeg's libopus encoder writes for a
// 44.1 kHz stereo input (pre-skip 312): RFC 7845's little-endian layout.
var ffmpegOpusHead = []byte{'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 2, 0x38, 0x01, 0x44, 0xac, 0, 0, 0, 0, 0}

func TestOpusHeadBytes(t *testing.T) {
	got := AppendOpusHead(nil, OpusHead{ChannelCount: 2, PreSkip: 3840, InputSampleRate: 48000})
	want := []byte{
		'O', 'p', 'u', 's', 'H', 'e', 'a', 'd',
		1,          // version
		2,          // channels
		0x00, 0x0f, // pre-skip 3840, LE16
		0x80, 0xbb, 0x00, 0x00, // input sample rate 48000, LE32
		0x00, 0x00, // output gain, LE16
		0, // mapping family
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("OpusHead % x, want % x", got, want)
	}

	h, err := ParseOpusHead(ffmpegOpusHead)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h, OpusHead{ChannelCount: 2, PreSkip: 312, InputSampleRate: 44100}) {
		t.Errorf("ffmpeg's OpusHead parsed as %+v", h)
	}
	if b := AppendOpusHead(nil, h); !bytes.Equal(b, ffmpegOpusHead) {
		t.Errorf("round trip % x, want % x", b, ffmpegOpusHead)
	}

	// a negative gain and a family 1 mapping table (5.1)
	h = OpusHead{ChannelCount: 6, PreSkip: 312, InputSampleRate: 48000, OutputGain: -256,
		ChannelMappingFamily: 1, StreamCount: 4, CoupledCount: 2, ChannelMapping: []uint8{0, 4, 1, 2, 3, 5}}
	b := AppendOpusHead(nil, h)
	if b[16] != 0x00 || b[17] != 0xff || len(b) != 19+2+6 {
		t.Errorf("family 1 header % x", b)
	}
	h2, err := ParseOpusHead(b)
	if err != nil || !reflect.DeepEqual(h, h2) {
		t.Errorf("family 1 round trip %+v %v, want %+v", h2, err, h)
	}

	for _, bad := range [][]byte{
		nil,
		ffmpegOpusHead[:18],
		append([]byte("OpusHeaX"), ffmpegOpusHead[8:]...),
		append(append([]byte{}, ffmpegOpusHead[:8]...), append([]byte{0x10}, ffmpegOpusHead[9:]...)...), // version 16
		append(append([]byte{}, ffmpegOpusHead[:9]...), append([]byte{0}, ffmpegOpusHead[10:]...)...),   // 0 channels
		append(append([]byte{}, ffmpegOpusHead[:9]...), append([]byte{3}, ffmpegOpusHead[10:]...)...),   // 3 channels, family 0
		b[:22], // truncated mapping table
	} {
		if _, err := ParseOpusHead(bad); err == nil {
			t.Errorf("ParseOpusHead(% x) accepted", bad)
		}
	}
}

func FuzzParseOpusHead(f *testing.F) {
	f.Add(ffmpegOpusHead)
	f.Add(AppendOpusHead(nil, OpusHead{ChannelCount: 3, ChannelMappingFamily: 1, StreamCount: 2, CoupledCount: 1, ChannelMapping: []uint8{0, 2, 1}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseOpusHead(b)
		if err != nil {
			return
		}
		h2, err := ParseOpusHead(AppendOpusHead(nil, h))
		if err != nil || !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip of %+v: %+v %v", h, h2, err)
		}
	})
}

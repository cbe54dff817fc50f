package srt

import (
	"bytes"
	"testing"

	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// BenchmarkDemux demuxes the clip's MPEG-TS (6 s, ~480 kB) into FLV
// bodies, as an SRT publisher's stream is.
func BenchmarkDemux(b *testing.B) {
	ts := clipTS(b)
	b.SetBytes(int64(len(ts)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := newDemuxer(bytes.NewReader(ts), func(uint8, uint32, []byte) {})
		if err != nil {
			b.Fatal(err)
		}
		for d.Read() == nil {
		}
	}
}

// BenchmarkMux muxes the clip's packets into MPEG-TS once, as the output
// of a stream does for all its SRT readers.
func BenchmarkMux(b *testing.B) {
	tags := mediatest.ClipTags(b)
	var n int64
	for _, t := range tags {
		n += int64(len(t.Body))
	}
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		muxAll(b, tags)
	}
}

package record

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// randomPart makes a fragment of up to two tracks of random samples.
func randomPart(r *rand.Rand) *fmp4.Part {
	p := &fmp4.Part{SequenceNumber: r.Uint32()}
	for id := range r.IntN(3) {
		t := &fmp4.PartTrack{ID: id + 1, BaseTime: r.Uint64()}
		for range r.IntN(40) {
			s := &fmp4.Sample{Duration: r.Uint32(), Payload: make([]byte, r.IntN(300))}
			if r.IntN(3) == 0 {
				s.PTSOffset = r.Int32() - 1<<30
			}
			s.IsNonSyncSample = r.IntN(4) != 0
			for i := range s.Payload {
				s.Payload[i] = byte(r.Uint32())
			}
			t.Samples = append(t.Samples, s)
		}
		p.Tracks = append(p.Tracks, t)
	}
	return p
}

// TestAppendFragment: appendFragment writes the bytes fmp4.Part.Marshal
// writes, for fragments of zero to two tracks, with and without sample
// flags and composition offsets, appended after what dst held.
func TestAppendFragment(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		p := randomPart(r)
		var want seekablebuffer.Buffer
		if err := p.Marshal(&want); err != nil {
			t.Fatal(err)
		}
		got, ok := appendFragment([]byte("prefix"), p)
		if !ok || !bytes.Equal(got[6:], want.Bytes()) || string(got[:6]) != "prefix" {
			t.Fatalf("part %d (%d tracks): appendFragment differs from Part.Marshal:\n got %x\nwant %x", i, len(p.Tracks), got[6:], want.Bytes())
		}
	}
}

func BenchmarkFragment(b *testing.B) {
	// a second of 30 fps video and 47 AAC frames, as the recorder flushes
	p := &fmp4.Part{SequenceNumber: 7, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: 90000}, {ID: 2, BaseTime: 44100}}}
	for i := range 30 {
		p.Tracks[0].Samples = append(p.Tracks[0].Samples, &fmp4.Sample{Duration: 3000, PTSOffset: 3000, IsNonSyncSample: i > 0, Payload: make([]byte, 10000)})
	}
	for range 47 {
		p.Tracks[1].Samples = append(p.Tracks[1].Samples, &fmp4.Sample{Duration: 1024, Payload: make([]byte, 300)})
	}
	b.Run("Part.Marshal", func(b *testing.B) {
		var buf seekablebuffer.Buffer
		for b.Loop() {
			buf.Reset()
			if err := p.Marshal(&buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendFragment", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf, _ = appendFragment(buf[:0], p)
		}
	})
}

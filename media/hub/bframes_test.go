package hub

import (
	"testing"

	"github.com/mofang-live/mofang/media/flv"
)

// withCTS returns a synthetic frame with composition time cts (ms).
func withCTS(key bool, cts int) []byte {
	b := synthFrame(key, 16)
	b[2], b[3], b[4] = byte(cts>>16), byte(cts>>8), byte(cts)
	return b
}

// TestBFramesDetected: StreamStats.BFrames is set by a frame presented
// before one decoded earlier, not by frames in order (even with a
// constant composition time), and a new sequence header starts the
// detection afresh.
func TestBFramesDetected(t *testing.T) {
	h := newSilentHub(t, Config{})
	s, _ := newSynthStream(t, h, "bf")
	s.WritePacket(flv.TagVideo, 0, withCTS(true, 33))
	s.WritePacket(flv.TagVideo, 33, withCTS(false, 33))
	s.WritePacket(flv.TagVideo, 66, withCTS(false, 33))
	if s.Stats().BFrames {
		t.Fatal("frames in order (constant composition time) taken for B-frames")
	}
	// I P B: the P is presented after the B decoded next
	s.WritePacket(flv.TagVideo, 100, withCTS(false, 66))
	s.WritePacket(flv.TagVideo, 133, withCTS(false, 0))
	if !s.Stats().BFrames {
		t.Fatal("a frame presented before one decoded earlier was not taken for a B-frame")
	}
	s.WritePacket(flv.TagVideo, 166, synthVideoSeq)
	if s.Stats().BFrames {
		t.Fatal("a new sequence header kept the B-frames flag")
	}
}

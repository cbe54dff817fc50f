package hls

import (
	"math"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/mofang-live/mofang/media/flv"
)

// LL-HLS parts must all last the part target (iOS refuses parts under 85%
// of it, except the last of a segment), and gohlslib warns at every change
// of the longest part. gohlslib cuts a part at the first frame whose DTS is
// PartMinDuration after the part's start, on DTS it derives from the PTS it
// is given. FLV timestamps are milliseconds: at 30 fps frames are 33 or 34
// ms apart, so 200 ms parts were 6 or 7 frames (200/233 ms). The muxer
// therefore puts video PTS back on the frame grid (frameGrid) and makes the
// part a whole number of frames (partFrames).

// frameDuration is a video frame duration in 90 kHz ticks, num/den (e.g.
// 3003/1 at 29.97 fps, 15015/4 at 23.976 fps). The zero value is unknown.
type frameDuration struct {
	num, den int64
}

func (f frameDuration) known() bool { return f.num > 0 && f.den > 0 }

func (f frameDuration) ticks() float64 { return float64(f.num) / float64(f.den) }

func (f frameDuration) duration() time.Duration {
	return time.Duration(f.num * int64(time.Second) / (90000 * f.den))
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func newFrameDuration(num, den int64) frameDuration {
	if num <= 0 || den <= 0 {
		return frameDuration{}
	}
	g := gcd(num, den)
	return frameDuration{num / g, den / g}
}

// Frame rates accepted, from the SPS or measured: 1 to 240 fps.
const (
	minFrameTicks = 90000 / 240
	maxFrameTicks = 90000
)

func (f frameDuration) plausible() bool {
	t := f.ticks()
	return f.known() && t >= minFrameTicks && t <= maxFrameTicks
}

// spsFrameDuration reads the frame duration from the VUI timing of an
// H.264 or H.265 SPS; unknown without one.
func spsFrameDuration(fourCC uint32, sps []byte) frameDuration {
	var f frameDuration
	switch fourCC {
	case flv.FourCCAVC:
		var s h264.SPS
		if s.Unmarshal(sps) != nil || s.VUI == nil || s.VUI.TimingInfo == nil {
			return frameDuration{}
		}
		// a frame is two ticks (fields) in H.264.
		ti := s.VUI.TimingInfo
		f = newFrameDuration(2*90000*int64(ti.NumUnitsInTick), int64(ti.TimeScale))
	case flv.FourCCHEVC:
		var s h265.SPS
		if s.Unmarshal(sps) != nil || s.VUI == nil || s.VUI.TimingInfo == nil {
			return frameDuration{}
		}
		ti := s.VUI.TimingInfo
		f = newFrameDuration(90000*int64(ti.NumUnitsInTick), int64(ti.TimeScale))
	}
	if !f.plausible() {
		return frameDuration{}
	}
	return f
}

// measuredFrameDuration is the frame duration of frames whose millisecond
// DTS span span ms over n frame intervals, rounded to the nearest common
// rate (N or N*1000/1001 frames per second). It is unknown for too few
// frames.
func measuredFrameDuration(span int64, n int) frameDuration {
	if n < 4 || span <= 0 {
		return frameDuration{}
	}
	fps := float64(n) * 1000 / float64(span)
	r := math.Round(fps)
	ntsc := math.Round(fps * 1.001)
	var f frameDuration
	if math.Abs(fps-r) <= math.Abs(fps-ntsc/1.001) {
		f = newFrameDuration(90000, int64(r))
	} else {
		f = newFrameDuration(90090, int64(ntsc))
	}
	if !f.plausible() {
		return frameDuration{}
	}
	return f
}

// partFrames returns the number of frames of a part closest to target
// (at least one), and the PartMinDuration that makes gohlslib cut parts of
// exactly that many frames.
//
// gohlslib cuts at the first frame at least PartMinDuration after the
// part's start, but first raises PartMinDuration until it is over 85% of
// the frames it spans (rounded up): it must be over 0.85*n frames, and
// over n-1 frames for the cut to come at the n-th. Take a twentieth of a
// frame more than both, which leaves room for the DTS gohlslib derives
// (whole 90 kHz ticks) on both sides.
func partFrames(f frameDuration, target time.Duration) (int, time.Duration) {
	fd := float64(f.num) / float64(f.den) / 90000 // seconds
	n := int(math.Round(target.Seconds() / fd))
	if n < 1 {
		n = 1
	}
	low := max(float64(n-1), 0.85*float64(n)) + 0.05
	return n, time.Duration(low * fd * float64(time.Second))
}

// frameGrid puts the PTS of video frames on the grid of their frame
// duration: base + k frames. A PTS off the grid by more than the
// tolerance (another frame rate, a timeline jump) starts a new grid there.
type frameGrid struct {
	f     frameDuration
	base  int64 // a PTS on the grid (90 kHz)
	valid bool
	tol   int64
}

func newFrameGrid(f frameDuration) *frameGrid {
	g := &frameGrid{f: f}
	// FLV timestamps (DTS and composition time) are rounded to 1 ms each.
	g.tol = min(2*90, int64(f.ticks()/4))
	return g
}

// snap returns pts (90 kHz) on the grid.
func (g *frameGrid) snap(pts int64) int64 {
	if !g.valid {
		g.base, g.valid = pts, true
		return pts
	}
	d := pts - g.base
	// k = round(d * den / num), s = base + round(k * num / den)
	k := divRound(d*g.f.den, g.f.num)
	s := g.base + divRound(k*g.f.num, g.f.den)
	if abs(s-pts) > g.tol {
		g.base = pts
		return pts
	}
	return s
}

// divRound is a/b rounded to the nearest integer, b > 0.
func divRound(a, b int64) int64 {
	if a >= 0 {
		return (a + b/2) / b
	}
	return -((-a + b/2) / b)
}

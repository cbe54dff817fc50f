package hls

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/mofang-live/mofang/media/flv"
)

const (
	// jumpThreshold: a track's timestamp moving forward by more than this,
	// or backwards, is a jump; the timeline is rebased to continue.
	jumpThreshold = 10 * time.Second
	// maxPending caps the frames buffered while probing the tracks.
	maxPending = 1024
	// aacSnap: AAC timestamps closer than this to the expected next one
	// are replaced by it (FLV's millisecond rounding would jitter sample
	// durations).
	aacSnap = 50 * time.Millisecond
	// probeFrames: without a frame rate in the SPS, video frames are
	// buffered until this many give it (or ProbeDuration passes).
	probeFrames = 8
)

const (
	trackVideo = 0
	trackAudio = 1
)

type pendingFrame struct {
	typ  uint8
	ts   uint32
	body []byte
}

// input turns FLV tag bodies into gohlslib writes. It is used by the
// WritePacket goroutine only.
type input struct {
	m *Muxer

	vcfg   *videoConfig
	aconf  *audioConfig
	unsupp [2]bool // logged an unsupported codec

	running bool // a generation is running with vcfg/aconf
	pending []pendingFrame
	grid    *frameGrid // video PTS on the frame grid; nil if the frame rate is unknown

	// timeline: output ms = input ms + offset; kept across generations.
	offset    int64
	lastOut   int64
	anyOut    bool
	lastTrack [2]int64
	anyTrack  [2]bool
	ntpBase   time.Time

	aacNext  int64 // next expected AAC timestamp, in samples
	aacValid bool

	// mirror of the segmenter, to know when the playlist has content.
	segStarted bool
	segStart   int64 // ms
	segments   int

	nalBuf [][]byte
}

func (in *input) video(ts uint32, body []byte) error {
	v, err := flv.ParseVideoTag(body)
	if err != nil {
		return fmt.Errorf("hls: video tag: %w", err)
	}
	switch {
	case v.IsSequenceHeader():
		c, err := parseVideoConfig(v)
		if err != nil {
			if errors.Is(err, errUnsupported) && !in.unsupp[trackVideo] {
				in.unsupp[trackVideo] = true
				in.m.log.Warn("hls: video track left out", "err", err)
			}
			return err
		}
		if !c.equal(in.vcfg) {
			in.vcfg = c
			in.reconfigure()
		}
		return nil
	case v.PacketType != flv.VideoCodedFrames && v.PacketType != flv.VideoCodedFramesX:
		return nil
	}
	return in.frame(flv.TagVideo, ts, body)
}

func (in *input) audio(ts uint32, body []byte) error {
	a, err := flv.ParseAudioTag(body)
	if err != nil {
		return fmt.Errorf("hls: audio tag: %w", err)
	}
	if a.IsSequenceHeader() {
		c, err := parseAudioConfig(a)
		if err != nil {
			if errors.Is(err, errUnsupported) && !in.unsupp[trackAudio] {
				in.unsupp[trackAudio] = true
				in.m.log.Warn("hls: audio track left out", "err", err)
			}
			return err
		}
		if !c.equal(in.aconf) {
			in.aconf = c
			in.reconfigure()
		}
		return nil
	}
	if a.PacketType != flv.AudioCodedFrames {
		return nil
	}
	return in.frame(flv.TagAudio, ts, body)
}

// reconfigure is called when a track's codec parameters change: a running
// generation ends, the next frames start a new one.
func (in *input) reconfigure() {
	if !in.running {
		return
	}
	in.running = false
	in.segStarted = false
	in.segments = 0
	in.aacValid = false
	in.m.stopGeneration()
}

func (in *input) frame(typ uint8, ts uint32, body []byte) error {
	if in.running {
		return in.write(typ, ts, body)
	}
	if typ == flv.TagVideo && in.vcfg == nil || typ == flv.TagAudio && in.aconf == nil {
		return nil // no configuration for this track (yet, or unsupported)
	}
	if len(in.pending) == maxPending {
		copy(in.pending, in.pending[1:])
		in.pending = in.pending[:maxPending-1]
	}
	in.pending = append(in.pending, pendingFrame{typ, ts, body})
	span := time.Duration(int64(ts)-int64(in.pending[0].ts)) * time.Millisecond
	if span < in.m.cfg.ProbeDuration {
		if in.vcfg == nil || in.aconf == nil {
			return nil
		}
		if !in.vcfg.frame.known() {
			if n, _ := in.pendingVideo(); n < probeFrames {
				return nil // measure the frame rate first
			}
		}
	}
	return in.start()
}

// pendingVideo returns the number of video frames buffered and the span of
// their timestamps (ms).
func (in *input) pendingVideo() (int, int64) {
	n := 0
	var first, last uint32
	for _, p := range in.pending {
		if p.typ != flv.TagVideo {
			continue
		}
		if n == 0 {
			first = p.ts
		}
		last = p.ts
		n++
	}
	return n, int64(last) - int64(first)
}

// frameDuration returns the video frame duration: the SPS's, unless the
// frames buffered disagree with it, else measured on them.
func (in *input) frameDuration() frameDuration {
	if in.vcfg == nil {
		return frameDuration{}
	}
	n, span := in.pendingVideo()
	measured := measuredFrameDuration(span, n-1)
	vui := in.vcfg.frame
	if !vui.known() {
		return measured
	}
	if measured.known() && math.Abs(measured.ticks()/vui.ticks()-1) > 0.05 {
		in.m.log.Debug("hls: frame rate of the SPS does not match the timestamps, using the timestamps",
			"sps_frame_ticks", vui.ticks(), "measured_frame_ticks", measured.ticks())
		return measured
	}
	return vui
}

// start starts a generation with the known tracks and flushes the frames
// buffered while probing.
func (in *input) start() error {
	var err error
	// parts: a whole number of video frames, on a regular grid.
	in.grid = nil
	partMin, partDur := in.m.cfg.PartMinDuration, in.m.cfg.PartMinDuration
	if f := in.frameDuration(); f.known() {
		var n int
		n, partMin = partFrames(f, in.m.cfg.PartMinDuration)
		partDur = time.Duration(n) * f.duration()
		in.grid = newFrameGrid(f)
	}
	if in.vcfg != nil && in.aconf != nil {
		err = in.m.startGeneration(in.vcfg.track(), in.aconf.track(), partMin, partDur)
	} else if in.vcfg != nil {
		err = in.m.startGeneration(in.vcfg.track(), nil, partMin, partDur)
	} else {
		err = in.m.startGeneration(nil, in.aconf.track(), in.m.cfg.PartMinDuration, in.m.cfg.PartMinDuration)
	}
	pending := in.pending
	in.pending = nil
	if err != nil {
		return err
	}
	in.running = true
	if in.ntpBase.IsZero() {
		in.ntpBase = time.Now()
	}
	var first error
	for _, p := range pending {
		if err := in.write(p.typ, p.ts, p.body); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// timeline maps an input timestamp of a track to the output timeline,
// rebasing it when the track jumps backwards or far forwards.
func (in *input) timeline(track int, ts uint32) int64 {
	t := int64(ts) + in.offset
	if in.anyTrack[track] && (t < in.lastTrack[track] || t > in.lastOut+jumpThreshold.Milliseconds()) {
		in.offset += in.lastOut + 1 - t
		t = in.lastOut + 1
		if track == trackAudio {
			in.aacValid = false
		}
	}
	in.lastTrack[track], in.anyTrack[track] = t, true
	if !in.anyOut || t > in.lastOut {
		in.lastOut, in.anyOut = t, true
	}
	return t
}

func (in *input) write(typ uint8, ts uint32, body []byte) error {
	g := in.m.current()
	if g == nil {
		return ErrClosed
	}
	if typ == flv.TagVideo {
		if g.video == nil {
			return nil
		}
		v, err := flv.ParseVideoTag(body)
		if err != nil {
			return err
		}
		t := in.timeline(trackVideo, ts)
		key := v.IsKeyFrame()
		au, err := in.vcfg.accessUnit(v.Data, key, in.nalBuf)
		if err != nil {
			return fmt.Errorf("hls: video frame: %w", err)
		}
		if len(au) == 0 {
			return nil
		}
		if !key {
			in.nalBuf = au[:0] // reuse the split buffer (gohlslib copies the NAL units)
		}
		pts := (t + int64(v.CompositionTime)) * 90
		if in.grid != nil {
			pts = in.grid.snap(pts)
		}
		ntp := in.ntpBase.Add(time.Duration(t) * time.Millisecond)
		if key {
			in.mirror(t)
		}
		if in.vcfg.fourCC == flv.FourCCHEVC {
			err = g.m.WriteH265(g.video, ntp, pts, au)
		} else {
			err = g.m.WriteH264(g.video, ntp, pts, au)
		}
		if err != nil {
			return fmt.Errorf("hls: write video: %w", err)
		}
		if in.m.kick != nil && g.ready {
			in.m.written.Add(1)
			in.m.kickRefresh()
		}
		return nil
	}

	if g.audio == nil {
		return nil
	}
	a, err := flv.ParseAudioTag(body)
	if err != nil {
		return err
	}
	if len(a.Data) == 0 {
		return nil
	}
	t := in.timeline(trackAudio, ts)
	if g.video == nil {
		in.mirror(t)
	}
	ntp := in.ntpBase.Add(time.Duration(t) * time.Millisecond)
	if in.aconf.fourCC == flv.FourCCOpus {
		err = g.m.WriteOpus(g.audio, ntp, t*48, [][]byte{a.Data})
	} else {
		sr := int64(in.aconf.aac.SampleRate)
		pts := t * sr / 1000
		if in.aacValid && abs(pts-in.aacNext) < sr*aacSnap.Milliseconds()/1000 {
			pts = in.aacNext
		}
		in.aacNext, in.aacValid = pts+mpeg4audio.SamplesPerAccessUnit, true
		err = g.m.WriteMPEG4Audio(g.audio, ntp, pts, [][]byte{a.Data})
	}
	if err != nil {
		return fmt.Errorf("hls: write audio: %w", err)
	}
	if g.video == nil && in.m.kick != nil && g.ready {
		in.m.written.Add(1)
		in.m.kickRefresh()
	}
	return nil
}

// mirror follows gohlslib's segmentation on the leading track: a segment
// ends at the first random access point SegmentMinDuration after its start.
func (in *input) mirror(t int64) {
	if !in.segStarted {
		in.segStarted, in.segStart = true, t
		return
	}
	d := time.Duration(t-in.segStart) * time.Millisecond
	if d >= in.m.segmentMin() {
		in.segments++
		in.segStart = t
		in.m.segmentDone(in.segments, d)
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// current returns the running generation.
func (m *Muxer) current() *generation {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

package srt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/mofang-live/mofang/media/flv"
)

// errNoTracks refuses an MPEG-TS stream with nothing the engine carries.
var errNoTracks = errors.New("no H.264, H.265, AAC or Opus track in the MPEG-TS stream")

// tsClock is the clock rate of MPEG-TS timestamps.
const tsClock = 90000

// aacSamples is the number of samples of an AAC access unit.
const aacSamples = 1024

// opusPreSkip is the pre-skip put in the OpusHead of an Opus track: the
// MPEG-TS mapping carries none, and 3840 samples (80 ms) is RFC 7845's
// pre-roll for a decoder that starts mid-stream, as viewers of a live do.
const opusPreSkip = 3840

// writeFunc receives the FLV tag bodies of a stream (hub.Stream.WritePacket).
type writeFunc func(typ uint8, ts uint32, body []byte)

// demuxer turns a publisher's MPEG-TS into FLV tag bodies, as an RTMP
// publisher sends them: H.264 access units become AVCC frames behind an
// AVC sequence header made from the in-band SPS and PPS, H.265 ones
// Enhanced RTMP "hvc1" frames behind an hvcC sequence start, AAC (ADTS)
// access units raw AAC frames behind the AAC sequence header, Opus packets
// Enhanced RTMP Opus frames behind an OpusHead. Timestamps become
// milliseconds from the first one read (DTS for video), with the 33-bit
// MPEG-TS clock unwrapped. The first video and the first audio track
// are used; other tracks are skipped (Skipped).
type demuxer struct {
	r     *mpegts.Reader
	write writeFunc
	td    mpegts.TimeDecoder

	video      *videoTrack
	aacRate    int64 // sample rate of the AAC track; 0: none
	opusTrack  bool
	skipped    []string // codecs of the tracks not carried
	decodeErrs uint64
	lastErr    error
}

// videoTrack is the state of the H.264 or H.265 track.
type videoTrack struct {
	hevc       bool
	params     [3][]byte // VPS (H.265 only), SPS, PPS
	configured bool      // a sequence header was written
	gotKey     bool      // a key frame was written
}

// newDemuxer reads r until it knows the tracks of the stream (its program
// map and, for AAC, the first frame), and writes the audio sequence
// header. It reads at most 1 MiB for that (mediacommon's limit).
func newDemuxer(r io.Reader, write writeFunc) (*demuxer, error) {
	d := &demuxer{write: write}
	d.r = &mpegts.Reader{R: newTSGuard(r, maxPESPending)}
	if err := d.r.Initialize(); err != nil {
		return nil, fmt.Errorf("MPEG-TS: %w", err)
	}
	d.r.OnDecodeError(func(err error) {
		d.decodeErrs++
		d.lastErr = err
	})
	for _, tr := range d.r.Tracks() {
		switch c := tr.Codec.(type) {
		case *tscodecs.H264, *tscodecs.H265:
			if d.video != nil {
				d.skip(tr.Codec)
				continue
			}
			_, hevc := c.(*tscodecs.H265)
			d.video = &videoTrack{hevc: hevc}
			onVideo := func(pts, dts int64, au [][]byte) error {
				d.writeVideo(pts, dts, au)
				return nil
			}
			if hevc {
				d.r.OnDataH265(tr, onVideo)
			} else {
				d.r.OnDataH264(tr, onVideo)
			}
		case *tscodecs.MPEG4Audio:
			if d.hasAudio() || c.SampleRate <= 0 {
				d.skip(tr.Codec)
				continue
			}
			conf, err := c.Config.Marshal()
			if err != nil {
				d.skip(tr.Codec)
				continue
			}
			d.aacRate = int64(c.SampleRate)
			d.write(flv.TagAudio, 0, append([]byte{flv.SoundAAC<<4 | 0xf, flv.AudioSequenceStart}, conf...))
			d.r.OnDataMPEG4Audio(tr, func(pts int64, aus [][]byte) error {
				d.writeAAC(pts, aus)
				return nil
			})
		case *tscodecs.Opus:
			head, ok := opusHead(c)
			if d.hasAudio() || !ok {
				d.skip(tr.Codec)
				continue
			}
			d.opusTrack = true
			d.write(flv.TagAudio, 0, flv.AppendOpusHead(opusBody(flv.AudioSequenceStart, 21+len(head.ChannelMapping)), head))
			d.r.OnDataOpus(tr, func(pts int64, packets [][]byte) error {
				d.writeOpus(pts, packets)
				return nil
			})
		default:
			d.skip(tr.Codec)
		}
	}
	if d.video == nil && !d.hasAudio() {
		return nil, fmt.Errorf("%w (tracks: %v)", errNoTracks, d.skipped)
	}
	return d, nil
}

// Read reads and writes the next frames; it returns the reader's error
// (io.EOF when the stream ends). Frames that do not decode are skipped
// and counted (DecodeErrors).
func (d *demuxer) Read() error { return d.r.Read() }

// DecodeErrors returns how many parts of the stream were skipped as
// invalid, and the last reason.
func (d *demuxer) DecodeErrors() (uint64, error) { return d.decodeErrs, d.lastErr }

// Skipped returns the codecs of the tracks that are not carried.
func (d *demuxer) Skipped() []string { return d.skipped }

func (d *demuxer) hasAudio() bool { return d.aacRate > 0 || d.opusTrack }

func (d *demuxer) skip(c tscodecs.Codec) {
	d.skipped = append(d.skipped, strings.TrimPrefix(fmt.Sprintf("%T", c), "*codecs."))
}

// tsMask is the range of MPEG-TS timestamps (33 bits).
const tsMask = 1<<33 - 1

// timestamps unwraps a frame's DTS and gives its PTS on the same
// timeline, both in 90 kHz units.
func (d *demuxer) timestamps(pts, dts int64) (int64, int64) {
	diff := (pts - dts) & tsMask
	if diff > tsMask/2 {
		diff -= tsMask + 1
	}
	dts = d.td.Decode(dts)
	return dts + diff, dts
}

// ms converts a 90 kHz timestamp to milliseconds, negative ones (before
// the first timestamp read) to 0.
func ms(ts int64) uint32 {
	if ts <= 0 {
		return 0
	}
	return uint32(ts * 1000 / tsClock)
}

// nalu classes of classify.
const (
	naluFrame = -1 // part of the frame
	naluDrop  = -2 // access unit delimiter, empty
)

// classify returns the params slot of a parameter set (0 VPS, 1 SPS, 2
// PPS), or naluFrame or naluDrop, and whether the NAL unit starts a
// random access point.
func (v *videoTrack) classify(nalu []byte) (int, bool) {
	if !v.hevc {
		if len(nalu) == 0 {
			return naluDrop, false
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeSPS:
			return 1, false
		case h264.NALUTypePPS:
			return 2, false
		case h264.NALUTypeAccessUnitDelimiter:
			return naluDrop, false
		case h264.NALUTypeIDR:
			return naluFrame, true
		}
		return naluFrame, false
	}
	if len(nalu) < 2 {
		return naluDrop, false
	}
	switch typ := h265.NALUType((nalu[0] >> 1) & 0x3f); {
	case typ == h265.NALUType_VPS_NUT:
		return 0, false
	case typ == h265.NALUType_SPS_NUT:
		return 1, false
	case typ == h265.NALUType_PPS_NUT:
		return 2, false
	case typ == h265.NALUType_AUD_NUT:
		return naluDrop, false
	case typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT:
		return naluFrame, true
	}
	return naluFrame, false
}

// writeVideo writes an access unit: its parameter sets, when new, as a
// sequence header, its other NAL units as a frame once a key frame has
// come.
func (d *demuxer) writeVideo(pts, dts int64, au [][]byte) {
	v := d.video
	pts, dts = d.timestamps(pts, dts)
	frame := au[:0:0]
	size, key, changed := 0, false, false
	for _, nalu := range au {
		slot, rap := v.classify(nalu)
		switch slot {
		case naluDrop:
		case naluFrame:
			key = key || rap
			frame = append(frame, nalu)
			size += 4 + len(nalu)
		default:
			if !bytes.Equal(v.params[slot], nalu) {
				v.params[slot] = bytes.Clone(nalu)
				changed = true
			}
		}
	}
	if changed {
		d.writeVideoConfig(ms(dts))
	}
	if len(frame) == 0 || !v.configured || (!v.gotKey && !key) {
		return
	}
	v.gotKey = true
	cts := (pts - dts) * 1000 / tsClock
	cts = max(min(cts, 1<<23-1), -(1 << 23))
	var body []byte
	if v.hevc {
		ft := flv.FrameInter
		if key {
			ft = flv.FrameKey
		}
		body = make([]byte, 8, 8+size)
		body[0] = 0x80 | ft<<4 | flv.VideoCodedFrames
		copy(body[1:5], "hvc1")
		body[5], body[6], body[7] = byte(cts>>16), byte(cts>>8), byte(cts)
	} else {
		body = make([]byte, 5, 5+size)
		body[0] = flv.FrameInter<<4 | flv.VideoCodecH264
		if key {
			body[0] = flv.FrameKey<<4 | flv.VideoCodecH264
		}
		body[1] = flv.VideoCodedFrames
		body[2], body[3], body[4] = byte(cts>>16), byte(cts>>8), byte(cts)
	}
	for _, nalu := range frame {
		l := len(nalu)
		body = append(body, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
		body = append(body, nalu...)
	}
	d.write(flv.TagVideo, ms(dts), body)
}

// writeVideoConfig writes the sequence header of the parameter sets
// known, once there are all of them.
func (d *demuxer) writeVideoConfig(ts uint32) {
	v := d.video
	var body []byte
	var err error
	if v.hevc {
		if len(v.params[0]) == 0 || len(v.params[1]) == 0 || len(v.params[2]) == 0 {
			return
		}
		body = []byte{0x80 | flv.FrameKey<<4 | flv.VideoSequenceStart, 'h', 'v', 'c', '1'}
		body, err = flv.AppendHEVCConfig(body, v.params[0], v.params[1], v.params[2])
	} else {
		if len(v.params[1]) < 4 || len(v.params[2]) == 0 {
			return
		}
		body = []byte{flv.FrameKey<<4 | flv.VideoCodecH264, flv.VideoSequenceStart, 0, 0, 0}
		body, err = flv.AppendAVCConfig(body, v.params[1], v.params[2])
	}
	if err != nil {
		d.decodeErrs++
		d.lastErr = fmt.Errorf("video parameter sets: %w", err)
		return
	}
	v.configured = true
	d.write(flv.TagVideo, ts, body)
}

// writeAAC writes the access units of one ADTS PES.
func (d *demuxer) writeAAC(pts int64, aus [][]byte) {
	pts = d.td.Decode(pts)
	for i, au := range aus {
		if len(au) == 0 {
			continue
		}
		body := make([]byte, 2+len(au))
		body[0], body[1] = flv.SoundAAC<<4|0xf, flv.AudioCodedFrames
		copy(body[2:], au)
		d.write(flv.TagAudio, ms(pts+int64(i)*aacSamples*tsClock/d.aacRate), body)
	}
}

// writeOpus writes the packets of one Opus PES, each at its time.
func (d *demuxer) writeOpus(pts int64, packets [][]byte) {
	pts = d.td.Decode(pts)
	for _, pkt := range packets {
		if len(pkt) == 0 {
			continue
		}
		body := append(opusBody(flv.AudioCodedFrames, len(pkt)), pkt...)
		d.write(flv.TagAudio, ms(pts), body)
		pts += opus.PacketDuration2(pkt) * tsClock / 48000
	}
}

// opusBody returns the Enhanced RTMP Opus header of a packet type, with
// room for n more bytes.
func opusBody(packetType uint8, n int) []byte {
	b := make([]byte, 5, 5+n)
	b[0] = flv.SoundExHdr<<4 | packetType
	copy(b[1:], "Opus")
	return b
}

// opusHead returns the OpusHead of an MPEG-TS Opus track: mono and
// stereo, or more channels with the mapping its descriptor gives.
func opusHead(c *tscodecs.Opus) (flv.OpusHead, bool) {
	if c.Desc == nil {
		return flv.OpusHead{}, false
	}
	n := c.Desc.ChannelCount()
	h := flv.OpusHead{ChannelCount: uint8(n), PreSkip: opusPreSkip, InputSampleRate: 48000}
	switch {
	case n == 1 || n == 2:
		return h, true
	case n > 2 && n <= 255 && c.Desc.ChannelConfigCode == 0x81 && c.Desc.MappingFamily > 0 &&
		len(c.Desc.ChannelMapping) == n && c.Desc.StreamCount > 0 && c.Desc.StreamCount <= 255:
		h.ChannelMappingFamily = uint8(c.Desc.MappingFamily)
		h.StreamCount, h.CoupledCount = uint8(c.Desc.StreamCount), uint8(c.Desc.CoupledStreamCount)
		h.ChannelMapping = c.Desc.ChannelMapping
		return h, true
	}
	return flv.OpusHead{}, false
}

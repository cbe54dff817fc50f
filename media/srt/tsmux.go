package srt

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/substructs"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
)

// tsOffset is added to the stream's timestamps in the MPEG-TS readers
// get (90 kHz): 1 s, so that the program clock, 100 ms before the first
// DTS, starts above zero.
const tsOffset = tsClock

// maxOpusChannels is the most Opus channels the MPEG-TS mapping's
// default channel configurations describe.
const maxOpusChannels = 8

// tracks are the tracks of a stream that MPEG-TS over SRT carries, read
// from its sequence headers: H.264 or H.265 video, AAC or Opus audio.
type tracks struct {
	video *flv.VideoParams
	audio *flv.AudioParams
}

func tracksOf(hs *hub.Headers) tracks {
	var t tracks
	if hs.Video != nil {
		if v, err := flv.ParseVideoTag(hs.Video.Body()); err == nil && v.IsSequenceHeader() {
			if p, err := flv.ParseVideoParams(v); err == nil {
				t.video = &p
			}
		}
	}
	if hs.Audio != nil {
		if a, err := flv.ParseAudioTag(hs.Audio.Body()); err == nil && a.IsSequenceHeader() {
			if p, err := flv.ParseAudioParams(a); err == nil && (p.FourCC != flv.FourCCOpus || p.Channels <= maxOpusChannels) {
				t.audio = &p
			}
		}
	}
	return t
}

// any reports whether there is a track to carry.
func (t tracks) any() bool { return t.video != nil || t.audio != nil }

// layout identifies what the program map fixes: the codecs, and the
// audio configuration.
func (t tracks) layout() string {
	var b []byte
	if t.video != nil {
		b = strconv.AppendUint(b, uint64(t.video.FourCC), 16)
	}
	b = append(b, '/')
	if t.audio != nil {
		b = strconv.AppendUint(b, uint64(t.audio.FourCC), 16)
		b = append(b, ':')
		if t.audio.FourCC == flv.FourCCOpus {
			b = strconv.AppendInt(b, int64(t.audio.Channels), 10)
		} else {
			b = append(b, t.audio.Raw...)
		}
	}
	return string(b)
}

// tsMuxer muxes a stream's packets into MPEG-TS with mediacommon's
// writer: AVCC frames become Annex B access units with the parameter
// sets before every key frame, AAC frames ADTS, Opus frames the MPEG-TS
// Opus mapping. The writer puts the program tables before every key
// frame of the video track, the first one written.
type tsMuxer struct {
	layout string
	w      *mpegts.Writer
	buf    bytes.Buffer

	video   *mpegts.Track
	hevc    bool
	lenSize int
	params  [3][]byte // VPS (H.265 only), SPS, PPS

	audio *mpegts.Track
	opus  bool
}

func newTSMuxer(t tracks) (*tsMuxer, error) {
	if !t.any() {
		return nil, errNotPlayable
	}
	m := &tsMuxer{layout: t.layout()}
	var trs []*mpegts.Track
	if v := t.video; v != nil {
		m.hevc = v.FourCC == flv.FourCCHEVC
		m.lenSize, m.params = v.LengthSize, [3][]byte{v.VPS, v.SPS, v.PPS}
		m.video = &mpegts.Track{Codec: &tscodecs.H264{}}
		if m.hevc {
			m.video.Codec = &tscodecs.H265{}
		}
		trs = append(trs, m.video)
	}
	if a := t.audio; a != nil {
		if a.FourCC == flv.FourCCOpus {
			m.opus = true
			m.audio = &mpegts.Track{Codec: &tscodecs.Opus{Desc: &substructs.OpusAudioDescriptor{ChannelConfigCode: uint8(a.Channels)}}}
		} else {
			m.audio = &mpegts.Track{Codec: &tscodecs.MPEG4Audio{Config: a.AAC}}
		}
		trs = append(trs, m.audio)
	}
	m.w = &mpegts.Writer{W: &m.buf, Tracks: trs}
	if err := m.w.Initialize(); err != nil {
		return nil, fmt.Errorf("MPEG-TS writer: %w", err)
	}
	return m, nil
}

// mux returns the MPEG-TS bytes of p, or none for packets that are not
// frames of the tracks (sequence headers are kept for the parameter
// sets, metadata dropped). The bytes are the caller's.
func (m *tsMuxer) mux(p *hub.Packet) ([]byte, error) {
	m.buf.Reset()
	dts := int64(p.Timestamp())*tsClock/1000 + tsOffset
	var err error
	switch p.Type() {
	case flv.TagVideo:
		err = m.muxVideo(p, dts)
	case flv.TagAudio:
		err = m.muxAudio(p, dts)
	}
	if err != nil || m.buf.Len() == 0 {
		return nil, err
	}
	return bytes.Clone(m.buf.Bytes()), nil
}

func (m *tsMuxer) muxVideo(p *hub.Packet, dts int64) error {
	if m.video == nil {
		return nil
	}
	v, err := flv.ParseVideoTag(p.Body())
	if err != nil {
		return err
	}
	want := flv.FourCCAVC
	if m.hevc {
		want = flv.FourCCHEVC
	}
	if v.FourCC != want {
		return nil
	}
	if v.IsSequenceHeader() {
		m.keepParams(v.Data)
		return nil
	}
	if v.PacketType != flv.VideoCodedFrames && v.PacketType != flv.VideoCodedFramesX {
		return nil
	}
	all, err := flv.SplitNALUs(v.Data, m.lenSize, nil)
	if err != nil {
		return err
	}
	au := make([][]byte, 0, len(all)+3)
	if p.Key() {
		for _, ps := range m.params {
			if len(ps) > 0 {
				au = append(au, ps)
			}
		}
	}
	for _, nalu := range all {
		if len(nalu) > 0 {
			au = append(au, nalu)
		}
	}
	if len(au) == 0 {
		return errors.New("video frame without NAL units")
	}
	pts := dts + int64(v.CompositionTime)*tsClock/1000
	if m.hevc {
		return m.w.WriteH265(m.video, pts, dts, au)
	}
	return m.w.WriteH264(m.video, pts, dts, au)
}

// keepParams takes the parameter sets of a sequence header the stream
// sends again (a publisher back with other settings).
func (m *tsMuxer) keepParams(conf []byte) {
	if m.hevc {
		if c, err := flv.ParseHEVCConfig(conf); err == nil && len(c.VPS) > 0 && len(c.SPS) > 0 && len(c.PPS) > 0 {
			m.params, m.lenSize = [3][]byte{c.VPS[0], c.SPS[0], c.PPS[0]}, c.LengthSize
		}
		return
	}
	if c, err := flv.ParseAVCConfig(conf); err == nil && len(c.SPS) > 0 && len(c.PPS) > 0 {
		m.params, m.lenSize = [3][]byte{nil, c.SPS[0], c.PPS[0]}, c.LengthSize
	}
}

func (m *tsMuxer) muxAudio(p *hub.Packet, pts int64) error {
	if m.audio == nil {
		return nil
	}
	a, err := flv.ParseAudioTag(p.Body())
	if err != nil {
		return err
	}
	if a.PacketType != flv.AudioCodedFrames || len(a.Data) == 0 {
		return nil
	}
	switch {
	case m.opus && a.FourCC == flv.FourCCOpus:
		return m.w.WriteOpus(m.audio, pts, [][]byte{a.Data})
	case !m.opus && a.FourCC == flv.FourCCMP4A:
		return m.w.WriteMPEG4Audio(m.audio, pts, [][]byte{a.Data})
	}
	return nil
}

package flv

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// ErrUnsupportedCodec means a sequence header of a codec the parameter
// parsers do not read.
var ErrUnsupportedCodec = errors.New("unsupported codec")

// VideoParams are the decoder parameters of an H.264 or H.265 track, read
// from its sequence header.
type VideoParams struct {
	FourCC        uint32
	LengthSize    int    // NAL unit length prefix of the frames
	VPS, SPS, PPS []byte // the first of each (no VPS for H.264); copies
	Width, Height int
}

// ParseVideoParams reads the AVC or HEVC sequence header of v.
func ParseVideoParams(v VideoTag) (VideoParams, error) {
	switch v.FourCC {
	case FourCCAVC:
		c, err := ParseAVCConfig(v.Data)
		if err != nil {
			return VideoParams{}, err
		}
		if len(c.SPS) == 0 || len(c.PPS) == 0 {
			return VideoParams{}, fmt.Errorf("AVC config without SPS or PPS")
		}
		var sps h264.SPS
		if err := sps.Unmarshal(c.SPS[0]); err != nil {
			return VideoParams{}, fmt.Errorf("H.264 SPS: %w", err)
		}
		return VideoParams{FourCC: v.FourCC, LengthSize: c.LengthSize, SPS: bytes.Clone(c.SPS[0]), PPS: bytes.Clone(c.PPS[0]),
			Width: sps.Width(), Height: sps.Height()}, nil
	case FourCCHEVC:
		c, err := ParseHEVCConfig(v.Data)
		if err != nil {
			return VideoParams{}, err
		}
		if len(c.VPS) == 0 || len(c.SPS) == 0 || len(c.PPS) == 0 {
			return VideoParams{}, fmt.Errorf("HEVC config without VPS, SPS or PPS")
		}
		var sps h265.SPS
		if err := sps.Unmarshal(c.SPS[0]); err != nil {
			return VideoParams{}, fmt.Errorf("H.265 SPS: %w", err)
		}
		return VideoParams{FourCC: v.FourCC, LengthSize: c.LengthSize, VPS: bytes.Clone(c.VPS[0]), SPS: bytes.Clone(c.SPS[0]),
			PPS: bytes.Clone(c.PPS[0]), Width: sps.Width(), Height: sps.Height()}, nil
	}
	return VideoParams{}, fmt.Errorf("video %q: %w", v.CodecName(), ErrUnsupportedCodec)
}

// AudioParams are the decoder parameters of an AAC or Opus track, read
// from its sequence header.
type AudioParams struct {
	FourCC    uint32
	Raw       []byte                         // AudioSpecificConfig or OpusHead; a copy
	AAC       mpeg4audio.AudioSpecificConfig // AAC only
	Channels  int                            // Opus only
	ClockRate int
}

// ParseAudioParams reads the AAC or Opus sequence header of a.
func ParseAudioParams(a AudioTag) (AudioParams, error) {
	switch a.FourCC {
	case FourCCMP4A:
		p := AudioParams{FourCC: a.FourCC, Raw: bytes.Clone(a.Data)}
		if err := p.AAC.Unmarshal(a.Data); err != nil {
			return AudioParams{}, fmt.Errorf("AAC config: %w", err)
		}
		if p.AAC.SampleRate <= 0 {
			return AudioParams{}, fmt.Errorf("AAC config: sample rate %d", p.AAC.SampleRate)
		}
		p.ClockRate = p.AAC.SampleRate
		return p, nil
	case FourCCOpus:
		h, err := ParseOpusHead(a.Data)
		if err != nil {
			return AudioParams{}, err
		}
		return AudioParams{FourCC: a.FourCC, Raw: bytes.Clone(a.Data), Channels: int(h.ChannelCount), ClockRate: 48000}, nil
	}
	return AudioParams{}, fmt.Errorf("audio %q: %w", a.CodecName(), ErrUnsupportedCodec)
}

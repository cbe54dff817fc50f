package record

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/mofang-live/mofang/media/flv"
)

var errUnsupported = errors.New("codec not supported for recording")

// videoTrack is the video decoder configuration of a recording.
type videoTrack struct {
	fourCC        uint32
	lengthSize    int
	vps, sps, pps []byte
	width, height int
}

func (c *videoTrack) name() string { return flv.VideoCodecName(c.fourCC) }

// sameFormat reports whether frames coded with o can go on in a file whose
// init segment was made from c (same codec and picture size); parameter
// sets that differ are then put in band.
func (c *videoTrack) sameFormat(o *videoTrack) bool {
	return c.fourCC == o.fourCC && c.width == o.width && c.height == o.height
}

func (c *videoTrack) sameParams(o *videoTrack) bool {
	return bytes.Equal(c.vps, o.vps) && bytes.Equal(c.sps, o.sps) && bytes.Equal(c.pps, o.pps)
}

func (c *videoTrack) codec() fmp4.Codec {
	if c.fourCC == flv.FourCCHEVC {
		return &fmp4.CodecH265{VPS: c.vps, SPS: c.sps, PPS: c.pps}
	}
	return &fmp4.CodecH264{SPS: c.sps, PPS: c.pps}
}

func parseVideo(v flv.VideoTag) (*videoTrack, error) {
	switch v.FourCC {
	case flv.FourCCAVC:
		c, err := flv.ParseAVCConfig(v.Data)
		if err != nil {
			return nil, err
		}
		if len(c.SPS) == 0 || len(c.PPS) == 0 {
			return nil, fmt.Errorf("AVC config without SPS or PPS")
		}
		var sps h264.SPS
		if err := sps.Unmarshal(c.SPS[0]); err != nil {
			return nil, fmt.Errorf("H.264 SPS: %w", err)
		}
		return &videoTrack{fourCC: v.FourCC, lengthSize: c.LengthSize, sps: bytes.Clone(c.SPS[0]),
			pps: bytes.Clone(c.PPS[0]), width: sps.Width(), height: sps.Height()}, nil
	case flv.FourCCHEVC:
		c, err := flv.ParseHEVCConfig(v.Data)
		if err != nil {
			return nil, err
		}
		if len(c.VPS) == 0 || len(c.SPS) == 0 || len(c.PPS) == 0 {
			return nil, fmt.Errorf("HEVC config without VPS, SPS or PPS")
		}
		var sps h265.SPS
		if err := sps.Unmarshal(c.SPS[0]); err != nil {
			return nil, fmt.Errorf("H.265 SPS: %w", err)
		}
		return &videoTrack{fourCC: v.FourCC, lengthSize: c.LengthSize, vps: bytes.Clone(c.VPS[0]),
			sps: bytes.Clone(c.SPS[0]), pps: bytes.Clone(c.PPS[0]), width: sps.Width(), height: sps.Height()}, nil
	}
	return nil, fmt.Errorf("video %q: %w", v.CodecName(), errUnsupported)
}

// avcc returns the frame as 4-byte length-prefixed NAL units (what MP4
// wants), prefixed with params (in-band parameter sets) if not nil.
func (c *videoTrack) avcc(data []byte, params [][]byte) ([]byte, error) {
	if c.lengthSize == 4 && params == nil {
		return data, nil
	}
	nalus, err := flv.SplitNALUs(data, c.lengthSize, nil)
	if err != nil {
		return nil, err
	}
	return h264.AVCC(append(params, nalus...)).Marshal()
}

// audioTrack is the audio decoder configuration of a recording.
type audioTrack struct {
	fourCC    uint32
	raw       []byte
	codec     fmp4.Codec
	clockRate int
}

func (c *audioTrack) name() string {
	if c.fourCC == flv.FourCCOpus {
		return "opus"
	}
	return "aac"
}

func parseAudio(a flv.AudioTag) (*audioTrack, error) {
	switch a.FourCC {
	case flv.FourCCMP4A:
		var conf fmp4.CodecMPEG4Audio
		if err := conf.Config.Unmarshal(a.Data); err != nil {
			return nil, fmt.Errorf("AAC config: %w", err)
		}
		if conf.Config.SampleRate <= 0 {
			return nil, fmt.Errorf("AAC config: sample rate %d", conf.Config.SampleRate)
		}
		return &audioTrack{fourCC: a.FourCC, raw: bytes.Clone(a.Data), codec: &conf, clockRate: conf.Config.SampleRate}, nil
	case flv.FourCCOpus:
		if len(a.Data) < 10 || string(a.Data[:8]) != "OpusHead" {
			return nil, fmt.Errorf("invalid OpusHead")
		}
		return &audioTrack{fourCC: a.FourCC, raw: bytes.Clone(a.Data),
			codec: &fmp4.CodecOpus{ChannelCount: int(a.Data[9])}, clockRate: 48000}, nil
	}
	return nil, fmt.Errorf("audio %q: %w", a.CodecName(), errUnsupported)
}

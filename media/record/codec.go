package record

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
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
	p, err := flv.ParseVideoParams(v)
	if err != nil {
		return nil, unsupported(err)
	}
	return &videoTrack{fourCC: p.FourCC, lengthSize: p.LengthSize, vps: p.VPS, sps: p.SPS, pps: p.PPS,
		width: p.Width, height: p.Height}, nil
}

// unsupported marks the codecs flv's parsers do not read as unsupported
// here too.
func unsupported(err error) error {
	if errors.Is(err, flv.ErrUnsupportedCodec) {
		return fmt.Errorf("%w: %v", errUnsupported, err)
	}
	return err
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
	p, err := flv.ParseAudioParams(a)
	if err != nil {
		return nil, unsupported(err)
	}
	t := &audioTrack{fourCC: p.FourCC, raw: p.Raw, clockRate: p.ClockRate}
	if p.FourCC == flv.FourCCOpus {
		t.codec = &fmp4.CodecOpus{ChannelCount: p.Channels}
	} else {
		t.codec = &fmp4.CodecMPEG4Audio{Config: p.AAC}
	}
	return t, nil
}

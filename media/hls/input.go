package hls

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/mofang-live/mofang/media/flv"
)

// errUnsupported marks a codec the HLS muxer cannot carry; the track is left out.
var errUnsupported = errors.New("codec not supported by HLS")

// videoConfig is the decoder configuration of the video track, taken from
// the last sequence header.
type videoConfig struct {
	fourCC        uint32
	lengthSize    int
	vps, sps, pps []byte
	frame         frameDuration // from the SPS timing, if any
}

func (c *videoConfig) equal(o *videoConfig) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.fourCC == o.fourCC && bytes.Equal(c.vps, o.vps) && bytes.Equal(c.sps, o.sps) && bytes.Equal(c.pps, o.pps)
}

func (c *videoConfig) track() *gohlslib.Track {
	if c.fourCC == flv.FourCCHEVC {
		return &gohlslib.Track{Codec: &codecs.H265{VPS: c.vps, SPS: c.sps, PPS: c.pps}, ClockRate: 90000}
	}
	return &gohlslib.Track{Codec: &codecs.H264{SPS: c.sps, PPS: c.pps}, ClockRate: 90000}
}

// parseVideoConfig reads an AVC or HEVC sequence header.
func parseVideoConfig(v flv.VideoTag) (*videoConfig, error) {
	p, err := flv.ParseVideoParams(v)
	if err != nil {
		return nil, unsupported(err)
	}
	return &videoConfig{fourCC: p.FourCC, lengthSize: p.LengthSize, vps: p.VPS, sps: p.SPS, pps: p.PPS,
		frame: spsFrameDuration(p.FourCC, p.SPS)}, nil
}

// unsupported marks the codecs flv's parsers do not read as unsupported
// here too.
func unsupported(err error) error {
	if errors.Is(err, flv.ErrUnsupportedCodec) {
		return fmt.Errorf("%w: %v", errUnsupported, err)
	}
	return err
}

// audioConfig is the decoder configuration of the audio track.
type audioConfig struct {
	fourCC   uint32
	raw      []byte // AudioSpecificConfig or OpusHead
	aac      mpeg4audio.AudioSpecificConfig
	channels int // Opus
}

func (c *audioConfig) equal(o *audioConfig) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.fourCC == o.fourCC && bytes.Equal(c.raw, o.raw)
}

func (c *audioConfig) clockRate() int {
	if c.fourCC == flv.FourCCOpus {
		return 48000
	}
	return c.aac.SampleRate
}

func (c *audioConfig) track() *gohlslib.Track {
	if c.fourCC == flv.FourCCOpus {
		return &gohlslib.Track{Codec: &codecs.Opus{ChannelCount: c.channels}, ClockRate: 48000}
	}
	return &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: c.aac}, ClockRate: c.aac.SampleRate}
}

// parseAudioConfig reads an AAC or Opus sequence header.
func parseAudioConfig(a flv.AudioTag) (*audioConfig, error) {
	p, err := flv.ParseAudioParams(a)
	if err != nil {
		return nil, unsupported(err)
	}
	return &audioConfig{fourCC: p.FourCC, raw: p.Raw, aac: p.AAC, channels: p.Channels}, nil
}

// accessUnit splits the NAL units of a coded video frame; parameter sets are
// prepended to key frames that lack them (RTMP carries them out of band).
func (c *videoConfig) accessUnit(data []byte, key bool, buf [][]byte) ([][]byte, error) {
	nalus, err := flv.SplitNALUs(data, c.lengthSize, buf[:0])
	if err != nil {
		return nil, err
	}
	if !key || len(nalus) == 0 {
		return nalus, nil
	}
	hasSPS := false
	for _, n := range nalus {
		if c.fourCC == flv.FourCCHEVC {
			if h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT {
				hasSPS = true
			}
		} else if h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			hasSPS = true
		}
	}
	if hasSPS {
		return nalus, nil
	}
	var ps [][]byte
	if c.fourCC == flv.FourCCHEVC {
		ps = [][]byte{c.vps, c.sps, c.pps}
	} else {
		ps = [][]byte{c.sps, c.pps}
	}
	out := make([][]byte, 0, len(nalus)+len(ps))
	out = append(out, ps...)
	return append(out, nalus...), nil
}

package flv

import (
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// HEVCConfig holds the parameter sets of an HEVCDecoderConfigurationRecord
// (ISO 14496-15 8.3.3.1), the payload of an H.265 sequence header.
type HEVCConfig struct {
	// LengthSize is the size of the NAL unit length prefix (1, 2 or 4).
	LengthSize    int
	VPS, SPS, PPS [][]byte
}

// ParseHEVCConfig parses an HEVCDecoderConfigurationRecord. The parameter
// sets alias b.
func ParseHEVCConfig(b []byte) (HEVCConfig, error) {
	var c HEVCConfig
	if len(b) < 23 {
		return c, fmt.Errorf("HEVC config: %w", ErrShort)
	}
	if b[0] != 1 {
		return c, fmt.Errorf("unsupported HEVC config version %d", b[0])
	}
	c.LengthSize = int(b[21]&0x03) + 1
	if c.LengthSize == 3 {
		return c, fmt.Errorf("invalid HEVC NALU length size 3")
	}
	n := int(b[22])
	pos := 23
	for range n {
		if pos+3 > len(b) {
			return c, fmt.Errorf("HEVC config array: %w", ErrShort)
		}
		typ := b[pos] & 0x3f
		cnt := int(b[pos+1])<<8 | int(b[pos+2])
		pos += 3
		var sets [][]byte
		var err error
		sets, pos, err = readParamSets(b, pos, cnt)
		if err != nil {
			return c, fmt.Errorf("HEVC config NAL type %d: %w", typ, err)
		}
		switch typ {
		case 32:
			c.VPS = append(c.VPS, sets...)
		case 33:
			c.SPS = append(c.SPS, sets...)
		case 34:
			c.PPS = append(c.PPS, sets...)
		}
	}
	return c, nil
}

// AppendHEVCConfig appends an HEVCDecoderConfigurationRecord with 4-byte NAL
// unit lengths built from one VPS, SPS and PPS.
func AppendHEVCConfig(dst, vps, sps, pps []byte) ([]byte, error) {
	if len(vps) < 2 || len(pps) < 2 || len(vps) > 0xffff || len(sps) > 0xffff || len(pps) > 0xffff {
		return dst, fmt.Errorf("invalid VPS/SPS/PPS sizes %d/%d/%d", len(vps), len(sps), len(pps))
	}
	// profile_tier_level: 12 bytes after the NAL header and one byte of
	// sps_video_parameter_set_id / max_sub_layers / temporal_id_nesting.
	raw := h264.EmulationPreventionRemove(sps)
	if len(raw) < 15 {
		return dst, fmt.Errorf("SPS too short (%d bytes)", len(sps))
	}
	ptl := raw[3:15]
	chroma, depthLuma, depthChroma := uint32(1), uint32(0), uint32(0)
	var parsed h265.SPS
	if parsed.Unmarshal(sps) == nil {
		chroma, depthLuma, depthChroma = parsed.ChromaFormatIdc, parsed.BitDepthLumaMinus8, parsed.BitDepthChromaMinus8
	}
	dst = append(dst, 1)
	dst = append(dst, ptl...)
	dst = append(dst,
		0xf0, 0x00, // min_spatial_segmentation_idc
		0xfc,                        // parallelismType
		0xfc|byte(chroma&0x03),      // chromaFormat
		0xf8|byte(depthLuma&0x07),   // bitDepthLumaMinus8
		0xf8|byte(depthChroma&0x07), // bitDepthChromaMinus8
		0, 0,                        // avgFrameRate
		0x0f, // constantFrameRate 0, numTemporalLayers 1, temporalIdNested 1, lengthSizeMinusOne 3
		3,    // numOfArrays
	)
	for _, a := range []struct {
		typ  byte
		nalu []byte
	}{{32, vps}, {33, sps}, {34, pps}} {
		dst = append(dst, 0x80|a.typ, 0, 1, byte(len(a.nalu)>>8), byte(len(a.nalu)))
		dst = append(dst, a.nalu...)
	}
	return dst, nil
}

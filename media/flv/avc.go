package flv

import (
	"fmt"
)

// AVCConfig is an AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4.1), the
// payload of an H.264 sequence header.
type AVCConfig struct {
	Profile, Compatibility, Level uint8
	// LengthSize is the size of the NAL unit length prefix (1, 2 or 4).
	LengthSize int
	SPS, PPS   [][]byte
}

// ParseAVCConfig parses an AVCDecoderConfigurationRecord. SPS and PPS alias b.
func ParseAVCConfig(b []byte) (AVCConfig, error) {
	var c AVCConfig
	if len(b) < 6 {
		return c, fmt.Errorf("AVC config: %w", ErrShort)
	}
	if b[0] != 1 {
		return c, fmt.Errorf("unsupported AVC config version %d", b[0])
	}
	c.Profile, c.Compatibility, c.Level = b[1], b[2], b[3]
	c.LengthSize = int(b[4]&0x03) + 1
	if c.LengthSize == 3 {
		return c, fmt.Errorf("invalid AVC NALU length size 3")
	}
	n := int(b[5] & 0x1f)
	pos := 6
	var err error
	c.SPS, pos, err = readParamSets(b, pos, n)
	if err != nil {
		return c, fmt.Errorf("AVC config SPS: %w", err)
	}
	if pos >= len(b) {
		return c, fmt.Errorf("AVC config PPS count: %w", ErrShort)
	}
	n = int(b[pos])
	pos++
	c.PPS, _, err = readParamSets(b, pos, n)
	if err != nil {
		return c, fmt.Errorf("AVC config PPS: %w", err)
	}
	return c, nil
}

func readParamSets(b []byte, pos, n int) ([][]byte, int, error) {
	var out [][]byte
	for range n {
		if pos+2 > len(b) {
			return nil, pos, ErrShort
		}
		l := int(b[pos])<<8 | int(b[pos+1])
		pos += 2
		if pos+l > len(b) {
			return nil, pos, ErrShort
		}
		out = append(out, b[pos:pos+l])
		pos += l
	}
	return out, pos, nil
}

// AppendAVCConfig appends an AVCDecoderConfigurationRecord with 4-byte NAL unit
// lengths built from one SPS and one PPS.
func AppendAVCConfig(dst, sps, pps []byte) ([]byte, error) {
	if len(sps) < 4 || len(pps) < 1 || len(sps) > 0xffff || len(pps) > 0xffff {
		return dst, fmt.Errorf("invalid SPS/PPS sizes %d/%d", len(sps), len(pps))
	}
	dst = append(dst, 1, sps[1], sps[2], sps[3], 0xff, 0xe1,
		byte(len(sps)>>8), byte(len(sps)))
	dst = append(dst, sps...)
	dst = append(dst, 1, byte(len(pps)>>8), byte(len(pps)))
	return append(dst, pps...), nil
}

// SplitNALUs splits a buffer of NAL units each prefixed by a big-endian length
// of lengthSize bytes (AVCC / HVCC framing). The returned slices alias b.
// buf is reused if it has capacity.
func SplitNALUs(b []byte, lengthSize int, buf [][]byte) ([][]byte, error) {
	out := buf[:0]
	if lengthSize < 1 || lengthSize > 4 {
		return nil, fmt.Errorf("invalid NALU length size %d", lengthSize)
	}
	for len(b) > 0 {
		if len(b) < lengthSize {
			return nil, fmt.Errorf("NALU length: %w", ErrShort)
		}
		l := 0
		for i := range lengthSize {
			l = l<<8 | int(b[i])
		}
		b = b[lengthSize:]
		if l > len(b) {
			return nil, fmt.Errorf("NALU of %d bytes: %w", l, ErrShort)
		}
		if l > 0 {
			out = append(out, b[:l])
		}
		b = b[l:]
	}
	return out, nil
}

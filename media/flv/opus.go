package flv

import (
	"encoding/binary"
	"fmt"
)

// opusHeadMagic starts an Opus identification header.
const opusHeadMagic = "OpusHead"

// OpusHead is the Opus identification header (RFC 7845, section 5.1), the
// body of an Enhanced RTMP Opus sequence start. Its multi-byte fields are
// little-endian. (mediacommon v2.9.5's opus.IDHeader reads and writes them
// big-endian, which players such as mpegts.js and Chromium refuse; use this
// type instead.)
type OpusHead struct {
	// ChannelCount is the number of output channels (1..255).
	ChannelCount uint8
	// PreSkip is the number of 48 kHz samples to discard from the decoder
	// output when starting playback.
	PreSkip uint16
	// InputSampleRate is the sample rate of the original input, for
	// information only (Opus always decodes at 48 kHz).
	InputSampleRate uint32
	// OutputGain is the gain to apply, in Q7.8 dB.
	OutputGain int16
	// ChannelMappingFamily is 0 for mono/stereo, 1 or 255 with a mapping table.
	ChannelMappingFamily uint8
	// StreamCount, CoupledCount and ChannelMapping form the channel mapping
	// table, present when ChannelMappingFamily is not 0.
	StreamCount    uint8
	CoupledCount   uint8
	ChannelMapping []uint8
}

// opusHeadSize is the size of a header with mapping family 0.
const opusHeadSize = 19

// ParseOpusHead parses an OpusHead. ChannelMapping aliases b.
func ParseOpusHead(b []byte) (OpusHead, error) {
	var h OpusHead
	if len(b) < opusHeadSize {
		return h, fmt.Errorf("OpusHead: %w", ErrShort)
	}
	if string(b[:8]) != opusHeadMagic {
		return h, fmt.Errorf("OpusHead: bad magic signature")
	}
	// version: major (high nibble) must be 0; minor versions are compatible.
	if v := b[8]; v == 0 || v>>4 != 0 {
		return h, fmt.Errorf("OpusHead: unsupported version %d", v)
	}
	h.ChannelCount = b[9]
	h.PreSkip = binary.LittleEndian.Uint16(b[10:12])
	h.InputSampleRate = binary.LittleEndian.Uint32(b[12:16])
	h.OutputGain = int16(binary.LittleEndian.Uint16(b[16:18]))
	h.ChannelMappingFamily = b[18]
	if h.ChannelCount == 0 {
		return h, fmt.Errorf("OpusHead: no channels")
	}
	if h.ChannelMappingFamily == 0 {
		if h.ChannelCount > 2 {
			return h, fmt.Errorf("OpusHead: %d channels with mapping family 0", h.ChannelCount)
		}
		return h, nil
	}
	n := 2 + int(h.ChannelCount)
	if len(b) < opusHeadSize+n {
		return h, fmt.Errorf("OpusHead: channel mapping table: %w", ErrShort)
	}
	h.StreamCount = b[19]
	h.CoupledCount = b[20]
	h.ChannelMapping = b[21 : 21+int(h.ChannelCount)]
	if h.StreamCount == 0 || h.CoupledCount > h.StreamCount {
		return h, fmt.Errorf("OpusHead: %d streams, %d coupled", h.StreamCount, h.CoupledCount)
	}
	return h, nil
}

// AppendOpusHead appends h, as version 1, to dst. The channel mapping table
// is written when ChannelMappingFamily is not 0.
func AppendOpusHead(dst []byte, h OpusHead) []byte {
	dst = append(dst, opusHeadMagic...)
	dst = append(dst, 1, h.ChannelCount)
	dst = binary.LittleEndian.AppendUint16(dst, h.PreSkip)
	dst = binary.LittleEndian.AppendUint32(dst, h.InputSampleRate)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(h.OutputGain))
	dst = append(dst, h.ChannelMappingFamily)
	if h.ChannelMappingFamily != 0 {
		dst = append(dst, h.StreamCount, h.CoupledCount)
		dst = append(dst, h.ChannelMapping...)
	}
	return dst
}

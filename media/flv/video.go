package flv

import (
	"fmt"
)

// Legacy video codec IDs (low nibble of the first body byte).
const (
	VideoCodecH264 uint8 = 7
	VideoCodecH265 uint8 = 12 // unofficial, used by some Chinese CDNs
)

// Video frame types (bits 4-6 of the first body byte).
const (
	FrameKey        uint8 = 1
	FrameInter      uint8 = 2
	FrameDisposable uint8 = 3
	FrameCommand    uint8 = 5
)

// Video packet types. Legacy AVC packet types are mapped onto the Enhanced
// RTMP ones they match.
const (
	VideoSequenceStart uint8 = 0
	VideoCodedFrames   uint8 = 1 // legacy AVC NALU, or CodedFrames with a composition time
	VideoSequenceEnd   uint8 = 2
	VideoCodedFramesX  uint8 = 3 // CodedFrames without a composition time
	VideoMetadata      uint8 = 4
	VideoMPEG2TSSeq    uint8 = 5
	VideoMultitrack    uint8 = 6
)

// FourCC values of Enhanced RTMP.
const (
	FourCCAVC  uint32 = 'a'<<24 | 'v'<<16 | 'c'<<8 | '1'
	FourCCHEVC uint32 = 'h'<<24 | 'v'<<16 | 'c'<<8 | '1'
	FourCCAV1  uint32 = 'a'<<24 | 'v'<<16 | '0'<<8 | '1'
	FourCCVP9  uint32 = 'v'<<24 | 'p'<<16 | '0'<<8 | '9'
	FourCCOpus uint32 = 'O'<<24 | 'p'<<16 | 'u'<<8 | 's'
	FourCCMP4A uint32 = 'm'<<24 | 'p'<<16 | '4'<<8 | 'a'
	FourCCAC3  uint32 = 'a'<<24 | 'c'<<16 | '-'<<8 | '3'
	FourCCMP3  uint32 = '.'<<24 | 'm'<<16 | 'p'<<8 | '3'
	FourCCFLAC uint32 = 'f'<<24 | 'L'<<16 | 'a'<<8 | 'C'
)

// VideoTag is the parsed header of a video tag body.
type VideoTag struct {
	// Enhanced is true for an Enhanced RTMP (ExVideoTagHeader) body.
	Enhanced bool
	// FrameType is one of the Frame* constants.
	FrameType uint8
	// FourCC identifies the codec; legacy H.264/H.265 are mapped to
	// FourCCAVC/FourCCHEVC, other legacy codecs to 0.
	FourCC uint32
	// CodecID is the legacy codec ID (0 for enhanced bodies).
	CodecID uint8
	// PacketType is one of the Video* packet type constants.
	PacketType uint8
	// CompositionTime is the PTS-DTS offset in milliseconds.
	CompositionTime int32
	// Data is the payload after the headers: a decoder configuration record
	// for sequence starts, length-prefixed NAL units or OBUs for coded frames.
	Data []byte
}

// IsKeyFrame reports whether the tag carries a key frame.
func (v VideoTag) IsKeyFrame() bool {
	return v.FrameType == FrameKey && (v.PacketType == VideoCodedFrames || v.PacketType == VideoCodedFramesX)
}

// IsSequenceHeader reports whether the tag carries a decoder configuration.
func (v VideoTag) IsSequenceHeader() bool {
	return v.PacketType == VideoSequenceStart
}

// CodecName returns a short codec name ("h264", "h265", "av1", "vp9") or "".
func (v VideoTag) CodecName() string {
	return VideoCodecName(v.FourCC)
}

// VideoCodecName names a video FourCC.
func VideoCodecName(fourCC uint32) string {
	switch fourCC {
	case FourCCAVC:
		return "h264"
	case FourCCHEVC:
		return "h265"
	case FourCCAV1:
		return "av1"
	case FourCCVP9:
		return "vp9"
	}
	return ""
}

func s24(b []byte) int32 {
	return int32(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8) >> 8
}

// ParseVideoTag parses the header of a video tag body (equal to an RTMP video
// message payload). Data aliases body.
func ParseVideoTag(body []byte) (VideoTag, error) {
	var v VideoTag
	if len(body) < 1 {
		return v, fmt.Errorf("video tag: %w", ErrShort)
	}
	b0 := body[0]
	v.FrameType = (b0 >> 4) & 0x07

	if b0&0x80 == 0 { // legacy
		v.CodecID = b0 & 0x0f
		switch v.CodecID {
		case VideoCodecH264:
			v.FourCC = FourCCAVC
		case VideoCodecH265:
			v.FourCC = FourCCHEVC
		default:
			v.PacketType = VideoCodedFramesX
			v.Data = body[1:]
			return v, nil
		}
		if len(body) < 5 {
			return v, fmt.Errorf("AVC video tag: %w", ErrShort)
		}
		v.PacketType = body[1]
		if v.PacketType > VideoSequenceEnd {
			return v, fmt.Errorf("invalid AVC packet type %d", v.PacketType)
		}
		v.CompositionTime = s24(body[2:5])
		v.Data = body[5:]
		return v, nil
	}

	v.Enhanced = true
	v.PacketType = b0 & 0x0f
	if v.FrameType == FrameCommand && v.PacketType != VideoMetadata {
		// video command frames carry one byte of command and no codec data.
		if len(body) < 6 {
			return v, fmt.Errorf("video command tag: %w", ErrShort)
		}
		v.FourCC = uint32(body[1])<<24 | uint32(body[2])<<16 | uint32(body[3])<<8 | uint32(body[4])
		v.Data = body[5:]
		return v, nil
	}
	if len(body) < 5 {
		return v, fmt.Errorf("enhanced video tag: %w", ErrShort)
	}
	v.FourCC = uint32(body[1])<<24 | uint32(body[2])<<16 | uint32(body[3])<<8 | uint32(body[4])
	rest := body[5:]
	switch v.PacketType {
	case VideoCodedFrames:
		if v.FourCC == FourCCAVC || v.FourCC == FourCCHEVC {
			if len(rest) < 3 {
				return v, fmt.Errorf("enhanced coded frames: %w", ErrShort)
			}
			v.CompositionTime = s24(rest)
			rest = rest[3:]
		}
	case VideoSequenceStart, VideoSequenceEnd, VideoCodedFramesX, VideoMetadata, VideoMPEG2TSSeq, VideoMultitrack:
	default:
		return v, fmt.Errorf("invalid enhanced video packet type %d", v.PacketType)
	}
	v.Data = rest
	return v, nil
}

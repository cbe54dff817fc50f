package flv

import (
	"fmt"
)

// Legacy audio sound formats (high nibble of the first body byte).
const (
	SoundMP3    uint8 = 2
	SoundLPCMLE uint8 = 3
	SoundPCMA   uint8 = 7
	SoundPCMU   uint8 = 8
	SoundAAC    uint8 = 10
	SoundSpeex  uint8 = 11
	SoundExHdr  uint8 = 9 // Enhanced RTMP ExAudioTagHeader
)

// Audio packet types. The legacy AAC packet types are mapped onto the
// Enhanced RTMP ones they match.
const (
	AudioSequenceStart      uint8 = 0
	AudioCodedFrames        uint8 = 1
	AudioSequenceEnd        uint8 = 2
	AudioMultichannelConfig uint8 = 4
	AudioMultitrack         uint8 = 5
)

// AudioTag is the parsed header of an audio tag body.
type AudioTag struct {
	// Enhanced is true for an Enhanced RTMP (ExAudioTagHeader) body.
	Enhanced bool
	// SoundFormat is the legacy sound format (SoundExHdr for enhanced bodies).
	SoundFormat uint8
	// Rate, Size and Stereo are the legacy flags (rate index 0-3, 0=8 bit 1=16 bit).
	Rate, Size uint8
	Stereo     bool
	// FourCC identifies the codec; legacy AAC/MP3 are mapped to FourCCMP4A/FourCCMP3.
	FourCC uint32
	// PacketType is one of the Audio* packet type constants.
	PacketType uint8
	// Data is the payload after the headers.
	Data []byte
}

// IsSequenceHeader reports whether the tag carries a decoder configuration.
func (a AudioTag) IsSequenceHeader() bool {
	return (a.FourCC == FourCCMP4A || a.FourCC == FourCCOpus || a.FourCC == FourCCFLAC || a.Enhanced) &&
		a.PacketType == AudioSequenceStart
}

// CodecName returns a short codec name ("aac", "mp3", "opus", ...) or "".
func (a AudioTag) CodecName() string {
	switch a.FourCC {
	case FourCCMP4A:
		return "aac"
	case FourCCMP3:
		return "mp3"
	case FourCCOpus:
		return "opus"
	case FourCCAC3:
		return "ac3"
	case FourCCFLAC:
		return "flac"
	}
	switch a.SoundFormat {
	case SoundPCMA:
		return "pcma"
	case SoundPCMU:
		return "pcmu"
	case SoundLPCMLE:
		return "lpcm"
	case SoundSpeex:
		return "speex"
	}
	return ""
}

// ParseAudioTag parses the header of an audio tag body (equal to an RTMP
// audio message payload). Data aliases body.
func ParseAudioTag(body []byte) (AudioTag, error) {
	var a AudioTag
	if len(body) < 1 {
		return a, fmt.Errorf("audio tag: %w", ErrShort)
	}
	b0 := body[0]
	a.SoundFormat = b0 >> 4
	if a.SoundFormat == SoundExHdr {
		a.Enhanced = true
		a.PacketType = b0 & 0x0f
		if len(body) < 5 {
			return a, fmt.Errorf("enhanced audio tag: %w", ErrShort)
		}
		a.FourCC = uint32(body[1])<<24 | uint32(body[2])<<16 | uint32(body[3])<<8 | uint32(body[4])
		switch a.PacketType {
		case AudioSequenceStart, AudioCodedFrames, AudioSequenceEnd, AudioMultichannelConfig, AudioMultitrack:
		default:
			return a, fmt.Errorf("invalid enhanced audio packet type %d", a.PacketType)
		}
		a.Data = body[5:]
		return a, nil
	}
	a.Rate = (b0 >> 2) & 0x03
	a.Size = (b0 >> 1) & 0x01
	a.Stereo = b0&0x01 != 0
	a.PacketType = AudioCodedFrames
	switch a.SoundFormat {
	case SoundAAC:
		a.FourCC = FourCCMP4A
		if len(body) < 2 {
			return a, fmt.Errorf("AAC audio tag: %w", ErrShort)
		}
		a.PacketType = body[1]
		if a.PacketType > AudioCodedFrames {
			return a, fmt.Errorf("invalid AAC packet type %d", a.PacketType)
		}
		a.Data = body[2:]
		return a, nil
	case SoundMP3:
		a.FourCC = FourCCMP3
	}
	a.Data = body[1:]
	return a, nil
}

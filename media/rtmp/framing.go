package rtmp

import (
	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
)

// RTMP output framing shared by every player.
const (
	outChunkSize   = 65536
	playStreamID   = 1
	csidData       = 5
	csidAudio      = 4
	csidVideo      = 6
	maxChunkHeader = 16
)

// Framer returns the RTMP framing of hub packets: a type 0 chunk header
// (csid 4, 5 or 6 by type, message stream 1, chunk size 65536 as
// announced at connect), the body, and type 3 headers between chunks of
// longer bodies. One framing is valid for every player, so a packet is
// framed once and shared.
func Framer() hub.Framer {
	return hub.Framer{Framing: hub.FramingRTMP, Build: buildChunks}
}

func buildChunks(p *hub.Packet, s *hub.Scratch) [][]byte {
	return frame(p.Type(), p.Timestamp(), p.Body(), s)
}

func csidOf(typ uint8) byte {
	switch typ {
	case flv.TagAudio:
		return csidAudio
	case flv.TagVideo:
		return csidVideo
	}
	return csidData
}

// frame returns the RTMP chunks of a message (type 0 header, body, type 3
// headers for bodies longer than the chunk size), using s for the header
// and the slices of short bodies.
func frame(typ uint8, ts uint32, body []byte, s *hub.Scratch) [][]byte {
	csid := csidOf(typ)
	n := putChunk0Header(s.Header[:maxChunkHeader], csid, ts, len(body), typ, playStreamID)
	hdr := s.Header[:n]
	if len(body) <= outChunkSize {
		s.Bufs[0], s.Bufs[1] = hdr, body
		return s.Bufs[:2]
	}
	// type 3 continuation header, carrying the extended timestamp when the
	// type 0 header did.
	c3 := make([]byte, 0, 5)
	c3 = append(c3, 0xC0|csid)
	if ts >= 0xFFFFFF {
		c3 = append(c3, byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts))
	}
	bufs := make([][]byte, 0, 2*(len(body)/outChunkSize+1))
	bufs = append(bufs, hdr)
	for pos := 0; pos < len(body); pos += outChunkSize {
		if pos > 0 {
			bufs = append(bufs, c3)
		}
		bufs = append(bufs, body[pos:min(pos+outChunkSize, len(body))])
	}
	return bufs
}

// putChunk0Header writes an RTMP type 0 chunk header into b and returns its size.
func putChunk0Header(b []byte, csid byte, ts uint32, bodyLen int, typ uint8, streamID uint32) int {
	b[0] = csid // fmt 0
	tsField := ts
	if ts >= 0xFFFFFF {
		tsField = 0xFFFFFF
	}
	b[1], b[2], b[3] = byte(tsField>>16), byte(tsField>>8), byte(tsField)
	b[4], b[5], b[6] = byte(bodyLen>>16), byte(bodyLen>>8), byte(bodyLen)
	b[7] = typ
	// message stream ID is little endian
	b[8], b[9], b[10], b[11] = byte(streamID), byte(streamID>>8), byte(streamID>>16), byte(streamID>>24)
	if ts >= 0xFFFFFF {
		b[12], b[13], b[14], b[15] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		return 16
	}
	return 12
}

package httpflv

import (
	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
)

// Framer returns the FLV tag framing of hub packets: the 11-byte tag
// header, the body, and the 4-byte PreviousTagSize, built once per packet
// and shared by every viewer.
func Framer() hub.Framer {
	return hub.Framer{Framing: hub.FramingFLV, Build: buildTag}
}

func buildTag(p *hub.Packet, s *hub.Scratch) [][]byte {
	body := p.Body()
	flv.PutTagHeader(s.Header[:flv.TagHeaderSize], p.Type(), len(body), p.Timestamp())
	flv.PutPrevTagSize(s.Header[flv.TagHeaderSize:], len(body))
	s.Bufs[0] = s.Header[:flv.TagHeaderSize]
	s.Bufs[1] = body
	s.Bufs[2] = s.Header[flv.TagHeaderSize : flv.TagHeaderSize+flv.PrevTagSizeSize]
	return s.Bufs[:]
}

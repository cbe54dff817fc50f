package media

import (
	"sync"

	"github.com/mofang-live/mofang/media/flv"
)

// RTMP output framing shared by every player.
const (
	rtmpOutChunkSize   = 65536
	rtmpPlayStreamID   = 1
	rtmpCSIDData       = 5
	rtmpCSIDAudio      = 4
	rtmpCSIDVideo      = 6
	rtmpMaxChunkHeader = 16
)

// packet is one media message (audio, video or script data) of a stream. Its
// body is the RTMP message payload, equal to the FLV tag body. A packet is
// immutable once published to the ring; the framed forms for each output
// format are built once, lazily, and shared by every reader of that format.
type packet struct {
	seq    uint64
	typ    uint8  // flv.TagAudio, flv.TagVideo or flv.TagScript
	ts     uint32 // DTS in milliseconds, on the stream's output timeline
	body   []byte
	key    bool // a point where a reader can start
	header bool // metadata or sequence header

	rtmpOnce sync.Once
	rtmp     [][]byte
	rtmpHdr  [rtmpMaxChunkHeader]byte
	rtmpArr  [2][]byte

	flvOnce sync.Once
	flv     [][]byte
	flvHdr  [flv.TagHeaderSize + flv.PrevTagSizeSize]byte
	flvArr  [3][]byte
}

// withTimestamp returns an unpublished copy of p with another timestamp, used
// to send cached headers to a new reader at the time of its first frame.
func (p *packet) withTimestamp(ts uint32) *packet {
	return &packet{typ: p.typ, ts: ts, body: p.body, key: p.key, header: p.header}
}

// rtmpBufs returns the RTMP chunks of p (type 0 header, body, type 3 headers
// for bodies longer than the chunk size), built once and shared.
func (p *packet) rtmpBufs() [][]byte {
	p.rtmpOnce.Do(p.buildRTMP)
	return p.rtmp
}

func (p *packet) csid() byte {
	switch p.typ {
	case flv.TagAudio:
		return rtmpCSIDAudio
	case flv.TagVideo:
		return rtmpCSIDVideo
	}
	return rtmpCSIDData
}

func (p *packet) buildRTMP() {
	n := putChunk0Header(p.rtmpHdr[:], p.csid(), p.ts, len(p.body), p.typ, rtmpPlayStreamID)
	hdr := p.rtmpHdr[:n]
	if len(p.body) <= rtmpOutChunkSize {
		p.rtmpArr[0], p.rtmpArr[1] = hdr, p.body
		p.rtmp = p.rtmpArr[:]
		return
	}
	// type 3 continuation header, carrying the extended timestamp when the
	// type 0 header did.
	c3 := make([]byte, 0, 5)
	c3 = append(c3, 0xC0|p.csid())
	if p.ts >= 0xFFFFFF {
		c3 = append(c3, byte(p.ts>>24), byte(p.ts>>16), byte(p.ts>>8), byte(p.ts))
	}
	bufs := make([][]byte, 0, 2*(len(p.body)/rtmpOutChunkSize+1))
	bufs = append(bufs, hdr)
	for pos := 0; pos < len(p.body); pos += rtmpOutChunkSize {
		if pos > 0 {
			bufs = append(bufs, c3)
		}
		bufs = append(bufs, p.body[pos:min(pos+rtmpOutChunkSize, len(p.body))])
	}
	p.rtmp = bufs
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

// flvBufs returns the FLV tag of p (header, body, PreviousTagSize), built
// once and shared.
func (p *packet) flvBufs() [][]byte {
	p.flvOnce.Do(func() {
		flv.PutTagHeader(p.flvHdr[:flv.TagHeaderSize], p.typ, len(p.body), p.ts)
		flv.PutPrevTagSize(p.flvHdr[flv.TagHeaderSize:], len(p.body))
		p.flvArr[0] = p.flvHdr[:flv.TagHeaderSize]
		p.flvArr[1] = p.body
		p.flvArr[2] = p.flvHdr[flv.TagHeaderSize:]
		p.flv = p.flvArr[:]
	})
	return p.flv
}

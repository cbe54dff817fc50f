// Package flv contains a small FLV muxer and parsers for the FLV/RTMP audio and
// video tag bodies (legacy and Enhanced RTMP).
//
// The body of an FLV audio/video/script tag is byte for byte the payload of the
// matching RTMP message, so the same bytes can be framed once for RTMP and once
// for FLV without re-encoding.
package flv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Tag types.
const (
	TagAudio  uint8 = 8
	TagVideo  uint8 = 9
	TagScript uint8 = 18
)

// Sizes of the fixed parts of an FLV file.
const (
	FileHeaderSize  = 9  // "FLV", version, flags, header size
	TagHeaderSize   = 11 // type, data size, timestamp, stream id
	PrevTagSizeSize = 4  // PreviousTagSize field after every tag
)

// ErrShort is returned when a buffer is too short for what it announces.
var ErrShort = errors.New("buffer too short")

// FileHeader returns the FLV file header followed by PreviousTagSize0,
// 13 bytes in all.
func FileHeader(hasAudio, hasVideo bool) []byte {
	b := []byte{'F', 'L', 'V', 1, 0, 0, 0, 0, 9, 0, 0, 0, 0}
	if hasAudio {
		b[4] |= 0x04
	}
	if hasVideo {
		b[4] |= 0x01
	}
	return b
}

// PutTagHeader writes the 11-byte header of a tag of type typ whose body is
// dataSize bytes long and whose timestamp is ts milliseconds into b.
func PutTagHeader(b []byte, typ uint8, dataSize int, ts uint32) {
	_ = b[10]
	b[0] = typ
	b[1] = byte(dataSize >> 16)
	b[2] = byte(dataSize >> 8)
	b[3] = byte(dataSize)
	b[4] = byte(ts >> 16)
	b[5] = byte(ts >> 8)
	b[6] = byte(ts)
	b[7] = byte(ts >> 24) // TimestampExtended
	b[8], b[9], b[10] = 0, 0, 0
}

// PutPrevTagSize writes the PreviousTagSize field of a tag with a body of
// dataSize bytes into b.
func PutPrevTagSize(b []byte, dataSize int) {
	binary.BigEndian.PutUint32(b, uint32(TagHeaderSize+dataSize))
}

// AppendTag appends a complete tag (header, body, PreviousTagSize) to dst.
func AppendTag(dst []byte, typ uint8, ts uint32, body []byte) []byte {
	var h [TagHeaderSize]byte
	PutTagHeader(h[:], typ, len(body), ts)
	dst = append(dst, h[:]...)
	dst = append(dst, body...)
	var p [PrevTagSizeSize]byte
	PutPrevTagSize(p[:], len(body))
	return append(dst, p[:]...)
}

// Tag is one tag read from an FLV file.
type Tag struct {
	Type      uint8
	Timestamp uint32
	Body      []byte
}

// Reader reads an FLV file: the header, then tags.
// Tests and tools use it, and relays between the nodes of a cluster
// (media/relay), which pull streams from other nodes over HTTP-FLV; the
// server never parses FLV from clients.
type Reader struct {
	R io.Reader

	header bool
	hdr    [TagHeaderSize]byte
	// HasAudio and HasVideo hold the flags of the file header once it is read.
	HasAudio, HasVideo bool
}

// maxTagSize caps the body size accepted by Reader.
const maxTagSize = 16 << 20

// ReadHeader reads the file header and PreviousTagSize0.
func (r *Reader) ReadHeader() error {
	var b [FileHeaderSize + PrevTagSizeSize]byte
	if _, err := io.ReadFull(r.R, b[:]); err != nil {
		return fmt.Errorf("read FLV header: %w", err)
	}
	if b[0] != 'F' || b[1] != 'L' || b[2] != 'V' {
		return fmt.Errorf("invalid FLV signature %q", b[:3])
	}
	if off := binary.BigEndian.Uint32(b[5:9]); off != FileHeaderSize {
		return fmt.Errorf("unsupported FLV header size %d", off)
	}
	r.HasAudio = b[4]&0x04 != 0
	r.HasVideo = b[4]&0x01 != 0
	r.header = true
	return nil
}

// ReadTag reads the next tag, reading the file header first if needed.
func (r *Reader) ReadTag() (Tag, error) {
	if !r.header {
		if err := r.ReadHeader(); err != nil {
			return Tag{}, err
		}
	}
	if _, err := io.ReadFull(r.R, r.hdr[:]); err != nil {
		return Tag{}, err
	}
	h := r.hdr[:]
	size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
	if size > maxTagSize {
		return Tag{}, fmt.Errorf("tag too big (%d bytes)", size)
	}
	t := Tag{
		Type:      h[0] & 0x1f,
		Timestamp: uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6]),
		Body:      make([]byte, size),
	}
	if _, err := io.ReadFull(r.R, t.Body); err != nil {
		return Tag{}, fmt.Errorf("read tag body: %w", err)
	}
	var p [PrevTagSizeSize]byte
	if _, err := io.ReadFull(r.R, p[:]); err != nil {
		return Tag{}, fmt.Errorf("read previous tag size: %w", err)
	}
	if got := binary.BigEndian.Uint32(p[:]); got != uint32(TagHeaderSize+size) {
		return Tag{}, fmt.Errorf("previous tag size is %d, want %d", got, TagHeaderSize+size)
	}
	return t, nil
}

package webrtc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Ogg framing (RFC 3533) of the Opus streams exchanged with ffmpeg, and the
// OpusHead identification header (RFC 7845 section 5.1).

const (
	oggHeaderSize = 27
	// oggMaxPacket bounds a packet reassembled from several pages; an Opus
	// packet is at most 120 ms, far below this.
	oggMaxPacket = 256 << 10
	// oggMaxPackets bounds the packets completed in one page.
	oggMaxPackets = 255
)

// Ogg page header_type flags.
const (
	oggContinued = 0x01
	oggBOS       = 0x02
	oggEOS       = 0x04
)

var errOggSync = errors.New("ogg: page does not start with OggS")

var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func oggCRC(crc uint32, b []byte) uint32 {
	for _, c := range b {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^c]
	}
	return crc
}

// oggPage is one page read by oggReader: the packets it completes and the
// granule position of the last of them (-1 if none ends in it).
type oggPage struct {
	packets [][]byte
	granule int64
	serial  uint32
	bos     bool
}

// oggReader reads pages from an Ogg stream and reassembles packets. It
// keeps one logical stream: pages of another serial number are skipped.
type oggReader struct {
	r       *bufio.Reader
	serial  uint32
	started bool
	partial []byte // packet continued on the next page
	hdr     [oggHeaderSize + 255]byte
	page    [255 * 255]byte
}

func newOggReader(r io.Reader) *oggReader {
	return &oggReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// readPage reads the next page of the stream. The packets it returns are
// fresh slices the caller may keep.
func (o *oggReader) readPage() (oggPage, error) {
	for {
		p, err := o.readOne()
		if err != nil {
			return p, err
		}
		if !o.started {
			o.started = true
			o.serial = p.serial
		}
		if p.serial != o.serial {
			continue
		}
		return p, nil
	}
}

func (o *oggReader) readOne() (oggPage, error) {
	var p oggPage
	h := o.hdr[:oggHeaderSize]
	if _, err := io.ReadFull(o.r, h); err != nil {
		return p, err
	}
	if string(h[:4]) != "OggS" {
		return p, errOggSync
	}
	if h[4] != 0 {
		return p, fmt.Errorf("ogg: unsupported version %d", h[4])
	}
	flags := h[5]
	p.granule = int64(binary.LittleEndian.Uint64(h[6:14]))
	p.serial = binary.LittleEndian.Uint32(h[14:18])
	p.bos = flags&oggBOS != 0
	want := binary.LittleEndian.Uint32(h[22:26])
	nseg := int(h[26])
	seg := o.hdr[oggHeaderSize : oggHeaderSize+nseg]
	if _, err := io.ReadFull(o.r, seg); err != nil {
		return p, fmt.Errorf("ogg: segment table: %w", noEOF(err))
	}
	size := 0
	for _, l := range seg {
		size += int(l)
	}
	data := o.page[:size]
	if _, err := io.ReadFull(o.r, data); err != nil {
		return p, fmt.Errorf("ogg: page data: %w", noEOF(err))
	}
	h[22], h[23], h[24], h[25] = 0, 0, 0, 0
	crc := oggCRC(0, h)
	crc = oggCRC(crc, seg)
	crc = oggCRC(crc, data)
	if crc != want {
		return p, fmt.Errorf("ogg: page CRC mismatch")
	}
	if flags&oggContinued == 0 {
		o.partial = o.partial[:0]
	}
	pos := 0
	for _, l := range seg {
		if len(o.partial)+int(l) > oggMaxPacket {
			return p, fmt.Errorf("ogg: packet larger than %d bytes", oggMaxPacket)
		}
		o.partial = append(o.partial, data[pos:pos+int(l)]...)
		pos += int(l)
		if l < 255 {
			if len(p.packets) >= oggMaxPackets {
				return p, fmt.Errorf("ogg: too many packets in a page")
			}
			pkt := make([]byte, len(o.partial))
			copy(pkt, o.partial)
			p.packets = append(p.packets, pkt)
			o.partial = o.partial[:0]
		}
	}
	if len(p.packets) == 0 {
		p.granule = -1
	}
	return p, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// oggWriter writes one packet per page.
type oggWriter struct {
	w      io.Writer
	serial uint32
	seq    uint32
	buf    []byte
}

// writePacket writes pkt as one page with the given granule position and
// header_type flags (oggBOS, oggEOS).
func (o *oggWriter) writePacket(pkt []byte, granule int64, flags byte) error {
	if len(pkt) >= 255*255 {
		return fmt.Errorf("ogg: packet of %d bytes is too large", len(pkt))
	}
	nseg := len(pkt)/255 + 1
	b := o.buf[:0]
	b = append(b, 'O', 'g', 'g', 'S', 0, flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(granule))
	b = binary.LittleEndian.AppendUint32(b, o.serial)
	b = binary.LittleEndian.AppendUint32(b, o.seq)
	b = append(b, 0, 0, 0, 0, byte(nseg))
	for i := 0; i < nseg-1; i++ {
		b = append(b, 255)
	}
	b = append(b, byte(len(pkt)%255))
	b = append(b, pkt...)
	binary.LittleEndian.PutUint32(b[22:26], oggCRC(0, b))
	o.buf = b
	o.seq++
	_, err := o.w.Write(b)
	return err
}

// opusHead is an Opus identification header (RFC 7845 section 5.1). Its
// multi-byte fields are little-endian.
type opusHead struct {
	channels        uint8
	preSkip         uint16
	inputSampleRate uint32
}

// marshal returns the 19-byte header (channel mapping family 0).
func (h opusHead) marshal() []byte {
	b := make([]byte, 19)
	copy(b, "OpusHead")
	b[8] = 1
	b[9] = h.channels
	binary.LittleEndian.PutUint16(b[10:], h.preSkip)
	binary.LittleEndian.PutUint32(b[12:], h.inputSampleRate)
	// output gain 0, mapping family 0
	return b
}

// parseOpusHead reads an OpusHead.
func parseOpusHead(b []byte) (opusHead, error) {
	var h opusHead
	if len(b) < 19 || string(b[:8]) != "OpusHead" {
		return h, errors.New("not an OpusHead")
	}
	if b[8]>>4 != 0 {
		return h, fmt.Errorf("unsupported OpusHead version %d", b[8])
	}
	h.channels = b[9]
	if h.channels == 0 {
		return h, errors.New("OpusHead with 0 channels")
	}
	h.preSkip = binary.LittleEndian.Uint16(b[10:])
	h.inputSampleRate = binary.LittleEndian.Uint32(b[12:])
	return h, nil
}

// opusTags is a minimal OpusTags comment header.
func opusTags() []byte {
	vendor := "mofang"
	b := append([]byte("OpusTags"), byte(len(vendor)), 0, 0, 0)
	b = append(b, vendor...)
	return append(b, 0, 0, 0, 0)
}

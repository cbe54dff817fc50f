package rtmp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// RTMP chunk sizes a peer may set. RTMP's own minimum is 1, but no client
// goes below the default of 128, and tiny chunks only multiply the work per
// byte received. Sizes above the largest message (2^24-1) are valid and
// mean the same as it; a size with the top bit set is invalid.
const (
	minChunkSize = 128
	maxChunkSize = 0xffffff
)

// limits bounds what one connection's incoming messages may hold.
type limits struct {
	// maxMessage is the largest message accepted.
	maxMessage int
	// maxBuffered is the most bytes held in partly received messages,
	// all chunk streams together.
	maxBuffered int
	// prealloc is how much of a message's body is allocated when its
	// first chunk arrives; the rest grows as bytes arrive.
	prealloc int
	// maxStreams is how many chunk streams a connection may use.
	maxStreams int
}

// Limits of incoming RTMP messages. Before a connection is admitted, and
// for players, whose only traffic is commands and control messages, a few
// small messages are all a client needs. An admitted publisher sends media
// (the largest messages are key frames).
var (
	commandLimits = limits{maxMessage: 64 << 10, maxBuffered: 256 << 10, prealloc: 64 << 10, maxStreams: 64}
	mediaLimits   = limits{maxMessage: 10 << 20, maxBuffered: 20 << 20, prealloc: 1 << 20, maxStreams: 64}
)

// readStep is the most read into a message body at once, so that
// memory is committed no faster than bytes arrive.
const readStep = 64 << 10

// errLimit is wrapped by the errors of a peer exceeding limits or
// setting an invalid chunk size.
var errLimit = errors.New("RTMP limit exceeded")

// rawMessage is one incoming RTMP message. Body is owned by the caller.
type rawMessage struct {
	ChunkStreamID   uint32
	Timestamp       uint32 // milliseconds
	Type            uint8
	MessageStreamID uint32
	Body            []byte
}

// chunkStream is the state of one incoming chunk stream.
type chunkStream struct {
	hasHeader bool // a type 0 chunk has been received
	timestamp uint32
	delta     uint32
	length    uint32
	typ       uint8
	msid      uint32
	extTS     bool // the last header had an extended timestamp

	active bool   // a message is being received
	body   []byte // received bytes of the message
}

// chunkReader reassembles RTMP messages from chunks, within limits: a
// message's body is allocated as its bytes arrive (never ahead of them by
// more than limits.prealloc), the bytes held in partly received messages
// are bounded, and so are the chunk streams and the chunk size. It sends
// acknowledgements through onAck as the peer's window requires.
//
// It replaces gortmplib's rawmessage.Reader, which stores one fragment per
// chunk and accepts any chunk size: with a chunk size of 0 every 1-byte
// chunk header adds an empty fragment, a memory flood bounded by nothing.
type chunkReader struct {
	r     *bufio.Reader
	src   io.Reader     // what r reads
	count func() uint64 // bytes read from the connection, for acks
	onAck func(uint32) error

	lim       limits
	chunkSize uint32
	ackWindow uint32
	lastAck   uint32
	buffered  int // bytes allocated to partly received messages
	streams   map[uint32]*chunkStream
	hdr       [16]byte
}

// newChunkReader reads chunks from r. count returns the bytes read
// from the connection so far (it may be nil: no acknowledgements).
func newChunkReader(r io.Reader, count func() uint64, onAck func(uint32) error, lim limits) *chunkReader {
	return &chunkReader{
		r:         bufio.NewReader(r),
		src:       r,
		count:     count,
		onAck:     onAck,
		lim:       lim,
		chunkSize: minChunkSize,
		streams:   make(map[uint32]*chunkStream),
	}
}

// shrink makes the read buffer size bytes when nothing is buffered in it:
// a player sends only small messages (acknowledgements, pings), and holds
// its buffer as long as it watches.
func (r *chunkReader) shrink(size int) {
	if r.r.Buffered() == 0 && r.r.Size() > size {
		r.r = bufio.NewReaderSize(r.src, size)
	}
}

// setLimits changes the limits of the messages to come.
func (r *chunkReader) setLimits(lim limits) { r.lim = lim }

// setChunkSize applies a peer's SetChunkSize.
func (r *chunkReader) setChunkSize(v uint32) error {
	if v&0x80000000 != 0 || v < minChunkSize {
		return fmt.Errorf("%w: invalid chunk size %d", errLimit, v)
	}
	r.chunkSize = min(v, maxChunkSize)
	return nil
}

// setWindowAckSize applies a peer's window acknowledgement size (0: no
// acknowledgements). Tiny windows are raised so that acks stay rare.
func (r *chunkReader) setWindowAckSize(v uint32) {
	if v != 0 && v < 4096 {
		v = 4096
	}
	r.ackWindow = v
}

// abort drops the partly received message of chunk stream csid.
func (r *chunkReader) abort(csid uint32) {
	if cs := r.streams[csid]; cs != nil && cs.active {
		r.drop(cs)
	}
}

func (r *chunkReader) drop(cs *chunkStream) {
	r.buffered -= cap(cs.body)
	cs.body = nil
	cs.active = false
}

// Read returns the next complete message.
func (r *chunkReader) Read() (rawMessage, error) {
	for {
		msg, ok, err := r.readChunk()
		if err != nil || ok {
			return msg, err
		}
	}
}

func (r *chunkReader) readFull(n int) ([]byte, error) {
	b := r.hdr[:n]
	_, err := io.ReadFull(r.r, b)
	return b, err
}

func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

// readChunk reads one chunk; it returns a message when the chunk completes one.
func (r *chunkReader) readChunk() (rawMessage, bool, error) {
	b0, err := r.r.ReadByte()
	if err != nil {
		return rawMessage{}, false, err
	}
	format, csid := b0>>6, uint32(b0&0x3f)
	switch csid {
	case 0:
		b, err := r.readFull(1)
		if err != nil {
			return rawMessage{}, false, err
		}
		csid = 64 + uint32(b[0])
	case 1:
		b, err := r.readFull(2)
		if err != nil {
			return rawMessage{}, false, err
		}
		csid = 64 + uint32(b[0]) + uint32(b[1])<<8
	}
	cs := r.streams[csid]
	if cs == nil {
		if len(r.streams) >= r.lim.maxStreams {
			return rawMessage{}, false, fmt.Errorf("%w: more than %d chunk streams", errLimit, r.lim.maxStreams)
		}
		cs = &chunkStream{}
		r.streams[csid] = cs
	}
	if format != 0 && !cs.hasHeader {
		return rawMessage{}, false, fmt.Errorf("chunk stream %d: type %d chunk without a previous header", csid, format)
	}
	if format != 3 && cs.active {
		return rawMessage{}, false, fmt.Errorf("chunk stream %d: type %d chunk inside a message", csid, format)
	}

	switch format {
	case 0:
		h, err := r.readFull(11)
		if err != nil {
			return rawMessage{}, false, err
		}
		cs.timestamp, cs.length, cs.typ = be24(h), be24(h[3:]), h[6]
		cs.msid = binary.LittleEndian.Uint32(h[7:])
		cs.delta = 0
		cs.extTS = cs.timestamp == 0xffffff
		if cs.extTS {
			if h, err = r.readFull(4); err != nil {
				return rawMessage{}, false, err
			}
			cs.timestamp = binary.BigEndian.Uint32(h)
		}
		cs.hasHeader = true
	case 1, 2:
		n := 7
		if format == 2 {
			n = 3
		}
		h, err := r.readFull(n)
		if err != nil {
			return rawMessage{}, false, err
		}
		delta := be24(h)
		if format == 1 {
			cs.length, cs.typ = be24(h[3:]), h[6]
		}
		cs.extTS = delta == 0xffffff
		if cs.extTS {
			if h, err = r.readFull(4); err != nil {
				return rawMessage{}, false, err
			}
			delta = binary.BigEndian.Uint32(h)
		}
		cs.delta = delta
		cs.timestamp += delta
	case 3:
		if cs.extTS {
			if _, err := r.readFull(4); err != nil {
				return rawMessage{}, false, err
			}
		}
		if !cs.active {
			cs.timestamp += cs.delta
		}
	}

	if !cs.active {
		if int(cs.length) > r.lim.maxMessage {
			return rawMessage{}, false, fmt.Errorf("%w: message of %d bytes (type %d) exceeds %d", errLimit, cs.length, cs.typ, r.lim.maxMessage)
		}
		cs.active = true
	}
	if err := r.readBody(cs, int(min(cs.length-uint32(len(cs.body)), r.chunkSize))); err != nil {
		return rawMessage{}, false, err
	}
	if err := r.ack(); err != nil {
		return rawMessage{}, false, err
	}
	if len(cs.body) < int(cs.length) {
		return rawMessage{}, false, nil
	}
	msg := rawMessage{
		ChunkStreamID:   csid,
		Timestamp:       cs.timestamp,
		Type:            cs.typ,
		MessageStreamID: cs.msid,
		Body:            cs.body,
	}
	r.drop(cs)
	return msg, true, nil
}

// readBody appends n bytes of the connection to the message of cs, growing
// its buffer as the bytes arrive, within the connection's budget.
func (r *chunkReader) readBody(cs *chunkStream, n int) error {
	for n > 0 {
		step := min(n, readStep)
		l := len(cs.body)
		if cap(cs.body)-l < step {
			c := min(max(2*cap(cs.body), l+step, r.lim.prealloc), int(cs.length))
			if r.buffered-cap(cs.body)+c > r.lim.maxBuffered {
				return fmt.Errorf("%w: more than %d bytes in partly received messages", errLimit, r.lim.maxBuffered)
			}
			nb := make([]byte, l, c)
			copy(nb, cs.body)
			r.buffered += c - cap(cs.body)
			cs.body = nb
		}
		cs.body = cs.body[:l+step]
		if _, err := io.ReadFull(r.r, cs.body[l:]); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

// ack sends an acknowledgement once the peer's window has been received.
func (r *chunkReader) ack() error {
	if r.ackWindow == 0 || r.count == nil || r.onAck == nil {
		return nil
	}
	count := uint32(r.count())
	if count-r.lastAck <= r.ackWindow {
		return nil
	}
	r.lastAck = count
	return r.onAck(count)
}

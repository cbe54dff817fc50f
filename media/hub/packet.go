package hub

import (
	"sync"
	"sync/atomic"
)

// Framing names an output format whose framed bytes a packet builds once
// and shares with every reader of that format.
type Framing uint8

// Framings. A protocol package that writes packets to sockets through a
// Reader adds its format here: a packet has one cache slot per framing.
const (
	// FramingRTMP is RTMP chunks (media/rtmp).
	FramingRTMP Framing = iota
	// FramingFLV is FLV tags (media/httpflv).
	FramingFLV

	numFramings
)

// Scratch is the room a packet keeps for one framing: a header and the
// slices of the framed bytes, so that framing a packet allocates nothing
// when the header fits and three slices are enough.
type Scratch struct {
	// Header holds the framing's header (and trailer) bytes.
	Header [16]byte
	// Bufs holds the slices returned by a Framer's Build.
	Bufs [3][]byte
}

// Framer is how a protocol frames packets: Build returns the bytes of p in
// that framing, using s (p's slot for Framing, zeroed) for its header and
// slices where they fit. Build is called once per packet and framing; its
// result is shared by every reader and must not be modified.
type Framer struct {
	// Framing is the packet's cache slot for this framing.
	Framing Framing
	// Build frames p.
	Build func(p *Packet, s *Scratch) [][]byte
}

// Packet is one media message (audio, video or script data) of a stream. Its
// body is the RTMP message payload, equal to the FLV tag body. A packet is
// immutable once published to the ring; the framed forms for each output
// format are built once, lazily, and shared by every reader of that format.
type Packet struct {
	seq    uint64
	typ    uint8  // flv.TagAudio, flv.TagVideo or flv.TagScript
	ts     uint32 // DTS in milliseconds, on the stream's output timeline
	body   []byte
	key    bool // a point where a reader can start
	header bool // metadata or sequence header

	framed [numFramings]framedSlot
}

// framedSlot is a packet's cache of one framing, built once (as by a
// sync.Once, with the check of the fast path inlined into Framed).
type framedSlot struct {
	done    atomic.Bool
	mu      sync.Mutex
	bufs    [][]byte
	scratch Scratch
}

// Type returns the packet's FLV tag type: flv.TagAudio, flv.TagVideo or
// flv.TagScript.
func (p *Packet) Type() uint8 { return p.typ }

// Timestamp returns the packet's DTS in milliseconds, on the stream's
// output timeline.
func (p *Packet) Timestamp() uint32 { return p.ts }

// Body returns the packet's body, the FLV tag body (RTMP message payload).
// It must not be modified.
func (p *Packet) Body() []byte { return p.body }

// Key reports whether a reader can start at the packet: a video key frame,
// or any audio frame of a stream without video.
func (p *Packet) Key() bool { return p.key }

// Header reports whether the packet is metadata or a sequence header.
func (p *Packet) Header() bool { return p.header }

// withTimestamp returns an unpublished copy of p with another timestamp, used
// to send cached headers to a new reader at the time of its first frame.
func (p *Packet) withTimestamp(ts uint32) *Packet {
	return &Packet{typ: p.typ, ts: ts, body: p.body, key: p.key, header: p.header}
}

// Framed returns the bytes of p in f's framing, built by f.Build on first
// use and shared afterwards.
func (p *Packet) Framed(f Framer) [][]byte {
	sl := &p.framed[f.Framing]
	if !sl.done.Load() {
		sl.build(p, f)
	}
	return sl.bufs
}

func (sl *framedSlot) build(p *Packet, f Framer) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if !sl.done.Load() {
		sl.bufs = f.Build(p, &sl.scratch)
		sl.done.Store(true)
	}
}

package srt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MPEG-TS packets.
const (
	tsPacketSize = 188
	tsSyncByte   = 0x47
)

// maxPESPending caps what a publisher's MPEG-TS may make the demuxer
// hold: the bytes of every PID's packet since its last payload start,
// summed over the PIDs (the largest key frames of 4K streams are a few
// MB).
const maxPESPending = 16 << 20

// errTSTooLarge ends a publisher whose MPEG-TS holds more than
// maxPESPending bytes in unfinished payloads.
var errTSTooLarge = errors.New("MPEG-TS payloads larger than the limit")

// tsGuard reads a byte stream as MPEG-TS packets for the demuxer: it
// passes on whole 188-byte packets that start with the sync byte, skipping
// what lies between them as mediacommon's reader would, and bounds the
// memory the demuxer needs. go-astits gathers every PID's packets until
// that PID starts a new payload, without a limit: a hostile publisher
// could send packets that never start one. tsGuard counts, per PID, the
// bytes since its last payload start and fails once their sum is over
// max: an upper bound of what the demuxer holds, since go-astits also
// flushes complete payloads earlier.
type tsGuard struct {
	r   io.Reader
	max int

	in  []byte // read, not framed yet (less than a packet, or garbage)
	out []byte // framed packets not returned yet
	err error  // of the underlying reader, returned once out is empty

	pending [1 << 13]int32 // bytes since the payload start, per PID
	total   int
}

func newTSGuard(r io.Reader, max int) *tsGuard {
	return &tsGuard{r: r, max: max, in: make([]byte, 0, 2*1316), out: make([]byte, 0, 2*1316)}
}

// Read returns whole packets when p has room for them.
func (g *tsGuard) Read(p []byte) (int, error) {
	for len(g.out) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		g.fill()
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	if len(g.out) == 0 {
		g.out = g.out[:0:cap(g.out)]
	}
	return n, nil
}

// fill reads once from r and frames what it can.
func (g *tsGuard) fill() {
	// in holds less than a packet after each fill: there is room.
	n, err := g.r.Read(g.in[len(g.in):cap(g.in)])
	g.in = g.in[:len(g.in)+n]
	if err != nil {
		g.err = err
	} else if n == 0 {
		return
	}
	b := g.in
	for len(b) >= tsPacketSize {
		if b[0] != tsSyncByte {
			i := bytes.IndexByte(b, tsSyncByte)
			if i < 0 {
				b = b[:0]
				break
			}
			b = b[i:]
			continue
		}
		if err := g.account(b[:tsPacketSize]); err != nil {
			g.err = err
			g.out = g.out[:0]
			return
		}
		g.out = append(g.out, b[:tsPacketSize]...)
		b = b[tsPacketSize:]
	}
	g.in = g.in[:copy(g.in, b)]
}

// account counts packet pkt in its PID's pending bytes.
func (g *tsGuard) account(pkt []byte) error {
	if pkt[1]&0x80 != 0 || pkt[3]&0x10 == 0 {
		return nil // transport error or no payload: go-astits drops it
	}
	pid := uint16(pkt[1]&0x1f)<<8 | uint16(pkt[2])
	if pkt[1]&0x40 != 0 { // payload unit start
		g.total -= int(g.pending[pid])
		g.pending[pid] = 0
	}
	g.pending[pid] += tsPacketSize
	g.total += tsPacketSize
	if g.total > g.max {
		return fmt.Errorf("%w (%d bytes)", errTSTooLarge, g.max)
	}
	return nil
}

package hub

import "context"

// CursorStart says where a Cursor starts.
type CursorStart uint8

// Cursor starts.
const (
	// FromFirst starts at the stream's first packet: a consumer started
	// with the stream (HLS, recording) reads everything written.
	FromFirst CursorStart = iota
	// FromKey starts at the newest key packet (the cached GOP), or at the
	// next packet to be written when there is none: a viewer joining.
	FromKey
)

// Cursor reads every packet of a stream in order, for in-process
// consumers (HLS, recording, RTSP and WebRTC outputs) that handle each
// packet themselves rather than writing framed bytes to a socket (see
// Reader). It holds a position in the stream's ring, never a copy; it is
// used by one goroutine. The publisher never waits for it: a cursor that
// falls a whole ring behind skips (see Next).
type Cursor struct {
	s   *Stream
	seq uint64
}

// NewCursor returns a cursor of s starting at start.
func (s *Stream) NewCursor(start CursorStart) *Cursor {
	c := &Cursor{s: s}
	if start == FromKey {
		if k := s.lastKey.Load(); k > 0 && s.packetAt(k-1) != nil {
			c.seq = k - 1
		} else {
			c.seq = s.writeSeq.Load()
		}
	}
	return c
}

// Peek returns the packet Next would return now, or nil if it is not
// written yet (or was overwritten). It does not move the cursor.
func (c *Cursor) Peek() *Packet { return c.s.packetAt(c.seq) }

// Next returns the next packet, waiting until it is written. It returns
// ErrStreamEnded once the stream has ended and every packet was read, and
// ctx's error when ctx ends first.
//
// When the packets the cursor is at were overwritten before it read them
// (it fell a whole ring behind), Next returns a nil packet and the number
// of packets skipped, having moved to the newest key packet, or, if there
// is no newer one, to the next packet to be written: a consumer that needs
// to start at a key frame waits for one (Packet.Key) after a skip.
func (c *Cursor) Next(ctx context.Context) (p *Packet, skipped uint64, err error) {
	s := c.s
	for {
		w := s.writeSeq.Load()
		if c.seq == w {
			ch := s.notify.Load()
			if s.writeSeq.Load() != c.seq {
				continue
			}
			select {
			case <-*ch:
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			case <-s.done:
				if s.writeSeq.Load() == c.seq {
					return nil, 0, ErrStreamEnded
				}
			}
			continue
		}
		p := s.packetAt(c.seq)
		if p == nil { // overwritten: jump to the newest key packet
			from := c.seq
			if k := s.lastKey.Load(); k > 0 && k-1 > c.seq && s.packetAt(k-1) != nil {
				c.seq = k - 1
			} else {
				c.seq = w
			}
			return nil, c.seq - from, nil
		}
		c.seq++
		return p, 0, nil
	}
}

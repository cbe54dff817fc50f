package webrtc

import (
	"sync"
	"sync/atomic"
)

// rtpPacket is one RTP packet of a stream's track, made once and sent to
// every viewer. Only the sequence number, SSRC and payload type differ per
// viewer; they are set in the viewer's own header at send time.
type rtpPacket struct {
	pos     uint64 // position in the track's ring
	ts      uint32 // RTP timestamp
	marker  bool
	key     bool   // first packet of a key frame (parameter sets included)
	apos    uint64 // key packets: the audio ring's write position then
	payload []byte
}

// ring is a track's packets: one writer, any number of lock-free readers.
// A slot holds the packet whose pos maps to it; a reader that finds
// another pos there has fallen behind by a whole ring.
type ring struct {
	slots []atomic.Pointer[rtpPacket]
	mask  uint64
	next  atomic.Uint64 // position of the next packet to be written
}

func newRing(size int) *ring {
	return &ring{slots: make([]atomic.Pointer[rtpPacket], size), mask: uint64(size - 1)}
}

// push stores p at the next position. Only one goroutine may push.
func (r *ring) push(p *rtpPacket) {
	p.pos = r.next.Load()
	r.slots[p.pos&r.mask].Store(p)
	r.next.Store(p.pos + 1)
}

// at returns the packet at pos, or nil if it is not written yet or was
// overwritten.
func (r *ring) at(pos uint64) *rtpPacket {
	p := r.slots[pos&r.mask].Load()
	if p == nil || p.pos != pos {
		return nil
	}
	return p
}

// written returns the position of the next packet to be written.
func (r *ring) written() uint64 { return r.next.Load() }

// size returns the number of slots.
func (r *ring) size() uint64 { return r.mask + 1 }

// notifier wakes every waiting reader at once: a reader takes the current
// channel, checks for work, and waits on the channel; the writer closes it
// and installs a new one after writing.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

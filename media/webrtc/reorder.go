package webrtc

import (
	"time"

	"github.com/pion/rtp"
)

const (
	reorderSlots = 128
	// reorderMaxHeld and reorderMaxWait bound how long a gap is waited for
	// (a retransmission after a NACK) before it is taken as lost.
	reorderMaxHeld = 96
	reorderMaxWait = 150 * time.Millisecond
)

// reorderBuffer puts a track's RTP packets back in sequence order,
// waiting a bounded time for missing ones.
type reorderBuffer struct {
	started bool
	next    uint16
	held    int
	slots   [reorderSlots]*rtp.Packet
	arrived [reorderSlots]time.Time
}

// push adds a packet and calls emit for every packet now in order; lost is
// true when packets were skipped before that one.
func (r *reorderBuffer) push(p *rtp.Packet, now time.Time, emit func(p *rtp.Packet, lost bool)) {
	if !r.started {
		r.started = true
		r.next = p.SequenceNumber
	}
	d := int16(p.SequenceNumber - r.next)
	if d < 0 {
		return // duplicate or too late
	}
	lost := false
	if int(d) >= reorderSlots {
		// far ahead: give up on everything held
		r.flush(emit)
		r.next = p.SequenceNumber
		lost = true
	}
	i := p.SequenceNumber % reorderSlots
	if r.slots[i] == nil {
		r.held++
	}
	r.slots[i] = p
	r.arrived[i] = now
	for {
		for r.slots[r.next%reorderSlots] != nil {
			j := r.next % reorderSlots
			q := r.slots[j]
			r.slots[j] = nil
			r.held--
			r.next++
			emit(q, lost)
			lost = false
		}
		if r.held == 0 {
			return
		}
		// a gap: skip it when too much is held or waited too long
		oldest, ok := r.oldest()
		if !ok || (r.held < reorderMaxHeld && now.Sub(oldest) < reorderMaxWait) {
			return
		}
		for r.slots[r.next%reorderSlots] == nil {
			r.next++
		}
		lost = true
	}
}

// oldest returns the arrival time of the first held packet after the gap.
func (r *reorderBuffer) oldest() (time.Time, bool) {
	for k := uint16(0); k < reorderSlots; k++ {
		j := (r.next + k) % reorderSlots
		if r.slots[j] != nil {
			return r.arrived[j], true
		}
	}
	return time.Time{}, false
}

func (r *reorderBuffer) flush(emit func(p *rtp.Packet, lost bool)) {
	lost := true
	for k := uint16(0); k < reorderSlots && r.held > 0; k++ {
		j := (r.next + k) % reorderSlots
		if q := r.slots[j]; q != nil {
			r.slots[j] = nil
			r.held--
			emit(q, lost)
			lost = false
		} else {
			lost = true
		}
	}
}

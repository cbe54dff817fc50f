package webrtc

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestReorderBuffer(t *testing.T) {
	var r reorderBuffer
	var got []uint16
	var lost []bool
	emit := func(p *rtp.Packet, l bool) {
		got = append(got, p.SequenceNumber)
		lost = append(lost, l)
	}
	now := time.Now()
	push := func(seq uint16, at time.Duration) {
		r.push(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq}}, now.Add(at), emit)
	}
	// in order across the wrap, one swap, one duplicate, one late
	push(65534, 0)
	push(65535, 0)
	push(1, 0)
	push(0, 0)
	push(1, 0)
	push(65530, 0)
	want := []uint16{65534, 65535, 0, 1}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] || lost[i] {
			t.Fatalf("got %v lost %v, want %v", got, lost, want)
		}
	}
	// a gap that is never filled is skipped after reorderMaxWait
	got, lost = nil, nil
	push(3, 10*time.Millisecond)
	push(4, 20*time.Millisecond)
	if len(got) != 0 {
		t.Fatalf("emitted %v across a gap", got)
	}
	push(5, 10*time.Millisecond+reorderMaxWait)
	if len(got) != 3 || got[0] != 3 || !lost[0] || lost[1] {
		t.Fatalf("after the wait: %v %v", got, lost)
	}
	// far ahead: resynchronize
	got, lost = nil, nil
	push(30000, time.Second)
	if len(got) != 1 || got[0] != 30000 || !lost[0] {
		t.Fatalf("far ahead: %v %v", got, lost)
	}
}

func FuzzReorderBuffer(f *testing.F) {
	f.Add([]byte{0, 1, 0, 3, 0, 2, 255, 255, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r reorderBuffer
		now := time.Now()
		var last uint16
		first := true
		for i := 0; i+1 < len(b); i += 2 {
			seq := uint16(b[i])<<8 | uint16(b[i+1])
			now = now.Add(time.Duration(b[i]) * time.Millisecond)
			r.push(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq}}, now, func(p *rtp.Packet, lost bool) {
				if !first && !lost && p.SequenceNumber != last+1 {
					t.Fatalf("%d after %d without loss", p.SequenceNumber, last)
				}
				first = false
				last = p.SequenceNumber
			})
			if r.held < 0 || r.held > reorderSlots {
				t.Fatalf("held %d", r.held)
			}
		}
	})
}

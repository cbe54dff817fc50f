package webrtc

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// Stats is the state of one WebRTC session, a WHEP viewer or a WHIP
// publisher, in one shape.
type Stats struct {
	// ID is the session id (the last element of its resource URL).
	ID string
	// Kind is "whep" (a viewer) or "whip" (a publisher).
	Kind string
	// Stream is the Output's name for viewers (empty for publishers: the
	// engine knows which stream it gave the Input to).
	Stream    string
	Remote    netip.AddrPort
	Created   time.Time
	Connected bool
	// BytesSent and PacketsSent count RTP sent (payload and header, before
	// encryption); BytesReceived and PacketsReceived RTP received.
	BytesSent, PacketsSent         uint64
	BytesReceived, PacketsReceived uint64
	// NACKs counts packets asked for again: by the viewer (WHEP), or of the
	// publisher by us (WHIP, not counted: pion's generator sends them).
	NACKs uint64
	// Retransmits counts packets resent after a NACK (WHEP).
	Retransmits uint64
	// PLIs and FIRs count key frame requests: received from the viewer
	// (WHEP) or sent to the publisher (WHIP).
	PLIs, FIRs uint64
	// Skips counts the times a viewer fell behind and skipped ahead to a
	// key frame (WHEP).
	Skips uint64
	// FractionLost is the last loss fraction the peer reported (0-255 as in
	// RTCP receiver reports; WHEP).
	FractionLost uint8
}

// counters are the atomically updated numbers behind Stats.
type counters struct {
	bytesSent, packetsSent         atomic.Uint64
	bytesReceived, packetsReceived atomic.Uint64
	nacks, retransmits             atomic.Uint64
	plis, firs, skips              atomic.Uint64
	fractionLost                   atomic.Uint32
}

func (c *counters) fill(st *Stats) {
	st.BytesSent = c.bytesSent.Load()
	st.PacketsSent = c.packetsSent.Load()
	st.BytesReceived = c.bytesReceived.Load()
	st.PacketsReceived = c.packetsReceived.Load()
	st.NACKs = c.nacks.Load()
	st.Retransmits = c.retransmits.Load()
	st.PLIs = c.plis.Load()
	st.FIRs = c.firs.Load()
	st.Skips = c.skips.Load()
	st.FractionLost = uint8(c.fractionLost.Load())
}

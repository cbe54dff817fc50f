package webrtc

import (
	"bytes"
	"context"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// recorder is a TrackLocalWriter that keeps what is written.
type recorder struct {
	pkts []rtp.Packet
}

func (r *recorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	r.pkts = append(r.pkts, rtp.Packet{Header: *h, Payload: bytes.Clone(payload)})
	return 12 + len(payload), nil
}

func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }

// testViewer is a session's video track writing to a recorder, without a
// peer connection.
func testViewer(out *Output) (*Session, *sendTrack, *recorder) {
	rec := &recorder{}
	s := &Session{srv: out.srv, out: out, nacks: make(chan nackReq, nackQueue)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t := &sendTrack{s: s, kind: webrtc.RTPCodecTypeVideo, ring: out.video, ws: rec, pt: 96, ssrc: 42}
	s.tracks[trackVideo] = t
	return s, t, rec
}

// startsKeyFrame reports whether an H.264 RTP payload starts a key frame:
// an SPS, alone or first in a STAP-A.
func startsKeyFrame(payload []byte) bool {
	if len(payload) < 4 {
		return false
	}
	switch payload[0] & 0x1f {
	case 7:
		return true
	case 24:
		return payload[3]&0x1f == 7
	}
	return false
}

// TestSlowViewerSkipsToKeyFrame: a viewer that stalls while the stream
// goes on does not hold the publisher; when it writes again it resumes at
// the newest key frame with no gap in its sequence numbers.
func TestSlowViewerSkipsToKeyFrame(t *testing.T) {
	srv := newTestServer(t, Config{VideoRing: 256, ViewerLag: 128})
	out := srv.NewOutput(OutputConfig{Name: "slow"})
	defer out.Close()
	tags := readTags(t, clipNoB(t))
	feedStart(out, tags[:10])
	s, v, rec := testViewer(out)
	defer s.cancel()
	k := out.lastKey.Load()
	if k == 0 {
		t.Fatal("no key frame after the first tags")
	}
	v.start(k - 1)
	s.drainVideo(v)
	before := len(rec.pkts)
	if before == 0 || !startsKeyFrame(rec.pkts[0].Payload) {
		t.Fatalf("the viewer did not start with a key frame (%d packets)", before)
	}
	// the viewer stalls: the whole clip goes by (far more than the ring)
	for _, tag := range tags[10:] {
		out.WritePacket(tag.Type, tag.Timestamp, tag.Body)
	}
	if w := out.video.written(); w-v.next < uint64(out.video.size()) {
		t.Fatalf("the clip made only %d packets", w)
	}
	s.drainVideo(v)
	if got := s.st.skips.Load(); got != 1 {
		t.Errorf("skips = %d, want 1", got)
	}
	resumed := rec.pkts[before]
	if !startsKeyFrame(resumed.Payload) {
		t.Errorf("resumed with payload % x, not a key frame", resumed.Payload[:4])
	}
	for i := 1; i < len(rec.pkts); i++ {
		if rec.pkts[i].SequenceNumber != rec.pkts[i-1].SequenceNumber+1 {
			t.Fatalf("sequence %d after %d", rec.pkts[i].SequenceNumber, rec.pkts[i-1].SequenceNumber)
		}
		if rec.pkts[i].SSRC != 42 || rec.pkts[i].PayloadType != 96 {
			t.Fatalf("SSRC %d PT %d", rec.pkts[i].SSRC, rec.pkts[i].PayloadType)
		}
	}
	if last := out.video.written(); v.next != last {
		t.Errorf("viewer at %d, stream at %d", v.next, last)
	}

	// NACKs: a packet still in the ring is resent as it was; one from
	// before the skip, or too old, is not
	recent := rec.pkts[len(rec.pkts)-3]
	old := rec.pkts[before-1]
	n := len(rec.pkts)
	s.resend(nackReq{track: trackVideo, pair: rtcp.NackPair{PacketID: recent.SequenceNumber}})
	s.resend(nackReq{track: trackVideo, pair: rtcp.NackPair{PacketID: old.SequenceNumber}})
	if len(rec.pkts) != n+1 {
		t.Fatalf("%d packets resent, want 1", len(rec.pkts)-n)
	}
	again := rec.pkts[n]
	if again.SequenceNumber != recent.SequenceNumber || again.Timestamp != recent.Timestamp ||
		!bytes.Equal(again.Payload, recent.Payload) {
		t.Errorf("resent seq %d ts %d, want seq %d ts %d", again.SequenceNumber, again.Timestamp,
			recent.SequenceNumber, recent.Timestamp)
	}
	if s.st.retransmits.Load() != 1 {
		t.Errorf("retransmits = %d", s.st.retransmits.Load())
	}
}

type nopWriter struct{}

func (nopWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) { return 12 + len(payload), nil }
func (nopWriter) Write(b []byte) (int, error)                         { return len(b), nil }

// TestViewerPathAllocs: sending the ring's packets to a viewer allocates
// nothing on our side (SRTP and the socket are pion's).
// The race detector allocates on its own, so this runs without it (make
// test runs the Allocs tests a second time, without -race).
func TestViewerPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not exact under the race detector; make test runs this without -race")
	}
	srv := newTestServer(t, Config{})
	out := srv.NewOutput(OutputConfig{Name: "allocs"})
	defer out.Close()
	feedStart(out, readTags(t, clipNoB(t)))
	s, v, _ := testViewer(out)
	defer s.cancel()
	v.ws = nopWriter{}
	k := out.lastKey.Load() - 1
	n := out.video.written() - k
	allocs := testing.AllocsPerRun(20, func() {
		v.start(k)
		s.drainVideo(v)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations to send %d packets", allocs, n)
	}
}

package webrtc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/mofang-live/mofang/media/flv"
)

const (
	trackVideo = 0
	trackAudio = 1
)

const (
	// nackQueue bounds the NACKs waiting for a viewer's writer.
	nackQueue = 64
	// nackWindow is how far back (in packets) a NACK is honoured.
	nackWindow = 1024
	// reportInterval is the period of RTCP sender reports.
	reportInterval = time.Second
	// bindWait bounds the wait for pion to bind a track once connected.
	bindWait = 5 * time.Second
)

// errConnectTimeout closes a session that did not connect in time.
var errConnectTimeout = errors.New("webrtc: the peer did not connect in time")

// errPeerGone closes a session whose peer failed or closed.
var errPeerGone = errors.New("webrtc: the peer disconnected")

type nackReq struct {
	track int
	pair  rtcp.NackPair
}

// Session is one WHEP viewer of an Output.
type Session struct {
	lifecycle
	srv     *Server
	out     *Output
	pc      *webrtc.PeerConnection
	remote  netip.AddrPort
	created time.Time
	ufrag   string // the viewer's ICE ufrag, to tell a restart from trickle
	ep      atomic.Pointer[string]

	tracks [2]*sendTrack
	nacks  chan nackReq

	ctx       context.Context
	cancel    context.CancelFunc
	connected atomic.Bool
	started   atomic.Bool
	connTimer *time.Timer

	st counters
}

// sendTrack is one track of one viewer: pion's TrackLocal, bound to the
// viewer's RTP sender, and the viewer's cursor into the Output's ring.
type sendTrack struct {
	s       *Session
	kind    webrtc.RTPCodecType
	mime    string
	profile uint8
	ring    *ring
	rate    float64

	bound    chan struct{}
	bindOnce sync.Once
	ssrc     uint32
	pt       uint8
	ws       webrtc.TrackLocalWriter
	sender   *webrtc.RTPSender

	// writer goroutine state
	hdr      rtp.Header
	next     uint64 // ring position of the next packet to send
	off      uint64 // sequence number = uint16(pos + off)
	skipFrom uint64 // NACKs before this position are not honoured
	waitKey  bool
	packets  uint32
	octets   uint32
}

// Bind implements webrtc.TrackLocal: it takes the negotiated codec, SSRC
// and writer of the viewer's sender.
func (t *sendTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, ok := pickCodec(ctx.CodecParameters(), t.mime, t.profile)
	if !ok {
		return webrtc.RTPCodecParameters{}, fmt.Errorf("%w: %s not negotiated", ErrNoCodec, t.mime)
	}
	t.bindOnce.Do(func() {
		t.ssrc = uint32(ctx.SSRC())
		t.pt = uint8(c.PayloadType)
		t.ws = ctx.WriteStream()
		close(t.bound)
	})
	return c, nil
}

// Unbind implements webrtc.TrackLocal.
func (t *sendTrack) Unbind(webrtc.TrackLocalContext) error { return nil }

// ID implements webrtc.TrackLocal.
func (t *sendTrack) ID() string {
	if t.kind == webrtc.RTPCodecTypeVideo {
		return "video"
	}
	return "audio"
}

// RID implements webrtc.TrackLocal.
func (t *sendTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (t *sendTrack) StreamID() string { return "mofang" }

// Kind implements webrtc.TrackLocal.
func (t *sendTrack) Kind() webrtc.RTPCodecType { return t.kind }

func (o *Output) newSession(ctx context.Context, info *offerInfo, si streamInfo, offer string,
	remote netip.AddrPort, video, audio bool) (*Session, string, error) {
	pc, err := o.srv.newPeerConnection(false)
	if err != nil {
		return nil, "", err
	}
	s := &Session{
		lifecycle: newLifecycle(), srv: o.srv, out: o, pc: pc, remote: remote, created: time.Now(), ufrag: info.ufrag,
		nacks: make(chan nackReq, nackQueue),
	}
	s.ctx, s.cancel = context.WithCancel(o.ctx)
	fail := func(err error) (*Session, string, error) {
		s.cancel()
		_ = pc.Close()
		return nil, "", err
	}
	pc.OnConnectionStateChange(s.onState)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	if video {
		mime := webrtc.MimeTypeH264
		if si.videoFourCC == flv.FourCCHEVC {
			mime = webrtc.MimeTypeH265
		}
		s.tracks[trackVideo] = &sendTrack{s: s, kind: webrtc.RTPCodecTypeVideo, mime: mime, profile: si.profileIdc,
			ring: o.video, rate: 90000, bound: make(chan struct{})}
	}
	if audio {
		s.tracks[trackAudio] = &sendTrack{s: s, kind: webrtc.RTPCodecTypeAudio, mime: webrtc.MimeTypeOpus,
			ring: o.audio, rate: 48000, bound: make(chan struct{})}
	}
	for _, t := range s.tracks {
		if t == nil {
			continue
		}
		sender, err := pc.AddTrack(t)
		if err != nil {
			return fail(fmt.Errorf("%w: %v", ErrNoCodec, err))
		}
		t.sender = sender
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	for _, t := range s.tracks {
		if t != nil && !answerSends(answer.SDP, t.kind) {
			return fail(fmt.Errorf("%w: %s could not be negotiated", ErrNoCodec, t.mime))
		}
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if err := o.srv.register(s); err != nil {
		return fail(err)
	}
	if err := o.addSession(s); err != nil {
		o.srv.unregister(s.id)
		return fail(err)
	}
	s.connTimer = time.AfterFunc(o.srv.cfg.ConnectTimeout, func() {
		if !s.connected.Load() {
			s.closeWith(errConnectTimeout)
		}
	})
	return s, pc.LocalDescription().SDP, nil
}

// answerSends reports whether an answer has a section of that kind that
// sends media.
func answerSends(sdp string, kind webrtc.RTPCodecType) bool {
	prefix := "m=" + kind.String() + " "
	in := false
	for _, line := range strings.Split(sdp, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "m=") {
			in = strings.HasPrefix(line, prefix) && !strings.HasPrefix(line, prefix+"0 ")
			continue
		}
		if in && (line == "a=sendonly" || line == "a=sendrecv") {
			return true
		}
	}
	return false
}

func (s *Session) onState(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		s.connected.Store(true)
		if s.started.CompareAndSwap(false, true) {
			go s.run()
		}
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		go s.closeWith(errPeerGone)
	}
}

// Close ends the session.
func (s *Session) Close() error {
	s.closeWith(nil)
	return nil
}

func (s *Session) closeWith(err error) {
	s.closeOnce.Do(func() {
		s.err = err
		s.cancel()
		if s.connTimer != nil {
			s.connTimer.Stop()
		}
		_ = s.pc.Close()
		s.out.removeSession(s)
		s.srv.unregister(s.id)
		close(s.done)
	})
}

// AddICECandidates adds the candidates of a trickle ICE SDP fragment (RFC
// 8840, the body of a WHEP PATCH). Errors: ErrBadFragment, ErrICERestart,
// ErrClosed.
func (s *Session) AddICECandidates(frag []byte) error {
	return addICECandidates(s.pc, s.ufrag, s.done, frag)
}

func addICECandidates(pc *webrtc.PeerConnection, ufrag string, done <-chan struct{}, frag []byte) error {
	select {
	case <-done:
		return ErrClosed
	default:
	}
	f, err := parseSDPFragment(frag)
	if err != nil {
		return err
	}
	if f.ufrag != "" && f.ufrag != ufrag {
		return ErrICERestart
	}
	for _, c := range f.candidates {
		if c.mDNS {
			continue // an ICE-lite server cannot resolve them, nor needs to
		}
		mid, index := c.mid, c.index
		init := webrtc.ICECandidateInit{Candidate: c.line, SDPMLineIndex: &index}
		if mid != "" {
			init.SDPMid = &mid
		}
		if err := pc.AddICECandidate(init); err != nil {
			return fmt.Errorf("%w: %v", ErrBadFragment, err)
		}
	}
	return nil
}

// Stats returns the session's numbers.
func (s *Session) Stats() Stats {
	st := Stats{ID: s.id, Kind: "whep", Stream: s.out.cfg.Name, Remote: s.remote, Created: s.created,
		Connected: s.connected.Load() && s.Err() == nil}
	s.st.fill(&st)
	return st
}

func (s *Session) etag() string { return `"` + s.id[:16] + `"` }

func (s *Session) endpoint() string {
	if p := s.ep.Load(); p != nil {
		return *p
	}
	return ""
}

// readRTCP handles, once the track is bound, what the viewer reports about one track: NACKs are
// queued for the writer, PLI/FIR forwarded to the source, receiver
// reports kept for stats.
func (s *Session) readRTCP(i int, t *sendTrack) {
	for {
		pkts, _, err := t.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.TransportLayerNack:
				for _, pair := range p.Nacks {
					s.st.nacks.Add(uint64(len(pair.PacketList())))
					select {
					case s.nacks <- nackReq{track: i, pair: pair}:
					default:
					}
				}
			case *rtcp.PictureLossIndication:
				s.st.plis.Add(1)
				s.out.requestKeyFrame()
			case *rtcp.FullIntraRequest:
				s.st.firs.Add(1)
				s.out.requestKeyFrame()
			case *rtcp.ReceiverReport:
				for _, r := range p.Reports {
					if r.SSRC == t.ssrc {
						s.st.fractionLost.Store(uint32(r.FractionLost))
					}
				}
			}
		}
	}
}

// run is the viewer's writer: it starts at the newest key frame and sends
// what the Output's rings hold, resends NACKed packets and sends sender
// reports, until the session ends.
func (s *Session) run() {
	// pion binds the tracks right after the DTLS handshake; a track it
	// could not bind is left out
	bindTimeout := time.NewTimer(bindWait)
	defer bindTimeout.Stop()
	for i, t := range s.tracks {
		if t == nil {
			continue
		}
		select {
		case <-t.bound:
		case <-bindTimeout.C:
			s.tracks[i] = nil
			bindTimeout.Reset(0)
		case <-s.ctx.Done():
			return
		}
	}
	for i, t := range s.tracks {
		if t != nil {
			go s.readRTCP(i, t)
		}
	}
	o := s.out
	v, a := s.tracks[trackVideo], s.tracks[trackAudio]
	if v != nil {
		for {
			ch := o.wake.wait()
			if k := o.lastKey.Load(); k > 0 {
				if p := o.video.at(k - 1); p != nil {
					v.start(k - 1)
					if a != nil {
						a.start(max(p.apos, floor(o.audio)))
					}
					break
				}
			}
			select {
			case <-ch:
			case <-s.ctx.Done():
				return
			}
		}
	} else if a != nil {
		a.start(o.audio.written())
	}
	tick := time.NewTicker(reportInterval)
	defer tick.Stop()
	for {
		ch := o.wake.wait()
		if v != nil {
			s.drainVideo(v)
		}
		if a != nil {
			s.drainAudio(a)
		}
		select {
		case <-ch:
		case <-s.ctx.Done():
			return
		case n := <-s.nacks:
			s.resend(n)
		case now := <-tick.C:
			s.report(now)
		}
	}
}

// floor returns the oldest position a ring still holds.
func floor(r *ring) uint64 {
	w := r.written()
	if w > r.size() {
		return w - r.size() + 1
	}
	return 0
}

func (t *sendTrack) start(pos uint64) {
	var b [2]byte
	_, _ = rand.Read(b[:])
	t.next = pos
	t.skipFrom = pos
	t.off = uint64(uint16(b[0])<<8|uint16(b[1])) - pos
}

// skipTo moves the cursor to pos without a gap in sequence numbers.
func (t *sendTrack) skipTo(pos uint64) {
	t.off -= pos - t.next
	t.next = pos
	t.skipFrom = pos
}

func (s *Session) drainVideo(t *sendTrack) {
	o := s.out
	lag := uint64(s.srv.cfg.ViewerLag)
	for {
		w := o.video.written()
		if t.next >= w {
			return
		}
		if w-t.next > lag {
			if k := o.lastKey.Load(); k > 0 && k-1 > t.next {
				t.skipTo(k - 1)
				t.waitKey = false
				s.st.skips.Add(1)
				continue
			}
		}
		p := o.video.at(t.next)
		if p == nil {
			// overwritten: resume at the newest key frame, or wait for one
			if k := o.lastKey.Load(); k > 0 && k-1 > t.next && o.video.at(k-1) != nil {
				t.skipTo(k - 1)
				t.waitKey = false
			} else {
				t.skipTo(w)
				t.waitKey = true
			}
			s.st.skips.Add(1)
			continue
		}
		if t.waitKey {
			if !p.key {
				t.skipTo(t.next + 1)
				continue
			}
			t.waitKey = false
		}
		s.send(t, p, uint16(t.next+t.off))
		t.next++
	}
}

func (s *Session) drainAudio(t *sendTrack) {
	o := s.out
	for {
		w := o.audio.written()
		if t.next >= w {
			return
		}
		p := o.audio.at(t.next)
		if p == nil {
			t.skipTo(w)
			continue
		}
		s.send(t, p, uint16(t.next+t.off))
		t.next++
	}
}

func (s *Session) send(t *sendTrack, p *rtpPacket, seq uint16) {
	h := &t.hdr
	h.Version = 2
	h.Marker = p.marker
	h.PayloadType = t.pt
	h.SequenceNumber = seq
	h.Timestamp = p.ts
	h.SSRC = t.ssrc
	if _, err := t.ws.WriteRTP(h, p.payload); err != nil {
		return
	}
	n := uint64(12 + len(p.payload))
	t.packets++
	t.octets += uint32(len(p.payload))
	s.st.packetsSent.Add(1)
	s.st.bytesSent.Add(n)
}

// resend sends again the packets of a NACK that the ring still holds.
func (s *Session) resend(n nackReq) {
	t := s.tracks[n.track]
	if t == nil || t.ws == nil {
		return
	}
	nextSeq := uint16(t.next + t.off)
	n.pair.Range(func(seq uint16) bool {
		back := uint64(nextSeq - seq)
		if back == 0 || back > nackWindow || back > t.next {
			return true
		}
		pos := t.next - back
		if pos < t.skipFrom {
			return true
		}
		if p := t.ring.at(pos); p != nil {
			s.send(t, p, seq)
			s.st.retransmits.Add(1)
		}
		return true
	})
}

// report sends a sender report for each track that has sent packets. The
// RTP time is read from the stream clock, so audio and video agree.
func (s *Session) report(now time.Time) {
	var pkts []rtcp.Packet
	for i, t := range s.tracks {
		if t == nil || t.packets == 0 {
			continue
		}
		pkts = append(pkts, &rtcp.SenderReport{
			SSRC:        t.ssrc,
			NTPTime:     ntpTime(now),
			RTPTime:     s.out.rtpNow(now, i == trackVideo),
			PacketCount: t.packets,
			OctetCount:  t.octets,
		})
	}
	if len(pkts) > 0 {
		_ = s.pc.WriteRTCP(pkts)
	}
}

// ntpTime converts t to the 64-bit NTP format of RTCP.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

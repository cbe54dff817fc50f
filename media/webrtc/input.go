package webrtc

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// InputHandler receives what a WHIP publisher sends, as FLV tag bodies on
// one timeline starting near 0 (DTS in ms): video as AVC (legacy FLV:
// sequence header from SPS/PPS before the first key frame and whenever
// they change, then NALU packets with 4-byte lengths and composition time
// 0) or HEVC (Enhanced RTMP), audio as InputOptions.Audio says. Calls are
// serialized: never two at once. They must not block for long.
type InputHandler interface {
	// WritePacket receives one tag body; typ is flv.TagAudio or
	// flv.TagVideo. body is not used by the Input afterwards.
	WritePacket(typ uint8, ts uint32, body []byte)
	// Close is called once, last, when the session has ended: err is nil
	// after Input.Close, else why it ended.
	Close(err error)
}

// OpusHandler may be implemented by an InputHandler that gets AAC
// (InputOptions.Audio AudioAAC) to also receive the publisher's original
// Opus, as Enhanced RTMP Opus bodies (a sequence start with an RFC 7845
// OpusHead, then coded frames) on the same timeline as WritePacket. An
// engine hands them to the stream's Output (Output.WriteOpus) so WebRTC
// viewers get the publisher's Opus instead of Opus transcoded back from
// AAC.
type OpusHandler interface {
	WriteOpus(ts uint32, body []byte)
}

// AudioMode is what an Input makes of the publisher's Opus audio.
type AudioMode int

const (
	// AudioAAC transcodes Opus to AAC once per input (ffmpeg) and sends AAC
	// (legacy FLV: AudioSpecificConfig sequence header, then raw frames)
	// through WritePacket, for RTMP, HTTP-FLV and HLS players that do not
	// play Opus. The original Opus goes to OpusHandler if implemented.
	AudioAAC AudioMode = iota
	// AudioOpus sends the Opus as Enhanced RTMP Opus bodies through
	// WritePacket, untranscoded.
	AudioOpus
)

// InputOptions configures an Input.
type InputOptions struct {
	Audio AudioMode
	// KeyFrameInterval: when the publisher sent no key frame for this long,
	// one is asked for (RTCP PLI), so that new viewers and HLS segments
	// find one (default 2 s; browsers send key frames only on request).
	KeyFrameInterval time.Duration
}

// Input is one WHIP publisher.
type Input struct {
	lifecycle
	srv     *Server
	pc      *webrtc.PeerConnection
	remote  netip.AddrPort
	created time.Time
	ufrag   string
	ep      atomic.Pointer[string]
	opts    InputOptions
	h       InputHandler
	opus    OpusHandler

	ctx       context.Context
	cancel    context.CancelFunc
	connected atomic.Bool
	connTimer *time.Timer
	wg        sync.WaitGroup

	videoSSRC atomic.Uint32

	mu       sync.Mutex // serializes handler calls and guards what follows
	handlerC bool       // handler closed
	closing  bool       // no new track goroutines
	t0       time.Time
	tracks   [2]*inTrack
	tc       *transcoder
	lastPLI  time.Time
	lastKey  time.Time
	waitKey  bool

	st counters
}

// NewInput answers a WHIP publisher's SDP offer. ctx bounds the
// negotiation only; the session then lives until Close, until the
// publisher goes away, or until the Server closes; h.Close is called then.
// remote is the publisher's address, for stats. Errors: ErrBadOffer,
// ErrNoCodec, ErrClosed (h is not called then).
func (s *Server) NewInput(ctx context.Context, offer string, remote netip.AddrPort, h InputHandler, opts InputOptions) (*Input, string, error) {
	info, err := parseOffer(offer)
	if err != nil {
		return nil, "", err
	}
	if opts.KeyFrameInterval <= 0 {
		opts.KeyFrameInterval = 2 * time.Second
	}
	h264 := info.has("video", "h264", "send")
	h265 := info.has("video", "h265", "send")
	opus := info.has("audio", "opus", "send")
	if !h264 && !h265 && !opus {
		return nil, "", fmt.Errorf("%w: the offer sends no H.264, H.265 or Opus", ErrNoCodec)
	}
	pc, err := s.newPeerConnection(true)
	if err != nil {
		return nil, "", err
	}
	in := &Input{lifecycle: newLifecycle(), srv: s, pc: pc, remote: remote, created: time.Now(), ufrag: info.ufrag, opts: opts, h: h,
		waitKey: true}
	in.opus, _ = h.(OpusHandler)
	in.ctx, in.cancel = context.WithCancel(s.ctx)
	fail := func(err error) (*Input, string, error) {
		in.cancel()
		_ = pc.Close()
		return nil, "", err
	}
	pc.OnConnectionStateChange(in.onState)
	pc.OnTrack(in.onTrack)
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	var videoTr *webrtc.RTPTransceiver
	if h264 || h265 {
		if videoTr, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv); err != nil {
			return fail(err)
		}
	}
	if opus {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv); err != nil {
			return fail(err)
		}
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	if videoTr != nil && h264 && h265 {
		// H.264 first: RTMP, FLV and HLS players all play it. The codecs
		// are the negotiated ones, with the offer's payload types.
		var prefs []webrtc.RTPCodecParameters
		for _, mime := range []string{webrtc.MimeTypeH264, webrtc.MimeTypeH265} {
			for _, c := range videoTr.Receiver().GetParameters().Codecs {
				if strings.EqualFold(c.MimeType, mime) {
					prefs = append(prefs, c)
				}
			}
		}
		if err := videoTr.SetCodecPreferences(prefs); err != nil {
			return fail(fmt.Errorf("%w: %v", ErrNoCodec, err))
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	if !strings.Contains(answer.SDP, "a=recvonly") && !strings.Contains(answer.SDP, "a=sendrecv") {
		return fail(fmt.Errorf("%w: nothing could be negotiated", ErrNoCodec))
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
	if err := s.register(in); err != nil {
		return fail(err)
	}
	in.connTimer = time.AfterFunc(s.cfg.ConnectTimeout, func() {
		if !in.connected.Load() {
			in.closeWith(errConnectTimeout)
		}
	})
	in.wg.Add(1)
	go in.keyFrames()
	return in, pc.LocalDescription().SDP, nil
}

func (in *Input) onState(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		in.connected.Store(true)
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		go in.closeWith(errPeerGone)
	}
}

// Close ends the session.
func (in *Input) Close() error {
	in.closeWith(nil)
	return nil
}

func (in *Input) closeWith(err error) {
	in.closeOnce.Do(func() {
		in.err = err
		in.cancel()
		in.mu.Lock()
		in.closing = true
		in.mu.Unlock()
		if in.connTimer != nil {
			in.connTimer.Stop()
		}
		_ = in.pc.Close()
		in.wg.Wait()
		in.mu.Lock()
		tc := in.tc
		in.tc = nil
		in.mu.Unlock()
		if tc != nil {
			tc.close()
			<-tc.stopped
		}
		in.mu.Lock()
		in.handlerC = true
		in.mu.Unlock()
		in.h.Close(err)
		in.srv.unregister(in.id)
		close(in.done)
	})
}

// AddICECandidates adds the candidates of a trickle ICE SDP fragment (RFC
// 8840, the body of a WHIP PATCH). Errors: ErrBadFragment, ErrICERestart,
// ErrClosed.
func (in *Input) AddICECandidates(frag []byte) error {
	return addICECandidates(in.pc, in.ufrag, in.done, frag)
}

// RequestKeyFrame asks the publisher for a key frame (RTCP PLI), at most
// twice a second.
func (in *Input) RequestKeyFrame() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.requestKeyFrameLocked(500 * time.Millisecond)
}

func (in *Input) requestKeyFrameLocked(minGap time.Duration) {
	ssrc := in.videoSSRC.Load()
	if ssrc == 0 || time.Since(in.lastPLI) < minGap {
		return
	}
	in.lastPLI = time.Now()
	if err := in.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err == nil {
		in.st.plis.Add(1)
	}
}

// keyFrames asks for key frames while none came for KeyFrameInterval, and
// every second while the video waits for one after a loss.
func (in *Input) keyFrames() {
	defer in.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-in.ctx.Done():
			return
		case <-tick.C:
		}
		in.mu.Lock()
		switch {
		case in.waitKey:
			in.requestKeyFrameLocked(time.Second)
		case time.Since(in.lastKey) >= in.opts.KeyFrameInterval:
			in.requestKeyFrameLocked(in.opts.KeyFrameInterval)
		}
		in.mu.Unlock()
	}
}

// Stats returns the session's numbers.
func (in *Input) Stats() Stats {
	st := Stats{ID: in.id, Kind: "whip", Remote: in.remote, Created: in.created,
		Connected: in.connected.Load() && in.Err() == nil}
	in.st.fill(&st)
	return st
}

func (in *Input) etag() string { return `"` + in.id[:16] + `"` }

func (in *Input) endpoint() string {
	if p := in.ep.Load(); p != nil {
		return *p
	}
	return ""
}

// write hands a tag to the handler; in.mu is held.
func (in *Input) writeLocked(typ uint8, ts uint32, body []byte) {
	if !in.handlerC {
		in.h.WritePacket(typ, ts, body)
	}
}

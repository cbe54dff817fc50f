package webrtc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

const (
	// readyTimeout bounds how long NewSession waits for a stream that has
	// not sent its codec configuration and first key frame yet.
	readyTimeout = 5 * time.Second
	// audioOnlyWait is how long a stream with audio but no video
	// configuration is given before it is played as audio only.
	audioOnlyWait = time.Second
	// externalOpusHold: after WriteOpus, the stream's own audio (AAC or
	// Opus bodies of WritePacket) is ignored for this long.
	externalOpusHold = 2 * time.Second
	// keyRequestInterval rate-limits OnKeyFrameRequest.
	keyRequestInterval = time.Second
	// transcodeRetry: after ffmpeg failed to start, it is not tried again
	// for this long.
	transcodeRetry = 10 * time.Second
	// reanchorAfter: when a packet's timestamp is this far from where the
	// stream clock puts it, the clock is reset (a pause, a jump).
	reanchorAfter = 5 * time.Second
)

// errCodecChanged ends the sessions of a stream whose video codec changed.
var errCodecChanged = errors.New("webrtc: the stream's video codec changed")

// OutputConfig configures an Output.
type OutputConfig struct {
	// Name is the stream's name, for logs and stats.
	Name string
	// OnKeyFrameRequest, if set, is called when a viewer asks for a key
	// frame (RTCP PLI or FIR), at most once a second. An engine whose
	// source can make one on demand (a WHIP Input: Input.RequestKeyFrame)
	// wires it here. It must not block.
	OnKeyFrameRequest func()
}

// streamInfo is what NewSession needs to know of the stream.
type streamInfo struct {
	videoFourCC uint32 // 0: no (usable) video yet
	profileIdc  uint8
	audio       uint32 // flv.FourCCOpus, flv.FourCCMP4A or 0
	channels    int
	bframes     bool
	firstMedia  time.Time
}

// anchor ties the stream's media time to the wall clock, for the RTCP
// sender reports (audio/video sync in players).
type anchor struct {
	wall time.Time
	ms   int64
}

// Output is one stream played over WHEP. The engine creates it, feeds it
// with WritePacket from one goroutine and closes it when the stream ends.
// Media is packetized once into per-track rings; each Session sends from
// them. WritePacket never waits for viewers.
type Output struct {
	srv *Server
	cfg OutputConfig
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	video, audio *ring
	lastKey      atomic.Uint64 // 1 + position of the newest key frame's first packet
	wake         *notifier
	clock        atomic.Pointer[anchor]
	vBase, aBase uint32 // random RTP timestamp origins

	mu         sync.Mutex
	info       streamInfo
	sessions   map[string]*Session
	closed     bool
	aacHeader  []byte // FLV body of the AAC sequence header
	tcIdle     *time.Timer
	lastKeyReq time.Time
	tcFailed   time.Time // last transcoder start failure
	warnedB    bool
	warnedV    bool

	tc      atomic.Pointer[transcoder] // AAC→Opus, while there are viewers
	audioMu sync.Mutex                 // serializes audio ring pushes
	extOpus atomic.Int64               // unix nanoseconds of the last WriteOpus

	// used by the WritePacket goroutine only
	vp videoPacketizer
}

// NewOutput creates the WHEP output of one stream.
func (s *Server) NewOutput(cfg OutputConfig) *Output {
	var b [8]byte
	_, _ = rand.Read(b[:])
	o := &Output{
		srv:      s,
		cfg:      cfg,
		log:      s.log.With("stream", cfg.Name),
		video:    newRing(s.cfg.VideoRing),
		audio:    newRing(s.cfg.AudioRing),
		wake:     newNotifier(),
		vBase:    binary.BigEndian.Uint32(b[:4]),
		aBase:    binary.BigEndian.Uint32(b[4:]),
		sessions: map[string]*Session{},
	}
	o.ctx, o.cancel = context.WithCancel(s.ctx)
	return o
}

// Name returns the stream's name.
func (o *Output) Name() string { return o.cfg.Name }

// WritePacket feeds one FLV tag body: typ is flv.TagAudio, flv.TagVideo or
// flv.TagScript, ts the DTS in milliseconds. H.264 and H.265 video (legacy
// or Enhanced RTMP) and Opus (Enhanced RTMP) are packetized as they are;
// AAC is transcoded to Opus while the output has viewers. Other codecs are
// left out. body is copied where kept. WritePacket must be called from one
// goroutine at a time; it never blocks on viewers.
func (o *Output) WritePacket(typ uint8, ts uint32, body []byte) {
	switch typ {
	case flv.TagVideo:
		o.tick(ts)
		o.writeVideo(ts, body)
	case flv.TagAudio:
		o.tick(ts)
		o.writeAudio(ts, body)
	}
}

// tick keeps the stream clock: media time ts happens now.
func (o *Output) tick(ts uint32) {
	now := time.Now()
	if a := o.clock.Load(); a != nil {
		expected := a.wall.Add(time.Duration(int64(ts)-a.ms) * time.Millisecond)
		if d := now.Sub(expected); d < reanchorAfter && d > -reanchorAfter {
			return
		}
	}
	o.clock.Store(&anchor{wall: now, ms: int64(ts)})
}

// rtpNow returns the RTP timestamp of the present moment on a track's
// clock, from the stream clock.
func (o *Output) rtpNow(now time.Time, video bool) uint32 {
	a := o.clock.Load()
	if a == nil {
		return 0
	}
	ms := float64(a.ms) + float64(now.Sub(a.wall))/float64(time.Millisecond)
	if video {
		return o.vBase + uint32(int64(ms*90))
	}
	return o.aBase + uint32(int64(ms*48))
}

func (o *Output) writeVideo(ts uint32, body []byte) {
	v, err := flv.ParseVideoTag(body)
	if err != nil {
		return
	}
	if v.IsSequenceHeader() {
		o.videoConfig(v)
		return
	}
	if v.PacketType != flv.VideoCodedFrames && v.PacketType != flv.VideoCodedFramesX {
		return
	}
	if v.FourCC != o.vp.params.FourCC {
		return
	}
	data := bytes.Clone(v.Data)
	pts := int64(ts) + int64(v.CompositionTime)
	hadB := o.vp.bframes
	pkts, key, err := o.vp.packetize(data, pts)
	if o.vp.bframes && !hadB {
		o.setBFrames()
	}
	if err != nil || len(pkts) == 0 {
		return
	}
	rts := o.vBase + uint32(pts*90)
	apos := o.audio.written()
	first := o.video.written()
	for i, p := range pkts {
		o.video.push(&rtpPacket{ts: rts, marker: p.Marker, key: key && i == 0, apos: apos, payload: p.Payload})
	}
	if key {
		o.lastKey.Store(first + 1)
	}
	o.wake.broadcast()
}

func (o *Output) videoConfig(v flv.VideoTag) {
	p, err := flv.ParseVideoParams(v)
	if err == nil {
		_, err = o.vp.configure(p)
	}
	o.mu.Lock()
	var stale []*Session
	if err == nil && o.info.videoFourCC != 0 && o.info.videoFourCC != p.FourCC {
		// a new publisher with another codec: the viewers negotiated the
		// old one and must come again
		for _, s := range o.sessions {
			stale = append(stale, s)
		}
		o.lastKey.Store(0) // new viewers wait for a key frame of the new codec
	}
	defer func() {
		o.mu.Unlock()
		for _, s := range stale {
			go s.closeWith(errCodecChanged)
		}
	}()
	if o.info.firstMedia.IsZero() {
		o.info.firstMedia = time.Now()
	}
	if err != nil {
		if !o.warnedV {
			o.warnedV = true
			o.log.Warn("webrtc: video left out", "err", err)
		}
		return
	}
	o.info.videoFourCC = p.FourCC
	o.info.profileIdc = o.vp.profileIdc()
	o.info.bframes = o.vp.bframes
	if o.info.bframes {
		o.warnBFrames()
	}
}

func (o *Output) setBFrames() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.info.bframes = true
	o.warnBFrames()
}

func (o *Output) warnBFrames() {
	if !o.warnedB {
		o.warnedB = true
		o.log.Warn("webrtc: stream has B-frames; WHEP viewers are refused until the publisher turns them off")
	}
}

// HasBFrames reports whether the stream's video has B-frames (announced by
// its H.264 SPS, seen as H.264 B slices, or as frames presented before
// frames decoded earlier). NewSession refuses such a stream with
// ErrBFrames. A new sequence header starts the detection afresh.
func (o *Output) HasBFrames() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.info.bframes
}

func (o *Output) writeAudio(ts uint32, body []byte) {
	a, err := flv.ParseAudioTag(body)
	if err != nil {
		return
	}
	external := time.Since(time.Unix(0, o.extOpus.Load())) < externalOpusHold
	switch a.FourCC {
	case flv.FourCCOpus:
		if a.IsSequenceHeader() {
			o.setAudio(flv.FourCCOpus, opusChannels(a.Data))
			return
		}
		if a.PacketType != flv.AudioCodedFrames || len(a.Data) == 0 || external {
			return
		}
		o.setAudio(flv.FourCCOpus, 0)
		o.pushOpus(int64(ts)*48, bytes.Clone(a.Data))
	case flv.FourCCMP4A:
		if a.IsSequenceHeader() {
			o.aacConfig(body)
			return
		}
		if a.PacketType != flv.AudioCodedFrames || len(a.Data) == 0 || external {
			return
		}
		if tc := o.tc.Load(); tc != nil {
			tc.push(tcFrame{ts: ts, body: bytes.Clone(body)})
		}
	}
}

// opusChannels reads the channel count of an OpusHead (the same byte in
// the little-endian form of RFC 7845 and the big-endian one some muxers
// write).
func opusChannels(head []byte) int {
	if len(head) >= 10 && string(head[:8]) == "OpusHead" && head[9] > 0 {
		return int(head[9])
	}
	return 2
}

func (o *Output) setAudio(fourCC uint32, channels int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.info.audio == fourCC && channels == 0 {
		return
	}
	if o.info.firstMedia.IsZero() {
		o.info.firstMedia = time.Now()
	}
	if fourCC == flv.FourCCOpus && o.info.audio == flv.FourCCMP4A {
		o.stopTranscoderLocked()
	}
	o.info.audio = fourCC
	if channels > 0 {
		o.info.channels = channels
	}
}

func (o *Output) aacConfig(body []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.info.firstMedia.IsZero() {
		o.info.firstMedia = time.Now()
	}
	if bytes.Equal(body, o.aacHeader) {
		return
	}
	o.aacHeader = bytes.Clone(body)
	if o.info.audio != flv.FourCCOpus {
		o.info.audio = flv.FourCCMP4A
	}
	if o.tc.Load() != nil { // new configuration: restart
		o.stopTranscoderLocked()
		o.startTranscoderLocked()
	}
}

// pushOpus adds one Opus packet at 48 kHz sample position pos of the
// stream timeline.
func (o *Output) pushOpus(pos int64, frame []byte) {
	o.audioMu.Lock()
	o.audio.push(&rtpPacket{ts: o.aBase + uint32(pos), payload: frame})
	o.audioMu.Unlock()
	o.wake.broadcast()
}

// WriteOpus feeds Opus audio from elsewhere than WritePacket, typically the
// original audio of a WHIP publisher whose stream carries AAC (see
// OpusHandler). body is an Enhanced RTMP Opus body (sequence start with
// OpusHead, or coded frames); ts is in ms on the same timeline as
// WritePacket's. While it is fed, the stream's own audio is ignored and no
// transcoder runs. It may be called from another goroutine than
// WritePacket.
func (o *Output) WriteOpus(ts uint32, body []byte) {
	a, err := flv.ParseAudioTag(body)
	if err != nil || a.FourCC != flv.FourCCOpus {
		return
	}
	if a.IsSequenceHeader() {
		o.setAudio(flv.FourCCOpus, opusChannels(a.Data))
		return
	}
	if a.PacketType != flv.AudioCodedFrames || len(a.Data) == 0 {
		return
	}
	if o.clock.Load() == nil { // an audio-only stream fed here alone
		o.tick(ts)
	}
	o.extOpus.Store(time.Now().UnixNano())
	o.setAudio(flv.FourCCOpus, 0)
	o.pushOpus(int64(ts)*48, bytes.Clone(a.Data))
}

// startTranscoderLocked starts the AAC→Opus transcoder if the stream has
// AAC, viewers, and none runs. o.mu is held.
func (o *Output) startTranscoderLocked() {
	if o.closed || o.info.audio != flv.FourCCMP4A || o.aacHeader == nil {
		return
	}
	if tc := o.tc.Load(); tc != nil && !tc.done() {
		return
	}
	if time.Since(o.tcFailed) < transcodeRetry {
		return
	}
	tc, err := startAACToOpus(o.ctx, o.srv.cfg.FFmpeg, o.srv.cfg.OpusBitrate, o.aacHeader, o.log, o.pushOpus)
	if err != nil {
		o.tcFailed = time.Now()
		o.log.Error("webrtc: AAC to Opus transcoder; WebRTC viewers get no sound", "err", err)
		return
	}
	o.log.Debug("webrtc: AAC to Opus transcoder started")
	o.tc.Store(tc)
}

func (o *Output) stopTranscoderLocked() {
	if tc := o.tc.Swap(nil); tc != nil {
		tc.close()
		o.log.Debug("webrtc: AAC to Opus transcoder stopped")
	}
}

// Transcoding reports whether the AAC→Opus transcoder is running.
func (o *Output) Transcoding() bool {
	tc := o.tc.Load()
	return tc != nil && !tc.done()
}

// waitReady waits until the stream can be negotiated: video configured and
// a key frame in the ring, or audio alone for a while.
func (o *Output) waitReady(ctx context.Context) (streamInfo, error) {
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	for {
		ch := o.wake.wait()
		o.mu.Lock()
		info, closed := o.info, o.closed
		o.mu.Unlock()
		if closed {
			return info, ErrClosed
		}
		if info.videoFourCC != 0 && o.lastKey.Load() > 0 {
			return info, nil
		}
		if info.videoFourCC == 0 && info.audio != 0 && time.Since(info.firstMedia) > audioOnlyWait {
			return info, nil
		}
		poll := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ch:
		case <-poll.C:
		case <-ctx.Done():
			poll.Stop()
			return info, ctx.Err()
		case <-o.ctx.Done():
			poll.Stop()
			return info, ErrClosed
		case <-timer.C:
			poll.Stop()
			if info.audio != 0 && info.videoFourCC == 0 {
				return info, nil
			}
			if info.videoFourCC != 0 && info.audio != 0 {
				return info, nil // audio now, video from its next key frame
			}
			return info, ErrNotReady
		}
		poll.Stop()
	}
}

// NewSession answers a WHEP viewer's SDP offer. ctx bounds the
// negotiation only; the session then lives until Close, until its peer
// goes away, or until the Output or Server closes. remote is the viewer's
// address, for stats. Errors: ErrBadOffer, ErrNoCodec, ErrBFrames,
// ErrNotReady, ErrClosed.
func (o *Output) NewSession(ctx context.Context, offer string, remote netip.AddrPort) (*Session, string, error) {
	info, err := parseOffer(offer)
	if err != nil {
		return nil, "", err
	}
	si, err := o.waitReady(ctx)
	if err != nil {
		return nil, "", err
	}
	if si.bframes {
		return nil, "", ErrBFrames
	}
	var video, audio bool
	switch si.videoFourCC {
	case flv.FourCCAVC:
		video = info.has("video", "h264", "recv")
		if !video && info.hasKind("video") {
			return nil, "", fmt.Errorf("%w: the stream is H.264 and the offer has no H.264 in packetization mode 1", ErrNoCodec)
		}
	case flv.FourCCHEVC:
		video = info.has("video", "h265", "recv")
		if !video && info.hasKind("video") {
			return nil, "", fmt.Errorf("%w: the stream is H.265 and this player does not offer H.265", ErrNoCodec)
		}
	}
	// Audio whenever the player takes Opus: a stream's audio may start a
	// little after its video, and a silent track costs nothing.
	audio = info.has("audio", "opus", "recv")
	if !video && !audio {
		return nil, "", fmt.Errorf("%w: the offer has no H.264, H.265 or Opus this stream can be played with", ErrNoCodec)
	}
	s, answer, err := o.newSession(ctx, info, si, offer, remote, video, audio)
	if err != nil {
		return nil, "", err
	}
	return s, answer, nil
}

// addSession records a new session; it starts the transcoder the stream
// needs.
func (o *Output) addSession(s *Session) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	o.sessions[s.id] = s
	if o.tcIdle != nil {
		o.tcIdle.Stop()
		o.tcIdle = nil
	}
	if s.tracks[trackAudio] != nil && time.Since(time.Unix(0, o.extOpus.Load())) > externalOpusHold {
		o.startTranscoderLocked()
	}
	return nil
}

// removeSession forgets a session; with no viewer left the transcoder stops
// after TranscodeIdle.
func (o *Output) removeSession(s *Session) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.sessions[s.id]; !ok {
		return
	}
	delete(o.sessions, s.id)
	if len(o.sessions) == 0 && o.tc.Load() != nil && o.tcIdle == nil {
		o.tcIdle = time.AfterFunc(o.srv.cfg.TranscodeIdle, func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.tcIdle = nil
			if len(o.sessions) == 0 {
				o.stopTranscoderLocked()
			}
		})
	}
}

// requestKeyFrame forwards a viewer's PLI/FIR to OnKeyFrameRequest.
func (o *Output) requestKeyFrame() {
	if o.cfg.OnKeyFrameRequest == nil {
		return
	}
	o.mu.Lock()
	if time.Since(o.lastKeyReq) < keyRequestInterval {
		o.mu.Unlock()
		return
	}
	o.lastKeyReq = time.Now()
	o.mu.Unlock()
	o.cfg.OnKeyFrameRequest()
}

// Viewers returns the number of sessions of the output, connected or
// connecting.
func (o *Output) Viewers() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.sessions)
}

// Stats returns the stats of every session of the output.
func (o *Output) Stats() []Stats {
	o.mu.Lock()
	ss := make([]*Session, 0, len(o.sessions))
	for _, s := range o.sessions {
		ss = append(ss, s)
	}
	o.mu.Unlock()
	out := make([]Stats, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.Stats())
	}
	return out
}

// Close ends every session of the output and stops its transcoder. The
// output takes no new session afterwards.
func (o *Output) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	ss := make([]*Session, 0, len(o.sessions))
	for _, s := range o.sessions {
		ss = append(ss, s)
	}
	if o.tcIdle != nil {
		o.tcIdle.Stop()
		o.tcIdle = nil
	}
	o.stopTranscoderLocked()
	o.mu.Unlock()
	o.cancel()
	var errs []error
	for _, s := range ss {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

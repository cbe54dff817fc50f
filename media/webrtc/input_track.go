package webrtc

import (
	"bytes"
	"errors"
	"math"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/mofang-live/mofang/media/flv"
)

// maxSRCorrection bounds the audio/video offset taken from sender reports;
// more is taken as a broken clock and ignored.
const maxSRCorrection = time.Second

// inTrack is one received track of an Input: reordering, depacketizing,
// and the mapping of its RTP clock onto the input's ms timeline. It is
// used with Input.mu held.
type inTrack struct {
	in    *Input
	kind  int
	hevc  bool
	clock float64

	reorder reorderBuffer

	started bool
	first   int64   // first RTP timestamp, unwrapped
	ext     int64   // latest RTP timestamp, unwrapped
	offset  float64 // ms of the first packet on the input timeline
	lastOut int64
	hasSR   bool
	srWall  time.Time
	srRTP   int64

	// video
	d264          *rtph264.Decoder
	d265          *rtph265.Decoder
	pending       bool
	pendingTs     uint32
	vps, sps, pps []byte
	dirty         bool // parameter sets changed since the last sequence header
	configSent    bool

	// audio
	headSent bool
}

// onTrack starts reading a track the publisher sends.
func (in *Input) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	t := &inTrack{in: in, clock: float64(tr.Codec().ClockRate)}
	switch {
	case equalFold(tr.Codec().MimeType, webrtc.MimeTypeH264):
		t.kind = trackVideo
	case equalFold(tr.Codec().MimeType, webrtc.MimeTypeH265):
		t.kind, t.hevc = trackVideo, true
	case equalFold(tr.Codec().MimeType, webrtc.MimeTypeOpus):
		t.kind, t.clock = trackAudio, 48000
	default:
		in.srv.log.Debug("webrtc: WHIP track left out", "codec", tr.Codec().MimeType)
		return
	}
	if t.clock <= 0 {
		t.clock = 90000
	}
	if t.kind == trackVideo {
		t.resetDecoder()
	}
	in.mu.Lock()
	if in.closing || in.tracks[t.kind] != nil {
		in.mu.Unlock()
		return
	}
	in.tracks[t.kind] = t
	if t.kind == trackVideo {
		in.videoSSRC.Store(uint32(tr.SSRC()))
	}
	in.wg.Add(2)
	in.mu.Unlock()
	go func() {
		defer in.wg.Done()
		for {
			pkts, _, err := recv.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok {
					in.onSenderReport(t, sr)
				}
			}
		}
	}()
	go func() {
		defer in.wg.Done()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			in.st.packetsReceived.Add(1)
			in.st.bytesReceived.Add(uint64(12 + len(pkt.Payload)))
			now := time.Now()
			in.mu.Lock()
			t.reorder.push(pkt, now, func(p *rtp.Packet, lost bool) { t.handle(p, lost, now) })
			in.mu.Unlock()
		}
	}()
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

func (t *inTrack) resetDecoder() {
	t.pending = false
	if t.hevc {
		t.d265 = &rtph265.Decoder{}
		_ = t.d265.Init()
	} else {
		t.d264 = &rtph264.Decoder{PacketizationMode: 1}
		_ = t.d264.Init()
	}
}

// start puts the track's first packet on the input timeline.
func (t *inTrack) start(rtpTs uint32, now time.Time) {
	in := t.in
	t.started = true
	t.first = int64(rtpTs)
	t.ext = t.first
	if in.t0.IsZero() {
		in.t0 = now
	}
	t.offset = float64(now.Sub(in.t0)) / float64(time.Millisecond)
}

// unwrap returns the RTP timestamp extended to 64 bits near the latest.
func (t *inTrack) unwrap(rtpTs uint32) int64 {
	return t.ext + int64(int32(rtpTs-uint32(t.ext)))
}

// msAt returns the timeline position of an RTP timestamp, in ms.
func (t *inTrack) msAt(rtpTs uint32) float64 {
	t.ext = t.unwrap(rtpTs)
	return t.offset + float64(t.ext-t.first)*1000/t.clock
}

// dts returns the timeline position of an RTP timestamp as a monotonic
// FLV timestamp.
func (t *inTrack) dts(rtpTs uint32) uint32 {
	out := int64(math.Round(t.msAt(rtpTs)))
	if out < t.lastOut {
		out = t.lastOut
	}
	if out < 0 {
		out = 0
	}
	t.lastOut = out
	return uint32(out)
}

func (in *Input) onSenderReport(t *inTrack, sr *rtcp.SenderReport) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !t.started || t.hasSR {
		return
	}
	t.hasSR = true
	t.srWall = ntpToTime(sr.NTPTime)
	t.srRTP = t.unwrap(sr.RTPTime)
	v, a := in.tracks[trackVideo], in.tracks[trackAudio]
	if v == nil || a == nil || !v.hasSR || !a.hasSR {
		return
	}
	// wall clock (of the publisher) of each track's first packet
	wall := func(t *inTrack) time.Time {
		return t.srWall.Add(-time.Duration(float64(t.srRTP-t.first) / t.clock * float64(time.Second)))
	}
	want := float64(wall(a).Sub(wall(v))) / float64(time.Millisecond)
	have := a.offset - v.offset
	c := want - have
	if math.Abs(c) < float64(maxSRCorrection/time.Millisecond) {
		a.offset += c
		in.srv.log.Debug("webrtc: WHIP audio/video aligned by sender reports", "correction_ms", c)
	}
}

// ntpToTime converts a 64-bit NTP timestamp.
func ntpToTime(ntp uint64) time.Time {
	const ntpEpochOffset = 2208988800
	secs := int64(ntp>>32) - ntpEpochOffset
	nanos := int64((ntp & 0xffffffff) * 1e9 >> 32)
	return time.Unix(secs, nanos)
}

// handle takes the next packet in sequence order.
func (t *inTrack) handle(p *rtp.Packet, lost bool, now time.Time) {
	if !t.started {
		t.start(p.Timestamp, now)
	}
	if t.kind == trackAudio {
		t.handleOpus(p)
		return
	}
	in := t.in
	if lost {
		t.resetDecoder()
		in.waitKey = true
		in.requestKeyFrameLocked(500 * time.Millisecond)
	}
	var au [][]byte
	var err error
	if t.hevc {
		au, err = t.d265.Decode(p)
	} else {
		au, err = t.d264.Decode(p)
	}
	if err != nil {
		if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrMorePacketsNeeded) {
			t.pending, t.pendingTs = true, p.Timestamp
		} else {
			t.pending = false
		}
		return
	}
	ts := p.Timestamp
	if t.pending && t.pendingTs != p.Timestamp {
		// the decoder returned the previous frame (its last packet had no
		// marker) and holds this packet
		ts = t.pendingTs
		t.pending, t.pendingTs = true, p.Timestamp
	} else {
		t.pending = false
	}
	t.frame(au, ts)
}

// frame turns one access unit into FLV video bodies.
func (t *inTrack) frame(au [][]byte, rtpTs uint32) {
	in := t.in
	key := false
	var nalus [][]byte
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if t.hevc {
			switch typ := h265.NALUType((n[0] >> 1) & 0x3f); {
			case typ == h265.NALUType_VPS_NUT:
				t.setParam(&t.vps, n)
				continue
			case typ == h265.NALUType_SPS_NUT:
				t.setParam(&t.sps, n)
				continue
			case typ == h265.NALUType_PPS_NUT:
				t.setParam(&t.pps, n)
				continue
			case typ == h265.NALUType_AUD_NUT:
				continue
			case typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT:
				key = true
			}
		} else {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				t.setParam(&t.sps, n)
				continue
			case h264.NALUTypePPS:
				t.setParam(&t.pps, n)
				continue
			case h264.NALUTypeAccessUnitDelimiter:
				continue
			case h264.NALUTypeIDR:
				key = true
			}
		}
		nalus = append(nalus, n)
	}
	if len(nalus) == 0 {
		return
	}
	if in.waitKey && !key {
		return
	}
	ts := t.dts(rtpTs)
	if t.dirty && t.sps != nil && t.pps != nil && (!t.hevc || t.vps != nil) {
		var body []byte
		var err error
		if t.hevc {
			body, err = flv.AppendHEVCConfig([]byte{0x80 | flv.FrameKey<<4 | flv.VideoSequenceStart, 'h', 'v', 'c', '1'}, t.vps, t.sps, t.pps)
		} else {
			body, err = flv.AppendAVCConfig([]byte{flv.FrameKey<<4 | flv.VideoCodecH264, 0, 0, 0, 0}, t.sps, t.pps)
		}
		if err == nil {
			in.writeLocked(flv.TagVideo, ts, body)
			t.configSent, t.dirty = true, false
		}
	}
	if !t.configSent {
		in.waitKey = true
		return
	}
	if key {
		in.waitKey = false
		in.lastKey = time.Now()
	}
	ft := flv.FrameInter
	if key {
		ft = flv.FrameKey
	}
	size := 5
	for _, n := range nalus {
		size += 4 + len(n)
	}
	body := make([]byte, 0, size)
	if t.hevc {
		body = append(body, 0x80|ft<<4|flv.VideoCodedFramesX, 'h', 'v', 'c', '1')
	} else {
		body = append(body, ft<<4|flv.VideoCodecH264, 1, 0, 0, 0)
	}
	for _, n := range nalus {
		l := len(n)
		body = append(body, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
		body = append(body, n...)
	}
	in.writeLocked(flv.TagVideo, ts, body)
}

func (t *inTrack) setParam(dst *[]byte, n []byte) {
	if !bytes.Equal(*dst, n) {
		*dst = bytes.Clone(n)
		t.dirty = true
	}
}

// handleOpus turns one Opus packet into FLV audio bodies.
func (t *inTrack) handleOpus(p *rtp.Packet) {
	in := t.in
	if len(p.Payload) == 0 {
		return
	}
	ms := t.msAt(p.Timestamp)
	ts := t.dts(p.Timestamp)
	if !t.headSent {
		t.headSent = true
		head := append([]byte{flv.SoundExHdr<<4 | flv.AudioSequenceStart, 'O', 'p', 'u', 's'},
			opusHead{channels: 2, inputSampleRate: 48000}.marshal()...)
		switch {
		case in.opts.Audio == AudioOpus:
			in.writeLocked(flv.TagAudio, ts, head)
		default:
			if in.opus != nil && !in.handlerC {
				in.opus.WriteOpus(ts, head)
			}
			tc, err := startOpusToAAC(in.ctx, in.srv.cfg.FFmpeg, in.srv.cfg.AACBitrate, 2, in.srv.log, func(ts uint32, body []byte) {
				in.mu.Lock()
				defer in.mu.Unlock()
				in.writeLocked(flv.TagAudio, ts, body)
			})
			if err != nil {
				in.srv.log.Error("webrtc: Opus to AAC transcoder", "err", err)
			} else {
				in.tc = tc
			}
		}
	}
	body := make([]byte, 5+len(p.Payload))
	body[0] = flv.SoundExHdr<<4 | flv.AudioCodedFrames
	copy(body[1:5], "Opus")
	copy(body[5:], p.Payload)
	if in.opts.Audio == AudioOpus {
		in.writeLocked(flv.TagAudio, ts, body)
		return
	}
	if in.opus != nil && !in.handlerC {
		in.opus.WriteOpus(ts, body)
	}
	if in.tc != nil {
		in.tc.push(tcFrame{pos: int64(math.Round(ms * 48)), body: body[5:]})
	}
}

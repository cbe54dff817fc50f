package media

import (
	"bytes"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/mofang-live/mofang/media/flv"
)

// headerSet holds the packets a reader needs before any frame: metadata and
// the audio and video sequence headers. It is replaced, never modified.
type headerSet struct {
	meta, video, audio *packet
}

func (h *headerSet) packets() []*packet {
	out := make([]*packet, 0, 3)
	for _, p := range []*packet{h.meta, h.video, h.audio} {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// mediaInfo describes the codecs of a stream, for stats.
type mediaInfo struct {
	videoCodec, audioCodec string
	width, height          int
	fps                    float64
	audioRate, channels    int
}

// stream is one path /live/<name>: at most one publisher, any number of
// readers. Packets go into a ring that is both the GOP cache and the queue of
// every reader: the publisher writes a slot and moves writeSeq on, never
// waiting; each reader keeps its own cursor into the ring.
type stream struct {
	name string
	h    *hub
	log  *slog.Logger

	ring     []atomic.Pointer[packet]
	mask     uint64
	writeSeq atomic.Uint64 // seq of the next packet
	lastKey  atomic.Uint64 // seq+1 of the newest key packet, 0 if none
	// notify is closed and replaced after every packet; tick, when write
	// coalescing is on, at most once per Config.WriteCoalesce. Readers wait
	// on tick, so that each of their writes carries many packets.
	notify  atomic.Pointer[chan struct{}]
	tick    atomic.Pointer[chan struct{}]
	headers atomic.Pointer[headerSet]
	done    chan struct{} // closed when the stream ends

	bytesIn      atomic.Uint64
	bytesOut     atomic.Uint64 // sent to RTMP and HTTP-FLV readers
	lastPacketAt atomic.Int64  // unix nanoseconds
	fellBehind   atomic.Uint64
	dropped      atomic.Uint64

	// publisher-side state, touched by the current publisher's goroutine
	// and by stats.
	pubMu    sync.Mutex
	tsOffset int64
	rebase   bool
	outTS    uint32 // newest output timestamp
	anyOut   bool
	hasVideo bool
	info     mediaInfo
	meter    meter
	// fresh is set when a publisher takes the stream back, until its
	// first frame; sent records the headers it sent meanwhile.
	fresh bool
	sent  headerKinds

	mu         sync.Mutex
	publisher  *client
	lastPub    publisherRef
	pubSince   time.Time // when the current (or last) publisher started
	graceTimer *time.Timer
	ended      bool
	startedAt  time.Time
	readers    map[*client]struct{}

	sinks      atomic.Pointer[sinks] // HLS and recording, if any
	hlsClients sync.Map              // *hls.Session → *client
}

// headerKinds is a set of header kinds.
type headerKinds uint8

const (
	headerMeta headerKinds = 1 << iota
	headerVideo
	headerAudio
)

// takeover prepares the stream for a publisher taking it back: its clock
// is rebased, and the headers and codec information of the previous
// publisher are replaced by what the new one sends before its first
// frame (see dropStaleHeaders).
func (s *stream) takeover() {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.rebase = true
	s.fresh = true
	s.sent = 0
	s.hasVideo = false
	s.info = mediaInfo{}
}

// dropStaleHeaders, at the first frame of a publisher that took the
// stream back, removes the headers of the previous publisher that the new
// one did not replace (a track it does not have, metadata it does not
// send). pubMu is held.
func (s *stream) dropStaleHeaders() {
	s.fresh = false
	old := s.headers.Load()
	nh := *old
	if s.sent&headerMeta == 0 {
		nh.meta = nil
	}
	if s.sent&headerVideo == 0 {
		nh.video = nil
	}
	if s.sent&headerAudio == 0 {
		nh.audio = nil
	}
	if nh == *old {
		return
	}
	if nh.video != old.video || nh.audio != old.audio {
		s.lastKey.Store(0) // the cached GOP goes with the removed headers
	}
	s.headers.Store(&nh)
}

// publisherRef remembers who published a stream.
type publisherRef struct {
	id       string
	ip       netip.Addr
	protocol Protocol
}

func newStream(h *hub, name string) *stream {
	size := h.e.cfg.RingSize
	s := &stream{
		name:      name,
		h:         h,
		log:       h.e.log.With("stream", name),
		ring:      make([]atomic.Pointer[packet], size),
		mask:      uint64(size - 1),
		done:      make(chan struct{}),
		startedAt: time.Now(),
		pubSince:  time.Now(),
		readers:   make(map[*client]struct{}),
	}
	ch := make(chan struct{})
	s.notify.Store(&ch)
	s.headers.Store(&headerSet{})
	return s
}

func (s *stream) path() string { return "/" + appName + "/" + s.name }

// ringLen is the number of packets the ring holds.
func (s *stream) ringLen() uint64 { return uint64(len(s.ring)) }

// packetAt returns the packet with sequence number seq, or nil if it was
// overwritten or not written yet.
func (s *stream) packetAt(seq uint64) *packet {
	p := s.ring[seq&s.mask].Load()
	if p == nil || p.seq != seq {
		return nil
	}
	return p
}

// info returns a StreamInfo for events.
func (s *stream) streamInfo() StreamInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StreamInfo{
		Name:        s.name,
		Path:        s.path(),
		PublisherID: s.lastPub.id,
		PublisherIP: s.lastPub.ip,
		Protocol:    s.lastPub.protocol,
		StartedAt:   s.startedAt,
	}
}

// isPublisher reports whether c is the current publisher.
func (s *stream) isPublisher(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.publisher == c
}

// writePacket classifies a message of the publisher c, puts it on the
// stream's timeline and publishes it to the readers. body must not be
// modified afterwards. It never blocks on readers.
func (s *stream) writePacket(typ uint8, ts uint32, body []byte) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()

	p := &packet{typ: typ, body: body}
	switch typ {
	case flv.TagVideo:
		v, err := flv.ParseVideoTag(body)
		if err != nil {
			s.log.Debug("dropping invalid video message", "err", err)
			return
		}
		if v.FrameType == flv.FrameCommand {
			return
		}
		s.hasVideo = true
		if v.IsSequenceHeader() {
			p.header = true
			s.parseVideoConfig(v)
		} else {
			p.key = isKeyFrame(v)
			if v.Enhanced && v.FrameType == 0 && (v.PacketType == flv.VideoCodedFrames || v.PacketType == flv.VideoCodedFramesX) {
				// some muxers (gortmplib's) leave the frame type of enhanced
				// frames at 0; fill it in so that players see key frames.
				// The body is not shared yet.
				if p.key {
					body[0] |= flv.FrameKey << 4
				} else {
					body[0] |= flv.FrameInter << 4
				}
			}
		}
	case flv.TagAudio:
		a, err := flv.ParseAudioTag(body)
		if err != nil {
			s.log.Debug("dropping invalid audio message", "err", err)
			return
		}
		if a.IsSequenceHeader() {
			p.header = true
			s.parseAudioConfig(a)
		} else {
			p.key = !s.hasVideo
			if s.info.audioCodec == "" {
				s.info.audioCodec = a.CodecName()
			}
		}
	case flv.TagScript:
		p.header = s.parseMetadata(body)
	default:
		return
	}
	if s.fresh && !p.header && typ != flv.TagScript {
		s.dropStaleHeaders()
	}

	// timeline: a publisher taking a stream back restarts its clock; keep
	// the readers' timestamps going forward.
	if s.rebase {
		s.rebase = false
		if s.anyOut {
			s.tsOffset = int64(s.outTS) + 1 - int64(ts)
		} else {
			s.tsOffset = 0
		}
	}
	out := int64(ts) + s.tsOffset
	if out < 0 {
		out = 0
	}
	p.ts = uint32(out)
	if !s.anyOut || p.ts > s.outTS {
		s.outTS = p.ts
	}
	s.anyOut = true

	now := time.Now()
	s.bytesIn.Add(uint64(len(body)))
	s.lastPacketAt.Store(now.UnixNano())
	s.meter.add(now, len(body))

	if p.header {
		old := s.headers.Load()
		nh := *old
		var prev *packet
		switch typ {
		case flv.TagVideo:
			prev, nh.video = nh.video, p
			s.sent |= headerVideo
		case flv.TagAudio:
			prev, nh.audio = nh.audio, p
			s.sent |= headerAudio
		default:
			nh.meta = p
			s.sent |= headerMeta
		}
		if typ != flv.TagScript && prev != nil && !bytes.Equal(prev.body, p.body) {
			// other codec parameters (a publisher back with other
			// settings): the cached GOP was coded with the old ones and
			// must not be given with the new headers. Cleared first:
			// readers load the headers, then lastKey.
			s.lastKey.Store(0)
		}
		s.headers.Store(&nh)
	}

	seq := s.writeSeq.Load()
	p.seq = seq
	s.ring[seq&s.mask].Store(p)
	s.writeSeq.Store(seq + 1)
	if p.key {
		s.lastKey.Store(seq + 1)
	}
	ch := make(chan struct{})
	old := s.notify.Swap(&ch)
	close(*old)
}

// isKeyFrame reports whether a video frame is a random access point. The
// frame type is trusted when set; enhanced frames without one are inspected.
func isKeyFrame(v flv.VideoTag) bool {
	if v.FrameType != 0 || (v.PacketType != flv.VideoCodedFrames && v.PacketType != flv.VideoCodedFramesX) {
		return v.IsKeyFrame()
	}
	switch v.FourCC {
	case flv.FourCCAVC, flv.FourCCHEVC:
		var arr [8][]byte
		nalus, err := flv.SplitNALUs(v.Data, 4, arr[:0])
		if err != nil {
			return false
		}
		if v.FourCC == flv.FourCCAVC {
			return h264.IsRandomAccess(nalus)
		}
		return h265.IsRandomAccess(nalus)
	case flv.FourCCAV1:
		var bs av1.Bitstream
		if bs.Unmarshal(v.Data) != nil {
			return false
		}
		return av1.IsRandomAccess2(bs)
	}
	return false
}

// parseVideoConfig reads codec, size and frame rate from a video sequence header.
func (s *stream) parseVideoConfig(v flv.VideoTag) {
	s.info.videoCodec = v.CodecName()
	switch v.FourCC {
	case flv.FourCCAVC:
		c, err := flv.ParseAVCConfig(v.Data)
		if err != nil || len(c.SPS) == 0 {
			return
		}
		var sps h264.SPS
		if sps.Unmarshal(c.SPS[0]) == nil {
			s.info.width, s.info.height = sps.Width(), sps.Height()
			if fps := sps.FPS(); fps > 0 {
				s.info.fps = fps
			}
		}
	case flv.FourCCHEVC:
		c, err := flv.ParseHEVCConfig(v.Data)
		if err != nil || len(c.SPS) == 0 {
			return
		}
		var sps h265.SPS
		if sps.Unmarshal(c.SPS[0]) == nil {
			s.info.width, s.info.height = sps.Width(), sps.Height()
			if fps := sps.FPS(); fps > 0 {
				s.info.fps = fps
			}
		}
	}
}

// parseAudioConfig reads codec, sample rate and channels from an audio sequence header.
func (s *stream) parseAudioConfig(a flv.AudioTag) {
	s.info.audioCodec = a.CodecName()
	switch a.FourCC {
	case flv.FourCCMP4A:
		var c mpeg4audio.AudioSpecificConfig
		if c.Unmarshal(a.Data) == nil {
			s.info.audioRate = c.SampleRate
			s.info.channels = int(c.ChannelConfig)
		}
	case flv.FourCCOpus:
		if h, err := flv.ParseOpusHead(a.Data); err == nil {
			s.info.audioRate = 48000
			s.info.channels = int(h.ChannelCount)
		}
	}
}

// parseMetadata reads an onMetaData script body and reports whether it is
// metadata (a header) rather than another script message.
func (s *stream) parseMetadata(body []byte) bool {
	d, err := amf0.Unmarshal(body)
	if err != nil || len(d) < 2 {
		return false
	}
	if name, _ := d[0].(string); name != "onMetaData" {
		return false
	}
	var obj amf0.Object
	switch o := d[1].(type) {
	case amf0.Object:
		obj = o
	case amf0.ECMAArray:
		obj = amf0.Object(o)
	default:
		return true
	}
	if v, ok := obj.GetFloat64("width"); ok && s.info.width == 0 {
		s.info.width = int(v)
	}
	if v, ok := obj.GetFloat64("height"); ok && s.info.height == 0 {
		s.info.height = int(v)
	}
	if v, ok := obj.GetFloat64("framerate"); ok && s.info.fps == 0 {
		s.info.fps = v
	}
	if _, ok := obj.Get("videocodecid"); ok {
		s.hasVideo = true
	}
	return true
}

// addReader registers the reading client c; it fails once the stream has ended.
func (s *stream) addReader(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.readers[c] = struct{}{}
	return true
}

func (s *stream) removeReader(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.readers, c)
}

// meter measures bytes per second over the last meterWindow seconds.
type meter struct {
	buckets [meterWindow]uint64
	secs    [meterWindow]int64
}

const meterWindow = 10

func (m *meter) add(now time.Time, n int) {
	sec := now.Unix()
	i := sec % meterWindow
	if m.secs[i] != sec {
		m.secs[i] = sec
		m.buckets[i] = 0
	}
	m.buckets[i] += uint64(n)
}

// bitsPerSecond returns the average bitrate over the last meterWindow
// seconds (or since start, if younger).
func (m *meter) bitsPerSecond(now time.Time, start time.Time) int64 {
	sec := now.Unix()
	var sum uint64
	for i := range m.buckets {
		if m.secs[i] > sec-meterWindow && m.secs[i] <= sec {
			sum += m.buckets[i]
		}
	}
	window := now.Sub(start).Seconds()
	if window > meterWindow {
		window = meterWindow
	}
	if window < 1 {
		window = 1
	}
	return int64(float64(sum*8) / window)
}

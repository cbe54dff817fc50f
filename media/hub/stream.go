package hub

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

// Headers holds the packets a reader needs before any frame: metadata and
// the audio and video sequence headers, each nil when the stream has none.
// A stream replaces its Headers, never modifies them: read, never write.
type Headers struct {
	// Meta is the onMetaData script packet.
	Meta *Packet
	// Video and Audio are the sequence headers (codec configurations).
	Video, Audio *Packet
}

func (h *Headers) packets() []*Packet {
	out := make([]*Packet, 0, 3)
	for _, p := range []*Packet{h.Meta, h.Video, h.Audio} {
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
	// B-frame detection (see StreamStats.BFrames): maxPTS is the latest
	// presentation time of a frame so far.
	bframes  bool
	maxPTS   int64
	anyFrame bool
}

// Stream is one path /live/<name>: at most one publisher, any number of
// readers. Packets go into a ring that is both the GOP cache and the queue of
// every reader: the publisher writes a slot and moves writeSeq on, never
// waiting; each reader keeps its own cursor into the ring.
type Stream struct {
	name string
	h    *Hub
	log  *slog.Logger

	ring     []atomic.Pointer[Packet]
	mask     uint64
	writeSeq atomic.Uint64 // seq of the next packet
	lastKey  atomic.Uint64 // seq+1 of the newest key packet, 0 if none
	// notify is closed and replaced after every packet; readers wait on
	// it, then on their own write coalescing (see Reader.Run).
	notify  atomic.Pointer[chan struct{}]
	headers atomic.Pointer[Headers]
	done    chan struct{} // closed when the stream ends
	// owned: this node publishes the stream for the service and reports
	// its end (see Owned).
	owned atomic.Bool

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
	publisher  *Client
	lastPub    publisherRef
	pubSince   time.Time // when the current (or last) publisher started
	graceTimer *time.Timer
	ended      bool
	startedAt  time.Time
	readers    map[*Client]struct{}
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
func (s *Stream) takeover() {
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
func (s *Stream) dropStaleHeaders() {
	s.fresh = false
	old := s.headers.Load()
	nh := *old
	if s.sent&headerMeta == 0 {
		nh.Meta = nil
	}
	if s.sent&headerVideo == 0 {
		nh.Video = nil
	}
	if s.sent&headerAudio == 0 {
		nh.Audio = nil
	}
	if nh == *old {
		return
	}
	if nh.Video != old.Video || nh.Audio != old.Audio {
		s.lastKey.Store(0) // the cached GOP goes with the removed headers
	}
	s.headers.Store(&nh)
}

// publisherRef remembers who published a stream.
type publisherRef struct {
	id       string
	ip       netip.Addr
	protocol Protocol
	relay    bool
	node     string
}

func refOf(c *Client) publisherRef {
	return publisherRef{id: c.id, ip: c.IP(), protocol: c.protocol, relay: c.relay, node: c.node}
}

func newStream(h *Hub, name string) *Stream {
	size := h.cfg.RingSize
	s := &Stream{
		name:      name,
		h:         h,
		log:       h.log.With("stream", name),
		ring:      make([]atomic.Pointer[Packet], size),
		mask:      uint64(size - 1),
		done:      make(chan struct{}),
		startedAt: time.Now(),
		pubSince:  time.Now(),
		readers:   make(map[*Client]struct{}),
	}
	ch := make(chan struct{})
	s.notify.Store(&ch)
	s.headers.Store(&Headers{})
	return s
}

func (s *Stream) path() string { return "/" + AppName + "/" + s.name }

// Name returns the stream's name, without "/live/".
func (s *Stream) Name() string { return s.name }

// Logger returns the hub's logger with the stream's name.
func (s *Stream) Logger() *slog.Logger { return s.log }

// Headers returns the stream's metadata and sequence headers as they are
// now. Readers that start load them before the ring: a stream clears its
// GOP before it stores changed headers, so the GOP found next is never
// older than them.
func (s *Stream) Headers() *Headers { return s.headers.Load() }

// Done is closed when the stream ends.
func (s *Stream) Done() <-chan struct{} { return s.done }

// LastKey returns the newest key packet still in the ring (the start of
// the cached GOP), or nil.
func (s *Stream) LastKey() *Packet {
	k := s.lastKey.Load()
	if k == 0 {
		return nil
	}
	return s.packetAt(k - 1)
}

// Last returns the newest packet still in the ring, or nil.
func (s *Stream) Last() *Packet {
	w := s.writeSeq.Load()
	if w == 0 {
		return nil
	}
	return s.packetAt(w - 1)
}

// CountDroppedReader counts a reader that its protocol disconnected for
// being too slow (RTSP: its write queue overflowed), in the stream's and
// the hub's ReadersDropped.
func (s *Stream) CountDroppedReader() {
	s.dropped.Add(1)
	s.h.readersDropped.Add(1)
}

// ringLen is the number of packets the ring holds.
func (s *Stream) ringLen() uint64 { return uint64(len(s.ring)) }

// packetAt returns the packet with sequence number seq, or nil if it was
// overwritten or not written yet.
func (s *Stream) packetAt(seq uint64) *Packet {
	p := s.ring[seq&s.mask].Load()
	if p == nil || p.seq != seq {
		return nil
	}
	return p
}

// streamInfo returns a StreamInfo for events.
func (s *Stream) streamInfo() StreamInfo {
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

// Publisher returns the current publisher, nil while there is none (in
// the grace period).
func (s *Stream) Publisher() *Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.publisher
}

// Owned reports whether this node publishes the stream for the service:
// its start was reported to the EventSink and so will its end be. A
// stream fed by a relay from another node is not owned, nor one that
// another node took over (Disown).
func (s *Stream) Owned() bool { return s.owned.Load() }

// Disown marks the stream as another node's: its end is not reported to
// the EventSink (the node that took it over reports it), and its
// recording stops.
func (s *Stream) Disown() { s.owned.Store(false) }

// ReaderCount returns the number of readers registered with AddReader,
// relays to other nodes not counted.
func (s *Stream) ReaderCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.readers {
		if !c.relay {
			n++
		}
	}
	return n
}

// IsPublisher reports whether c is the current publisher.
func (s *Stream) IsPublisher(c *Client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.publisher == c
}

// WritePacket classifies a message of the publisher (an FLV tag body of
// type typ: flv.TagAudio, flv.TagVideo or flv.TagScript, with its DTS in
// milliseconds), puts it on the stream's timeline and publishes it to the
// readers. body must not be modified afterwards. It never blocks on
// readers.
func (s *Stream) WritePacket(typ uint8, ts uint32, body []byte) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.writePacket(typ, ts, body)
}

// WritePacketFrom is WritePacket for a publisher that another may replace
// at any time (a relay, replaced by a publisher of this node): it writes
// only while c is the stream's publisher, and reports whether it did.
func (s *Stream) WritePacketFrom(c *Client, typ uint8, ts uint32, body []byte) bool {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	ok := s.publisher == c
	s.mu.Unlock()
	if ok {
		s.writePacket(typ, ts, body)
	}
	return ok
}

// writePacket is WritePacket with pubMu held.
func (s *Stream) writePacket(typ uint8, ts uint32, body []byte) {

	p := &Packet{typ: typ, body: body}
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
			s.detectBFrames(ts, v)
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
		var prev *Packet
		switch typ {
		case flv.TagVideo:
			prev, nh.Video = nh.Video, p
			s.sent |= headerVideo
		case flv.TagAudio:
			prev, nh.Audio = nh.Audio, p
			s.sent |= headerAudio
		default:
			nh.Meta = p
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

// detectBFrames notes a frame presented before a frame decoded earlier
// (DTS ts + composition time): a B-frame. pubMu is held.
func (s *Stream) detectBFrames(ts uint32, v flv.VideoTag) {
	if s.info.bframes || (v.PacketType != flv.VideoCodedFrames && v.PacketType != flv.VideoCodedFramesX) {
		return
	}
	pts := int64(ts) + int64(v.CompositionTime)
	if s.info.anyFrame && pts < s.info.maxPTS {
		s.info.bframes = true
	}
	if !s.info.anyFrame || pts > s.info.maxPTS {
		s.info.maxPTS = pts
	}
	s.info.anyFrame = true
}

// OutputTimestamp maps a timestamp of the current publisher to the
// stream's timeline, as WritePacket does (a publisher that took the
// stream back is rebased), for media that reaches an output by another
// way than the stream (a WHIP publisher's own Opus).
func (s *Stream) OutputTimestamp(ts uint32) uint32 {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if s.rebase { // its first packet is not written yet
		return ts
	}
	out := int64(ts) + s.tsOffset
	if out < 0 {
		out = 0
	}
	return uint32(out)
}

// parseVideoConfig reads codec, size and frame rate from a video sequence
// header; a new one starts the B-frame detection afresh.
func (s *Stream) parseVideoConfig(v flv.VideoTag) {
	s.info.videoCodec = v.CodecName()
	s.info.bframes, s.info.anyFrame = false, false
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
			// x264 announces B-frames in the VUI (baseline has none)
			s.info.bframes = sps.ProfileIdc != 66 && sps.VUI != nil && sps.VUI.BitstreamRestriction != nil &&
				sps.VUI.BitstreamRestriction.MaxNumReorderFrames > 0
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
func (s *Stream) parseAudioConfig(a flv.AudioTag) {
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
func (s *Stream) parseMetadata(body []byte) bool {
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

// AddReader registers the reading client c, for stats and play events
// (PlayEventSink); it fails once the stream has ended. Readers and Cursors
// do not need it: it says who watches.
func (s *Stream) AddReader(c *Client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.readers[c] = struct{}{}
	s.h.playStarted(c, s.name)
	return true
}

// RemoveReader unregisters the reading client c.
func (s *Stream) RemoveReader(c *Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.readers, c)
	s.h.playStopped(c, "left")
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

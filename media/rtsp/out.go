package rtsp

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/pion/rtp"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
)

// tracks are the tracks of a stream that RTSP carries, read from its
// sequence headers: H.264 or H.265 video, AAC or Opus audio.
type tracks struct {
	video *flv.VideoParams
	audio *flv.AudioParams
}

func tracksOf(hs *hub.Headers) tracks {
	var t tracks
	if hs.Video != nil {
		if v, err := flv.ParseVideoTag(hs.Video.Body()); err == nil && v.IsSequenceHeader() {
			if p, err := flv.ParseVideoParams(v); err == nil {
				t.video = &p
			}
		}
	}
	if hs.Audio != nil {
		if a, err := flv.ParseAudioTag(hs.Audio.Body()); err == nil && a.IsSequenceHeader() {
			if p, err := flv.ParseAudioParams(a); err == nil {
				t.audio = &p
			}
		}
	}
	return t
}

// layout identifies what a session description fixes for the life of an
// RTSP session: the tracks, their codecs and the audio configuration
// (its clock rate and channels). Video parameter sets are not part of it:
// they travel in band too, so the description is reloaded instead.
func (t tracks) layout() string {
	var b []byte
	if t.video != nil {
		b = strconv.AppendUint(b, uint64(t.video.FourCC), 16)
	}
	b = append(b, '/')
	if t.audio != nil {
		b = strconv.AppendUint(b, uint64(t.audio.FourCC), 16)
		b = append(b, ':')
		if t.audio.FourCC == flv.FourCCOpus {
			b = strconv.AppendInt(b, int64(t.audio.Channels), 10)
		} else {
			b = append(b, t.audio.Raw...)
		}
	}
	return string(b)
}

// output is the RTSP output of one stream. One goroutine reads the stream
// with a hub Cursor, packetizes each frame into RTP once and hands it to a
// gortsplib ServerStream, which sends it to every playing session.
//
// A session joining in the middle of a GOP first gets the RTP packets sent
// since the newest key frame (kept in gop, the same packets with the same
// sequence numbers), written to it alone, and then the shared feed. The
// output goroutine writes the shared feed and the joins under mu, so a
// joining session sees one continuous sequence: gortsplib adds it to the
// shared feed some time after OnPlay; until then the goroutine writes each
// packet to it directly, and it notices the switch from the session's
// packet count (see join and feedJoiners).
//
// The description is made from the stream's sequence headers. New video
// parameter sets (a publisher back with other settings) are reloaded into
// it; another track layout or audio configuration closes the output and
// its sessions, and the next DESCRIBE gets a new one.
type output struct {
	srv *Server
	s   *hub.Stream
	ss  *gortsplib.ServerStream

	layout string       // of the tracks the description was made from
	hs     *hub.Headers // the stream's headers last looked at (goroutine only)

	vMedia *description.Media
	h264f  *format.H264
	h265f  *format.H265
	vEnc   *rtph264.Encoder
	hEnc   *rtph265.Encoder
	vps    []byte // parameter sets put in band before key frames (goroutine only)
	sps    []byte
	pps    []byte
	lenSz  int

	aMedia *description.Media
	aEnc   *rtpmpeg4audio.Encoder
	oEnc   *rtpsimpleaudio.Encoder
	aRate  int64

	ntpBase time.Time // NTP time of timestamp 0 of the stream's timeline
	gopMax  int       // packets gop may hold: what a session's write queue takes

	mu      sync.Mutex
	gop     []rtpPacket // sent since the newest key frame
	gopOK   bool        // gop starts at a key frame
	joining map[*gortsplib.ServerSession]*joiner

	ctx     context.Context // ends with close
	stop    context.CancelFunc
	done    chan struct{}
	closeMu sync.Mutex
	closed  bool
}

// rtpPacket is an RTP packet as sent on the shared feed.
type rtpPacket struct {
	media *description.Media
	pkt   *rtp.Packet
	ntp   time.Time
}

// joiner is a session that got the cached GOP and is not yet part of
// the shared feed.
type joiner struct {
	medias map[*description.Media]bool // set up by the session
	direct map[*description.Media]*rtpCount
	extra  int // packets written directly after the cached GOP
}

// rtpCount counts the RTP packets written to a session directly on one media.
type rtpCount struct {
	packets, bytes uint64
}

// joinMax bounds the packets written directly to a session after its
// cached GOP while waiting for gortsplib to add it to the shared feed
// (normally a few, within milliseconds).
const joinMax = 256

func newOutput(srv *Server, s *hub.Stream) (*output, error) {
	o := &output{
		srv: srv, s: s, lenSz: 4,
		// room in the write queue for the packets written directly
		// while joining, and for those of the shared feed until the
		// session's writer starts.
		gopMax:  srv.srv.WriteQueueSize - 2*joinMax,
		joining: map[*gortsplib.ServerSession]*joiner{},
		done:    make(chan struct{}),
	}
	o.ctx, o.stop = context.WithCancel(context.Background())
	// The headers are loaded before the goroutine makes its cursor: the
	// stream clears its GOP before it stores changed headers, so the GOP
	// the goroutine starts with is never older than these headers.
	o.hs = s.Headers()
	tr := tracksOf(o.hs)
	o.layout = tr.layout()
	desc := &description.Session{}

	if v := tr.video; v != nil {
		o.vps, o.sps, o.pps, o.lenSz = v.VPS, v.SPS, v.PPS, v.LengthSize
		var f format.Format
		var err error
		if v.FourCC == flv.FourCCHEVC {
			o.h265f = &format.H265{PayloadTyp: 96, VPS: v.VPS, SPS: v.SPS, PPS: v.PPS}
			f = o.h265f
			o.hEnc, err = o.h265f.CreateEncoder()
		} else {
			o.h264f = &format.H264{PayloadTyp: 96, SPS: v.SPS, PPS: v.PPS, PacketizationMode: 1}
			f = o.h264f
			o.vEnc, err = o.h264f.CreateEncoder()
		}
		if err != nil {
			return nil, fmt.Errorf("RTSP video encoder: %w", err)
		}
		o.vMedia = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
		desc.Medias = append(desc.Medias, o.vMedia)
	}
	if a := tr.audio; a != nil {
		var f format.Format
		var err error
		if a.FourCC == flv.FourCCOpus {
			of := &format.Opus{PayloadTyp: 97, ChannelCount: a.Channels}
			f = of
			o.oEnc, err = of.CreateEncoder()
			o.aRate = 48000
		} else {
			conf := a.AAC
			mf := &format.MPEG4Audio{PayloadTyp: 97, Config: &conf, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
			f = mf
			o.aEnc, err = mf.CreateEncoder()
			o.aRate = int64(mf.ClockRate())
		}
		if err != nil {
			return nil, fmt.Errorf("RTSP audio encoder: %w", err)
		}
		o.aMedia = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{f}}
		desc.Medias = append(desc.Medias, o.aMedia)
	}
	if len(desc.Medias) == 0 {
		o.stop()
		return nil, fmt.Errorf("%w: no H.264, H.265, AAC or Opus track to send over RTSP yet", hub.ErrStreamNotFound)
	}
	o.ss = &gortsplib.ServerStream{Server: srv.srv, Desc: desc}
	if err := o.ss.Initialize(); err != nil {
		o.stop()
		return nil, fmt.Errorf("RTSP stream: %w", err)
	}
	go o.run()
	return o, nil
}

// staleFor reports whether the description cannot describe a stream with
// headers hs (another track layout or audio configuration).
func (o *output) staleFor(hs *hub.Headers) bool {
	return tracksOf(hs).layout() != o.layout
}

func (o *output) isClosed() bool {
	o.closeMu.Lock()
	defer o.closeMu.Unlock()
	return o.closed
}

// close stops the output and closes its sessions.
func (o *output) close() {
	o.closeMu.Lock()
	if o.closed {
		o.closeMu.Unlock()
		return
	}
	o.closed = true
	o.stop()
	o.closeMu.Unlock()
	<-o.done
	o.ss.Close()
}

func (o *output) run() {
	defer close(o.done)
	defer func() {
		go func() {
			o.srv.removeOutput(o.s, o)
			o.close()
		}()
	}()
	s := o.s
	// the cursor starts at the cached GOP's key frame, or waits for one.
	cur := s.NewCursor(hub.FromKey)
	waitKey := true
	if p := cur.Peek(); p != nil {
		o.ntpBase = time.Now().Add(-time.Duration(p.Timestamp()) * time.Millisecond)
	} else if p := s.Last(); p != nil {
		o.ntpBase = time.Now().Add(-time.Duration(p.Timestamp()) * time.Millisecond)
	} else {
		o.ntpBase = time.Now()
	}
	for {
		p, skipped, err := cur.Next(o.ctx)
		if err != nil { // closed, or the stream ended
			return
		}
		if !o.checkHeaders() {
			return
		}
		if skipped > 0 { // overwritten: the cursor jumped to the newest key frame
			waitKey = true
			o.mu.Lock()
			o.resetGOP(false)
			o.mu.Unlock()
			continue
		}
		if waitKey {
			if !p.Key() {
				continue
			}
			waitKey = false
		}
		if p.Key() { // a video key frame, or audio in a stream without video
			o.mu.Lock()
			o.resetGOP(true)
			o.mu.Unlock()
		}
		if err := o.writePacket(p); err != nil {
			o.s.Logger().Debug("RTSP output", "err", err)
		}
	}
}

// checkHeaders follows the stream's sequence headers: new video parameter
// sets are reloaded into the description; it returns false when the
// description no longer fits (the output must be rebuilt).
func (o *output) checkHeaders() bool {
	hs := o.s.Headers()
	if hs == o.hs {
		return true
	}
	o.hs = hs
	tr := tracksOf(hs)
	if tr.layout() != o.layout {
		o.s.Logger().Info("RTSP output closed: the publisher's tracks or audio configuration changed; its RTSP viewers are disconnected, new ones get the new description")
		return false
	}
	if v := tr.video; v != nil {
		switch {
		case o.h264f != nil:
			if sps, pps := o.h264f.SafeParams(); !bytes.Equal(sps, v.SPS) || !bytes.Equal(pps, v.PPS) {
				o.h264f.SafeSetParams(v.SPS, v.PPS)
				o.ss.ReloadDesc()
			}
		case o.h265f != nil:
			if vps, sps, pps := o.h265f.SafeParams(); !bytes.Equal(vps, v.VPS) || !bytes.Equal(sps, v.SPS) || !bytes.Equal(pps, v.PPS) {
				o.h265f.SafeSetParams(v.VPS, v.SPS, v.PPS)
				o.ss.ReloadDesc()
			}
		}
	}
	return true
}

// resetGOP empties the cached GOP; ok tells whether a GOP starts now. mu is held.
func (o *output) resetGOP(ok bool) {
	clear(o.gop)
	o.gop = o.gop[:0]
	o.gopOK = ok
}

// join gives a session starting to play the cached GOP. It is called from
// OnPlay, before gortsplib adds the session to the shared feed; the
// packets wait in the session's write queue until its writer starts.
func (o *output) join(ses *gortsplib.ServerSession) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.gopOK || len(o.gop) == 0 {
		return // no GOP yet: the session starts with the shared feed
	}
	j := &joiner{medias: map[*description.Media]bool{}, direct: map[*description.Media]*rtpCount{}}
	for _, m := range ses.Medias() {
		j.medias[m] = true
		j.direct[m] = &rtpCount{}
	}
	for _, c := range o.gop {
		if !j.medias[c.media] {
			continue
		}
		j.direct[c.media].add(c.pkt)
		if err := ses.WritePacketRTPWithNTP(c.media, c.pkt, c.ntp); err != nil {
			o.s.Logger().Warn("RTSP reader dropped: its write queue cannot take the GOP", "err", err, "packets", len(o.gop))
			ses.Close()
			return
		}
	}
	o.joining[ses] = j
}

// leave forgets a session that closed.
func (o *output) leave(ses *gortsplib.ServerSession) {
	o.mu.Lock()
	delete(o.joining, ses)
	o.mu.Unlock()
}

// feedJoiners gives pkt, just written to the shared feed, to the joining
// sessions that did not get it from there. mu is held.
func (o *output) feedJoiners(c rtpPacket) {
	for ses, j := range o.joining {
		if !j.medias[c.media] {
			continue
		}
		// The session is added to the shared feed after its state becomes
		// Play, atomically with respect to a shared write: if what it was
		// sent grew past what we wrote to it, the shared feed sent this one.
		d := j.direct[c.media]
		if ses.State() == gortsplib.ServerSessionStatePlay && d.less(ses, c.media) {
			delete(o.joining, ses)
			continue
		}
		d.add(c.pkt)
		j.extra++
		if err := ses.WritePacketRTPWithNTP(c.media, c.pkt, c.ntp); err != nil || j.extra > joinMax {
			o.s.Logger().Warn("RTSP reader dropped: not added to the stream", "err", err, "packets", j.extra)
			delete(o.joining, ses)
			ses.Close()
		}
	}
}

func (d *rtpCount) add(pkt *rtp.Packet) {
	d.packets++
	d.bytes += uint64(pkt.MarshalSize())
}

// less reports whether gortsplib sent more RTP to session ses on media m
// than was written to it directly. Its packet count is exact once it is
// reported, which starts with the first packet whose PTS equals its DTS
// (a key frame, any audio); before that, no RTCP was sent either, so the
// media's byte count is RTP only.
func (d *rtpCount) less(ses *gortsplib.ServerSession, m *description.Media) bool {
	st := ses.Stats()
	if st == nil {
		return false
	}
	ms := st.Medias[m]
	var n uint64
	for _, f := range ms.Formats {
		n += f.OutboundRTPPackets
	}
	if n > 0 {
		return n > d.packets
	}
	return ms.OutboundBytes > d.bytes
}

// send writes the RTP packets of one frame to the shared feed, keeps them
// for joining sessions and gives them to those not on the feed yet.
func (o *output) send(m *description.Media, pkts []*rtp.Packet, ntp time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gopOK && len(o.gop)+len(pkts) > o.gopMax {
		o.s.Logger().Debug("RTSP output: GOP too long to cache, viewers joining now start without it", "packets", len(o.gop)+len(pkts))
		o.resetGOP(false)
	}
	var firstErr error
	for _, pkt := range pkts {
		c := rtpPacket{media: m, pkt: pkt, ntp: ntp}
		if err := o.ss.WritePacketRTPWithNTP(m, pkt, ntp); err != nil && firstErr == nil {
			firstErr = err
		}
		if o.gopOK {
			o.gop = append(o.gop, c)
		}
		if len(o.joining) > 0 {
			o.feedJoiners(c)
		}
	}
	return firstErr
}

// ntp returns the NTP time of a timestamp (ms) of the stream's timeline.
func (o *output) ntp(ms int64) time.Time {
	return o.ntpBase.Add(time.Duration(ms) * time.Millisecond)
}

// writePacket packetizes one frame and sends it.
func (o *output) writePacket(p *hub.Packet) error {
	switch p.Type() {
	case flv.TagVideo:
		v, err := flv.ParseVideoTag(p.Body())
		if err != nil {
			return err
		}
		var encode func([][]byte) ([]*rtp.Packet, error)
		switch {
		case o.vEnc != nil && v.FourCC == flv.FourCCAVC:
			if v.IsSequenceHeader() {
				if c, err := flv.ParseAVCConfig(v.Data); err == nil && len(c.SPS) > 0 && len(c.PPS) > 0 {
					o.sps, o.pps, o.lenSz = c.SPS[0], c.PPS[0], c.LengthSize
				}
				return nil
			}
			encode = o.vEnc.Encode
		case o.hEnc != nil && v.FourCC == flv.FourCCHEVC:
			if v.IsSequenceHeader() {
				if c, err := flv.ParseHEVCConfig(v.Data); err == nil && len(c.VPS) > 0 && len(c.SPS) > 0 && len(c.PPS) > 0 {
					o.vps, o.sps, o.pps, o.lenSz = c.VPS[0], c.SPS[0], c.PPS[0], c.LengthSize
				}
				return nil
			}
			encode = o.hEnc.Encode
		default:
			return nil
		}
		if v.PacketType != flv.VideoCodedFrames && v.PacketType != flv.VideoCodedFramesX {
			return nil
		}
		nalus, err := flv.SplitNALUs(v.Data, o.lenSz, nil)
		if err != nil {
			return err
		}
		if p.Key() {
			if o.hEnc != nil {
				nalus = append([][]byte{o.vps, o.sps, o.pps}, nalus...)
			} else {
				nalus = append([][]byte{o.sps, o.pps}, nalus...)
			}
		}
		pkts, err := encode(nalus)
		if err != nil {
			return err
		}
		pts := int64(p.Timestamp()) + int64(v.CompositionTime)
		for _, pkt := range pkts {
			pkt.Timestamp = uint32(pts * 90)
		}
		return o.send(o.vMedia, pkts, o.ntp(pts))
	case flv.TagAudio:
		a, err := flv.ParseAudioTag(p.Body())
		if err != nil || a.IsSequenceHeader() || a.PacketType != flv.AudioCodedFrames || len(a.Data) == 0 {
			return err
		}
		var pkts []*rtp.Packet
		switch {
		case o.oEnc != nil && a.FourCC == flv.FourCCOpus:
			pkt, err := o.oEnc.Encode(a.Data)
			if err != nil {
				return err
			}
			pkts = []*rtp.Packet{pkt}
		case o.aEnc != nil && a.FourCC == flv.FourCCMP4A:
			if pkts, err = o.aEnc.Encode([][]byte{a.Data}); err != nil {
				return err
			}
		default:
			return nil
		}
		ts := uint32(int64(p.Timestamp()) * o.aRate / 1000)
		for _, pkt := range pkts {
			pkt.Timestamp = ts
		}
		return o.send(o.aMedia, pkts, o.ntp(int64(p.Timestamp())))
	}
	return nil
}

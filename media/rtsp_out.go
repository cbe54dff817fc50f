package media

import (
	"errors"
	"fmt"
	"sync"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	"github.com/mofang-live/mofang/media/flv"
)

// rtspOut is the RTSP output of one stream: one goroutine reads the ring
// like a reader, packetizes each frame into RTP once and hands it to a
// gortsplib ServerStream, which sends it to every RTSP session.
type rtspOut struct {
	srv *rtspServer
	s   *stream
	ss  *gortsplib.ServerStream

	vMedia *description.Media
	vEnc   *rtph264.Encoder
	hEnc   *rtph265.Encoder
	vps    []byte
	sps    []byte
	pps    []byte
	lenSz  int

	aMedia *description.Media
	aEnc   *rtpmpeg4audio.Encoder
	oEnc   *rtpsimpleaudio.Encoder
	aRate  int64

	stop    chan struct{}
	done    chan struct{}
	closeMu sync.Mutex
	closed  bool
}

func newRTSPOut(srv *rtspServer, s *stream) (*rtspOut, error) {
	o := &rtspOut{srv: srv, s: s, stop: make(chan struct{}), done: make(chan struct{}), lenSz: 4}
	hs := s.headers.Load()
	desc := &description.Session{}

	if hs.video != nil {
		v, err := flv.ParseVideoTag(hs.video.body)
		if err == nil && v.FourCC == flv.FourCCHEVC {
			c, err := flv.ParseHEVCConfig(v.Data)
			if err == nil && len(c.VPS) > 0 && len(c.SPS) > 0 && len(c.PPS) > 0 {
				o.vps, o.sps, o.pps, o.lenSz = c.VPS[0], c.SPS[0], c.PPS[0], c.LengthSize
				f := &format.H265{PayloadTyp: 96, VPS: o.vps, SPS: o.sps, PPS: o.pps}
				o.vMedia = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
				if o.hEnc, err = f.CreateEncoder(); err != nil {
					return nil, err
				}
				desc.Medias = append(desc.Medias, o.vMedia)
			}
		}
		if err == nil && v.FourCC == flv.FourCCAVC {
			c, err := flv.ParseAVCConfig(v.Data)
			if err == nil && len(c.SPS) > 0 && len(c.PPS) > 0 {
				o.sps, o.pps, o.lenSz = c.SPS[0], c.PPS[0], c.LengthSize
				f := &format.H264{PayloadTyp: 96, SPS: o.sps, PPS: o.pps, PacketizationMode: 1}
				o.vMedia = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{f}}
				if o.vEnc, err = f.CreateEncoder(); err != nil {
					return nil, err
				}
				desc.Medias = append(desc.Medias, o.vMedia)
			}
		}
	}
	if hs.audio != nil {
		a, err := flv.ParseAudioTag(hs.audio.body)
		if err == nil && a.FourCC == flv.FourCCOpus && a.IsSequenceHeader() {
			if h, err := flv.ParseOpusHead(a.Data); err == nil {
				f := &format.Opus{PayloadTyp: 97, ChannelCount: int(h.ChannelCount)}
				o.aMedia = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{f}}
				if o.oEnc, err = f.CreateEncoder(); err != nil {
					return nil, err
				}
				o.aRate = 48000
				desc.Medias = append(desc.Medias, o.aMedia)
			}
		}
		if err == nil && a.FourCC == flv.FourCCMP4A && a.IsSequenceHeader() {
			var conf mpeg4audio.AudioSpecificConfig
			if err := conf.Unmarshal(a.Data); err == nil {
				f := &format.MPEG4Audio{PayloadTyp: 97, Config: &conf, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
				o.aMedia = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{f}}
				if o.aEnc, err = f.CreateEncoder(); err != nil {
					return nil, err
				}
				o.aRate = int64(f.ClockRate())
				desc.Medias = append(desc.Medias, o.aMedia)
			}
		}
	}
	if len(desc.Medias) == 0 {
		return nil, fmt.Errorf("%w: no H.264, H.265, AAC or Opus track to send over RTSP yet", ErrStreamNotFound)
	}
	o.ss = &gortsplib.ServerStream{Server: srv.srv, Desc: desc}
	if err := o.ss.Initialize(); err != nil {
		return nil, fmt.Errorf("RTSP stream: %w", err)
	}
	go o.run()
	return o, nil
}

func (o *rtspOut) isClosed() bool {
	o.closeMu.Lock()
	defer o.closeMu.Unlock()
	return o.closed
}

func (o *rtspOut) close() {
	o.closeMu.Lock()
	if o.closed {
		o.closeMu.Unlock()
		return
	}
	o.closed = true
	close(o.stop)
	o.closeMu.Unlock()
	<-o.done
	o.ss.Close()
}

func (o *rtspOut) run() {
	defer close(o.done)
	defer func() {
		go func() {
			o.srv.removeOutput(o.s, o)
			o.close()
		}()
	}()
	s := o.s
	var cursor uint64
	waitKey := true
	if k := s.lastKey.Load(); k > 0 && s.packetAt(k-1) != nil {
		cursor, waitKey = k-1, false
	} else {
		cursor = s.writeSeq.Load()
	}
	for {
		w := s.writeSeq.Load()
		if cursor == w {
			ch := s.notify.Load()
			if s.writeSeq.Load() != cursor {
				continue
			}
			select {
			case <-*ch:
			case <-o.stop:
				return
			case <-s.done:
				return
			}
			continue
		}
		p := s.packetAt(cursor)
		if p == nil { // overwritten: jump to the newest key frame
			if k := s.lastKey.Load(); k > 0 && s.packetAt(k-1) != nil && k-1 > cursor {
				cursor = k - 1
			} else {
				cursor, waitKey = w, true
			}
			continue
		}
		cursor++
		if waitKey {
			if !p.key {
				continue
			}
			waitKey = false
		}
		if err := o.writePacket(p); err != nil {
			o.s.log.Debug("RTSP output", "err", err)
		}
	}
}

// writePacket packetizes one frame.
func (o *rtspOut) writePacket(p *packet) error {
	switch p.typ {
	case flv.TagVideo:
		v, err := flv.ParseVideoTag(p.body)
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
		if p.key {
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
		pts := (int64(p.ts) + int64(v.CompositionTime)) * 90
		for _, pkt := range pkts {
			pkt.Timestamp = uint32(pts)
			if err := o.ss.WritePacketRTP(o.vMedia, pkt); err != nil {
				return err
			}
		}
	case flv.TagAudio:
		a, err := flv.ParseAudioTag(p.body)
		if err != nil || a.IsSequenceHeader() || a.PacketType != flv.AudioCodedFrames || len(a.Data) == 0 {
			return err
		}
		if o.oEnc != nil && a.FourCC == flv.FourCCOpus {
			pkt, err := o.oEnc.Encode(a.Data)
			if err != nil {
				return err
			}
			pkt.Timestamp = uint32(int64(p.ts) * 48)
			return o.ss.WritePacketRTP(o.aMedia, pkt)
		}
		if o.aEnc == nil || a.FourCC != flv.FourCCMP4A {
			return nil
		}
		pkts, err := o.aEnc.Encode([][]byte{a.Data})
		if err != nil {
			return err
		}
		ts := int64(p.ts) * o.aRate / 1000
		for _, pkt := range pkts {
			pkt.Timestamp = uint32(ts)
			if err := o.ss.WritePacketRTP(o.aMedia, pkt); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ = errors.New

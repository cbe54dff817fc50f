package rtsp

import (
	"bytes"
	"errors"
	"log/slog"
	"sync"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
)

// source turns the RTP packets of an RTSP publisher into FLV/RTMP
// message bodies: H.264 access units become AVCC frames (parameter sets go to
// the sequence header), H.265 ones Enhanced RTMP "hvc1" frames, AAC access
// units raw AAC frames.
type source struct {
	log    *slog.Logger
	stream *hub.Stream

	mu sync.Mutex // callbacks of the two medias come from different goroutines

	vMedia  *description.Media
	vFormat *format.H264
	vDec    *rtph264.Decoder
	dts     *h264.DTSExtractor
	sps     []byte
	pps     []byte
	gotIDR  bool

	hFormat *format.H265
	hDec    *rtph265.Decoder
	hDTS    *h265.DTSExtractor
	vps     []byte

	aMedia  *description.Media
	aFormat *format.MPEG4Audio
	aDec    *rtpmpeg4audio.Decoder
	aSent   bool

	oFormat *format.Opus
	oDec    *rtpsimpleaudio.Decoder
}

func newSource(log *slog.Logger, desc *description.Session) (*source, error) {
	src := &source{log: log}
	var h264f *format.H264
	if m := desc.FindFormat(&h264f); m != nil {
		dec, err := h264f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		src.vMedia, src.vFormat, src.vDec = m, h264f, dec
		src.sps, src.pps = h264f.SafeParams()
	}
	var h265f *format.H265
	if src.vMedia == nil {
		if m := desc.FindFormat(&h265f); m != nil {
			dec, err := h265f.CreateDecoder()
			if err != nil {
				return nil, err
			}
			src.vMedia, src.hFormat, src.hDec = m, h265f, dec
			src.vps, src.sps, src.pps = h265f.SafeParams()
		}
	}
	var aacf *format.MPEG4Audio
	if m := desc.FindFormat(&aacf); m != nil && aacf.Config != nil {
		dec, err := aacf.CreateDecoder()
		if err != nil {
			return nil, err
		}
		src.aMedia, src.aFormat, src.aDec = m, aacf, dec
	}
	var opusf *format.Opus
	if src.aMedia == nil {
		if m := desc.FindFormat(&opusf); m != nil {
			dec, err := opusf.CreateDecoder()
			if err != nil {
				return nil, err
			}
			src.aMedia, src.oFormat, src.oDec = m, opusf, dec
		}
	}
	if src.vMedia == nil && src.aMedia == nil {
		return nil, errors.New("no H.264, H.265, AAC or Opus track")
	}
	return src, nil
}

// start registers the packet callbacks of a recording session.
func (src *source) start(ss *gortsplib.ServerSession) {
	if src.hFormat != nil {
		src.mu.Lock()
		src.writeHEVCConfig()
		src.mu.Unlock()
		ss.OnPacketRTP(src.vMedia, src.hFormat, func(pkt *rtp.Packet) {
			pts, ok := ss.PacketPTS(src.vMedia, pkt)
			if !ok {
				return
			}
			au, err := src.hDec.Decode(pkt)
			if err != nil {
				return
			}
			src.mu.Lock()
			defer src.mu.Unlock()
			src.writeH265(au, pts)
		})
	}
	if src.vFormat != nil {
		src.mu.Lock()
		src.writeVideoConfig()
		src.mu.Unlock()
		ss.OnPacketRTP(src.vMedia, src.vFormat, func(pkt *rtp.Packet) {
			pts, ok := ss.PacketPTS(src.vMedia, pkt)
			if !ok {
				return
			}
			au, err := src.vDec.Decode(pkt)
			if err != nil {
				return // more packets needed, or loss
			}
			src.mu.Lock()
			defer src.mu.Unlock()
			src.writeH264(au, pts)
		})
	}
	if src.oFormat != nil {
		src.mu.Lock()
		src.writeOpusConfig()
		src.mu.Unlock()
		ss.OnPacketRTP(src.aMedia, src.oFormat, func(pkt *rtp.Packet) {
			pts, ok := ss.PacketPTS(src.aMedia, pkt)
			if !ok {
				return
			}
			frame, err := src.oDec.Decode(pkt)
			if err != nil || len(frame) == 0 {
				return
			}
			body := make([]byte, 5+len(frame))
			body[0] = flv.SoundExHdr<<4 | flv.AudioCodedFrames
			copy(body[1:5], "Opus")
			copy(body[5:], frame)
			src.mu.Lock()
			defer src.mu.Unlock()
			src.stream.WritePacket(flv.TagAudio, msTimestamp(pts, 48000), body)
		})
	}
	if src.aFormat != nil {
		src.mu.Lock()
		src.writeAACConfig()
		src.mu.Unlock()
		ss.OnPacketRTP(src.aMedia, src.aFormat, func(pkt *rtp.Packet) {
			pts, ok := ss.PacketPTS(src.aMedia, pkt)
			if !ok {
				return
			}
			aus, err := src.aDec.Decode(pkt)
			if err != nil {
				return
			}
			src.mu.Lock()
			defer src.mu.Unlock()
			src.writeAAC(aus, pts)
		})
	}
}

// writeVideoConfig publishes the AVC sequence header for the current SPS/PPS.
func (src *source) writeVideoConfig() {
	if len(src.sps) < 4 || len(src.pps) == 0 {
		return
	}
	body := []byte{0x17, 0, 0, 0, 0}
	body, err := flv.AppendAVCConfig(body, src.sps, src.pps)
	if err != nil {
		return
	}
	src.stream.WritePacket(flv.TagVideo, 0, body)
}

func (src *source) writeH264(au [][]byte, pts int64) {
	size := 0
	idr := false
	filtered := au[:0:0]
	configChanged := false
	for _, nalu := range au {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeSPS:
			configChanged = keepParam(&src.sps, nalu) || configChanged
			continue
		case h264.NALUTypePPS:
			configChanged = keepParam(&src.pps, nalu) || configChanged
			continue
		case h264.NALUTypeAccessUnitDelimiter:
			continue
		case h264.NALUTypeIDR:
			idr = true
		}
		filtered = append(filtered, nalu)
		size += 4 + len(nalu)
	}
	if configChanged {
		src.writeVideoConfig()
	}
	if len(filtered) == 0 {
		return
	}
	if !src.gotIDR {
		if !idr {
			return
		}
		src.gotIDR = true
		src.dts = h264.NewDTSExtractor()
	}
	dtsAU := au
	if idr && len(src.sps) > 0 && len(src.pps) > 0 {
		// the DTS extractor reads the SPS; publishers often send it only in the SDP.
		dtsAU = append([][]byte{src.sps, src.pps}, filtered...)
	}
	dts, err := src.dts.Extract(dtsAU, pts)
	if err != nil {
		src.log.Debug("RTSP source: DTS", "err", err)
		return
	}
	body := make([]byte, 5, 5+size)
	body[0] = 0x27
	if idr {
		body[0] = 0x17
	}
	body[1] = 1
	cts := (pts - dts) * 1000 / 90000
	body[2], body[3], body[4] = byte(cts>>16), byte(cts>>8), byte(cts)
	body = appendNALUs(body, filtered)
	src.stream.WritePacket(flv.TagVideo, msTimestamp(dts, 90000), body)
}

// writeHEVCConfig publishes the Enhanced RTMP H.265 sequence start.
func (src *source) writeHEVCConfig() {
	if len(src.vps) == 0 || len(src.sps) == 0 || len(src.pps) == 0 {
		return
	}
	body := []byte{0x80 | flv.FrameKey<<4 | flv.VideoSequenceStart, 'h', 'v', 'c', '1'}
	body, err := flv.AppendHEVCConfig(body, src.vps, src.sps, src.pps)
	if err != nil {
		src.log.Debug("RTSP source: HEVC config", "err", err)
		return
	}
	src.stream.WritePacket(flv.TagVideo, 0, body)
}

func (src *source) writeH265(au [][]byte, pts int64) {
	size := 0
	irap := false
	filtered := au[:0:0]
	configChanged := false
	for _, nalu := range au {
		if len(nalu) < 2 {
			continue
		}
		typ := h265.NALUType((nalu[0] >> 1) & 0x3f)
		switch typ {
		case h265.NALUType_VPS_NUT:
			configChanged = keepParam(&src.vps, nalu) || configChanged
			continue
		case h265.NALUType_SPS_NUT:
			configChanged = keepParam(&src.sps, nalu) || configChanged
			continue
		case h265.NALUType_PPS_NUT:
			configChanged = keepParam(&src.pps, nalu) || configChanged
			continue
		case h265.NALUType_AUD_NUT:
			continue
		}
		if typ >= h265.NALUType_BLA_W_LP && typ <= h265.NALUType_CRA_NUT {
			irap = true
		}
		filtered = append(filtered, nalu)
		size += 4 + len(nalu)
	}
	if configChanged {
		src.writeHEVCConfig()
	}
	if len(filtered) == 0 {
		return
	}
	if !src.gotIDR {
		if !irap {
			return
		}
		src.gotIDR = true
		src.hDTS = h265.NewDTSExtractor()
	}
	dtsAU := au
	if irap && len(src.vps) > 0 && len(src.sps) > 0 && len(src.pps) > 0 {
		dtsAU = append([][]byte{src.vps, src.sps, src.pps}, filtered...)
	}
	dts, err := src.hDTS.Extract(dtsAU, pts)
	if err != nil {
		src.log.Debug("RTSP source: DTS", "err", err)
		return
	}
	frameType := flv.FrameInter
	if irap {
		frameType = flv.FrameKey
	}
	body := make([]byte, 8, 8+size)
	body[0] = 0x80 | frameType<<4 | flv.VideoCodedFrames
	copy(body[1:5], "hvc1")
	cts := (pts - dts) * 1000 / 90000
	body[5], body[6], body[7] = byte(cts>>16), byte(cts>>8), byte(cts)
	body = appendNALUs(body, filtered)
	src.stream.WritePacket(flv.TagVideo, msTimestamp(dts, 90000), body)
}

// keepParam stores a copy of parameter set nalu in *dst and reports
// whether it differs from the one there.
func keepParam(dst *[]byte, nalu []byte) bool {
	if bytes.Equal(nalu, *dst) {
		return false
	}
	*dst = append([]byte(nil), nalu...)
	return true
}

// appendNALUs appends nalus to the body of an FLV video tag, each behind
// its 4-byte length (AVCC/HVCC).
func appendNALUs(body []byte, nalus [][]byte) []byte {
	for _, nalu := range nalus {
		l := len(nalu)
		body = append(body, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
		body = append(body, nalu...)
	}
	return body
}

// writeOpusConfig publishes the Enhanced RTMP Opus sequence start (an
// OpusHead identification header).
func (src *source) writeOpusConfig() {
	channels := src.oFormat.ChannelCount
	if channels <= 0 {
		channels = 2
	}
	// RTP carries no pre-skip: 3840 samples (80 ms) is RFC 7845's
	// recommended decoder pre-roll for a decoder starting mid-stream, which
	// every viewer of a live stream is. The fields are little-endian
	// (mediacommon's opus.IDHeader.Marshal writes them big-endian).
	h := flv.OpusHead{ChannelCount: uint8(channels), PreSkip: 3840, InputSampleRate: 48000}
	if channels > 2 {
		// multiopus: mapping family 1 with libopus' (and libwebrtc's)
		// default layout, since the SDP does not give one gortsplib keeps.
		if channels > len(opusSurround) {
			src.log.Debug("RTSP source: Opus channel count not supported", "channels", channels)
			return
		}
		m := opusSurround[channels-1]
		h.ChannelMappingFamily, h.StreamCount, h.CoupledCount, h.ChannelMapping = 1, m.streams, m.coupled, m.mapping
	}
	body := []byte{flv.SoundExHdr<<4 | flv.AudioSequenceStart, 'O', 'p', 'u', 's'}
	body = flv.AppendOpusHead(body, h)
	src.stream.WritePacket(flv.TagAudio, 0, body)
}

// opusSurround are the streams, coupled streams and channel mapping of
// Opus mapping family 1 (Vorbis channel order) for 1 to 8 channels, as
// libopus' surround encoder lays them out.
var opusSurround = [8]struct {
	streams, coupled uint8
	mapping          []uint8
}{
	{1, 0, []uint8{0}},
	{1, 1, []uint8{0, 1}},
	{2, 1, []uint8{0, 2, 1}},
	{2, 2, []uint8{0, 1, 2, 3}},
	{3, 2, []uint8{0, 4, 1, 2, 3}},
	{4, 2, []uint8{0, 4, 1, 2, 3, 5}},
	{4, 3, []uint8{0, 4, 1, 2, 3, 5, 6}},
	{5, 3, []uint8{0, 6, 1, 2, 3, 4, 5, 7}},
}

// writeAACConfig publishes the AAC sequence header, from the SDP: like
// the other configurations, before the first frame (a publisher taking a
// stream back replaces the previous one's headers with what it sends
// before its first frame).
func (src *source) writeAACConfig() {
	conf, err := src.aFormat.Config.Marshal()
	if err != nil {
		src.log.Debug("RTSP source: AAC config", "err", err)
		return
	}
	src.stream.WritePacket(flv.TagAudio, 0, append([]byte{0xaf, 0}, conf...))
	src.aSent = true
}

func (src *source) writeAAC(aus [][]byte, pts int64) {
	rate := int64(src.aFormat.ClockRate())
	if !src.aSent {
		return
	}
	for i, au := range aus {
		body := make([]byte, 2+len(au))
		body[0], body[1] = 0xaf, 1
		copy(body[2:], au)
		src.stream.WritePacket(flv.TagAudio, msTimestamp(pts+int64(i)*1024, rate), body)
	}
}

// msTimestamp converts a timestamp in clock-rate units to milliseconds,
// clamping negative values to zero.
func msTimestamp(v, clockRate int64) uint32 {
	if v <= 0 || clockRate <= 0 {
		return 0
	}
	return uint32(v * 1000 / clockRate)
}

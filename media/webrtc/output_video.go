package webrtc

import (
	"bytes"
	"fmt"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/bits"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/mofang-live/mofang/media/flv"
)

// rtpPayloadMax is the largest RTP payload made: 1200-byte packets (pion's
// and libwebrtc's outbound MTU) with room for the SRTP tag and extensions.
const rtpPayloadMax = 1188

// videoPacketizer turns the FLV video bodies of one stream into RTP
// payloads: AVCC/HVCC NAL units, the parameter sets put in front of every
// key frame, packetized once (RFC 6184 / RFC 7798, mode 1). It also tells
// whether the stream has B-frames. It is used by the WritePacket goroutine
// only.
type videoPacketizer struct {
	params flv.VideoParams
	ok     bool // params are usable
	h264   *rtph264.Encoder
	h265   *rtph265.Encoder
	nalus  [][]byte
	au     [][]byte

	// B-frame detection
	spsReorder bool // the SPS announces reordered frames
	bframes    bool
	maxPTS     int64
	anyFrame   bool
	sawKey     bool
}

// configure applies a sequence header; it reports whether it differs from
// the previous one.
func (vp *videoPacketizer) configure(p flv.VideoParams) (changed bool, err error) {
	if vp.ok && p.FourCC == vp.params.FourCC && bytes.Equal(p.VPS, vp.params.VPS) &&
		bytes.Equal(p.SPS, vp.params.SPS) && bytes.Equal(p.PPS, vp.params.PPS) && p.LengthSize == vp.params.LengthSize {
		return false, nil
	}
	if !vp.ok || p.FourCC != vp.params.FourCC {
		vp.h264, vp.h265 = nil, nil
		vp.sawKey = false
		switch p.FourCC {
		case flv.FourCCAVC:
			vp.h264 = &rtph264.Encoder{PayloadType: 96, PacketizationMode: 1, PayloadMaxSize: rtpPayloadMax}
			err = vp.h264.Init()
		case flv.FourCCHEVC:
			vp.h265 = &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: rtpPayloadMax}
			err = vp.h265.Init()
		default:
			err = fmt.Errorf("video codec %q cannot be sent over WebRTC", flv.VideoCodecName(p.FourCC))
		}
		if err != nil {
			vp.ok = false
			return true, err
		}
	}
	vp.params, vp.ok = p, true
	vp.spsReorder = spsReorders(p)
	vp.bframes = vp.spsReorder
	vp.anyFrame = false
	return true, nil
}

// spsReorders reports whether an H.264 SPS announces reordered frames
// (VUI max_num_reorder_frames > 0, as x264 writes with B-frames on).
func spsReorders(p flv.VideoParams) bool {
	if p.FourCC != flv.FourCCAVC {
		return false
	}
	var sps h264.SPS
	if sps.Unmarshal(p.SPS) != nil {
		return false
	}
	if sps.ProfileIdc == 66 { // baseline has no B slices
		return false
	}
	return sps.VUI != nil && sps.VUI.BitstreamRestriction != nil && sps.VUI.BitstreamRestriction.MaxNumReorderFrames > 0
}

// profileIdc returns the H.264 profile_idc of the stream (0 if unknown).
func (vp *videoPacketizer) profileIdc() uint8 {
	if vp.params.FourCC != flv.FourCCAVC || len(vp.params.SPS) < 2 {
		return 0
	}
	return vp.params.SPS[1]
}

// packetize turns the NAL units of one frame into RTP packets. pts is the
// presentation time in ms. It returns nil before the first key frame.
func (vp *videoPacketizer) packetize(data []byte, pts int64) (pkts []*rtp.Packet, key bool, err error) {
	if !vp.ok {
		return nil, false, nil
	}
	vp.nalus, err = flv.SplitNALUs(data, vp.params.LengthSize, vp.nalus)
	if err != nil {
		return nil, false, err
	}
	if len(vp.nalus) == 0 {
		return nil, false, nil
	}
	// A frame presented before one decoded earlier is a B-frame.
	if vp.anyFrame && pts < vp.maxPTS {
		vp.bframes = true
	}
	if !vp.anyFrame || pts > vp.maxPTS {
		vp.maxPTS = pts
	}
	vp.anyFrame = true

	hevc := vp.params.FourCC == flv.FourCCHEVC
	hasParams := false
	for _, n := range vp.nalus {
		if hevc {
			t := h265.NALUType((n[0] >> 1) & 0x3f)
			switch {
			case t >= h265.NALUType_BLA_W_LP && t <= h265.NALUType_CRA_NUT:
				key = true
			case t == h265.NALUType_VPS_NUT || t == h265.NALUType_SPS_NUT || t == h265.NALUType_PPS_NUT:
				hasParams = true
			}
		} else {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeIDR:
				key = true
			case h264.NALUTypeSPS, h264.NALUTypePPS:
				hasParams = true
			case h264.NALUTypeNonIDR:
				if !vp.bframes && isBSlice(n) {
					vp.bframes = true
				}
			}
		}
	}
	if key {
		vp.sawKey = true
	}
	if !vp.sawKey {
		return nil, false, nil
	}
	au := vp.au[:0]
	if key && !hasParams {
		if hevc {
			au = append(au, vp.params.VPS)
		}
		au = append(au, vp.params.SPS, vp.params.PPS)
	}
	for _, n := range vp.nalus {
		if hevc && h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_AUD_NUT ||
			!hevc && h264.NALUType(n[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter {
			continue
		}
		au = append(au, n)
	}
	vp.au = au
	if len(au) == 0 {
		return nil, false, nil
	}
	if hevc {
		pkts, err = vp.h265.Encode(au)
	} else {
		pkts, err = vp.h264.Encode(au)
	}
	return pkts, key, err
}

// isBSlice reports whether an H.264 coded slice NAL unit is a B slice
// (slice_type 1 or 6, the second Exp-Golomb value of the slice header).
func isBSlice(nalu []byte) bool {
	if len(nalu) < 2 {
		return false
	}
	head := nalu[1:min(len(nalu), 16)]
	buf := h264.EmulationPreventionRemove(head)
	pos := 0
	if _, err := bits.ReadGolombUnsigned(buf, &pos); err != nil { // first_mb_in_slice
		return false
	}
	st, err := bits.ReadGolombUnsigned(buf, &pos)
	if err != nil {
		return false
	}
	return st%5 == 1
}

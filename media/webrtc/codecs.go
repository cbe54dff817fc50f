package webrtc

import (
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// Payload types of the codecs the server registers. Answers use the
// offer's numbers; these only matter for pion's own offers.
const (
	ptH264Baseline  = 102
	ptH264CBaseline = 125
	ptH264Main      = 127
	ptH264High      = 123
	ptH265Main      = 116
	ptH265Main10    = 118
	ptOpus          = 111
)

var videoFeedback = []webrtc.RTCPFeedback{
	{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"},
}

// serverVideoCodecs are the video codecs the server sends and receives,
// H.264 first: H.264 (packetization mode 1, every profile browsers offer),
// then H.265 main and main 10.
func serverVideoCodecs() []webrtc.RTPCodecParameters {
	h264 := func(pt webrtc.PayloadType, profile string) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{PayloadType: pt, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile,
			RTCPFeedback: videoFeedback,
		}}
	}
	h265 := func(pt webrtc.PayloadType, profile string) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{PayloadType: pt, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH265, ClockRate: 90000,
			SDPFmtpLine:  "level-id=180;profile-id=" + profile + ";tier-flag=0;tx-mode=SRST",
			RTCPFeedback: videoFeedback,
		}}
	}
	return []webrtc.RTPCodecParameters{
		h264(ptH264CBaseline, "42e01f"), h264(ptH264Baseline, "42001f"), h264(ptH264Main, "4d001f"),
		h264(ptH264High, "640032"), h265(ptH265Main, "1"), h265(ptH265Main10, "2"),
	}
}

// registerCodecs registers the server's codecs: serverVideoCodecs and
// Opus.
func registerCodecs(me *webrtc.MediaEngine) error {
	for _, c := range serverVideoCodecs() {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("webrtc: register %s: %w", c.MimeType, err)
		}
	}
	opus := webrtc.RTPCodecParameters{PayloadType: ptOpus, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
	}}
	if err := me.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("webrtc: register Opus: %w", err)
	}
	return nil
}

// fmtpParam returns the value of key in an a=fmtp parameter line.
func fmtpParam(line, key string) (string, bool) {
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// pickCodec chooses, among the negotiated codecs of a sender, the one to
// send a stream's video or audio with. want is the MIME type; for H.264
// a codec whose profile_idc matches profileIdc is preferred, then any in
// packetization mode 1.
func pickCodec(params []webrtc.RTPCodecParameters, want string, profileIdc uint8) (webrtc.RTPCodecParameters, bool) {
	var best webrtc.RTPCodecParameters
	score := -1
	for _, p := range params {
		if !strings.EqualFold(p.MimeType, want) {
			continue
		}
		s := 0
		if strings.EqualFold(want, webrtc.MimeTypeH264) {
			if pm, _ := fmtpParam(p.SDPFmtpLine, "packetization-mode"); pm != "1" {
				continue
			}
			if pl, ok := fmtpParam(p.SDPFmtpLine, "profile-level-id"); ok && len(pl) == 6 &&
				strings.EqualFold(pl[:2], fmt.Sprintf("%02x", profileIdc)) {
				s = 1
			}
		}
		if s > score {
			best, score = p, s
		}
	}
	return best, score >= 0
}

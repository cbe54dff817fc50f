package webrtc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// MaxOfferSize is the largest SDP offer accepted, in bytes. Browser offers
// are 3-10 KB.
const MaxOfferSize = 64 << 10

// offerCodec is one payload type of an offered media section.
type offerCodec struct {
	pt   uint8
	name string // lower case encoding name: "h264", "h265", "opus", ...
	fmtp string
}

// offerMedia is one m= section of an offer.
type offerMedia struct {
	kind   string // "audio" or "video"
	mid    string
	dir    string // "sendrecv", "sendonly", "recvonly" or "inactive"
	codecs []offerCodec
}

// offerInfo is what the server reads from an offer before handing it to
// pion: enough to refuse it with a clear error.
type offerInfo struct {
	media []offerMedia
	ufrag string
}

// parseOffer parses and checks an SDP offer.
func parseOffer(offer string) (*offerInfo, error) {
	if len(offer) > MaxOfferSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadOffer, len(offer), MaxOfferSize)
	}
	if strings.TrimSpace(offer) == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadOffer)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	info := &offerInfo{}
	sessUfrag, _ := sd.Attribute("ice-ufrag")
	_, sessFP := sd.Attribute("fingerprint")
	for _, md := range sd.MediaDescriptions {
		m := offerMedia{kind: md.MediaName.Media, dir: "sendrecv"}
		if m.kind != "audio" && m.kind != "video" {
			continue
		}
		if md.MediaName.Port.Value == 0 {
			continue // rejected / stopped section
		}
		m.mid, _ = md.Attribute("mid")
		for _, d := range []string{"sendrecv", "sendonly", "recvonly", "inactive"} {
			if _, ok := md.Attribute(d); ok {
				m.dir = d
			}
		}
		ufrag, ok := md.Attribute("ice-ufrag")
		if !ok {
			ufrag = sessUfrag
		}
		if ufrag == "" {
			return nil, fmt.Errorf("%w: no ice-ufrag", ErrBadOffer)
		}
		if info.ufrag == "" {
			info.ufrag = ufrag
		}
		if _, ok := md.Attribute("fingerprint"); !ok && !sessFP {
			return nil, fmt.Errorf("%w: no DTLS fingerprint", ErrBadOffer)
		}
		fmtps := map[string]string{}
		for _, a := range md.Attributes {
			if a.Key == "fmtp" {
				pt, rest, _ := strings.Cut(a.Value, " ")
				fmtps[pt] = rest
			}
		}
		for _, a := range md.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			ptStr, enc, _ := strings.Cut(a.Value, " ")
			pt, err := strconv.ParseUint(ptStr, 10, 7)
			if err != nil {
				continue
			}
			name, _, _ := strings.Cut(enc, "/")
			m.codecs = append(m.codecs, offerCodec{pt: uint8(pt), name: strings.ToLower(name), fmtp: fmtps[ptStr]})
		}
		info.media = append(info.media, m)
	}
	if len(info.media) == 0 {
		return nil, fmt.Errorf("%w: no audio or video section", ErrBadOffer)
	}
	return info, nil
}

// has reports whether a section of the given kind, able to carry media in
// the given direction ("send": the offerer sends, "recv": it receives),
// offers the codec. For H.264 only packetization mode 1 counts.
func (o *offerInfo) has(kind, codec, way string) bool {
	for _, m := range o.media {
		if m.kind != kind || m.dir == "inactive" {
			continue
		}
		if way == "recv" && m.dir == "sendonly" || way == "send" && m.dir == "recvonly" {
			continue
		}
		for _, c := range m.codecs {
			if c.name != codec {
				continue
			}
			if codec == "h264" {
				if pm, _ := fmtpParam(c.fmtp, "packetization-mode"); pm != "1" {
					continue
				}
			}
			return true
		}
	}
	return false
}

// hasKind reports whether the offer has a usable section of that kind.
func (o *offerInfo) hasKind(kind string) bool {
	for _, m := range o.media {
		if m.kind == kind && m.dir != "inactive" {
			return true
		}
	}
	return false
}

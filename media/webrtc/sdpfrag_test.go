package webrtc

import (
	"errors"
	"strings"
	"testing"
)

const rfc8840Fragment = "a=ice-ufrag:EsAw\r\n" +
	"a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" +
	"m=audio 9 RTP/AVP 0\r\n" +
	"a=mid:0\r\n" +
	"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n" +
	"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n" +
	"a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag EsAw network-id 1\r\n" +
	"a=end-of-candidates\r\n"

func TestParseSDPFragment(t *testing.T) {
	f, err := parseSDPFragment([]byte(rfc8840Fragment))
	if err != nil {
		t.Fatal(err)
	}
	if f.ufrag != "EsAw" || f.pwd != "P2uYro0UCOQ4zxjKXaWCBui1" || !f.endOfCandidates || len(f.candidates) != 3 {
		t.Fatalf("parsed %+v", f)
	}
	if c := f.candidates[1]; c.mid != "0" || c.index != 0 || !strings.HasPrefix(c.line, "candidate:3471623853 1 udp") {
		t.Errorf("candidate %+v", c)
	}
	mdns, err := parseSDPFragment([]byte("a=candidate:1 1 udp 1 6a1b0c2d-aaaa.local 5000 typ host\n"))
	if err != nil || len(mdns.candidates) != 1 || !mdns.candidates[0].mDNS {
		t.Errorf("mDNS candidate: %+v %v", mdns, err)
	}
	for _, bad := range []string{
		"garbage",
		"a=candidate:1 1 udp 1 192.0.2.1 5000 typ\r\n",
		"a=candidate:1 1 sctp 1 192.0.2.1 5000 typ host\r\n",
		"a=candidate:1 1 udp -5 192.0.2.1 5000 typ host\r\n",
		"a=candidate:1 1 udp 1 192.0.2.1 70000 typ host\r\n",
		"a=candidate:1 1 udp 1 not/an/ip 5000 typ host\r\n",
		"a=candidate:1 1 udp 1 192.0.2.1 5000 type host\r\n",
		"a=candidate:1 0 udp 1 192.0.2.1 5000 typ host\r\n",
		"a=candidate:1 1 udp 1 192.0.2.1 5000 typ bogus\r\n",
		"a=ice-ufrag:EsAw\r\n", // no pwd
		"a=ice-ufrag:E\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n",
		"a=ice-pwd:short\r\na=ice-ufrag:EsAw\r\n",
		"a=mid:0\r\na=candidate:1 1 udp 1 192.0.2.1 5000 typ host\x00\r\n",
		"x=unknown\r\n",
		strings.Repeat("a=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\n", maxCandidates+1),
		"a=" + strings.Repeat("x", maxFragmentLine) + "\r\n",
		strings.Repeat("a=end-of-candidates\r\n", MaxFragmentSize/10),
	} {
		if _, err := parseSDPFragment([]byte(bad)); !errors.Is(err, ErrBadFragment) {
			t.Errorf("%.60q: err %v, want ErrBadFragment", bad, err)
		}
	}
}

func FuzzParseSDPFragment(f *testing.F) {
	f.Add([]byte(rfc8840Fragment))
	f.Add([]byte("a=end-of-candidates\n"))
	f.Add([]byte("a=candidate:1 1 udp 1 x.local 5000 typ host\n"))
	f.Add([]byte("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=candidate:2 1 TCP 2 ::1 9 typ host tcptype passive\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		frag, err := parseSDPFragment(b)
		if err != nil {
			if !errors.Is(err, ErrBadFragment) {
				t.Fatalf("error %v is not ErrBadFragment", err)
			}
			return
		}
		if len(frag.candidates) > maxCandidates {
			t.Fatalf("%d candidates", len(frag.candidates))
		}
		for _, c := range frag.candidates {
			if !strings.HasPrefix(c.line, "candidate:") || strings.ContainsAny(c.line, "\r\n\x00") {
				t.Fatalf("candidate line %q", c.line)
			}
			// what is accepted parses again the same
			again, err := parseCandidate(strings.TrimPrefix(c.line, "candidate:"))
			if err != nil || again.line != c.line {
				t.Fatalf("candidate %q does not parse again: %v", c.line, err)
			}
		}
	})
}

func FuzzParseOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 00\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=mid:0\r\na=recvonly\r\n" +
		"a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n")
	f.Add("v=0\r\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		info, err := parseOffer(s)
		if err != nil {
			if !errors.Is(err, ErrBadOffer) {
				t.Fatalf("error %v is not ErrBadOffer", err)
			}
			return
		}
		if len(info.media) == 0 || info.ufrag == "" {
			t.Fatalf("accepted offer without media or ufrag: %+v", info)
		}
		_ = info.has("video", "h264", "recv")
		_ = info.has("audio", "opus", "send")
	})
}

package webrtc

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Limits of a trickle ICE SDP fragment (RFC 8840). A browser sends a
// handful of candidates per PATCH; these bound what a hostile client can
// make us parse and hand to the ICE agent.
const (
	// MaxFragmentSize is the largest fragment body accepted, in bytes.
	MaxFragmentSize = 16 << 10
	maxFragmentLine = 1024
	maxCandidates   = 64
)

// iceCandidate is one a=candidate line of a fragment.
type iceCandidate struct {
	// line is the attribute value ("candidate:..."), as pion's
	// ICECandidateInit wants it.
	line  string
	mid   string
	index uint16 // m= line index
	// mDNS is true for a ".local" host name, which an ICE-lite server
	// cannot use and skips.
	mDNS bool
}

// sdpFragment is a parsed application/trickle-ice-sdpfrag body.
type sdpFragment struct {
	ufrag, pwd      string
	candidates      []iceCandidate
	endOfCandidates bool
}

// parseSDPFragment parses a trickle ICE SDP fragment (RFC 8840 section 9,
// as used by WHIP/WHEP PATCH requests). It accepts the lines a fragment
// may hold (a=ice-ufrag, a=ice-pwd, a=ice-options, a=ice-lite, a=group,
// m=, a=mid, a=candidate, a=end-of-candidates) and ignores other a=
// attributes; anything that is not an SDP line is an error.
func parseSDPFragment(b []byte) (sdpFragment, error) {
	var f sdpFragment
	if len(b) > MaxFragmentSize {
		return f, fmt.Errorf("%w: %d bytes, more than %d", ErrBadFragment, len(b), MaxFragmentSize)
	}
	mline := -1
	mid := ""
	for n := 1; len(b) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		if len(line) > maxFragmentLine {
			return f, fmt.Errorf("%w: line %d is %d bytes long", ErrBadFragment, n, len(line))
		}
		if len(line) < 2 || line[1] != '=' {
			return f, fmt.Errorf("%w: line %d is not an SDP line", ErrBadFragment, n)
		}
		if !printable(line) {
			return f, fmt.Errorf("%w: line %d has control or non-ASCII characters", ErrBadFragment, n)
		}
		s := string(line[2:])
		switch line[0] {
		case 'm':
			if mline >= maxCandidates {
				return f, fmt.Errorf("%w: too many m= lines", ErrBadFragment)
			}
			mline++
			mid = ""
			continue
		case 'a':
		default:
			// v=, o=, s=, t=, c= ... are not part of a fragment but
			// harmless; any other letter is not SDP.
			if !strings.ContainsRune("vostcbizkre", rune(line[0])) {
				return f, fmt.Errorf("%w: line %d has unknown type %q", ErrBadFragment, n, line[0])
			}
			continue
		}
		name, value, _ := strings.Cut(s, ":")
		switch name {
		case "ice-ufrag":
			if !iceChars(value, 4, 256) {
				return f, fmt.Errorf("%w: invalid ice-ufrag", ErrBadFragment)
			}
			f.ufrag = value
		case "ice-pwd":
			if !iceChars(value, 22, 256) {
				return f, fmt.Errorf("%w: invalid ice-pwd", ErrBadFragment)
			}
			f.pwd = value
		case "mid":
			if value == "" || len(value) > 64 {
				return f, fmt.Errorf("%w: invalid mid", ErrBadFragment)
			}
			mid = value
		case "candidate":
			if len(f.candidates) >= maxCandidates {
				return f, fmt.Errorf("%w: more than %d candidates", ErrBadFragment, maxCandidates)
			}
			c, err := parseCandidate(value)
			if err != nil {
				return f, fmt.Errorf("%w: line %d: %v", ErrBadFragment, n, err)
			}
			c.mid = mid
			if mline > 0 {
				c.index = uint16(mline)
			}
			f.candidates = append(f.candidates, c)
		case "end-of-candidates":
			f.endOfCandidates = true
		}
	}
	if (f.ufrag == "") != (f.pwd == "") {
		return f, fmt.Errorf("%w: ice-ufrag and ice-pwd must come together", ErrBadFragment)
	}
	return f, nil
}

// parseCandidate checks the fields of a candidate attribute value (RFC
// 8839 section 5.1): foundation component transport priority address port
// "typ" type [extensions].
func parseCandidate(value string) (iceCandidate, error) {
	c := iceCandidate{line: "candidate:" + value}
	fields := strings.Fields(value)
	if len(fields) < 8 {
		return c, fmt.Errorf("candidate has %d fields, want at least 8", len(fields))
	}
	if !iceChars(fields[0], 1, 32) {
		return c, fmt.Errorf("invalid candidate foundation")
	}
	if comp, err := strconv.ParseUint(fields[1], 10, 8); err != nil || comp < 1 {
		return c, fmt.Errorf("invalid candidate component %q", fields[1])
	}
	switch strings.ToLower(fields[2]) {
	case "udp", "tcp":
	default:
		return c, fmt.Errorf("invalid candidate transport %q", fields[2])
	}
	if _, err := strconv.ParseUint(fields[3], 10, 32); err != nil {
		return c, fmt.Errorf("invalid candidate priority %q", fields[3])
	}
	addr := fields[4]
	if _, err := netip.ParseAddr(addr); err != nil {
		if !strings.HasSuffix(addr, ".local") || !hostChars(addr) {
			return c, fmt.Errorf("invalid candidate address %q", addr)
		}
		c.mDNS = true
	}
	if _, err := strconv.ParseUint(fields[5], 10, 16); err != nil {
		return c, fmt.Errorf("invalid candidate port %q", fields[5])
	}
	if fields[6] != "typ" {
		return c, fmt.Errorf("candidate without typ")
	}
	switch fields[7] {
	case "host", "srflx", "prflx", "relay":
	default:
		return c, fmt.Errorf("invalid candidate type %q", fields[7])
	}
	return c, nil
}

// printable reports whether b is printable ASCII (tabs allowed).
func printable(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}

// iceChars reports whether s is an ice-char string (RFC 8839: ALPHA /
// DIGIT / "+" / "/") of length within [lo, hi].
func iceChars(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// hostChars reports whether s looks like a host name.
func hostChars(s string) bool {
	if len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

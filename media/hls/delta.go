package hls

import (
	"bytes"
	"strconv"
	"time"
)

// deriveDelta returns the delta update (_HLS_skip=YES) of a Low-Latency
// media playlist from its full text as gohlslib renders it, without
// asking gohlslib to render it again: the same text but for the
// EXT-X-MAP line, which becomes EXT-X-SKIP, and the oldest segments it
// skips. gohlslib counts, from the oldest, the segments whose running sum
// of durations stays under six target durations, and skips as many of
// the oldest as are left over (muxerStream's generateMediaPlaylistFMP4).
// ok is false when the text is not what this expects, or when a running
// sum is too near that boundary to be sure of gohlslib's rounding: the
// caller then asks gohlslib.
func deriveDelta(full []byte) (delta []byte, ok bool) {
	const mapTag, targetTag = "#EXT-X-MAP:", "#EXT-X-TARGETDURATION:"
	var (
		target   time.Duration
		mapStart = -1 // offsets of the EXT-X-MAP line
		mapEnd   int
		segEnds  []int // offset after each segment's URI line
		durs     []time.Duration
		pending  time.Duration // EXTINF of the segment being read
		haveInf  bool
	)
	for off := 0; off < len(full); {
		end := bytes.IndexByte(full[off:], '\n')
		if end < 0 {
			return nil, false // gohlslib ends every line
		}
		end += off + 1
		line := full[off : end-1]
		switch {
		case bytes.HasPrefix(line, []byte(targetTag)):
			v, err := strconv.Atoi(string(line[len(targetTag):]))
			if err != nil || v <= 0 {
				return nil, false
			}
			target = time.Duration(v) * time.Second
		case bytes.HasPrefix(line, []byte(mapTag)):
			if mapStart >= 0 || len(segEnds) > 0 {
				return nil, false
			}
			mapStart, mapEnd = off, end
		case bytes.HasPrefix(line, []byte("#EXTINF:")):
			v := line[len("#EXTINF:"):]
			if i := bytes.IndexByte(v, ','); i >= 0 {
				v = v[:i]
			}
			sec, err := strconv.ParseFloat(string(v), 64)
			if err != nil || sec < 0 {
				return nil, false
			}
			pending, haveInf = time.Duration(sec*float64(time.Second)), true
		case len(line) > 0 && line[0] != '#':
			if !haveInf || mapStart < 0 {
				return nil, false
			}
			segEnds = append(segEnds, end)
			durs = append(durs, pending)
			haveInf = false
		}
		off = end
	}
	if target == 0 || mapStart < 0 {
		return nil, false
	}
	// gohlslib: shown counts the oldest segments while their sum stays
	// under the boundary; the segments before the last shown are skipped.
	boundary := 6 * target
	const margin = time.Millisecond // EXTINF has 5 decimals: 10 µs each
	var sum time.Duration
	shown := 0
	for _, d := range durs {
		sum += d
		if diff := sum - boundary; diff > -margin && diff < margin {
			return nil, false
		}
		if sum >= boundary {
			break
		}
		shown++
	}
	skipped := len(durs) - shown
	segStart := mapEnd // where the first segment's lines start
	if skipped > 0 {
		segStart = segEnds[skipped-1]
	}
	out := make([]byte, 0, len(full))
	out = append(out, full[:mapStart]...)
	out = append(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS="...)
	out = strconv.AppendInt(out, int64(skipped), 10)
	out = append(out, '\n')
	out = append(out, full[segStart:]...)
	return out, true
}

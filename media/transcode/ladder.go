package transcode

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Rendition is one rung of the ladder: a height in pixels, its width
// following the source's aspect.
type Rendition struct {
	// Name is "<height>p", the suffix of its streams' names.
	Name string
	// Height is the height of its video.
	Height int
}

// Heights a rendition may have.
const (
	minHeight = 16
	maxHeight = 4320
)

// ParseLadder parses a comma-separated list of renditions, "720p,480p,360p";
// the result is sorted from the highest, without repeats. An empty list
// gives none: transcoding is off.
func ParseLadder(s string) ([]Rendition, error) {
	seen := map[int]bool{}
	var out []Rendition
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		h, ok := parseHeight(strings.ToLower(f))
		if !ok {
			return nil, fmt.Errorf("rendition %q: want a height such as 480p (an even number from %d to %d, then p)", f, minHeight, maxHeight)
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, Rendition{Name: strconv.Itoa(h) + "p", Height: h})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Height > out[j].Height })
	return out, nil
}

// parseHeight reads "480p": digits without a leading zero, then "p", an
// even height within bounds (H.264 in 4:2:0 needs even sizes).
func parseHeight(s string) (int, bool) {
	digits, ok := strings.CutSuffix(s, "p")
	if !ok || digits == "" || len(digits) > 4 || digits[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	h, _ := strconv.Atoi(digits)
	return h, h >= minHeight && h <= maxHeight && h%2 == 0
}

// StreamName is the name of the stream of rendition r of source:
// "<source>_<height>p".
func StreamName(source string, r Rendition) string { return source + "_" + r.Name }

// SourceOf tells whether name has the reserved form of a rendition's
// stream, "<source>_<height>p", and returns its source and rendition.
// While transcoding is on such names are the transcoder's: clients may
// play them, never publish them.
func SourceOf(name string) (source string, r Rendition, ok bool) {
	i := strings.LastIndexByte(name, '_')
	if i <= 0 {
		return "", Rendition{}, false
	}
	h, ok := parseHeight(name[i+1:])
	if !ok {
		return "", Rendition{}, false
	}
	return name[:i], Rendition{Name: name[i+1:], Height: h}, true
}

// bitrate is the video bitrate of a rendition in kbit/s: about 2.5 Mbit/s
// at 720p, 1 Mbit/s at 480p, 500 kbit/s at 360p (the pixels' count
// times a constant), at least 150.
func bitrate(height int) int {
	return max(150, height*height/210)
}

package hls

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestDeriveDelta: over a stream's life (the clip three times, so that
// the playlist fills and old segments get skipped), after every frame the
// delta update derived from each media playlist is the text gohlslib
// renders for _HLS_skip=YES, skipping segments as well as none.
func TestDeriveDelta(t *testing.T) {
	tags := clipTags(t)
	m := newMuxer(t, Config{})
	var compared, skipping, fallbacks int
	for loop := range 3 {
		offset := uint32(loop) * (tags[len(tags)-1].Timestamp + 40)
		for _, tag := range tags {
			if err := m.WritePacket(tag.Type, tag.Timestamp+offset, tag.Body); err != nil && !errors.Is(err, errUnsupported) {
				t.Fatal(err)
			}
			g := m.current()
			if g == nil || !g.ready {
				continue
			}
			for _, name := range g.mediaNames() {
				code, _, full := render(g, name, "")
				code2, _, want := render(g, name, "_HLS_skip=YES")
				if code != http.StatusOK || code2 != http.StatusOK {
					t.Fatalf("%s: gohlslib answers %d and %d", name, code, code2)
				}
				got, ok := deriveDelta(full)
				if !ok {
					fallbacks++
					continue
				}
				compared++
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: derived delta differs from gohlslib's:\n--- full\n%s\n--- derived\n%s\n--- gohlslib\n%s", name, full, got, want)
				}
				if !strings.Contains(string(want), "SKIPPED-SEGMENTS=0\n") {
					skipping++
				}
			}
		}
	}
	t.Logf("%d deltas compared (%d skipping segments), %d left to gohlslib", compared, skipping, fallbacks)
	if compared < 1000 || skipping < 100 || fallbacks > compared/100 {
		t.Fatalf("%d deltas compared, %d skipping segments, %d fallbacks: the test did not see enough", compared, skipping, fallbacks)
	}
}

// TestDeriveDeltaRefuses: text that is not a gohlslib Low-Latency media
// playlist is left to gohlslib.
func TestDeriveDeltaRefuses(t *testing.T) {
	for _, text := range []string{
		"",
		"#EXTM3U\n",
		"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.00000,\nseg.mp4\n", // no MAP
		"#EXTM3U\n#EXT-X-TARGETDURATION:x\n#EXT-X-MAP:URI=\"i.mp4\"\n",
		"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"i.mp4\"\nseg.mp4\n",                                           // no EXTINF
		"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:1.00000,\nseg.mp4",                           // no last newline
		"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"i.mp4\"\n" + strings.Repeat("#EXTINF:1.00000,\nseg.mp4\n", 7), // 6 s: on the boundary
	} {
		if d, ok := deriveDelta([]byte(text)); ok {
			t.Errorf("deriveDelta(%q) = %q, want it left to gohlslib", text, d)
		}
	}
}

// TestDeriveDeltaShort: a playlist shorter than six target durations
// skips nothing.
func TestDeriveDeltaShort(t *testing.T) {
	head := "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n"
	segs := "#EXTINF:1.90000,\na.mp4\n#EXT-X-PART:DURATION=0.20000,URI=\"p0.mp4\"\n#EXTINF:1.00000,\nb.mp4\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p1.mp4\"\n"
	got, ok := deriveDelta([]byte(head + "#EXT-X-MAP:URI=\"init.mp4\"\n" + segs))
	if want := head + "#EXT-X-SKIP:SKIPPED-SEGMENTS=0\n" + segs; !ok || string(got) != want {
		t.Fatalf("deriveDelta = %q, %v; want %q", got, ok, want)
	}
}

func FuzzDeriveDelta(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:1.50000,\nseg.mp4\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		if d, ok := deriveDelta(text); ok && (len(d) > len(text)+40 || !bytes.Contains(d, []byte("#EXT-X-SKIP:SKIPPED-SEGMENTS="))) {
			t.Fatalf("deriveDelta(%q) = %q", text, d)
		}
	})
}

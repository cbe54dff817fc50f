package hls

import (
	"errors"
	"testing"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// clipTags returns the test clip as FLV tags (see mediatest).
func clipTags(t testing.TB, args ...string) []flv.Tag { return mediatest.ClipTags(t, args...) }

func needTool(t testing.TB, name string) { mediatest.NeedTool(t, name) }

// feed writes tags to m with timestamps shifted by offset ms.
func feed(t testing.TB, m *Muxer, tags []flv.Tag, offset uint32) {
	t.Helper()
	for _, tag := range tags {
		if err := m.WritePacket(tag.Type, tag.Timestamp+offset, tag.Body); err != nil && !errors.Is(err, errUnsupported) {
			t.Fatalf("WritePacket(type %d ts %d): %v", tag.Type, tag.Timestamp, err)
		}
	}
}

// ffprobe runs ffprobe on url (see mediatest).
func ffprobe(t testing.TB, url string, extra ...string) mediatest.ProbeResult {
	t.Helper()
	return mediatest.Probe(t, url, extra...)
}

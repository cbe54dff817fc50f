package record

import (
	"testing"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// clipTags returns the test clip as FLV tags (see mediatest).
func clipTags(t testing.TB, args ...string) []flv.Tag { return mediatest.ClipTags(t, args...) }

func needTool(t testing.TB, name string) { mediatest.NeedTool(t, name) }

// feed writes tags to rec with timestamps shifted by offset ms.
func feed(rec *Recording, tags []flv.Tag, offset uint32) {
	for _, tag := range tags {
		rec.WritePacket(tag.Type, tag.Timestamp+offset, tag.Body)
	}
}

// ffprobe runs ffprobe on url (see mediatest).
func ffprobe(t testing.TB, url string, extra ...string) mediatest.ProbeResult {
	t.Helper()
	return mediatest.Probe(t, url, extra...)
}

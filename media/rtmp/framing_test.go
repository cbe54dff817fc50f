package rtmp

import (
	"testing"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
)

func TestRTMPChunking(t *testing.T) {
	for _, c := range []struct {
		size int
		ts   uint32
		bufs int
	}{
		{100, 1000, 2},
		{outChunkSize, 1000, 2},
		{outChunkSize + 1, 1000, 4},
		{3*outChunkSize + 5, 0x1000000, 8},
	} {
		var scratch hub.Scratch
		bufs := frame(flv.TagVideo, c.ts, make([]byte, c.size), &scratch)
		if len(bufs) != c.bufs {
			t.Errorf("size %d: %d buffers, want %d", c.size, len(bufs), c.bufs)
		}
		total := 0
		for i, b := range bufs {
			if i > 0 && i%2 == 0 {
				want := 1
				if c.ts >= 0xFFFFFF {
					want = 5
				}
				if len(b) != want || b[0] != 0xC0|csidVideo {
					t.Errorf("continuation header %x", b)
				}
			}
			total += len(b)
		}
		hdr := 12
		if c.ts >= 0xFFFFFF {
			hdr = 16
		}
		if total < c.size+hdr {
			t.Errorf("size %d: total %d", c.size, total)
		}
		if h := bufs[0]; h[0] != csidVideo || h[7] != flv.TagVideo || h[8] != 1 {
			t.Errorf("header %x", h)
		}
	}
}

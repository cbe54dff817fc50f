package webrtc

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

func TestOggRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := &oggWriter{w: &buf, serial: 7}
	head := opusHead{channels: 2, preSkip: 312, inputSampleRate: 48000}.marshal()
	pkts := [][]byte{head, opusTags(), {0xfc, 1, 2}, bytes.Repeat([]byte{0x78}, 1000), {}}
	for i, p := range pkts {
		flags := byte(0)
		if i == 0 {
			flags = oggBOS
		}
		if err := w.writePacket(p, int64(i*960), flags); err != nil {
			t.Fatal(err)
		}
	}
	r := newOggReader(&buf)
	for i, want := range pkts {
		p, err := r.readPage()
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		if len(p.packets) != 1 || !bytes.Equal(p.packets[0], want) || p.granule != int64(i*960) || p.bos != (i == 0) {
			t.Fatalf("page %d: %+v", i, p)
		}
	}
	if _, err := r.readPage(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last page: %v", err)
	}
	h, err := parseOpusHead(head)
	if err != nil || h.channels != 2 || h.preSkip != 312 || h.inputSampleRate != 48000 {
		t.Fatalf("OpusHead %+v %v", h, err)
	}
	// RFC 7845: little-endian fields
	if head[10] != 0x38 || head[11] != 0x01 || head[12] != 0x80 || head[13] != 0xbb {
		t.Errorf("OpusHead bytes % x are not little-endian", head)
	}
}

// TestOggReadsFFmpeg reads an Ogg Opus file made by ffmpeg (several
// packets per page).
func TestOggReadsFFmpeg(t *testing.T) {
	path := testFile(t, "multi.ogg", "-i", "IN", "-vn", "-t", "2", "-c:a", "libopus", "-f", "ogg", "OUT")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := newOggReader(f)
	n, samples := 0, int64(0)
	for {
		p, err := r.readPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, pkt := range p.packets {
			n++
			if n > 2 {
				samples += opusDuration(pkt)
			}
		}
	}
	if n < 90 || samples < 90000 {
		t.Fatalf("read %d packets, %d samples; want about 2 s", n, samples)
	}
}

func FuzzOggReader(f *testing.F) {
	var buf bytes.Buffer
	w := &oggWriter{w: &buf}
	_ = w.writePacket(opusHead{channels: 1}.marshal(), 0, oggBOS)
	_ = w.writePacket(bytes.Repeat([]byte{1}, 600), 960, 0)
	f.Add(buf.Bytes())
	f.Add([]byte("OggS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newOggReader(bytes.NewReader(b))
		for range 100 {
			p, err := r.readPage()
			if err != nil {
				return
			}
			for _, pkt := range p.packets {
				if len(pkt) > oggMaxPacket {
					t.Fatalf("packet of %d bytes", len(pkt))
				}
			}
		}
	})
}

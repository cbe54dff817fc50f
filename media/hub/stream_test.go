package hub

import (
	"bytes"
	"testing"

	"github.com/mofang-live/mofang/media/flv"
)

// TestRTSPRepublishHeaders: codec parameters that change invalidate the
// cached GOP (a new reader waits for a key frame coded with them instead
// of getting old frames with new headers), and a publisher taking a stream
// back replaces all the previous one's headers: a track it does not have
// is not announced to new readers.
func TestRTSPRepublishHeaders(t *testing.T) {
	h := newSilentHub(t, Config{})
	s, pub := newSynthStream(t, h, "hdr")
	feed(s, 0, 40) // key frames at 0 and 30
	start := func() *Reader {
		r := NewReader(s, newClient(h, ProtocolRTMP, "127.0.0.1:2"), tagFramer(), nil, false)
		r.start()
		return r
	}
	r := start()
	if r.waitKey || s.packetAt(r.cursor) == nil || !s.packetAt(r.cursor).key {
		t.Fatalf("reader before the change: cursor %d waitKey %v", r.cursor, r.waitKey)
	}

	// the same header again keeps the GOP.
	s.WritePacket(flv.TagVideo, 1400, synthVideoSeq)
	if r := start(); r.waitKey {
		t.Fatal("an identical sequence header dropped the cached GOP")
	}

	// publisher back with another SPS and no audio.
	h.Unpublish(s, pub)
	pub2 := newClient(h, ProtocolRTMP, "127.0.0.1:3")
	if s2, err := h.Publish("hdr", pub2); err != nil || s2 != s {
		t.Fatalf("takeover: %v", err)
	}
	newSeq := bytes.Clone(synthVideoSeq)
	newSeq[6] = 0x64 // High profile
	s.WritePacket(flv.TagVideo, 0, newSeq)
	r = start()
	if !r.waitKey {
		t.Errorf("new codec parameters: reader starts at cursor %d in the old GOP", r.cursor)
	}
	if hs := s.headers.Load(); !bytes.Equal(hs.Video.body, newSeq) {
		t.Errorf("video header % x", hs.Video.body)
	}
	s.WritePacket(flv.TagVideo, 10, synthFrame(true, 100))
	hs := s.headers.Load()
	if hs.Audio != nil {
		t.Error("the previous publisher's audio header is still announced")
	}
	r = start()
	if r.waitKey || s.packetAt(r.cursor) == nil || !bytes.Equal(s.packetAt(r.cursor).body, synthFrame(true, 100)) {
		t.Errorf("reader after the new key frame: cursor %d waitKey %v", r.cursor, r.waitKey)
	}
	if st := s.Stats(); st.AudioCodec != "" || st.VideoCodec != "h264" {
		t.Errorf("stats after the takeover: video %q audio %q", st.VideoCodec, st.AudioCodec)
	}
	// audio only publisher: its packets are key packets.
	h.Unpublish(s, pub2)
	pub3 := newClient(h, ProtocolRTMP, "127.0.0.1:4")
	if _, err := h.Publish("hdr", pub3); err != nil {
		t.Fatal(err)
	}
	s.WritePacket(flv.TagAudio, 0, synthAudioSeq)
	s.WritePacket(flv.TagAudio, 23, synthAudio())
	if hs := s.headers.Load(); hs.Video != nil || hs.Audio == nil {
		t.Errorf("headers after an audio-only takeover: video %v audio %v", hs.Video != nil, hs.Audio != nil)
	}
	if r := start(); r.waitKey {
		t.Error("audio-only publisher: no key packet to start at")
	}
}

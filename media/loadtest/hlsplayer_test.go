package loadtest

import "testing"

func TestParseLLPlaylist(t *testing.T) {
	pl := parseLLPlaylist(`#EXTM3U
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-PART-INF:PART-TARGET=0.2
#EXTINF:0.93327,
seg7.mp4
#EXT-X-PART:DURATION=0.2,URI="part5.mp4"
#EXT-X-PART:DURATION=0.2,URI="part6.mp4"
#EXTINF:1.0,
seg8.mp4
#EXT-X-PART:DURATION=0.2,URI="part7.mp4",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI="part8.mp4"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part9.mp4?hls_sid=1"
`)
	if pl.hint != "part9.mp4?hls_sid=1" || pl.hintMSN != 9 || pl.hintPart != 2 {
		t.Fatalf("parsed %+v; want part9 at msn 9, part 2", pl)
	}
}

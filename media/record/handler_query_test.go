package record

import "testing"

func TestPlaylistWithQuery(t *testing.T) {
	in := "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.000,\nseg00001.m4s\n#EXT-X-ENDLIST\n"
	want := "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4?sign=1-ab\"\n#EXTINF:4.000,\nseg00001.m4s?sign=1-ab\n#EXT-X-ENDLIST\n"
	if got := string(playlistWithQuery([]byte(in), "sign=1-ab")); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

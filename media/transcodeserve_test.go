package media

import (
	"strings"
	"testing"
)

// TestMergeVariants: the variants of several multivariant playlists in
// one, URIs prefixed, audio groups renamed per stream.
func TestMergeVariants(t *testing.T) {
	src := "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-INDEPENDENT-SEGMENTS\n\n" +
		"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio2\",AUTOSELECT=YES,DEFAULT=YES,URI=\"audio2_stream.m3u8?sign=s\"\n\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=900,CODECS=\"avc1.42c028,mp4a.40.2\",RESOLUTION=1280x720,AUDIO=\"audio\"\n" +
		"video1_stream.m3u8?sign=s\n"
	ts := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=400,CODECS=\"avc1.42c01e,mp4a.40.2\",RESOLUTION=640x360\n" +
		"main_stream.m3u8?sign=s\n"
	got := string(mergeVariants([][]byte{[]byte(src), nil, []byte(ts)}, []string{"", "../a_480p/", "../a_360p/"}))
	want := "#EXTM3U\n#EXT-X-VERSION:10\n#EXT-X-INDEPENDENT-SEGMENTS\n\n" +
		"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio-0\",NAME=\"audio2\",AUTOSELECT=YES,DEFAULT=YES,URI=\"audio2_stream.m3u8?sign=s\"\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=900,CODECS=\"avc1.42c028,mp4a.40.2\",RESOLUTION=1280x720,AUDIO=\"audio-0\"\n" +
		"video1_stream.m3u8?sign=s\n\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=400,CODECS=\"avc1.42c01e,mp4a.40.2\",RESOLUTION=640x360\n" +
		"../a_360p/main_stream.m3u8?sign=s\n"
	if got != want {
		t.Errorf("merged:\n%s\nwant:\n%s", got, want)
	}
	if strings.Count(got, "#EXTM3U") != 1 {
		t.Error("two headers")
	}
}

package transcode

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseLadder(t *testing.T) {
	got, err := ParseLadder(" 360p,720P,480p,360p ")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rendition{{"720p", 720}, {"480p", 480}, {"360p", 360}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseLadder: %v, want %v", got, want)
	}
	if got, err := ParseLadder(""); err != nil || got != nil {
		t.Errorf("empty ladder: %v, %v", got, err)
	}
	for _, bad := range []string{"480", "p", "0480p", "481p", "8p", "9000p", "480p,abc", "-480p", "4 80p"} {
		if _, err := ParseLadder(bad); err == nil {
			t.Errorf("ParseLadder(%q) accepted", bad)
		}
	}
}

func TestSourceOf(t *testing.T) {
	for name, want := range map[string]string{"room_000001a_480p": "room_000001a", "a_b_1080p": "a_b", "x_16p": "x"} {
		src, r, ok := SourceOf(name)
		if !ok || src != want || StreamName(src, r) != name {
			t.Errorf("SourceOf(%q) = %q, %v, %v", name, src, r, ok)
		}
	}
	for _, name := range []string{"room_000001a", "_480p", "a_480", "a_480P", "a-480p", "a_0480p", "a_481p", "room_0000012026"} {
		if _, _, ok := SourceOf(name); ok {
			t.Errorf("SourceOf(%q): a rendition", name)
		}
	}
}

// TestFFmpegArgs: one input, one split into a scale per rendition, each
// encoded to its own pipe; AAC copied, other audio encoded.
func TestFFmpegArgs(t *testing.T) {
	rends := []Rendition{{"480p", 480}, {"360p", 360}}
	args := strings.Join(ffmpegArgs(source{height: 720, fps: 30, audio: "aac"}, rends, 2), " ")
	for _, s := range []string{"-f flv -i pipe:0",
		"-filter_complex [0:v]split=2[s0][s1];[s0]scale=-2:480[o0];[s1]scale=-2:360[o1]",
		"-map [o0] -map 0:a? -c:v libx264 -preset veryfast -tune zerolatency",
		"-force_key_frames source -g 600", "-threads 2", "-c:a copy", "pipe:3", "pipe:4"} {
		if !strings.Contains(args, s) {
			t.Errorf("ffmpeg args lack %q: %s", s, args)
		}
	}
	if strings.Contains(args, "pipe:5") {
		t.Errorf("a third output: %s", args)
	}
	args = strings.Join(ffmpegArgs(source{height: 720, audio: "opus"}, rends[:1], 1), " ")
	if !strings.Contains(args, "[0:v]scale=-2:480[o0]") || !strings.Contains(args, "-c:a aac") || strings.Contains(args, "split") {
		t.Errorf("one rendition of an Opus live: %s", args)
	}
}

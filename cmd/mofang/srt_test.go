package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// freeUDPPort returns a free loopback UDP port.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestLiveSRT is a streamer sending SRT, as OBS and hardware encoders
// do, to the URL Live.stream gives: the room goes live, and the SRT play
// URL of Live.stream.read plays it.
func TestLiveSRT(t *testing.T) {
	needFFmpeg(t)
	srtPort := freeUDPPort(t)
	url, stop := startServe(t, t.TempDir(), "--srt-addr", fmt.Sprintf("127.0.0.1:%d", srtPort), "--public-host", "127.0.0.1")
	defer stop()
	reg := rpcCall(t, url, "", "User.register", map[string]any{"username": "srtstreamer", "password": "srtstreamer-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, url, tok, "Live.stream", map[string]any{"room_name": "srt"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	pub := room["publish"].(map[string]any)
	want := fmt.Sprintf("srt://127.0.0.1:%d?streamid=publish:%s?sign=%s", srtPort, stream, pub["sign"])
	if pub["srt"] != want {
		t.Fatalf("SRT publish URL %q, want %q", pub["srt"], want)
	}
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "mpegts", want)
	eventually(t, 15*time.Second, "room live", func() bool {
		st := roomState(t, url, tok, stream)
		return st.Status && st.RoomStatus == 1 && st.User.IP == "127.0.0.1"
	})
	read := rpcCall(t, url, tok, "Live.stream.read", map[string]any{"room_id": room["room_id"]})["data"].(map[string]any)
	play := read["play"].(map[string]any)
	srt := play["srt"].(string)
	if !strings.HasPrefix(srt, fmt.Sprintf("srt://127.0.0.1:%d?streamid=read:%s?sign=", srtPort, stream)) {
		t.Fatalf("SRT play URL %q", srt)
	}
	if got := probe(t, srt, "-analyzeduration", "1000000"); got != "h264 640x360, aac" {
		t.Fatalf("SRT playback: %q", got)
	}
}

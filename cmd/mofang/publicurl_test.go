package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
)

// TestPublicURLSettings: the public-*-url settings are checked at start
// and kept in their normal form; a bad one stops `mofang serve` with an
// error naming it; none set keeps today's URLs (rpc.PublicURLs zero).
func TestPublicURLSettings(t *testing.T) {
	parse := func(args ...string) (rpc.PublicURLs, error) {
		c, _, err := loadConfig("test", args, io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.publicURLs()
	}
	if p, err := parse(); err != nil || p != (rpc.PublicURLs{}) {
		t.Fatalf("no settings: %+v, %v", p, err)
	}
	p, err := parse("--public-http-url", "https://live.example.com/", "--public-rtmp-url", "rtmps://live.example.com:443/live/",
		"--public-rtsp-url", "rtsp://[2001:db8::1]:554", "--public-srt-url", "srt://live.example.com:9000")
	want := rpc.PublicURLs{HTTP: "https://live.example.com", RTMP: "rtmps://live.example.com:443/live", RTSP: "rtsp://[2001:db8::1]:554", SRT: "live.example.com:9000"}
	if err != nil || p != want {
		t.Fatalf("normal form: %+v, %v; want %+v", p, err, want)
	}
	if p, err := parse("--public-http-url", "https://example.com/mofang/", "--public-rtmp-url", "rtmp://example.com"); err != nil ||
		p.HTTP != "https://example.com/mofang" || p.RTMP != "rtmp://example.com/live" {
		t.Fatalf("path prefix, RTMP without /live: %+v, %v", p, err)
	}
	for _, bad := range [][]string{
		{"--public-http-url", "live.example.com"},
		{"--public-http-url", "ftp://live.example.com"},
		{"--public-http-url", "https://live.example.com/?x=1"},
		{"--public-http-url", "https://user:pw@live.example.com"},
		{"--public-http-url", "https://live.example.com:99999"},
		{"--public-http-url", "https://"},
		{"--public-rtmp-url", "http://live.example.com/live"},
		{"--public-rtmp-url", "rtmp://live.example.com/app"},
		{"--public-rtsp-url", "rtsp://live.example.com/other"},
		{"--public-srt-url", "live.example.com"},
		{"--public-srt-url", "live.example.com:0"},
		{"--public-srt-url", "srt://live.example.com:x"},
	} {
		if p, err := parse(bad...); err == nil || !strings.Contains(err.Error(), bad[0][2:]) {
			t.Errorf("%v: %+v, %v; want an error naming %s", bad, p, err, bad[0][2:])
		}
	}
	err = run(context.Background(), []string{"serve", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--rtmp", "", "--rtsp", "", "--srt-addr", "",
		"--webrtc-addr", "", "--public-rtmp-url", "rtmp://live.example.com/app"}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "public-rtmp-url") {
		t.Fatalf("serve with a bad public-rtmp-url: %v", err)
	}
}

// forwardOn forwards the connections to addr (a loopback host:port) to
// target until the test ends: the service seen on another port.
func forwardOn(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); p.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
}

// TestPublicURLs: with public-http-url, public-rtmp-url, public-rtsp-url
// and public-srt-url set, Live.stream and Live.stream.read hand out URLs
// on those bases; they point at the real listeners through other ports
// (TCP proxies on loopback, as a balancer would be), and ffmpeg publishes
// to the handed-out RTMP URL while ffprobe plays the handed-out HTTP-FLV,
// HLS, RTMP and RTSP URLs.
func TestPublicURLs(t *testing.T) {
	needFFmpeg(t)
	rtmpPort, rtspPort := freePort(t), freePort(t)
	pubHTTP, pubRTMP, pubRTSP := freePort(t), freePort(t), freePort(t)
	httpBase := fmt.Sprintf("http://127.0.0.1:%d", pubHTTP)
	rtmpBase := fmt.Sprintf("rtmp://127.0.0.1:%d/live", pubRTMP)
	rtspBase := fmt.Sprintf("rtsp://127.0.0.1:%d", pubRTSP)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--rtsp", fmt.Sprintf("127.0.0.1:%d", rtspPort),
		"--srt-addr", fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t)),
		"--public-host", "wrong.invalid", "--public-http-url", httpBase+"/", "--public-rtmp-url", rtmpBase,
		"--public-rtsp-url", rtspBase, "--public-srt-url", "srt.example.com:9000")
	defer stop()
	forwardOn(t, fmt.Sprintf("127.0.0.1:%d", pubHTTP), strings.TrimSuffix(strings.TrimPrefix(api, "http://"), "/"))
	forwardOn(t, fmt.Sprintf("127.0.0.1:%d", pubRTMP), fmt.Sprintf("127.0.0.1:%d", rtmpPort))
	forwardOn(t, fmt.Sprintf("127.0.0.1:%d", pubRTSP), fmt.Sprintf("127.0.0.1:%d", rtspPort))

	reg := rpcCall(t, api, "", "User.register", map[string]any{"username": "streamer", "password": "streamer-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, api, tok, "Live.stream", map[string]any{"room_name": "behind a balancer"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	pub := room["publish"].(map[string]any)
	sign := pub["sign"].(string)
	for field, want := range map[string]string{
		"url":        rtmpBase + "/" + stream + "?sign=" + sign,
		"server":     rtmpBase,
		"stream_key": stream + "?sign=" + sign,
		"whip":       httpBase + "/live/" + stream + "/whip?sign=" + sign,
		"srt":        "srt://srt.example.com:9000?streamid=publish:" + stream + "?sign=" + sign,
	} {
		if pub[field] != want {
			t.Errorf("publish.%s = %q, want %q", field, pub[field], want)
		}
	}
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", pub["url"].(string))
	eventually(t, 15*time.Second, "live through the RTMP proxy", func() bool { return roomState(t, api, tok, stream).Status })

	play := rpcCall(t, api, tok, "Live.stream.read", map[string]any{"room_id": room["room_id"]})["data"].(map[string]any)["play"].(map[string]any)
	psign := play["sign"].(string)
	for field, want := range map[string]string{
		"flv":   httpBase + "/live/" + stream + ".flv?sign=" + psign,
		"hls":   httpBase + "/live/" + stream + "/index.m3u8?sign=" + psign,
		"whep":  httpBase + "/live/" + stream + "/whep?sign=" + psign,
		"thumb": httpBase + "/live/" + stream + "/thumb.jpg?sign=" + psign,
		"rtmp":  rtmpBase + "/" + stream + "?sign=" + psign,
		"rtsp":  rtspBase + "/live/" + stream + "?sign=" + psign,
		"srt":   "srt://srt.example.com:9000?streamid=read:" + stream + "?sign=" + psign,
	} {
		if play[field] != want {
			t.Errorf("play.%s = %q, want %q", field, play[field], want)
		}
	}
	for _, field := range []string{"flv", "hls", "rtmp", "rtsp"} {
		var extra []string
		if field == "rtsp" {
			extra = []string{"-rtsp_transport", "tcp"}
		}
		if got := probe(t, play[field].(string), extra...); got != "h264 640x360, aac" {
			t.Fatalf("ffprobe of the handed-out %s URL sees %q", field, got)
		}
	}
}

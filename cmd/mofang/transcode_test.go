package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTranscodeSettings: bad ladder settings, or a missing ffmpeg with
// a ladder, stop the start with an error naming the setting.
func TestTranscodeSettings(t *testing.T) {
	for _, bad := range [][]string{{"--transcode", "480"}, {"--transcode", "480p,fast"}, {"--transcode-max", "0"},
		{"--transcode-threads", "many"}, {"--transcode-ffmpeg", ""}} {
		c, _, err := loadConfig("test", bad, io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := c.ladder(); err == nil || !strings.Contains(err.Error(), bad[0][2:]) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, bad[0][2:])
		}
	}
	c, _, _ := loadConfig("test", nil, io.Discard, nil)
	if rs, n, th, err := c.ladder(); err != nil || rs != nil || n != 1 || th != 2 || c.TranscodeFFmpeg != "ffmpeg" {
		t.Fatalf("defaults: %v %d %d %q, %v", rs, n, th, c.TranscodeFFmpeg, err)
	}
	err := run(context.Background(), []string{"serve", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--rtmp", "", "--rtsp", "", "--srt-addr", "", "--webrtc-addr", "",
		"--transcode", "360p", "--transcode-ffmpeg", "/nonexistent/ffmpeg"}, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ffmpeg") {
		t.Errorf("serve with a missing transcode-ffmpeg: %v", err)
	}
}

// TestLiveQualityLadder: with --transcode 480p,360p,240p a 640x360 live
// gets a 240p rendition alone (the others are not below it);
// Live.stream.read lists it with its URLs and the multivariant
// playlist's, carrying the room's play sign, which plays it (a room with
// a password: not without the sign); its name cannot be published to.
func TestLiveQualityLadder(t *testing.T) {
	needFFmpeg(t)
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output(); err != nil || !bytes.Contains(out, []byte(" libx264 ")) {
		t.Skipf("SKIP: this ffmpeg has no libx264 encoder (%v): the quality ladder cannot run here", err)
	}
	logs := &syncBuffer{}
	url, stop := startServeLogs(t, t.TempDir(), logs, "--log-level", "info", "--rtmp", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--public-host", "127.0.0.1", "--transcode", "480p,360p,240p", "--transcode-threads", "1")
	defer stop()
	reg := rpcCall(t, url, "", "User.register", map[string]any{"username": "ladder", "password": "ladder-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, url, tok, "Live.stream", map[string]any{"room_name": "ladder", "password": "secret"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	pub := room["publish"].(map[string]any)
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", pub["url"].(string))

	type rendition struct {
		Name, Stream, FLV, HLS, WHEP string
		Width, Height                int
	}
	var play struct {
		HLS        string      `json:"hls"`
		HLSMaster  string      `json:"hls_master"`
		Sign       string      `json:"sign"`
		Renditions []rendition `json:"renditions"`
	}
	defer func() {
		if t.Failed() {
			t.Logf("service logs:\n%s", logs)
		}
	}()
	eventually(t, 30*time.Second, "the live's renditions", func() bool {
		read := rpcCall(t, url, tok, "Live.stream.read", map[string]any{"room_id": room["room_id"], "password": "secret"})["data"].(map[string]any)
		remarshal(t, read["play"], &play)
		return len(play.Renditions) > 0
	})
	if len(play.Renditions) != 1 {
		t.Fatalf("renditions %+v, want 240p alone; logs:\n%s", play.Renditions, logs)
	}
	r := play.Renditions[0]
	base := strings.TrimSuffix(url, "/") + "/live/"
	if r.Name != "240p" || r.Stream != stream+"_240p" || r.Width != 426 || r.Height != 240 ||
		r.FLV != base+stream+"_240p.flv?sign="+play.Sign || r.HLS != base+stream+"_240p/index.m3u8?sign="+play.Sign ||
		r.WHEP != base+stream+"_240p/whep?sign="+play.Sign {
		t.Errorf("rendition %+v", r)
	}
	if play.HLSMaster != base+stream+"/master.m3u8?sign="+play.Sign {
		t.Errorf("hls_master %q", play.HLSMaster)
	}
	if got := probe(t, r.FLV); got != "h264 426x240, aac" {
		t.Errorf("the 240p rendition over HTTP-FLV: %q", got)
	}
	if got := probe(t, r.HLS); got != "h264 426x240, aac" {
		t.Errorf("the 240p rendition over HLS: %q", got)
	}
	res, err := http.Get(base + stream + "_240p.flv")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("the rendition of a room with a password, without a sign: HTTP %d, want 403", res.StatusCode)
	}
	// a viewer of the rendition is a viewer of the room
	viewer, err := http.Get(r.FLV)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the rendition's viewer counted", func() bool {
		read := rpcCall(t, url, tok, "Live.stream.read", map[string]any{"room_id": room["room_id"], "password": "secret"})["data"].(map[string]any)
		return read["clients_number"] == float64(1)
	})
	viewer.Body.Close()
	master := get(t, play.HLSMaster)
	if strings.Count(master, "#EXT-X-STREAM-INF:") != 2 || !strings.Contains(master, "RESOLUTION=640x360") || !strings.Contains(master, "RESOLUTION=426x240") {
		t.Errorf("master.m3u8:\n%s", master)
	}

	// the rendition's name is refused to a publisher with the room's sign
	rtmp := strings.TrimSuffix(pub["server"].(string), "/") + "/" + stream + "_240p?sign=" + pub["sign"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip(t), "-t", "3", "-c", "copy", "-f", "flv", rtmp).CombinedOutput()
	if err == nil {
		t.Errorf("a client published %s_240p: %s", stream, out)
	}
}

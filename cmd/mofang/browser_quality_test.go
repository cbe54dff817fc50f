package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserQualityMenu: in the live room of a 640x360 live with a
// 240p rendition, the quality menu offers Auto, Source and 240p; 240p
// plays the rendition (its video is 240 high), Source the live itself,
// and Auto, in a player taller than 240 device pixels, the source. The
// live has B-frames and plays over FLV; its rendition, without, over
// WebRTC.
func TestBrowserQualityMenu(t *testing.T) {
	chromium := chromiumPath(t)
	needFFmpeg(t)
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output(); err != nil || !bytes.Contains(out, []byte(" libx264 ")) {
		t.Skipf("SKIP: this ffmpeg has no libx264 encoder (%v): the quality ladder cannot run here", err)
	}
	needPages(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--public-host", "127.0.0.1",
		"--transcode", "240p", "--transcode-threads", "1")
	defer stop()
	site := pagesSite(t, api)
	room, pub := apiRoom(t, api, "quinn", "Quinn's ladder")
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", pub["url"].(string))
	// the rendition is up before the viewer comes (the page reads the
	// room once as it enters)
	reg := rpcCall(t, api, "", "User.register", map[string]any{"username": "quinnfan", "password": "quinnfan-password"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	eventually(t, 30*time.Second, "the 240p rendition", func() bool {
		read := rpcCall(t, api, tok, "Live.stream.read", map[string]any{"room_id": room})["data"].(map[string]any)
		play, _ := read["play"].(map[string]any)
		rs, _ := play["renditions"].([]any)
		return len(rs) == 1
	})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	newTab := startBrowser(t, ctx, chromium, screenshotDir(t))
	viewer := newTab("quality", nil)
	viewer.register(site, "rita", "Rita")
	viewer.do("enter the room", chromedp.Navigate(site+"#/room/"+room))
	viewer.wait("the quality menu", 20*time.Second, `(s => s && !s.hidden && [...s.options].map(o => o.value).join() === 'auto,source,240p')(document.querySelector('#quality'))`)
	playingAt := func(height int) string {
		return fmt.Sprintf(`(v => v && v.videoHeight === %d && v.currentTime > 0.2 && !v.paused)(document.querySelector('#video'))`, height)
	}
	viewer.wait("Auto plays the source in a big player", 20*time.Second, playingAt(360))
	choose := func(v string) {
		t.Helper()
		viewer.do("choose "+v, chromedp.Evaluate(fmt.Sprintf(`(s => { s.value = %q; s.dispatchEvent(new Event('change')); })(document.querySelector('#quality'))`, v), nil))
	}
	choose("240p")
	viewer.wait("the 240p rendition playing", 20*time.Second, playingAt(240))
	// the live has B-frames, its rendition none: the rendition plays over
	// WebRTC, where the live fell back to FLV
	viewer.wait("the rendition over WebRTC", 10*time.Second, `document.querySelector('.page-room').dataset.mode === 'webrtc'`)
	viewer.screenshot("quality-240p.png")
	choose("source")
	viewer.wait("the source playing again", 20*time.Second, playingAt(360))
	noPageErrors(t, viewer) // mpegts.js's warnings are not errors
}

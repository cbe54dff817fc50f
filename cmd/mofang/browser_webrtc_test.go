package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestBrowserWebRTC is issue 11's pages in headless Chromium with a fake
// camera and microphone: a streamer goes live from "My room" with "Go
// live from this browser" (WHIP); a viewer in another browser context
// opens the room and plays it over WebRTC (WHEP) by default, with the
// mode and an approximate latency shown; the streamer mutes and stops,
// and the viewer sees the room go offline. A stream with B-frames,
// published by ffmpeg over RTMP, falls back to HTTP-FLV in the room and
// says why (the server's 409 names the OBS fix).
func TestBrowserWebRTC(t *testing.T) {
	chromium := chromiumPath(t)
	needFFmpeg(t)
	needPages(t)
	start := time.Now()
	rtmpPort := freePort(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1")
	defer stop()
	site := pagesSite(t, api)
	shots := screenshotDir(t)
	for _, name := range []string{"camera", "watcher", "blocked"} {
		os.Remove(filepath.Join(shots, "failed-"+name+".png")) // of an earlier run
	}

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	newTab := startBrowser(t, ctx, chromium, shots,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	camera := newTab("camera", nil)
	watcher := newTab("watcher", camera.ctx, chromedp.WithNewBrowserContext())

	// The streamer makes a room and goes live from the browser.
	camera.register(site, "carol", "Carol")
	camera.do("open my room", chromedp.Click("#my-room-link", chromedp.ByQuery))
	camera.wait("my room form", 10*time.Second, `document.querySelector('#room-form') && document.querySelector('#room-name').value !== ''`)
	camera.do("create the room",
		chromedp.SetValue("#room-name", "Carol on camera", chromedp.ByQuery),
		chromedp.Click("#room-save", chromedp.ByQuery),
	)
	camera.wait("the go-live button", 10*time.Second, `(b => b && !b.hidden && !b.disabled)(document.querySelector('#browser-go-live'))`)
	// Saving scrolls smoothly to the settings: click once it stands still.
	var still bool
	camera.do("scrolling done", chromedp.Evaluate(`new Promise(r => { let y = -1; const f = () => { if (scrollY === y) r(true); else { y = scrollY; setTimeout(f, 250); } }; f(); })`, &still,
		func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
	camera.do("go live from this browser", chromedp.Click("#browser-go-live", chromedp.ByQuery))
	camera.wait("live from the browser", 20*time.Second, `document.querySelector('#browser-live').dataset.state === 'live'`)
	camera.wait("the camera preview", 10*time.Second, `(v => v.videoWidth > 0 && v.currentTime > 0.5)(document.querySelector('#browser-preview'))`)
	if s := camera.text(`document.querySelector('#browser-live-state').textContent`); s != "You are live from this browser. Viewers see you in your room." {
		t.Errorf("streamer's state: %q", s)
	}
	t.Logf("live from the browser %v after start", time.Since(start).Round(time.Millisecond))

	// The viewer sees it live in the list and plays it over WebRTC.
	watcher.register(site, "dan", "Dan")
	liveItem := `document.querySelector('a.room-item[data-live="1"][data-room-name="Carol on camera"]')`
	watcher.wait("the room live in the list", 20*time.Second, liveItem)
	// Its picture in the list is the live thumbnail (an open room's).
	watcher.wait("the live room's thumbnail", 20*time.Second, `(i => !!i && i.complete && i.naturalWidth > 0)(`+liveItem+`?.querySelector('.room-thumb.is-thumb img'))`)
	watcher.screenshot("room-list-thumb.png")
	watcher.do("enter the room", chromedp.Click(`a.room-item[data-room-name="Carol on camera"]`, chromedp.ByQuery))
	watcher.wait("video over WebRTC", 30*time.Second, `document.querySelector('.page-room').dataset.mode === 'webrtc' && (v => v.srcObject && v.videoWidth > 0 && v.currentTime > 2)(document.querySelector('#video'))`)
	watcher.wait("the latency shown", 10*time.Second, `!document.querySelector('#latency').hidden && /^~\d+ ms latency \(approx\.\)$/.test(document.querySelector('#latency').textContent)`)
	if s := watcher.text(`document.querySelector('#play-mode').textContent`); s != "Low latency (WebRTC)" {
		t.Errorf("mode toggle: %q", s)
	}
	if !watcher.hidden("#play-note") {
		t.Errorf("a fallback note while WebRTC plays: %q", watcher.text(`document.querySelector('#play-note').textContent`))
	}
	t.Logf("watcher: %s, latency %s", watcher.text(`(v => v.videoWidth + 'x' + v.videoHeight)(document.querySelector('#video'))`), watcher.text(`document.querySelector('#latency').textContent`))
	camera.do("scroll to going live", chromedp.ScrollIntoView("#browser-live", chromedp.ByQuery))
	camera.screenshot("my-room-webrtc.png")
	watcher.screenshot("room-webrtc.png")

	// The toggle switches to standard (FLV) and back.
	watcher.do("standard mode", chromedp.Click("#play-mode", chromedp.ByQuery))
	watcher.wait("video over FLV", 20*time.Second, `document.querySelector('.page-room').dataset.mode === 'flv' && document.querySelector('#play-mode').textContent === 'Standard (FLV)' && (v => !v.srcObject && v.currentTime > 0.5)(document.querySelector('#video'))`)
	watcher.do("low-latency mode", chromedp.Click("#play-mode", chromedp.ByQuery))
	watcher.wait("video over WebRTC again", 20*time.Second, `document.querySelector('.page-room').dataset.mode === 'webrtc' && (v => v.srcObject && v.currentTime > 0.5)(document.querySelector('#video'))`)

	// Mute, then stop: the room goes offline for the viewer.
	camera.do("mute", chromedp.Click("#browser-mute", chromedp.ByQuery))
	camera.wait("muted", 5*time.Second, `document.querySelector('#browser-mute').textContent === 'Unmute microphone'`)
	camera.do("stop", chromedp.Click("#browser-stop", chromedp.ByQuery))
	camera.wait("stopped", 5*time.Second, `document.querySelector('#browser-live').dataset.state === 'idle' && !document.querySelector('#browser-go-live').hidden`)
	watcher.wait("the room offline", 20*time.Second, `document.querySelector('#stage-state').dataset.state === 'offline'`)

	// While ffmpeg streams to the room over RTMP, going live from the
	// browser is refused (409) and says so.
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", camera.text(`document.querySelector('#obs-url').value`))
	watcher.wait("the RTMP stream playing", 30*time.Second, `document.querySelector('#stage-state').hidden && document.querySelector('.page-room').dataset.mode !== ''`)
	camera.do("go live while OBS streams", chromedp.Click("#browser-go-live", chromedp.ByQuery))
	camera.wait("the refusal shown", 20*time.Second, `document.querySelector('#browser-live').dataset.state === 'idle' && document.querySelector('#browser-live-error').textContent === 'The server refused: stream is already being published. Stop OBS or the other tool streaming to this room, then try again.'`)

	// A stream with B-frames over RTMP: the room plays it over FLV and says why.
	id, pub := apiRoom(t, api, "erin", "Erin with B-frames")
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "30", "-c:a", "aac", "-f", "flv", pub["url"].(string))
	watcher.do("open the B-frames room", chromedp.Navigate(site+"#/room/"+id))
	watcher.wait("video over FLV with the reason", 30*time.Second, `document.querySelector('.page-room').dataset.mode === 'flv' && (v => !v.srcObject && v.videoWidth > 0 && v.currentTime > 1)(document.querySelector('#video'))`)
	watcher.wait("the B-frames note", 5*time.Second, `!document.querySelector('#play-note').hidden && document.querySelector('#play-note').textContent.startsWith('Standard mode (FLV): ') && document.querySelector('#play-note').textContent.includes('B-frames') && document.querySelector('#play-note').textContent.includes('bframes=0')`)
	if s := watcher.text(`document.querySelector('#play-mode').textContent`); s != "Low latency (WebRTC)" {
		t.Errorf("mode toggle after the fallback: %q (the choice stays)", s)
	}
	watcher.screenshot("room-bframes.png")

	// A stream without B-frames over RTMP (AAC, which the server turns
	// into Opus for WebRTC) plays over WebRTC; in a browser whose WebRTC
	// cannot connect (only relayed candidates allowed and no relay: as
	// behind a firewall blocking UDP), the room falls back to FLV within
	// seconds and says why.
	plainID, plainPub := apiRoom(t, api, "frank", "Frank without B-frames")
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-g", "30", "-c:a", "aac", "-f", "flv", plainPub["url"].(string))
	watcher.do("open the room without B-frames", chromedp.Navigate(site+"#/room/"+plainID))
	watcher.wait("RTMP video over WebRTC", 30*time.Second, `document.querySelector('.page-room').dataset.mode === 'webrtc' && (v => v.srcObject && v.videoWidth === 640 && v.currentTime > 2)(document.querySelector('#video'))`)
	blocked := newTab("blocked", camera.ctx, chromedp.WithNewBrowserContext())
	blocked.do("no WebRTC path", chromedp.ActionFunc(func(ctx context.Context) (err error) {
		_, err = page.AddScriptToEvaluateOnNewDocument(`(() => {
			const P = window.RTCPeerConnection;
			window.RTCPeerConnection = function (c) { return new P({ ...(c || {}), iceTransportPolicy: 'relay' }); };
			window.RTCPeerConnection.prototype = P.prototype;
		})()`).Do(ctx)
		return err
	}))
	blocked.register(site, "gina", "Gina")
	blocked.do("open the room without B-frames", chromedp.Navigate(site+"#/room/"+plainID))
	blocked.wait("video over FLV after WebRTC failed", 30*time.Second, `document.querySelector('.page-room').dataset.mode === 'flv' && (v => !v.srcObject && v.videoWidth > 0 && v.currentTime > 1)(document.querySelector('#video'))`)
	note := blocked.text(`document.querySelector('#play-note').hidden ? '' : document.querySelector('#play-note').textContent`)
	if note != "Standard mode (FLV): WebRTC did not connect within 5 s (a firewall may block UDP)." && note != "Standard mode (FLV): The WebRTC connection failed." {
		t.Errorf("note after WebRTC could not connect: %q", note)
	}
	t.Logf("blocked: %s", note)
	blocked.screenshot("room-webrtc-blocked.png")

	// Exceptions and console errors fail; warnings do not (mpegts.js warns
	// when the browser's encoder changes the picture size, as it does
	// under load, which it handles).
	for _, b := range []*tab{camera, watcher, blocked} {
		for _, e := range b.pageErrors() {
			if !strings.HasPrefix(e, "console warning: ") {
				t.Errorf("%s: %s", b.name, e)
			}
		}
	}
	t.Logf("WebRTC scenario took %v", time.Since(start).Round(time.Millisecond))
}

// hidden reports whether the element of selector is hidden.
func (b *tab) hidden(selector string) bool {
	b.t.Helper()
	var h bool
	if err := b.eval(fmt.Sprintf(`document.querySelector(%q).hidden`, selector), &h); err != nil {
		b.fail("%s: %s: %v", b.name, selector, err)
	}
	return h
}

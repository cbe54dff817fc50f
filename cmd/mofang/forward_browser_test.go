package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserForward is My room's Restream section: the streamer adds a
// destination (another room of the same service, the forward being just
// an RTMP publisher there) with its URL and key, sees it idle, then live
// once ffmpeg publishes to the room, with the key shown masked only, and
// removes it; the destination room goes live and off accordingly.
func TestBrowserForward(t *testing.T) {
	chromium := chromiumPath(t)
	needFFmpeg(t)
	rtmp := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	api, stop := startServe(t, t.TempDir(), "--rtmp", rtmp, "--public-host", "127.0.0.1", "--forward-private")
	defer stop()
	site := pagesSite(t, api)
	destRoom, destPub := apiRoom(t, api, "mirror", "Mirror")
	destKey := destPub["stream_key"].(string)
	destStream := destKey[:strings.Index(destKey, "?")]

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	streamer := startBrowser(t, ctx, chromium, screenshotDir(t))("streamer", nil)
	streamer.register(site, "alice", "Alice")
	streamer.do("open my room", chromedp.Click("#my-room-link", chromedp.ByQuery))
	streamer.wait("my room form", 10*time.Second, `document.querySelector('#room-form') && document.querySelector('#room-name').value !== ''`)
	streamer.do("create the room", chromedp.Click("#room-save", chromedp.ByQuery))
	streamer.wait("restream section", 10*time.Second, `document.querySelector('#forward') && !document.querySelector('#forward').hidden`)
	streamer.do("refuse an http URL",
		chromedp.SetValue("#forward-url", "http://"+rtmp+"/live", chromedp.ByQuery),
		chromedp.SetValue("#forward-key", destKey, chromedp.ByQuery),
		chromedp.Click("#forward-add", chromedp.ByQuery),
	)
	streamer.wait("the URL refused", 10*time.Second, `document.querySelector('#forward-error').textContent.includes('rtmp://')`)
	streamer.do("add the destination",
		chromedp.SetValue("#forward-url", "rtmp://"+rtmp+"/live", chromedp.ByQuery),
		chromedp.SetValue("#forward-key", destKey, chromedp.ByQuery),
		chromedp.Click("#forward-add", chromedp.ByQuery),
	)
	streamer.wait("the destination listed, idle", 10*time.Second, `document.querySelector('#forward-list .forward-idle')`)
	full := streamer.text(`document.querySelector('#obs-url').value`)
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", full)
	streamer.wait("the destination live", 30*time.Second, `document.querySelector('#forward-list .forward-live')`)
	_ = destRoom
	tokMirror := rpcCall(t, api, "", "User.login", map[string]any{"username": "mirror", "password": "mirror-password"})["data"].(map[string]any)["access_token"].(string)
	eventually(t, 15*time.Second, "the destination room live", func() bool { return roomState(t, api, tokMirror, destStream).Status })
	streamer.do("show the section", chromedp.ScrollIntoView("#forward", chromedp.ByQuery))
	streamer.screenshot("my-room-restream.png")
	section := streamer.text(`document.querySelector('#forward').textContent`)
	secret := destKey[strings.Index(destKey, "sign=")+len("sign="):]
	if strings.Contains(section, secret) || !strings.Contains(section, "****"+destKey[len(destKey)-4:]) || !strings.Contains(section, "rtmp://"+rtmp+"/live") {
		t.Fatalf("the section shows: %q", section)
	}
	if v := streamer.text(`document.querySelector('#forward-key').value`); v != "" {
		t.Fatalf("the key field keeps %q after adding", v)
	}
	streamer.do("remove it", chromedp.Click("#forward-list .forward-remove", chromedp.ByQuery))
	streamer.wait("no destination", 10*time.Second, `!document.querySelector('#forward-list .forward-item')`)
	eventually(t, 20*time.Second, "the destination room no longer fed", func() bool { return !roomState(t, api, tokMirror, destStream).Status })
	if errs := streamer.pageErrors(); len(errs) > 0 {
		t.Fatalf("page errors: %v", errs)
	}
}

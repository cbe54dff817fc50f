package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserFollow is issue 13's follows and schedules in headless
// Chromium: a host schedules a live in My room; a fan sees it among the
// upcoming lives, follows the host with the live room's button (the
// count goes to 1), filters the room list to followed hosts; when ffmpeg
// publishes to the host's room, the fan's room list shows a toast with
// the scheduled live's title.
func TestBrowserFollow(t *testing.T) {
	chromium := chromiumPath(t)
	needFFmpeg(t)
	needPages(t)
	rtmpPort := freePort(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1")
	defer stop()
	site := pagesSite(t, api)
	shots := screenshotDir(t)

	// A room the fan does not follow.
	reg := rpcCall(t, api, "", "User.register", map[string]any{"username": "other", "password": "other-pass"})
	otherTok := reg["data"].(map[string]any)["access_token"].(string)
	rpcCall(t, api, otherTok, "Live.stream", map[string]any{"room_name": "Other room"})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	newTab := startBrowser(t, ctx, chromium, shots)
	host := newTab("host", nil)
	fan := newTab("fan", host.ctx, chromedp.WithNewBrowserContext())

	host.register(site, "hoster", "Hoster")
	host.do("open my room", chromedp.Click("#my-room-link", chromedp.ByQuery))
	host.wait("my room form", 10*time.Second, `document.querySelector('#room-form') && document.querySelector('#room-name').value !== ''`)
	host.do("create the room", chromedp.SetValue("#room-name", "Hoster show", chromedp.ByQuery), chromedp.Click("#room-save", chromedp.ByQuery))
	host.wait("OBS settings and schedules", 10*time.Second, `document.querySelector('#obs-url') && !document.querySelector('#schedules').hidden`)
	publishURL := host.text(`document.querySelector('#obs-url').value`)
	// In 15 minutes, in the browser's time zone.
	var set bool
	if err := host.eval(`(() => {
		const d = new Date(Date.now() + 15 * 60000), p = (n) => String(n).padStart(2, '0');
		document.querySelector('#schedule-at').value = d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
		return true;
	})()`, &set); err != nil {
		t.Fatal(err)
	}
	host.do("schedule a live",
		chromedp.SetValue("#schedule-title", "Friday concert", chromedp.ByQuery),
		chromedp.Click("#schedule-add", chromedp.ByQuery),
	)
	host.wait("the schedule listed", 10*time.Second, `[...document.querySelectorAll('#schedule-list .schedule-title')].some((e) => e.textContent === 'Friday concert')`)
	host.do("show the schedules", chromedp.ScrollIntoView("#schedules", chromedp.ByQuery))
	host.screenshot("my-room-schedule.png")

	fan.register(site, "fan", "Fan")
	fan.wait("upcoming lives on the room list", 10*time.Second, `!document.querySelector('#upcoming').hidden &&
		document.querySelector('#upcoming-list .schedule-title')?.textContent === 'Friday concert' &&
		document.querySelector('a.room-item[data-room-name="Hoster show"]')`)
	roomID := fan.text(`document.querySelector('a.room-item[data-room-name="Hoster show"]').dataset.roomId`)
	fan.do("open the host's room", chromedp.Navigate(site+"#/room/"+roomID))
	fan.wait("the follow button", 10*time.Second, `(b => b && !b.hidden && b.textContent.startsWith('Follow') && document.querySelector('#follower-count').textContent === '0')(document.querySelector('#follow-btn'))`)
	fan.do("follow", chromedp.Click("#follow-btn", chromedp.ByQuery))
	fan.wait("followed", 10*time.Second, `document.querySelector('#follow-btn').textContent.startsWith('Following') && document.querySelector('#follower-count').textContent === '1'`)
	fan.screenshot("follow-room.png")
	fan.do("phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	fan.wait("the follow button on a phone", 5*time.Second, `((b, v) => b.width > 0 && b.right <= v.left)(document.querySelector('#follow-btn').getBoundingClientRect(), document.querySelector('#viewer-count').getBoundingClientRect())`)
	fan.screenshot("follow-room-phone.png")
	fan.do("laptop screen", chromedp.EmulateViewport(1280, 800))

	fan.do("back to the rooms", chromedp.Navigate(site+"#/rooms"))
	fan.wait("both rooms under All", 10*time.Second, `document.querySelectorAll('#room-list a.room-item').length === 2`)
	fan.do("filter to followed hosts", chromedp.Click("#filter-following", chromedp.ByQuery))
	fan.wait("the followed host's room alone", 10*time.Second, `(l => l.length === 1 && l[0].dataset.roomName === 'Hoster show')(document.querySelectorAll('#room-list a.room-item'))`)

	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", publishURL)
	fan.wait("the live toast", 20*time.Second, `[...document.querySelectorAll('.toast-live')].some((e) => e.textContent.includes('Hoster is live: Friday concert'))`)
	fan.screenshot("follow-toast.png")
	if n := fan.text(`String(document.querySelectorAll('.toast-live').length)`); n != "1" {
		t.Fatalf("%s live toasts, want 1", n)
	}
	if errs := fan.pageErrors(); len(errs) > 0 && !strings.Contains(strings.Join(errs, ""), "favicon") {
		t.Logf("fan's page errors: %v", errs)
	}
}

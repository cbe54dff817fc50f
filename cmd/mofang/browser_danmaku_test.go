package main

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserDanmakuAndReplay: in headless Chromium, a viewer opens a
// password room by its share link (the page asks the password), watches
// ffmpeg's live and comments; the comments scroll over the video
// (danmaku: their positions move right to left, inside the video's box);
// the toggle turns them off; one the owner deletes leaves; a burst shows
// at most 40 at once, none overlapping. After the live, Live.record.comments gives
// the recording's comments with offsets that match the times they were
// made, and the replay page shows each comment over the video when the
// replay reaches its offset, not before, also after seeking back.
func TestBrowserDanmakuAndReplay(t *testing.T) {
	chromium := chromiumPath(t)
	needFFmpeg(t)
	needPages(t)
	rtmpPort := freePort(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort),
		"--public-host", "127.0.0.1", "--publisher-grace", "1s")
	defer stop()
	site := pagesSite(t, api)
	shots := screenshotDir(t)
	os.Remove(filepath.Join(shots, "failed-danmaku.png"))

	// Alice's room, with a password, live from ffmpeg (and recorded).
	reg := rpcCall(t, api, "", "User.register", map[string]any{"username": "alice", "password": "alice-password", "nickname": "Alice"})
	alice := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, api, alice, "Live.stream", map[string]any{"room_name": "Alice live", "password": "open-sesame"})["data"].(map[string]any)
	roomID := room["room_id"].(string)
	ff := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", room["publish"].(map[string]any)["url"].(string))

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	newTab := startBrowser(t, ctx, chromium, shots)
	b := newTab("danmaku", nil)
	// Alice's cover, uploaded, shows in the list and in the room.
	var pic bytes.Buffer
	png.Encode(&pic, testPicture(160, 90))
	code, up := upload(t, api, "/upload/cover?room_id="+roomID, alice, pic.Bytes(), nil)
	if code != http.StatusOK || up.Data == nil {
		t.Fatalf("cover upload: %d %+v", code, up)
	}
	cover := up.Data.URL
	b.register(site, "bob", "Bob")
	b.wait("the cover in the room list", 15*time.Second, fmt.Sprintf(`[...document.querySelectorAll('a.room-item .room-thumb img')].some(i => i.getAttribute('src') === %q && i.complete && i.naturalWidth === 160)`, cover))

	// The share link asks the room's password, then opens the room.
	var ignored bool
	b.do("standard playback", chromedp.Evaluate(`localStorage.setItem('mofang.playMode', 'flv'); true`, &ignored))
	b.do("open the share link", chromedp.Navigate(strings.TrimSuffix(site, "/")+"/r/"+roomID))
	b.wait("password asked", 15*time.Second, `document.querySelector('#room-password-input')`)
	if h := b.text(`location.hash`); h != fmt.Sprintf("#/room/%d", atoi(t, roomID)) {
		t.Fatalf("the share link opened %q", h)
	}
	b.settled()
	b.do("the password",
		chromedp.SetValue("#room-password-input", "open-sesame", chromedp.ByQuery),
		chromedp.Click("#room-password-submit", chromedp.ByQuery),
	)
	b.wait("video playing", 20*time.Second, `(v => v && v.currentTime > 0.2 && !v.paused)(document.querySelector('#video'))`)
	b.wait("joined", 10*time.Second, `!document.querySelector('#chat-input').disabled`)
	if c := b.text(`document.querySelector('.stage').dataset.cover || ''`); c != cover {
		t.Fatalf("the room's stage has cover %q, want %q", c, cover)
	}
	// The Share button gives the link (copied, or shown, in a toast).
	b.do("share", chromedp.Click("#share", chromedp.ByQuery))
	b.wait("the link shown", 5*time.Second, fmt.Sprintf(`document.body.innerText.includes('/r/%d')`, atoi(t, roomID)))

	// Comments scroll over the video.
	type comment struct {
		text string
		at   int64 // Unix ms, as Live.comment stored it (the chat event's time)
	}
	var said []comment
	say := func(text string) {
		t.Helper()
		b.do("say "+text,
			chromedp.SetValue("#chat-input", text, chromedp.ByQuery),
			chromedp.Click("#chat-send", chromedp.ByQuery),
		)
		b.wait("the comment in the chat", 10*time.Second, fmt.Sprintf(`[...document.querySelectorAll('#chat li[data-type="comment"]')].some(li => li.textContent.includes(%q))`, text))
		said = append(said, comment{text: text})
	}
	say("first danmaku")
	b.wait("a danmaku over the video", 5*time.Second, `[...document.querySelectorAll('#danmaku-layer .danmaku')].some(d => d.textContent === 'first danmaku')`)
	type box struct{ Left, Right, Top, Bottom float64 }
	var v, layer, d1, d2 box
	rect := func(sel string, out *box) {
		t.Helper()
		if err := b.eval(`(r => ({Left: r.left, Right: r.right, Top: r.top, Bottom: r.bottom}))(`+sel+`.getBoundingClientRect())`, out); err != nil {
			t.Fatal(err)
		}
	}
	dm := `[...document.querySelectorAll('#danmaku-layer .danmaku')].find(d => d.textContent === 'first danmaku')`
	rect(`document.querySelector('#video')`, &v)
	rect(`document.querySelector('#danmaku-layer')`, &layer)
	rect(dm, &d1)
	b.wait("the danmaku moved", 5*time.Second, fmt.Sprintf(`%s.getBoundingClientRect().left < %f - 40`, dm, d1.Left))
	rect(dm, &d2)
	b.screenshot("danmaku.png")
	t.Logf("video %+v, layer %+v, danmaku %+v then %+v", v, layer, d1, d2)
	if abs(layer.Left-v.Left) > 1 || abs(layer.Right-v.Right) > 1 || abs(layer.Top-v.Top) > 1 || abs(layer.Bottom-v.Bottom) > 1 {
		t.Fatalf("the danmaku layer %+v is not over the video %+v", layer, v)
	}
	if d2.Left >= d1.Left || d1.Top < v.Top || d1.Bottom > v.Bottom || d2.Top != d1.Top || d1.Left > v.Right || d2.Right < v.Left {
		t.Fatalf("the danmaku does not cross the video: %+v then %+v over %+v", d1, d2, v)
	}
	if pe := b.text(`getComputedStyle(document.querySelector('#danmaku-layer')).pointerEvents`); pe != "none" {
		t.Fatalf("the danmaku layer takes clicks: pointer-events %s", pe)
	}
	say("second danmaku")
	b.wait("the second danmaku", 5*time.Second, `[...document.querySelectorAll('#danmaku-layer .danmaku')].some(d => d.textContent === 'second danmaku')`)
	// Off: nothing over the video, and new comments stay in the chat.
	b.do("danmaku off", chromedp.Click("#danmaku-toggle", chromedp.ByQuery))
	b.wait("the layer hidden", 5*time.Second, `document.querySelector('#danmaku-layer').hidden && document.querySelector('#danmaku-layer').children.length === 0`)
	say("third, in the chat only")
	if n := b.text(`String(document.querySelectorAll('#danmaku-layer .danmaku').length)`); n != "0" {
		t.Fatalf("%s danmaku with the toggle off", n)
	}
	b.do("danmaku on again", chromedp.Click("#danmaku-toggle", chromedp.ByQuery))
	// A comment the owner deletes leaves the video at once (and the
	// replay: it is not in Live.record.comments below).
	b.do("say delete me",
		chromedp.SetValue("#chat-input", "delete me", chromedp.ByQuery),
		chromedp.Click("#chat-send", chromedp.ByQuery),
	)
	doomed := `[...document.querySelectorAll('#danmaku-layer .danmaku')].some(d => d.textContent === 'delete me')`
	b.wait("its danmaku", 5*time.Second, doomed)
	var doomedID float64
	for _, c := range rpcCall(t, api, alice, "Live.comment.list", map[string]any{"room_id": roomID})["data"].(map[string]any)["comments"].([]any) {
		if c := c.(map[string]any); c["content"] == "delete me" {
			doomedID = c["id"].(float64)
		}
	}
	if res := rpcCall(t, api, alice, "Live.comment.delete", map[string]any{"room_id": roomID, "comment_id": doomedID}); res["errno"] != float64(1000) {
		t.Fatalf("Live.comment.delete: %v", res)
	}
	b.wait("its danmaku gone", 5*time.Second, "!"+doomed)
	// A burst of comments from 8 others (56, at the comment rate limit):
	// at most 40 are on screen at once.
	b.do("count what is on screen", chromedp.Evaluate(`(() => {
		const layer = document.querySelector('#danmaku-layer');
		window.__dmMax = 0;
		new MutationObserver(() => { window.__dmMax = Math.max(window.__dmMax, layer.querySelectorAll('.danmaku').length); }).observe(layer, {childList: true});
		return true;
	})()`, &ignored))
	const others, each = 8, 7
	var fans []*wsPeer
	for i := range others {
		reg := rpcCall(t, api, "", "User.register", map[string]any{"username": fmt.Sprintf("fan%d", i), "password": "fan-password"})
		p := dialPeer(t, api, reg["data"].(map[string]any)["access_token"].(string))
		p.call("Live.room.join", map[string]any{"room_id": roomID, "password": "open-sesame"})
		fans = append(fans, p)
	}
	for j := range each {
		if j >= 5 {
			time.Sleep(600 * time.Millisecond) // the rate after a burst of 5
		}
		for i, p := range fans {
			p.call("Live.comment", map[string]any{"room_id": roomID, "content": fmt.Sprintf("fan %d says %d", i, j)})
		}
	}
	b.wait("the burst over the video", 10*time.Second, `window.__dmMax >= 30`)
	b.wait("the burst crossing", 10*time.Second, `[...document.querySelectorAll('#danmaku-layer .danmaku')].some(d => d.textContent.startsWith('fan') && d.getBoundingClientRect().left < 400)`)
	b.screenshot("danmaku-burst.png")
	// No two of a lane overlap.
	if overlap := b.text(`(() => {
		const ds = [...document.querySelectorAll('#danmaku-layer .danmaku')].map(d => [d.textContent, d.getBoundingClientRect()]);
		for (const [ta, a] of ds) for (const [tb, b] of ds) {
			if (ta !== tb && a.top === b.top && a.left < b.right && b.left < a.right) return ta + ' / ' + tb;
		}
		return '';
	})()`); overlap != "" {
		b.fail("danmaku overlap: %s", overlap)
	}
	var most int
	b.eval(`window.__dmMax`, &most)
	t.Logf("%d comments in a burst: at most %d on screen at once", others*each, most)
	if most > 40 {
		t.Fatalf("%d danmaku on screen at once, want at most 40", most)
	}
	// Some more of the live after the last comment, then the end.
	time.Sleep(3 * time.Second)
	ff.Process.Kill()
	ff.Wait()

	// The recording's comments, with their offsets.
	var recordID float64
	eventually(t, 30*time.Second, "the recording complete", func() bool {
		rs := rpcCall(t, api, alice, "Live.record.list", map[string]any{"room_id": roomID})["data"].(map[string]any)["records"].([]any)
		if len(rs) != 1 || rs[0].(map[string]any)["status"] != "complete" {
			return false
		}
		recordID = rs[0].(map[string]any)["id"].(float64)
		return true
	})
	r := rpcCall(t, api, alice, "Live.record.read", map[string]any{"record_id": recordID})["data"].(map[string]any)
	start, duration := int64(r["start_time"].(float64))*1000, r["duration"].(float64)*1000
	list := rpcCall(t, api, alice, "Live.comment.list", map[string]any{"room_id": roomID, "size": 100})["data"].(map[string]any)["comments"].([]any)
	for i := range said {
		for _, c := range list {
			if c := c.(map[string]any); c["content"] == said[i].text {
				said[i].at = int64(c["time"].(float64))
			}
		}
	}
	if res := rpcCall(t, api, "", "Live.record.comments", map[string]any{"record_id": recordID}); res["errno"] != float64(1005) {
		t.Fatalf("Live.record.comments without a login: %v", res)
	}
	bob := rpcCall(t, api, "", "User.login", map[string]any{"username": "bob", "password": "bob-password"})["data"].(map[string]any)["access_token"].(string)
	if res := rpcCall(t, api, bob, "Live.record.comments", map[string]any{"record_id": recordID}); res["errno"] != float64(1008) {
		t.Fatalf("Live.record.comments without the room's password: %v", res)
	}
	got := rpcCall(t, api, bob, "Live.record.comments", map[string]any{"record_id": recordID, "password": "open-sesame"})["data"].(map[string]any)
	cs := got["comments"].([]any)
	if len(cs) != len(said)+others*each || got["more"] != false {
		t.Fatalf("Live.record.comments: %d comments, want %d", len(cs), len(said)+others*each)
	}
	var offsets []float64
	for i, c := range cs[:len(said)] {
		c := c.(map[string]any)
		off := c["offset"].(float64)
		offsets = append(offsets, off)
		// start_time is in seconds: the offset is the comment's time from
		// the recording's start, within that second.
		if c["content"] != said[i].text || int64(c["time"].(float64)) != said[i].at ||
			int64(off) > said[i].at-start || int64(off) < said[i].at-start-1000 || off > duration {
			t.Fatalf("comment %d: %v; want %q at %d ms (start %d, duration %.0f ms)", i, c, said[i].text, said[i].at, start, duration)
		}
		if i > 0 && int64(off-offsets[0]) != said[i].at-said[0].at {
			t.Fatalf("comment %d at %.0f ms, the first at %.0f: %d ms apart, made %d ms apart", i, off, offsets[0], int64(off-offsets[0]), said[i].at-said[0].at)
		}
	}
	t.Logf("recording %.0f: %.1f s, comments at %v ms", recordID, duration/1000, offsets)
	window := rpcCall(t, api, alice, "Live.record.comments", map[string]any{"record_id": recordID, "from": offsets[1], "to": offsets[1] + 1})["data"].(map[string]any)["comments"].([]any)
	if len(window) != 1 || window[0].(map[string]any)["content"] != said[1].text {
		t.Fatalf("Live.record.comments [%v, %v+1): %v", offsets[1], offsets[1], window)
	}

	// The replay shows each comment when the video reaches it: start 2 s
	// before the second comment, note the video's time when it appears.
	b.do("open the replay", chromedp.Navigate(fmt.Sprintf("%s#/replay/%d", site, int64(recordID))))
	b.wait("password asked", 15*time.Second, `document.querySelector('#room-password-input')`)
	b.settled()
	b.do("the password",
		chromedp.SetValue("#room-password-input", "open-sesame", chromedp.ByQuery),
		chromedp.Click("#room-password-submit", chromedp.ByQuery),
	)
	b.wait("the replay's comments loaded", 15*time.Second, `document.querySelector('#replay-note').textContent.includes('59 comments')`)
	b.wait("the replay playing", 15*time.Second, `(v => v.readyState >= 2 && !v.paused)(document.querySelector('#replay-video'))`)
	watch := func(text string, from float64) {
		t.Helper()
		b.do("watch for "+text, chromedp.Evaluate(fmt.Sprintf(`(() => {
			const v = document.querySelector('#replay-video');
			const layer = document.querySelector('#danmaku-layer');
			window.__seen = null;
			layer.replaceChildren(); // what an earlier look left
			if (window.__obs) window.__obs.disconnect();
			window.__obs = new MutationObserver(() => {
				if (!window.__seen && [...layer.children].some(d => d.textContent === %q)) window.__seen = v.currentTime * 1000;
			});
			v.currentTime = %f;
			window.__obs.observe(layer, {childList: true});
			v.play();
			return true;
		})()`, text, from/1000), &ignored))
	}
	check := func(text string, at float64) {
		t.Helper()
		b.wait(text+" over the replay", 15*time.Second, `window.__seen !== null`)
		var seen float64
		b.eval(`window.__seen`, &seen)
		t.Logf("%q (offset %.0f ms) appeared at %.0f ms of the replay", text, at, seen)
		if seen < at || seen > at+1500 {
			b.fail("%q appeared at %.0f ms of the replay, its offset is %.0f ms", text, seen, at)
		}
	}
	watch(said[1].text, offsets[1]-2000)
	check(said[1].text, offsets[1])
	b.screenshot("replay-danmaku.png")
	// Seek past it, then back: it comes again at its moment.
	watch(said[1].text, offsets[1]-1500)
	check(said[1].text, offsets[1])
	if errs := b.pageErrors(); len(errs) > 0 {
		t.Logf("page errors: %v", errs)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(strings.TrimLeft(s, "0"), &n); err != nil {
		t.Fatalf("room id %q: %v", s, err)
	}
	return n
}

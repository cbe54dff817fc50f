package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// loginAs puts an API login into the tab's session, as the log-in page
// would, and opens the site.
func (b *tab) loginAs(site string, login map[string]any) {
	b.t.Helper()
	data, _ := json.Marshal(login)
	var ignored any
	b.do("open the site", chromedp.Navigate(site+"#/rooms"))
	b.do("log in", chromedp.Evaluate(fmt.Sprintf(`localStorage.setItem('mofang.session', %q); true`, data), &ignored))
}

// TestBrowserModeration is the pages' moderation in headless Chromium: the
// owner names a moderator and sets a refusing word in My room; in the
// live room a viewer's comment is masked by the server's list
// (--word-filter) and one with the room's word is refused with the
// reason; the moderator deletes a comment, which disappears on the
// viewer's page too, mutes the viewer from the online list (the viewer
// is told, and a comment then says why it failed) and kicks them (the
// viewer's page says so, and entering again is refused).
func TestBrowserModeration(t *testing.T) {
	chromium := chromiumPath(t)
	needFFmpeg(t)
	needPages(t)
	rtmpPort := freePort(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1",
		"--word-filter", "spam,傻瓜")
	defer stop()
	site := pagesSite(t, api)
	shots := screenshotDir(t)
	for _, n := range []string{"owner", "moderator", "viewer"} {
		os.Remove(filepath.Join(shots, "failed-"+n+".png"))
	}
	roomID, pub := apiRoom(t, api, "alice", "Alice moderates")
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", pub["url"].(string))
	login := func(user string) map[string]any {
		return rpcCall(t, api, "", "User.login", map[string]any{"username": user, "password": user + "-password"})["data"].(map[string]any)
	}
	for _, u := range []string{"mia", "bob"} {
		rpcCall(t, api, "", "User.register", map[string]any{"username": u, "password": u + "-password", "nickname": "Nick " + u})
	}
	mia, bob := login("mia"), login("bob")
	miaID := fmt.Sprint(mia["user"].(map[string]any)["id"].(float64))

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	newTab := startBrowser(t, ctx, chromium, shots)
	owner := newTab("owner", nil)
	owner.loginAs(site, login("alice"))
	owner.do("open my room", chromedp.Navigate(site+"#/me"))
	owner.wait("moderation card", 15*time.Second, `document.querySelector('#moderation #mod-add-id')`)
	// My room's cards above this one load on their own and move it down:
	// a click at the button's place could land on another card (it hit
	// the Restream form's key field once), so the buttons are clicked
	// in the page.
	var ignored any
	owner.do("add mia",
		chromedp.SetValue("#mod-add-id", miaID, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('#mod-add').click(), true`, &ignored))
	owner.wait("mia listed", 10*time.Second, `document.querySelector('#mod-list').textContent.includes('Nick mia')`)
	owner.do("set the room's words",
		chromedp.SetValue("#mod-words", "广告\nscam", chromedp.ByQuery),
		chromedp.SetValue("#mod-words-mode", "refuse", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('#mod-words-save').click(), true`, &ignored))
	owner.toasted("words saved", "Word list saved")
	owner.wait("the log lists both", 10*time.Second, `(t => t.includes('mod_add') && t.includes('words'))(document.querySelector('#mod-log').textContent)`)

	moderator := newTab("moderator", owner.ctx, chromedp.WithNewBrowserContext())
	moderator.loginAs(site, mia)
	moderator.inRoom(site, roomID)
	moderator.wait("moderation bar", 10*time.Second, `!document.querySelector('#mod-bar').hidden`)
	viewer := newTab("viewer", owner.ctx, chromedp.WithNewBrowserContext())
	viewer.loginAs(site, bob)
	viewer.inRoom(site, roomID)
	if hidden := viewer.text(`String(document.querySelector('#mod-bar').hidden)`); hidden != "true" {
		t.Fatalf("a viewer sees the moderation bar")
	}
	moderator.seesOnline("Nick bob")

	say := func(b *tab, text string) {
		b.t.Helper()
		b.do("comment "+text,
			chromedp.SetValue("#chat-input", text, chromedp.ByQuery),
			chromedp.Click("#chat-send", chromedp.ByQuery))
	}
	line := func(text string) string {
		return fmt.Sprintf(`[...document.querySelectorAll('#chat li.comment')].find(li => li.querySelector('.content').textContent === %q)`, text)
	}
	say(viewer, "hello SPAM")
	for _, b := range []*tab{viewer, moderator} {
		b.wait("the masked comment", 10*time.Second, line("hello ****"))
	}
	say(viewer, "看广告")
	viewer.toasted("the refused comment's reason", "Your comment holds a word that is not allowed here.")

	// The moderator deletes it: gone on both pages.
	moderator.wait("the comment's moderation button", 10*time.Second, line("hello ****")+`.querySelector('.mod-btn')`)
	moderator.do("open the comment's actions", chromedp.Evaluate(line("hello ****")+`.querySelector('.mod-btn').click(), true`, &ignored))
	moderator.settled()
	moderator.do("delete", chromedp.Click("#mod-delete", chromedp.ByQuery))
	for _, b := range []*tab{viewer, moderator} {
		b.wait("the comment gone", 10*time.Second, "!"+line("hello ****"))
	}

	// Mute from the online list: the viewer is told, and a comment then
	// says why it failed.
	moderator.do("open bob's actions", chromedp.Evaluate(`[...document.querySelectorAll('#online-list li')].find(li => li.textContent.includes('Nick bob')).querySelector('.mod-btn').click(), true`, &ignored))
	moderator.settled()
	moderator.do("mute 5 min", chromedp.Click("#mod-mute5", chromedp.ByQuery))
	viewer.wait("told of the mute", 10*time.Second, `[...document.querySelectorAll('#chat li.sys')].some(li => li.textContent.startsWith('You were muted until'))`)
	say(viewer, "can I talk?")
	viewer.wait("the muted comment's reason", 10*time.Second, `[...document.querySelectorAll('#toasts .toast')].some(t => /^You are muted in this room until .*\d/.test(t.textContent))`)

	// Kick: the viewer's page says so; entering again is refused.
	moderator.do("open bob's actions again", chromedp.Evaluate(`[...document.querySelectorAll('#online-list li')].find(li => li.textContent.includes('Nick bob')).querySelector('.mod-btn').click(), true`, &ignored))
	moderator.settled()
	moderator.do("kick", chromedp.Click("#mod-kick", chromedp.ByQuery))
	viewer.wait("told of the kick", 10*time.Second, `document.querySelector('#stage-state').dataset.state === 'missing' && document.querySelector('.state-text').textContent.startsWith('You were kicked out')`)
	moderator.wait("bob gone from the online list", 10*time.Second, `![...document.querySelectorAll('#online-list li')].some(li => li.textContent.includes('Nick bob'))`)
	viewer.do("enter again", chromedp.Navigate(site+"#/rooms"), chromedp.Navigate(site+"#/room/"+roomID))
	viewer.wait("refused", 10*time.Second, `document.querySelector('.state-text').textContent.match(/^You were kicked out of this room; you may come back after .*\d/)`)
	viewer.screenshot("moderation-kicked.png")
	noPageErrors(t, owner, moderator, viewer)
}

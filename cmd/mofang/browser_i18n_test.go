package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// catalogue reads one of the pages' catalogues (web/src/i18n/<name>.js:
// one "'key': "value"," entry a line, as NOTES.md says).
func catalogue(t *testing.T, name string) map[string]string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "web", "src", "i18n", name+".js"))
	if err != nil {
		t.Fatal(err)
	}
	entry := regexp.MustCompile(`(?m)^\s*'([^']+)': (".*"),$`)
	out := map[string]string{}
	for _, m := range entry.FindAllStringSubmatch(string(b), -1) {
		var v string
		if err := json.Unmarshal([]byte(m[2]), &v); err != nil {
			t.Fatalf("%s.js %s: %v", name, m[1], err)
		}
		out[m[1]] = v
	}
	if len(out) < 100 {
		t.Fatalf("%s.js: only %d entries read", name, len(out))
	}
	return out
}

// foreignFragments are the pieces of the catalogue's values in other
// (the other language) that differ from the same keys' values in mine:
// the text between placeholders, trimmed, with a letter in it. A page in
// my language shows none of them.
func foreignFragments(other, mine map[string]string) map[string]string {
	ph := regexp.MustCompile(`\{\w+\}`)
	letter := regexp.MustCompile(`[A-Za-z]{2}|\p{Han}`)
	out := map[string]string{} // fragment → key
	for k, v := range other {
		if v == mine[k] {
			continue
		}
		for _, f := range ph.Split(v, -1) {
			f = strings.Trim(f, " ·:：,，.。()（）")
			if len([]rune(f)) >= 2 && letter.MatchString(f) && !strings.Contains(mine[k], f) {
				out[f] = k
			}
		}
	}
	return out
}

// pageWords is what a person reads on the page: its text and the
// placeholders, titles and labels of visible elements.
const pageWords = `(() => {
	const parts = [document.body.innerText];
	for (const el of document.querySelectorAll('[placeholder], [title], [aria-label]')) {
		if (!el.getClientRects().length) continue;
		for (const a of ['placeholder', 'title', 'aria-label']) if (el.hasAttribute(a)) parts.push(el.getAttribute(a));
	}
	return parts.join('\n');
})()`

// TestBrowserLanguages is issue 13's Languages in headless Chromium: a
// browser whose language is zh-CN (Chromium's --lang and --accept-lang)
// gets the log-in page, the room list, a room with its password prompt,
// My room, a room's lives (refused to a viewer) and the log-in page after
// an expired login in Chinese, with no English value of the catalogue on
// them (nor a catalogue key); the message of a wrong login is Chinese
// too. A browser in English gets the same pages in English with no
// Chinese value. The switch in the header changes the language without
// a reload and is remembered after one.
func TestBrowserLanguages(t *testing.T) {
	chromium := chromiumPath(t)
	needPages(t)
	en, zh := catalogue(t, "en"), catalogue(t, "zh-CN")
	notZH, notEN := foreignFragments(en, zh), foreignFragments(zh, en)

	api, stop := startServe(t, t.TempDir())
	defer stop()
	site := pagesSite(t, api)
	shots := screenshotDir(t)
	// A host's room with a password; names without English words.
	reg := rpcCall(t, api, "", "User.register", map[string]any{"username": "zhuboyi", "password": "host-password", "nickname": "老王"})
	hostTok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, api, hostTok, "Live.stream", map[string]any{"room_name": "周五音乐会", "password": "1234"})["data"].(map[string]any)
	roomID := room["room_id"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	// check fails when the page shows a fragment of the other language,
	// or a catalogue key instead of its text.
	check := func(b *tab, page string, foreign map[string]string) {
		t.Helper()
		text := b.text(pageWords)
		for k := range en {
			if strings.Contains(text, k) {
				b.fail("%s: %s shows the key %q, not its text; page:\n%s", b.name, page, k, text)
			}
		}
		for f, k := range foreign {
			if strings.Contains(text, f) {
				b.fail("%s: %s shows %q (catalogue key %s) in the wrong language; page:\n%s", b.name, page, f, k, text)
			}
		}
	}

	for _, c := range []struct {
		lang, accept string
		foreign      map[string]string
		want         map[string]string // page → a string it must show
	}{
		{"zh-CN", "zh-CN,zh", notZH, map[string]string{"login": "登录", "rooms": "房间列表", "password": "请输入房间密码", "room": "在线", "me": "我的房间", "lives": "我的直播", "wrong": "用户名或密码错误。", "expired": "登录已过期，请重新登录。"}},
		{"en-US", "en-US,en", notEN, map[string]string{"login": "Log in", "rooms": "Live rooms", "password": "Enter the room password", "room": "Online", "me": "My room", "lives": "My lives", "wrong": "Wrong user name or password.", "expired": "Your login has expired. Please log in again."}},
	} {
		newTab := startBrowser(t, ctx, chromium, shots, chromedp.Flag("lang", c.lang), chromedp.Flag("accept-lang", c.accept))
		b := newTab("viewer-"+c.lang, nil)
		var langs []string
		if err := b.eval(`navigator.languages`, &langs); err != nil || len(langs) == 0 || !strings.HasPrefix(langs[0], c.lang[:2]) {
			t.Fatalf("%s: the browser's languages are %v (%v)", c.lang, langs, err)
		}
		shot := func(name string) { b.screenshot("i18n-" + c.lang + "-" + name + ".png") }
		has := func(what string, page string) {
			t.Helper()
			s, _ := json.Marshal(c.want[what])
			b.wait(page+" in "+c.lang, 10*time.Second, `document.body.innerText.includes(`+string(s)+`)`)
		}

		b.do("open the site", chromedp.Navigate(site))
		b.wait("log-in page", 10*time.Second, `location.hash === '#/login' && document.querySelector('#login-form')`)
		has("login", "the log-in page")
		if lang := b.text(`document.documentElement.lang`); lang != map[string]string{"zh-CN": "zh-CN", "en-US": "en"}[c.lang] {
			t.Errorf("%s: <html lang=%q>", c.lang, lang)
		}
		check(b, "the log-in page", c.foreign)
		b.do("a wrong login",
			chromedp.SetValue("#username", "zhuboyi", chromedp.ByQuery),
			chromedp.SetValue("#password", "not-the-password", chromedp.ByQuery),
			chromedp.Click("#login-submit", chromedp.ByQuery),
		)
		wrong, _ := json.Marshal(c.want["wrong"])
		b.wait("the wrong login's message", 10*time.Second, `document.querySelector('#login-error').textContent === `+string(wrong))
		shot("login")

		b.register(site, "viewer"+c.lang[:2], "小明")
		has("rooms", "the room list")
		b.wait("the host's room listed", 10*time.Second, `document.querySelector('a.room-item[data-room-name="周五音乐会"]')`)
		check(b, "the room list", c.foreign)
		shot("rooms")

		b.do("open the room", chromedp.Navigate(site+"#/room/"+roomID))
		b.wait("the password prompt", 10*time.Second, `document.querySelector('#room-password-form')`)
		has("password", "the password prompt")
		check(b, "the password prompt", c.foreign)
		shot("password")
		b.settled()
		b.do("enter the password",
			chromedp.SetValue("#room-password-input", "1234", chromedp.ByQuery),
			chromedp.Click("#room-password-submit", chromedp.ByQuery),
		)
		b.wait("the room, offline", 15*time.Second, `document.querySelector('#stage-state')?.dataset.state === 'offline' && !document.querySelector('#room-password-form')`)
		has("room", "the room")
		check(b, "the room", c.foreign)
		shot("room")

		b.do("open my room", chromedp.Navigate(site+"#/me"))
		b.wait("my room's form", 10*time.Second, `document.querySelector('#room-form') && document.querySelector('#room-name').value !== ''`)
		has("me", "my room")
		check(b, "my room", c.foreign)
		shot("me")

		// The host statistics page of someone else's room: refused, in the language.
		b.do("open the room's lives", chromedp.Navigate(site+"#/lives/"+roomID))
		b.wait("the lives page", 10*time.Second, `document.querySelector('#lives .form-error')?.textContent`)
		has("lives", "the lives page")
		check(b, "the lives page", c.foreign)
		shot("lives")

		// A login the server refuses: back to log in, told why in the language.
		expired, _ := json.Marshal(c.want["expired"])
		var ignored bool
		b.do("break the session", chromedp.Evaluate(`localStorage.setItem('mofang.session', JSON.stringify({access_token: 'garbage', refresh_token: 'garbage', user: {id: 2, nickname: '小明'}})); true`, &ignored),
			// a new document (another query), so that the old page, which
			// may find the broken login first and leave for the log-in
			// page, is not what gets reloaded.
			chromedp.Navigate(site+"?relogin=1#/rooms"))
		b.wait("sent to log in", 10*time.Second, `location.hash === '#/login' && document.querySelector('#login-error')?.textContent === `+string(expired))
		check(b, "the log-in page after an expired login", c.foreign)
		b.do("log in again",
			chromedp.SetValue("#username", "viewer"+c.lang[:2], chromedp.ByQuery),
			chromedp.SetValue("#password", "viewer"+c.lang[:2]+"-password", chromedp.ByQuery),
			chromedp.Click("#login-submit", chromedp.ByQuery),
		)
		b.wait("logged in again", 10*time.Second, `document.querySelector('#room-list')`)
		noPageErrors(t, b)

		if c.lang != "en-US" {
			continue
		}
		// The switch: Chinese without a reload, remembered after one, and back.
		b.wait("the room list", 10*time.Second, `location.hash === '#/rooms' && document.querySelector('#lang-switch') && document.body.innerText.includes('Live rooms')`)
		var ok bool
		if err := b.eval(`(window.__sameLoad = true)`, &ok); err != nil {
			t.Fatal(err)
		}
		b.do("switch to Chinese", chromedp.Click(`#lang-switch [data-lang="zh-CN"]`, chromedp.ByQuery))
		b.wait("the room list in Chinese", 10*time.Second, `document.querySelector('h1').textContent === '房间列表' && window.__sameLoad === true && document.documentElement.lang === 'zh-CN'`)
		b.wait("the host's room listed", 10*time.Second, `document.querySelector('a.room-item[data-room-name="周五音乐会"]')`)
		check(b, "the room list after the switch", notZH)
		shot("switched")
		b.do("reload", chromedp.Reload())
		b.wait("still Chinese after a reload", 10*time.Second, `document.querySelector('h1')?.textContent === '房间列表' && !window.__sameLoad && localStorage.getItem('mofang.lang') === 'zh-CN'`)
		b.do("switch to English", chromedp.Click(`#lang-switch [data-lang="en"]`, chromedp.ByQuery))
		b.wait("the room list in English", 10*time.Second, `document.querySelector('h1').textContent === 'Live rooms' && localStorage.getItem('mofang.lang') === 'en'`)
		noPageErrors(t, b) // the redraws of the switches threw nothing
	}
}

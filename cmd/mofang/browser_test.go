package main

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mofang-live/mofang/cmd/mofang/web"
)

// chromiumPath is Debian's chromium, or $MOFANG_CHROMIUM.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("MOFANG_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("the browser test needs Chromium (apt-get install chromium, or set MOFANG_CHROMIUM): %v", err)
	}
	return p
}

// screenshotDir is screenshots/ at the repository root.
func screenshotDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pagesSite checks that the service serves the pages at GET / and returns
// its base URL.
func pagesSite(t *testing.T, api string) string {
	t.Helper()
	resp, err := http.Get(api)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != http.StatusOK || ct != "text/html" {
		t.Fatalf("GET / answers %d %s, not the pages: run make web first", resp.StatusCode, ct)
	}
	return api
}

// tab is one browser tab of one user, with bounded waits that fail the
// test with a message and a screenshot of the page.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
	dir  string
}

// do runs actions within 20 s.
func (b *tab) do(what string, actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.fail("%s: %s: %v", b.name, what, err)
	}
}

// eval evaluates a JavaScript expression into res.
func (b *tab) eval(expr string, res any) error {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate(expr, res))
}

// wait polls a JavaScript expression until it is true, for at most d.
func (b *tab) wait(what string, d time.Duration, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	var lastErr error
	for {
		var ok bool
		lastErr = b.eval("!!("+expr+")", &ok)
		if lastErr == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var state string
			b.eval(`location.hash + " | " + (document.querySelector('#stage-state')?.dataset.state || '') + " | " + document.body.innerText.slice(0, 400)`, &state)
			b.fail("%s: %s: not within %v (err %v); page: %q", b.name, what, d, lastErr, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settled waits until the dialog has finished sliding in, so that clicks
// land where its buttons are.
func (b *tab) settled() {
	b.t.Helper()
	b.wait("dialog in place", 5*time.Second, `(d => d && d.getAnimations().length === 0)(document.querySelector('.dialog'))`)
}

// text returns the value of a string expression.
func (b *tab) text(expr string) string {
	b.t.Helper()
	var s string
	if err := b.eval(expr, &s); err != nil {
		b.fail("%s: evaluating %s: %v", b.name, expr, err)
	}
	return s
}

func (b *tab) screenshot(name string) {
	b.t.Helper()
	var png []byte
	b.do("screenshot "+name, chromedp.CaptureScreenshot(&png))
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

// fail saves a screenshot of the page for a person to look at, then fails.
func (b *tab) fail(format string, args ...any) {
	b.t.Helper()
	var png []byte
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)) == nil {
		os.WriteFile(filepath.Join(b.dir, "failed-"+b.name+".png"), png, 0o644)
	}
	b.t.Fatalf(format, args...)
}

// register signs a new user up through the log-in page.
func (b *tab) register(site, username, nickname string) {
	b.t.Helper()
	b.do("open the site", chromedp.Navigate(site))
	b.wait("log-in page", 10*time.Second, `location.hash === '#/login' && document.querySelector('#login-form')`)
	b.do("register",
		chromedp.Click("#tab-register", chromedp.ByQuery),
		chromedp.SetValue("#username", username, chromedp.ByQuery),
		chromedp.SetValue("#password", username+"-password", chromedp.ByQuery),
		chromedp.SetValue("#nickname", nickname, chromedp.ByQuery),
		chromedp.Click("#login-submit", chromedp.ByQuery),
	)
	b.wait("room list after registering", 10*time.Second, `location.hash === '#/rooms' && document.querySelector('#room-list')`)
}

// TestBrowserWebClient is issue 6's scenario in headless Chromium: a
// streamer makes a password room through the pages and publishes to the
// shown settings with ffmpeg; a viewer in another browser context sees it
// live in the list, is refused a wrong password, enters, and its video
// plays; the two chat, like and gift and see each other; the video comes
// back by itself after the publisher reconnects; the viewer leaves and
// the streamer sees it; and an expired login is sent to the log-in page.
func TestBrowserWebClient(t *testing.T) {
	chromium := chromiumPath(t)
	needFFmpeg(t)
	rec := httptest.NewRecorder()
	web.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("the pages are not built (GET / answers %d): run make web", rec.Code)
	}
	start := time.Now()

	rtmpPort := freePort(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort),
		"--public-host", "127.0.0.1", "--allow-recharge")
	defer stop()
	site := pagesSite(t, api)
	shots := screenshotDir(t)
	for _, name := range []string{"streamer", "viewer"} {
		os.Remove(filepath.Join(shots, "failed-"+name+".png")) // of an earlier run
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1280, 800),
	)
	defer cancelAlloc()

	newTab := func(name string, parent context.Context, opts ...chromedp.ContextOption) *tab {
		tctx, cancelTab := chromedp.NewContext(parent, opts...)
		t.Cleanup(cancelTab)
		chromedp.ListenTarget(tctx, func(ev any) {
			switch ev := ev.(type) {
			case *cdpruntime.EventExceptionThrown:
				d := ev.ExceptionDetails
				if d.Exception != nil {
					t.Logf("%s: page exception: %s %s", name, d.Text, d.Exception.Description)
				} else {
					t.Logf("%s: page exception: %s", name, d.Error())
				}
			case *cdpruntime.EventConsoleAPICalled:
				if ev.Type == cdpruntime.APITypeError || ev.Type == cdpruntime.APITypeWarning {
					var parts []string
					for _, a := range ev.Args {
						parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
					}
					t.Logf("%s: console %s: %s", name, ev.Type, strings.Join(parts, " "))
				}
			}
		})
		// The first run starts the browser or opens the tab, which lives
		// as long as the context of that run: tctx itself, bounded by ctx.
		if err := chromedp.Run(tctx, chromedp.Navigate("about:blank")); err != nil {
			t.Fatalf("starting %s (%s): %v", chromium, name, err)
		}
		return &tab{t: t, name: name, ctx: tctx, dir: shots}
	}
	// The streamer on a laptop; the viewer on a phone, in another browser
	// context (its own storage: another user).
	streamer := newTab("streamer", allocCtx)
	viewer := newTab("viewer", streamer.ctx, chromedp.WithNewBrowserContext())
	viewer.do("phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	t.Logf("browser up after %v", time.Since(start).Round(time.Millisecond))

	// The streamer registers and makes a room with a password.
	streamer.register(site, "alice", "Alice")
	streamer.do("open my room", chromedp.Click("#my-room-link", chromedp.ByQuery))
	streamer.wait("my room form", 10*time.Second, `document.querySelector('#room-form') && document.querySelector('#room-name').value !== ''`)
	streamer.do("create the room",
		chromedp.SetValue("#room-name", "Alice live", chromedp.ByQuery),
		chromedp.SetValue("#room-password", "open-sesame", chromedp.ByQuery),
		chromedp.Click("#room-save", chromedp.ByQuery),
	)
	streamer.wait("OBS settings", 10*time.Second, `document.querySelector('#obs-key')`)
	server := streamer.text(`document.querySelector('#obs-server').value`)
	key := streamer.text(`document.querySelector('#obs-key').value`)
	full := streamer.text(`document.querySelector('#obs-url').value`)
	if !strings.HasPrefix(server, fmt.Sprintf("rtmp://127.0.0.1:%d/live", rtmpPort)) || !strings.Contains(key, "?sign=") || server+"/"+key != full {
		t.Fatalf("OBS settings: server %q, key %q, url %q", server, key, full)
	}
	streamer.screenshot("my-room.png")

	// ffmpeg publishes with the settings the page showed, as OBS would.
	publish := func() *exec.Cmd {
		return startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", server+"/"+key)
	}
	ff := publish()

	// The viewer signs up and sees the room live in the list.
	viewer.register(site, "bob", "Bob")
	liveItem := `document.querySelector('a.room-item[data-live="1"][data-room-name="Alice live"]')`
	viewer.wait("the room live in the list", 20*time.Second, liveItem)
	viewer.wait("the lock of a room with a password", time.Second, liveItem+`.querySelector('.lock')`)
	viewer.screenshot("room-list.png")

	// A wrong password is refused with a message; the right one enters.
	viewer.do("enter the room", chromedp.Click(`a.room-item[data-room-name="Alice live"]`, chromedp.ByQuery))
	viewer.wait("password prompt", 10*time.Second, `document.querySelector('#room-password-input')`)
	viewer.settled()
	viewer.do("a wrong password",
		chromedp.SetValue("#room-password-input", "guess", chromedp.ByQuery),
		chromedp.Click("#room-password-submit", chromedp.ByQuery),
	)
	viewer.wait("wrong password message", 10*time.Second, `document.querySelector('#room-password-error')?.textContent.includes('Wrong room password')`)
	viewer.settled()
	var ignored bool
	viewer.do("the right password",
		chromedp.SetValue("#room-password-input", "open-sesame", chromedp.ByQuery),
		chromedp.Evaluate(`performance.clearMarks(); performance.mark('test:enter'); true`, &ignored),
		chromedp.Click("#room-password-submit", chromedp.ByQuery),
	)

	// The video plays: time advances and the picture is the clip's 640x360.
	playing := `(v => v && v.currentTime > 0.2 && !v.paused)(document.querySelector('#video'))`
	viewer.wait("video playing", 10*time.Second, playing)
	// How long it took, by the page's User Timing marks: the password
	// check (bcrypt, slow under -race), then the player's own start.
	var marks map[string]float64
	viewer.eval(`Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, m.startTime]))`, &marks)
	check, player := marks["mofang:room-read"]-marks["test:enter"], marks["mofang:playing"]-marks["mofang:room-read"]
	t.Logf("entering: password checked in %.0f ms, then the video played in %.0f ms", check, player)
	if marks["mofang:playing"] == 0 || player > 2000 {
		viewer.fail("the video took %.0f ms to start after the room was read, want at most 2000 (marks %v)", player, marks)
	}
	var width, height int
	viewer.eval(`document.querySelector('#video').videoWidth`, &width)
	viewer.eval(`document.querySelector('#video').videoHeight`, &height)
	if width != 640 || height != 360 {
		t.Fatalf("video is %dx%d, want 640x360", width, height)
	}
	advancing := func(b *tab) {
		t.Helper()
		var t1, t2 float64
		b.eval(`document.querySelector('#video').currentTime`, &t1)
		b.wait("video time advancing", 5*time.Second, fmt.Sprintf(`document.querySelector('#video').currentTime > %f + 0.5`, t1))
		b.eval(`document.querySelector('#video').currentTime`, &t2)
		t.Logf("%s: video time %.2f -> %.2f", b.name, t1, t2)
	}
	advancing(viewer)

	// The streamer opens the room too; both are online.
	streamer.do("open my room's page",
		chromedp.Evaluate(`performance.clearMarks(); performance.mark('test:enter'); true`, &ignored),
		chromedp.Click("#open-my-room", chromedp.ByQuery))
	streamer.wait("video playing at the streamer", 10*time.Second, playing)
	marks = nil
	streamer.eval(`Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, m.startTime]))`, &marks)
	t.Logf("the streamer's video played %.0f ms after entering (no password)", marks["mofang:playing"]-marks["test:enter"])
	if marks["mofang:playing"] == 0 || marks["mofang:playing"]-marks["test:enter"] > 2000 {
		streamer.fail("the streamer's video took %.0f ms to start, want at most 2000 (marks %v)", marks["mofang:playing"]-marks["test:enter"], marks)
	}
	joined := `!document.querySelector('#chat-input').disabled`
	streamer.wait("streamer joined", 10*time.Second, joined)
	viewer.wait("viewer joined", 10*time.Second, joined)
	bothOnline := `(l => l.length === 2 && l.some(li => li.textContent.includes('Alice')) && l.some(li => li.textContent.includes('Bob')))([...document.querySelectorAll('#online-list li')])`
	streamer.wait("both online at the streamer", 10*time.Second, bothOnline)
	viewer.wait("both online at the viewer", 10*time.Second, bothOnline)

	// They chat.
	say := func(b *tab, msg string) {
		t.Helper()
		b.do("say "+msg,
			chromedp.SetValue("#chat-input", msg, chromedp.ByQuery),
			chromedp.Click("#chat-send", chromedp.ByQuery),
		)
	}
	sees := func(b *tab, what, sel, text string) {
		t.Helper()
		b.wait(what, 10*time.Second, fmt.Sprintf(`[...document.querySelectorAll(%q)].some(li => li.textContent.includes(%q))`, sel, text))
	}
	say(streamer, "hello from Alice")
	sees(viewer, "the streamer's comment", `#chat li[data-type="comment"][data-user="Alice"]`, "hello from Alice")
	say(viewer, "hi Alice, nice stream")
	sees(streamer, "the viewer's comment", `#chat li[data-type="comment"][data-user="Bob"]`, "hi Alice, nice stream")

	// They like.
	streamer.do("like", chromedp.Click("#like", chromedp.ByQuery))
	sees(viewer, "the streamer's like", `#chat li[data-type="like"][data-user="Alice"]`, "liked")
	viewer.do("like", chromedp.Click("#like", chromedp.ByQuery))
	sees(streamer, "the viewer's like", `#chat li[data-type="like"][data-user="Bob"]`, "liked")
	streamer.wait("two likes counted", 5*time.Second, `document.querySelector('#like-count b').textContent === '2'`)

	// The viewer tops up (User.coin.recharge) and sends a gift; the
	// streamer's own room has no gift button.
	if hidden := streamer.text(`String(document.querySelector('#gift').hidden)`); hidden != "true" {
		t.Fatalf("the streamer has a gift button in their own room")
	}
	viewer.do("open the gifts", chromedp.Click("#gift", chromedp.ByQuery))
	viewer.wait("gift sheet", 10*time.Second, `document.querySelector('#gift-sheet .gift-item')`)
	viewer.settled()
	viewer.do("recharge", chromedp.Click("#recharge", chromedp.ByQuery))
	viewer.wait("100 coins", 10*time.Second, `document.querySelector('#gift-balance').textContent === '100'`)
	viewer.do("send a rocket",
		chromedp.Click(`#gift-sheet .gift-item[data-gift-name="rocket"]`, chromedp.ByQuery),
		chromedp.Click("#gift-send", chromedp.ByQuery),
	)
	viewer.wait("gift sheet closed", 10*time.Second, `!document.querySelector('#gift-sheet')`)
	sees(streamer, "the viewer's gift", `#chat li[data-type="gift"][data-user="Bob"]`, "rocket")
	streamer.wait("the gift animation", 5*time.Second, `document.querySelector('.gift-fx[data-user="Bob"]')`)
	sees(viewer, "the viewer's own gift", `#chat li[data-type="gift"][data-user="Bob"]`, "rocket")
	streamer.screenshot("live-room-streamer.png")
	viewer.screenshot("live-room.png")

	// The viewer's network drops: the page says so; when it is back, the
	// page reconnects, joins again and chats on.
	viewer.do("go offline", network.EmulateNetworkConditions(true, 0, 0, 0))
	viewer.wait("network lost banner", 10*time.Second, `!document.querySelector('#banner').hidden`)
	viewer.screenshot("room-network-lost.png")
	viewer.do("back online", network.EmulateNetworkConditions(false, 0, -1, -1))
	viewer.wait("joined again", 15*time.Second, `document.querySelector('#banner').hidden && `+joined)
	say(viewer, "back again")
	sees(streamer, "the viewer's comment after reconnecting", `#chat li[data-type="comment"][data-user="Bob"]`, "back again")
	viewer.wait("video after reconnecting", 15*time.Second, `document.querySelector('#stage-state').hidden && `+playing)

	// The publisher drops: the viewer sees the room is not live; the
	// publisher comes back: the video plays again by itself.
	ff.Process.Kill()
	ff.Wait()
	viewer.wait("not live shown", 15*time.Second, `['offline', 'loading'].includes(document.querySelector('#stage-state').dataset.state) && !document.querySelector('#stage-state').hidden`)
	viewer.wait("offline state", 15*time.Second, `document.querySelector('#stage-state').dataset.state === 'offline'`)
	viewer.screenshot("room-offline.png")
	back := time.Now()
	publish()
	viewer.wait("video back after the publisher reconnected", 20*time.Second, `document.querySelector('#stage-state').hidden && `+playing)
	t.Logf("video back %v after the publisher restarted", time.Since(back).Round(time.Millisecond))
	advancing(viewer)

	// The viewer leaves; the streamer sees it.
	viewer.do("leave", chromedp.Click("#leave", chromedp.ByQuery))
	viewer.wait("back in the list", 10*time.Second, `location.hash === '#/rooms'`)
	streamer.wait("the viewer gone from the online list", 10*time.Second,
		`(l => l.length === 1 && l[0].textContent.includes('Alice'))([...document.querySelectorAll('#online-list li')])`)
	sees(streamer, "the viewer's leaving", `#chat li[data-type="leave"]`, "Bob left")

	// An expired login (here a token the server refuses) sends the user to
	// log in, saying why.
	viewer.do("break the session", chromedp.Evaluate(`localStorage.setItem('mofang.session', JSON.stringify({access_token: 'garbage', refresh_token: 'garbage', user: {id: 2, nickname: 'Bob'}})); true`, &ignored),
		chromedp.Reload())
	viewer.wait("sent to log in", 10*time.Second, `location.hash === '#/login' && document.querySelector('#login-error')?.textContent.includes('expired')`)
	viewer.screenshot("login-expired.png")

	// The streamer's lives are recorded: "My room" lists the recording
	// being written, with its replay links.
	streamer.do("back to my room", chromedp.Navigate(site+"#/me"))
	streamer.wait("a recording listed", 15*time.Second, `document.querySelector('#recordings li.record a[download]')`)
	streamer.screenshot("my-recordings.png")
	t.Logf("browser scenario took %v", time.Since(start).Round(time.Millisecond))
}

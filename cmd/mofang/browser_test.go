package main

import (
	"context"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mofang-live/mofang/cmd/mofang/web"
)

// needPages fails the test when the binary serves no pages (the bundle
// in cmd/mofang/web/dist is missing).
func needPages(t *testing.T) {
	t.Helper()
	rec := httptest.NewRecorder()
	web.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("the pages are not built (GET / answers %d): run make web", rec.Code)
	}
}

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

	mu     sync.Mutex
	errors []string // page exceptions and console errors
}

// mpegtsNote matches a warning of mpegts.js's logger, "[Tag] > text".
var mpegtsNote = regexp.MustCompile(`^\[[A-Za-z0-9]+\] > `)

// pageErrors returns the page's exceptions and console errors since the
// last call.
func (b *tab) pageErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.errors
	b.errors = nil
	return e
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

// startBrowser starts headless Chromium for the test, until ctx ends, and
// returns how to open a tab in it: parent nil for the first tab (which
// starts the browser), or another tab's context (with
// chromedp.WithNewBrowserContext for another user). Each tab logs and
// keeps its page's exceptions and console errors. flags are more
// command-line options of Chromium.
func startBrowser(t *testing.T, ctx context.Context, chromium, shots string, flags ...chromedp.ExecAllocatorOption) func(name string, parent context.Context, opts ...chromedp.ContextOption) *tab {
	// Chromium's helper processes may still be writing its profile when
	// the browser is gone, so the folder is removed with retries after
	// the browser is cancelled (cleanups run last first), not by
	// t.TempDir, which fails the test when a file appears meanwhile.
	profile, err := os.MkdirTemp("", "mofang-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("chromium profile %s left behind", profile)
	})
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(profile),
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
		// no smooth scrolling: a click is aimed at where the element
		// is, and an element still scrolling into place is missed.
		chromedp.Flag("force-prefers-reduced-motion", true),
		chromedp.WindowSize(1280, 800),
	}, flags...)...)
	t.Cleanup(cancelAlloc)

	return func(name string, parent context.Context, opts ...chromedp.ContextOption) *tab {
		if parent == nil {
			parent = allocCtx
		}
		tctx, cancelTab := chromedp.NewContext(parent, opts...)
		t.Cleanup(cancelTab)
		b := &tab{t: t, name: name, ctx: tctx, dir: shots}
		chromedp.ListenTarget(tctx, func(ev any) {
			var msg string
			switch ev := ev.(type) {
			case *cdpruntime.EventExceptionThrown:
				d := ev.ExceptionDetails
				if d.Exception != nil {
					msg = fmt.Sprintf("page exception: %s %s", d.Text, d.Exception.Description)
				} else {
					msg = fmt.Sprintf("page exception: %s", d.Error())
				}
			case *cdpruntime.EventConsoleAPICalled:
				if ev.Type == cdpruntime.APITypeError || ev.Type == cdpruntime.APITypeWarning {
					var parts []string
					for _, a := range ev.Args {
						parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
					}
					text := strings.Join(parts, " ")
					if ev.Type == cdpruntime.APITypeWarning && mpegtsNote.MatchString(text) {
						// mpegts.js's own notes on a stall it recovers
						// from ("[MP4Remuxer] > Dropping 1 audio frame"):
						// the player's diary, not a fault of the pages.
						t.Logf("%s: player note: %s", name, text)
						break
					}
					msg = fmt.Sprintf("console %s: %s", ev.Type, text)
				}
			}
			if msg != "" {
				t.Logf("%s: %s", name, msg)
				b.mu.Lock()
				b.errors = append(b.errors, msg)
				b.mu.Unlock()
			}
		})
		// The first run starts the browser or opens the tab, which lives
		// as long as the context of that run: tctx itself, bounded by ctx.
		if err := chromedp.Run(tctx, chromedp.Navigate("about:blank")); err != nil {
			t.Fatalf("starting %s (%s): %v", chromium, name, err)
		}
		return b
	}
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
	needPages(t)
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
	newTab := startBrowser(t, ctx, chromium, shots)
	// The streamer on a laptop; the viewer on a phone, in another browser
	// context (its own storage: another user).
	streamer := newTab("streamer", nil)
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
	// The stream key lasts; "Reset stream key" makes a new one.
	if !strings.Contains(streamer.text(`document.querySelector('#obs').textContent`), "until you reset it") {
		t.Fatalf("the OBS settings do not say the key lasts: %q", streamer.text(`document.querySelector('#obs').textContent`))
	}
	streamer.do("show the reset button", chromedp.ScrollIntoView("#reset-key", chromedp.ByQuery))
	// The button is pressed until its dialog is up: the settings block may
	// be drawn again (the room's data arriving) between finding the
	// button and the click, which then lands on a button no longer there.
	streamer.wait("reset dialog", 10*time.Second, `document.querySelector('#reset-key-confirm') || (document.querySelector('#reset-key')?.click(), false)`)
	streamer.settled()
	streamer.do("confirm the reset", chromedp.Click("#reset-key-confirm", chromedp.ByQuery))
	streamer.wait("new stream key", 10*time.Second, fmt.Sprintf(`document.querySelector('#obs-key') && document.querySelector('#obs-key').value !== %q`, key))
	key = streamer.text(`document.querySelector('#obs-key').value`)
	full = streamer.text(`document.querySelector('#obs-url').value`)
	if !strings.Contains(key, "?sign=") || server+"/"+key != full {
		t.Fatalf("OBS settings after the reset: key %q, url %q", key, full)
	}
	streamer.do("show the key", chromedp.ScrollIntoView("#reset-key", chromedp.ByQuery))
	streamer.screenshot("my-room-key.png")

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
	viewer.wait("no picture of a room with a password", time.Second, `!`+liveItem+`.querySelector('.room-thumb') && !!`+liveItem+`.querySelector('.avatar')`)
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
	// The live being recorded shows its duration and size so far (the
	// API gave 0 while recording, shown as "0:00 · 0.0 MB").
	meta := streamer.text(`document.querySelector('#recordings li.record .record-meta').textContent`)
	t.Logf("recording in progress listed as %q", meta)
	if !regexp.MustCompile(`^\d+:[0-5]\d · \d+(\.\d)? (KB|MB) · recording now$`).MatchString(meta) || strings.HasPrefix(meta, "0:00 ") || strings.Contains(meta, " 0 KB") {
		streamer.fail("the recording in progress is listed as %q", meta)
	}
	streamer.do("scroll to the recordings", chromedp.ScrollIntoView("#recordings", chromedp.ByQuery))
	streamer.screenshot("my-recordings.png")
	t.Logf("browser scenario took %v", time.Since(start).Round(time.Millisecond))
}

// apiRoom registers a streamer through the API and makes their room; it
// returns the room's id and its publish data (url, sign).
func apiRoom(t *testing.T, api, user, room string) (string, map[string]any) {
	t.Helper()
	reg := rpcCall(t, api, "", "User.register", map[string]any{"username": user, "password": user + "-password", "nickname": user})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	d := rpcCall(t, api, tok, "Live.stream", map[string]any{"room_name": room})["data"].(map[string]any)
	return d["room_id"].(string), d["publish"].(map[string]any)
}

// TestBrowserPhoneRoom is the live room on a phone: the video fills the
// width, has a fullscreen button and allows picture-in-picture; in
// fullscreen and in landscape the chat lies over the video, half
// transparent, as live apps do. A room in H.265, which this Chromium
// cannot decode, says so plainly instead of reconnecting forever, with no
// error in the page.
func TestBrowserPhoneRoom(t *testing.T) {
	chromium := chromiumPath(t)
	needFFmpeg(t)
	needPages(t)
	rtmpPort, rtspPort := freePort(t), freePort(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort),
		"--rtsp", fmt.Sprintf("127.0.0.1:%d", rtspPort), "--public-host", "127.0.0.1")
	defer stop()
	site := pagesSite(t, api)
	shots := screenshotDir(t)
	os.Remove(filepath.Join(shots, "failed-phone.png"))

	h264Room, h264Pub := apiRoom(t, api, "carol", "Carol H.264")
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", h264Pub["url"].(string))
	hevcRoom, hevcPub := apiRoom(t, api, "dave", "Dave H.265")
	u, _ := neturl.Parse(h264Pub["url"].(string))
	hevcStream := strings.TrimPrefix(strings.Split(hevcPub["url"].(string), "?")[0], fmt.Sprintf("rtmp://%s/live/", u.Host))
	startFFmpeg(t, "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error", "-c:a", "aac",
		"-f", "rtsp", "-rtsp_transport", "tcp", fmt.Sprintf("rtsp://127.0.0.1:%d/live/%s?sign=%s", rtspPort, hevcStream, hevcPub["sign"]))

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	newTab := startBrowser(t, ctx, chromium, shots)
	phone := newTab("phone", nil)
	portrait := chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)
	phone.do("phone screen", portrait)
	phone.register(site, "erin", "Erin")

	// Portrait: the video across the whole width, with its buttons.
	phone.do("enter the H.264 room", chromedp.Navigate(site+"#/room/"+h264Room))
	playing := `(v => v && v.currentTime > 0.2 && !v.paused)(document.querySelector('#video'))`
	phone.wait("video playing", 20*time.Second, playing)
	var box struct {
		VW, VH, W, H, Left, Top float64
		PiP, FS                 bool
	}
	measure := func() {
		t.Helper()
		if err := phone.eval(`(() => { const r = document.querySelector('#video').getBoundingClientRect();
			const fs = document.querySelector('#fullscreen'); const fr = fs && fs.getBoundingClientRect();
			return {VW: innerWidth, VH: innerHeight, W: r.width, H: r.height, Left: r.left, Top: r.top,
				PiP: !document.querySelector('#video').disablePictureInPicture,
				FS: !!fs && fr.width > 0 && fr.bottom <= innerHeight && fr.right <= innerWidth}; })()`, &box); err != nil {
			phone.fail("measuring the video: %v", err)
		}
	}
	measure()
	t.Logf("portrait: video %.0fx%.0f in %.0fx%.0f", box.W, box.H, box.VW, box.VH)
	if box.W < 0.9*box.VW || !box.FS || !box.PiP {
		phone.fail("portrait: video %.0fx%.0f in a %.0f px wide screen, fullscreen button %v, picture-in-picture allowed %v", box.W, box.H, box.VW, box.FS, box.PiP)
	}
	// A few lines in the chat, to see where it lies.
	phone.wait("joined the chat", 10*time.Second, `!document.querySelector('#chat-input').disabled`)
	for _, msg := range []string{"hello Carol", "nice colours", "what camera is this?"} {
		phone.do("say "+msg, chromedp.SetValue("#chat-input", msg, chromedp.ByQuery), chromedp.Click("#chat-send", chromedp.ByQuery))
		phone.wait("the comment shown", 10*time.Second, fmt.Sprintf(`[...document.querySelectorAll('#chat li')].some(li => li.textContent.includes(%q))`, msg))
	}
	phone.screenshot("phone-portrait.png")

	// chatOver: the chat lies on the video, on a see-through background.
	chatOver := `(() => {
		const v = document.querySelector('#video').getBoundingClientRect();
		const c = document.querySelector('#chat').getBoundingClientRect();
		const side = getComputedStyle(document.querySelector('.side')).backgroundColor;
		const a = side === 'transparent' ? 0 : (m => m ? Number(m[1]) : 1)(side.match(/rgba\(.*,\s*([\d.]+)\)$/));
		return c.width > 0 && c.top < v.bottom && c.bottom > v.top && c.left < v.right && c.right > v.left && a < 0.9 &&
			document.querySelector('#chat-input').getBoundingClientRect().bottom <= innerHeight;
	})()`
	// Fullscreen: the room (video and chat) fills the screen.
	phone.do("fullscreen", chromedp.Click("#fullscreen", chromedp.ByQuery))
	phone.wait("in fullscreen", 5*time.Second, `document.fullscreenElement && document.fullscreenElement.contains(document.querySelector('#video'))`)
	phone.wait("chat over the video in fullscreen", 5*time.Second, chatOver)
	phone.screenshot("phone-fullscreen.png")
	phone.do("leave fullscreen", chromedp.Click("#fullscreen", chromedp.ByQuery))
	phone.wait("out of fullscreen", 5*time.Second, `!document.fullscreenElement`)

	// Landscape: the video fills the screen, the chat over it.
	phone.do("landscape", chromedp.EmulateViewport(844, 390, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateLandscape))
	phone.wait("chat over the video in landscape", 5*time.Second, chatOver)
	measure()
	t.Logf("landscape: video %.0fx%.0f in %.0fx%.0f", box.W, box.H, box.VW, box.VH)
	if box.W < 0.9*box.VW || box.H < 0.9*box.VH || !box.FS {
		phone.fail("landscape: video %.0fx%.0f in %.0fx%.0f, fullscreen button %v", box.W, box.H, box.VW, box.VH, box.FS)
	}
	phone.wait("still playing in landscape", 5*time.Second, playing)
	phone.screenshot("phone-landscape.png")

	// H.265: this Chromium cannot decode it (MediaSource says no); the
	// room says so, and stays so, without errors in the page.
	phone.do("portrait again", portrait)
	var hevcOK bool
	phone.eval(`MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"')`, &hevcOK)
	phone.pageErrors()
	phone.do("enter the H.265 room", chromedp.Navigate(site+"#/room/"+hevcRoom))
	if hevcOK {
		phone.wait("H.265 video playing", 20*time.Second, playing)
	} else {
		unsupported := `document.querySelector('#stage-state').dataset.state === 'unsupported' && document.querySelector('#stage-state').textContent.includes("cannot play this room's video codec (H.265)")`
		phone.wait("the codec explained", 20*time.Second, unsupported)
		time.Sleep(4 * time.Second) // it does not go back to "Reconnecting…"
		phone.wait("the codec still explained", time.Second, unsupported)
		phone.wait("chat works", 10*time.Second, `!document.querySelector('#chat-input').disabled`)
	}
	phone.screenshot("room-hevc.png")
	if errs := phone.pageErrors(); len(errs) > 0 {
		phone.fail("errors in the page of the H.265 room: %q", errs)
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// webrtcBrowser starts the service and headless Chromium with a fake
// camera and microphone for the calls and co-host tests, removing the
// failure screenshots of an earlier run of the named tabs. It returns the
// site and how to open a tab.
func webrtcBrowser(t *testing.T, timeout time.Duration, tabs ...string) (string, string, func(name string, parent context.Context, opts ...chromedp.ContextOption) *tab) {
	t.Helper()
	chromium := chromiumPath(t)
	needFFmpeg(t)
	needPages(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--public-host", "127.0.0.1")
	t.Cleanup(func() { stop() })
	site := pagesSite(t, api)
	shots := screenshotDir(t)
	for _, name := range tabs {
		os.Remove(filepath.Join(shots, "failed-"+name+".png"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	newTab := startBrowser(t, ctx, chromium, shots,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
	return api, site, newTab
}

// apiLogin registers a user through the API and returns its access token.
func apiLogin(t *testing.T, api, user string) string {
	t.Helper()
	reg := rpcCall(t, api, "", "User.register", map[string]any{"username": user, "password": user + "-password"})
	return reg["data"].(map[string]any)["access_token"].(string)
}

// userID is the id of the user logged in in the tab.
func (b *tab) userID() string {
	b.t.Helper()
	return b.text(`String(JSON.parse(localStorage.getItem('mofang.session')).user.id)`)
}

// toasted waits for a toast saying exactly text.
func (b *tab) toasted(what, text string) {
	b.t.Helper()
	b.wait(what, 10*time.Second, fmt.Sprintf(`[...document.querySelectorAll('#toasts .toast')].some(t => t.textContent === %q)`, text))
}

// framesAdvance waits until the video of selector shows new frames and
// its time moves on: a picture that arrives, not a frozen one (the time
// of a MediaStream runs on without frames).
func (b *tab) framesAdvance(what, selector string) {
	b.t.Helper()
	var start struct{ Frames, Time float64 }
	if err := b.eval(fmt.Sprintf(`(v => ({Frames: v.getVideoPlaybackQuality().totalVideoFrames, Time: v.currentTime}))(document.querySelector(%q))`, selector), &start); err != nil {
		b.fail("%s: %s: %v", b.name, what, err)
	}
	b.wait(what, 20*time.Second, fmt.Sprintf(`(v => v.getVideoPlaybackQuality().totalVideoFrames > %v + 10 && v.currentTime > %v + 0.5 && v.videoWidth > 0)(document.querySelector(%q))`, start.Frames, start.Time, selector))
}

// noPageErrors fails on exceptions and console errors of the tabs
// (mpegts.js's warnings are not errors).
func noPageErrors(t *testing.T, tabs ...*tab) {
	t.Helper()
	for _, b := range tabs {
		for _, e := range b.pageErrors() {
			if !strings.HasPrefix(e, "console warning: ") {
				t.Errorf("%s: %s", b.name, e)
			}
		}
	}
}

// inRoom opens the room in the tab and waits until it has joined it.
func (b *tab) inRoom(site, roomID string) {
	b.t.Helper()
	b.do("enter the room", chromedp.Navigate(site+"#/room/"+roomID))
	b.wait("joined the room", 20*time.Second, `!document.querySelector('#chat-input').disabled`)
}

// seesOnline waits until the tab's online list shows the named users.
func (b *tab) seesOnline(names ...string) {
	b.t.Helper()
	for _, n := range names {
		b.wait(n+" online", 10*time.Second, fmt.Sprintf(`[...document.querySelectorAll('#online-list li')].some(li => li.textContent.includes(%q))`, n))
	}
}

// TestBrowserCall is a 1:1 call between two members of a live room in
// headless Chromium with fake cameras (seed 004), Bob on a phone: Alice calls Bob from
// the online list, Bob sees the incoming call and accepts, and both pages
// show both videos (their own camera and the other's, with sound) over a
// direct connection, signalled through the room's websocket; hanging up
// takes them away on both pages. Bob's call declined tells him so. A call
// switched to the server's relay ("Through the server": WHIP out, WHEP
// in) plays on both sides too, until Bob hangs up.
func TestBrowserCall(t *testing.T) {
	start := time.Now()
	api, site, newTab := webrtcBrowser(t, 90*time.Second, "alice", "bob")
	// A live room: ffmpeg streams the clip to it over RTMP.
	roomID, pub := apiRoom(t, api, "olga", "Olga's room")
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", pub["url"].(string))

	alice := newTab("alice", nil)
	bob := newTab("bob", alice.ctx, chromedp.WithNewBrowserContext())
	bob.do("phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	alice.register(site, "alice", "Alice")
	bob.register(site, "bob", "Bob")
	aliceID, bobID := alice.userID(), bob.userID()
	alice.inRoom(site, roomID)
	bob.inRoom(site, roomID)
	alice.seesOnline("Bob")
	bob.seesOnline("Alice")

	callBtn := func(uid string) string { return `#online-list li[data-user-id="` + uid + `"] .call-btn` }
	// A call button beside the others, none beside oneself.
	alice.wait("a call button beside Bob", 5*time.Second, `(b => b && !b.disabled)(document.querySelector('`+callBtn(bobID)+`'))`)
	if alice.text(fmt.Sprintf(`String(!!document.querySelector('%s'))`, callBtn(aliceID))) != "false" {
		t.Errorf("Alice has a button to call herself")
	}

	// Alice calls Bob; Bob accepts.
	alice.do("call Bob", chromedp.Click(callBtn(bobID), chromedp.ByQuery))
	alice.wait("calling", 10*time.Second, `document.querySelector('#call[data-phase="calling"]') && document.querySelector('#call-status').textContent === 'Calling Bob…'`)
	bob.wait("the incoming call", 10*time.Second, `document.querySelector('#call-incoming h2')?.textContent === 'Alice is calling you'`)
	bob.settled()
	bob.screenshot("call-incoming.png")
	bob.do("accept", chromedp.Click("#call-accept", chromedp.ByQuery))

	// Both pages show both videos, directly connected; the other's video
	// has sound.
	inCall := func(b *tab, route string) {
		t.Helper()
		b.wait("both videos in the call", 30*time.Second, `document.querySelector('#call[data-phase="connected"][data-route="`+route+`"]') &&
			(v => v.srcObject && v.videoWidth > 0 && v.currentTime > 1)(document.querySelector('#call-local')) &&
			(v => v.srcObject && v.videoWidth > 0 && v.currentTime > 1 && !v.muted && v.srcObject.getAudioTracks().length === 1)(document.querySelector('#call-remote'))`)
		b.framesAdvance("the other's video advancing", "#call-remote")
		b.framesAdvance("the own camera advancing", "#call-local")
	}
	connected := time.Now()
	inCall(alice, "direct")
	inCall(bob, "direct")
	t.Logf("call connected %v after accepting: Alice sees %s, Bob sees %s", time.Since(connected).Round(time.Millisecond),
		alice.text(`(v => v.videoWidth + 'x' + v.videoHeight)(document.querySelector('#call-remote'))`),
		bob.text(`(v => v.videoWidth + 'x' + v.videoHeight)(document.querySelector('#call-remote'))`))
	if s := alice.text(`document.querySelector('#call-route').textContent`); s != "direct" {
		t.Errorf("Alice's call route shown as %q", s)
	}
	alice.screenshot("call.png")
	bob.screenshot("call-phone.png")

	// Alice hangs up: the call is gone from both pages.
	alice.do("hang up", chromedp.Click("#call-hangup", chromedp.ByQuery))
	noCall := `!document.querySelector('#call') && !document.querySelector('#call-remote') && !document.querySelector('#call-local')`
	alice.wait("the call gone", 10*time.Second, noCall)
	bob.wait("the call gone", 10*time.Second, noCall)
	bob.toasted("told Alice hung up", "Alice hung up.")

	// Pat (a websocket client of the API) calls Bob: while it rings, Bob
	// is busy for Alice; Pat hangs up and Bob's prompt goes away, saying so.
	pat := dialPeer(t, api, apiLogin(t, api, "pat"))
	pat.call("Live.room.join", map[string]any{"room_id": roomID})
	bob.seesOnline("pat")
	bobNum, _ := strconv.ParseInt(bobID, 10, 64)
	patCall := pat.call("Live.call.invite", map[string]any{"room_id": roomID, "user_id": bobNum})["data"].(map[string]any)["call_id"]
	bob.wait("Pat's call", 10*time.Second, `document.querySelector('#call-incoming h2')?.textContent === 'pat is calling you'`)
	alice.wait("the call button again", 5*time.Second, `(b => b && !b.disabled)(document.querySelector('`+callBtn(bobID)+`'))`)
	alice.do("call Bob while Pat calls him", chromedp.Click(callBtn(bobID), chromedp.ByQuery))
	alice.toasted("told Bob is busy", "Bob is in another call.")
	alice.wait("no call", 5*time.Second, noCall)
	pat.call("Live.call.hangup", map[string]any{"call_id": patCall})
	bob.toasted("told Pat cancelled", "pat cancelled the call.")
	bob.wait("the prompt gone", 5*time.Second, `!document.querySelector('#call-incoming') && `+noCall)

	// Bob calls Alice, who declines: Bob is told.
	bob.wait("the call button again", 5*time.Second, `(b => b && !b.disabled)(document.querySelector('`+callBtn(aliceID)+`'))`)
	bob.do("call Alice", chromedp.Click(callBtn(aliceID), chromedp.ByQuery))
	alice.wait("the incoming call", 10*time.Second, `document.querySelector('#call-incoming h2')?.textContent === 'Bob is calling you'`)
	alice.settled()
	alice.do("decline", chromedp.Click("#call-reject", chromedp.ByQuery))
	bob.toasted("told Alice declined", "Alice declined the call.")
	bob.wait("the call gone", 10*time.Second, noCall)
	alice.wait("the prompt gone", 5*time.Second, `!document.querySelector('#call-incoming') && `+noCall)

	// Through the server: Alice calls again and switches the call to the
	// relay; both play each other over WHEP from the server.
	alice.wait("the call button again", 5*time.Second, `(b => b && !b.disabled)(document.querySelector('`+callBtn(bobID)+`'))`)
	alice.do("call Bob again", chromedp.Click(callBtn(bobID), chromedp.ByQuery))
	bob.wait("the incoming call", 10*time.Second, `document.querySelector('#call-incoming h2')?.textContent === 'Alice is calling you'`)
	bob.settled()
	bob.do("accept", chromedp.Click("#call-accept", chromedp.ByQuery))
	alice.wait("connected directly", 30*time.Second, `document.querySelector('#call[data-phase="connected"][data-route="direct"]')`)
	alice.do("through the server", chromedp.Click("#call-relay", chromedp.ByQuery))
	relayed := time.Now()
	inCall(alice, "relay")
	inCall(bob, "relay")
	t.Logf("relayed call playing %v after asking", time.Since(relayed).Round(time.Millisecond))
	if s := bob.text(`document.querySelector('#call-route').textContent`); s != "through the server" {
		t.Errorf("Bob's call route shown as %q", s)
	}
	bob.screenshot("call-relay.png")
	bob.do("hang up", chromedp.Click("#call-hangup", chromedp.ByQuery))
	alice.wait("the relayed call gone", 10*time.Second, noCall)
	alice.toasted("told Bob hung up", "Bob hung up.")
	bob.wait("the relayed call gone", 10*time.Second, noCall)

	// Where the browsers cannot reach each other directly (Bob's call
	// connection may only use relay candidates and there is no TURN
	// server, so it has no candidate at all), the call goes through the
	// server by itself.
	bob.do("no direct path for calls", chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(`(() => {
			const P = window.RTCPeerConnection;
			window.RTCPeerConnection = function (c) { return new P(c && Array.isArray(c.iceServers) ? { ...c, iceTransportPolicy: 'relay' } : c); };
			window.RTCPeerConnection.prototype = P.prototype;
		})()`).Do(ctx)
		return err
	}), chromedp.Reload())
	bob.wait("joined the room again", 20*time.Second, `!document.querySelector('#chat-input').disabled`)
	alice.wait("the call button again", 10*time.Second, `(b => b && !b.disabled)(document.querySelector('`+callBtn(bobID)+`'))`)
	alice.do("call Bob behind a firewall", chromedp.Click(callBtn(bobID), chromedp.ByQuery))
	bob.wait("the incoming call", 10*time.Second, `document.querySelector('#call-incoming h2')?.textContent === 'Alice is calling you'`)
	bob.settled()
	bob.do("accept", chromedp.Click("#call-accept", chromedp.ByQuery))
	accepted := time.Now()
	inCall(bob, "relay")
	inCall(alice, "relay")
	t.Logf("call without a direct path playing through the server %v after accepting", time.Since(accepted).Round(time.Millisecond))
	alice.do("hang up", chromedp.Click("#call-hangup", chromedp.ByQuery))
	bob.wait("the call gone", 10*time.Second, noCall)

	noPageErrors(t, alice, bob)
	t.Logf("call scenario took %v", time.Since(start).Round(time.Millisecond))
}

// TestBrowserCohost is a co-host (连麦) in headless Chromium with fake
// cameras: the host goes live from "My room" (WHIP) and keeps the room
// open in another tab; Gus asks to co-host, the host accepts, Gus's
// camera goes to the guest stream and Wendy, a third viewer, sees Gus's
// video beside the host's (WHEP, or HTTP-FLV in standard mode), moving;
// the host ends it and Wendy's guest video goes away. Then the host invites Wendy from the online
// list, she accepts, Gus sees her beside the host, and her "Leave" ends
// it for everyone.
func TestBrowserCohost(t *testing.T) {
	start := time.Now()
	_, site, newTab := webrtcBrowser(t, 110*time.Second, "host-live", "host", "gus", "wendy")

	// The host goes live from the browser.
	live := newTab("host-live", nil)
	live.register(site, "hana", "Hana")
	live.do("open my room", chromedp.Click("#my-room-link", chromedp.ByQuery))
	live.wait("my room form", 10*time.Second, `document.querySelector('#room-form') && document.querySelector('#room-name').value !== ''`)
	live.do("create the room",
		chromedp.SetValue("#room-name", "Hana and guests", chromedp.ByQuery),
		chromedp.Click("#room-save", chromedp.ByQuery),
	)
	live.wait("the go-live button", 10*time.Second, `(b => b && !b.hidden && !b.disabled)(document.querySelector('#browser-go-live'))`)
	var still bool
	live.do("scrolling done", chromedp.Evaluate(`new Promise(r => { let y = -1; const f = () => { if (scrollY === y) r(true); else { y = scrollY; setTimeout(f, 250); } }; f(); })`, &still,
		func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
	live.do("go live from this browser", chromedp.Click("#browser-go-live", chromedp.ByQuery))
	live.wait("live from the browser", 20*time.Second, `document.querySelector('#browser-live').dataset.state === 'live'`)
	roomID := live.text(`document.querySelector('#open-my-room').getAttribute('href').split('/').pop()`)

	// The host's room page, in another tab of the same login; the viewers.
	host := newTab("host", live.ctx)
	gus := newTab("gus", live.ctx, chromedp.WithNewBrowserContext())
	gus.do("phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	wendy := newTab("wendy", live.ctx, chromedp.WithNewBrowserContext())
	gus.register(site, "gus", "Gus")
	wendy.register(site, "wendy", "Wendy")
	gusID, wendyID := gus.userID(), wendy.userID()
	host.inRoom(site, roomID)
	gus.inRoom(site, roomID)
	wendy.inRoom(site, roomID)
	host.seesOnline("Gus", "Wendy")
	gus.seesOnline("Hana", "Wendy")
	wendy.seesOnline("Hana", "Gus")
	mainPlaying := `document.querySelector('.page-room').dataset.mode === 'webrtc' && (v => v.srcObject && v.videoWidth > 0 && v.currentTime > 1)(document.querySelector('#video'))`
	wendy.wait("the host's video over WebRTC", 30*time.Second, mainPlaying)

	// Gus asks; the host accepts.
	if !host.hidden("#cohost-box") && host.text(`document.querySelector('#cohost-box').textContent`) != "" {
		t.Errorf("the host has a co-host box before any request: %q", host.text(`document.querySelector('#cohost-box').textContent`))
	}
	gus.do("request to co-host", chromedp.Click("#cohost-request", chromedp.ByQuery))
	gus.wait("waiting for the host", 10*time.Second, `document.querySelector('#cohost-waiting')`)
	accept := `#cohost-requests li[data-user-id="` + gusID + `"] .cohost-accept`
	host.wait("Gus's request", 10*time.Second, `document.querySelector('`+accept+`')`)
	host.screenshot("cohost-request.png")
	host.do("accept Gus", chromedp.Click(accept, chromedp.ByQuery))

	// Gus sees his own camera beside the host; Wendy sees Gus's stream
	// beside the host's, over WebRTC, moving.
	guestTile := func(uid string) string { return `#cohost-tile[data-state="live"][data-user-id="` + uid + `"]` }
	gus.wait("his camera beside the host", 20*time.Second, `document.querySelector('`+guestTile(gusID)+`[data-source="local"]') && (v => v.srcObject && v.videoWidth > 0)(document.querySelector('#cohost-video'))`)
	seesGuest := func(b *tab, uid string) {
		t.Helper()
		b.wait("the guest's video beside the host's", 30*time.Second, `document.querySelector('`+guestTile(uid)+`[data-source="whep"][data-playing="1"]') &&
			(v => v.srcObject && v.videoWidth > 0 && v.currentTime > 1)(document.querySelector('#cohost-video'))`)
		b.framesAdvance("the guest's video advancing", "#cohost-video")
		b.framesAdvance("the host's video advancing", "#video")
		// Beside: both on the stage, the guest's to the right of the host's.
		var box struct {
			Main, Guest struct{ Left, Right, Top, Bottom, Width float64 }
		}
		b.eval(`(() => { const r = (s) => { const b = document.querySelector(s).getBoundingClientRect(); return {Left: b.left, Right: b.right, Top: b.top, Bottom: b.bottom, Width: b.width}; };
			return {Main: r('#video'), Guest: r('#cohost-video')}; })()`, &box)
		if box.Main.Width < 100 || box.Guest.Width < 100 || box.Guest.Left < box.Main.Right-1 || box.Guest.Top >= box.Main.Bottom || box.Guest.Bottom <= box.Main.Top {
			b.fail("%s: the guest's video is not beside the host's: %+v", b.name, box)
		}
	}
	seen := time.Now()
	seesGuest(wendy, gusID)
	t.Logf("Wendy sees Gus %v after the host accepted (%s)", time.Since(seen).Round(time.Millisecond),
		wendy.text(`(v => v.videoWidth + 'x' + v.videoHeight)(document.querySelector('#cohost-video'))`))
	host.wait("the host sees Gus, with End", 30*time.Second, `document.querySelector('`+guestTile(gusID)+` #cohost-end') && (v => v.videoWidth > 0 && v.currentTime > 1)(document.querySelector('#cohost-video'))`)
	wendy.screenshot("cohost-viewer.png")
	host.screenshot("cohost-host.png")

	// In standard mode Wendy plays Gus over HTTP-FLV, as the room.
	wendy.do("standard mode", chromedp.Click("#play-mode", chromedp.ByQuery))
	wendy.wait("the guest over FLV", 20*time.Second, `document.querySelector('`+guestTile(gusID)+`[data-source="flv"][data-playing="1"]') && (v => !v.srcObject && v.videoWidth > 0 && v.currentTime > 0.5)(document.querySelector('#cohost-video'))`)
	wendy.framesAdvance("the guest's FLV video advancing", "#cohost-video")
	wendy.do("low-latency mode", chromedp.Click("#play-mode", chromedp.ByQuery))
	wendy.wait("the guest over WebRTC again", 20*time.Second, `document.querySelector('`+guestTile(gusID)+`[data-source="whep"][data-playing="1"]') && `+mainPlaying)

	// The host ends it: the guest's video goes from every page.
	host.do("end co-host", chromedp.Click("#cohost-end", chromedp.ByQuery))
	noGuest := `!document.querySelector('#cohost-tile') && !document.querySelector('#cohost-video')`
	wendy.wait("the guest's video gone", 10*time.Second, noGuest)
	gus.wait("off co-hosting", 10*time.Second, noGuest+` && document.querySelector('#cohost-request')`)
	gus.toasted("told so", "You are no longer co-hosting.")
	host.wait("the guest's video gone", 10*time.Second, noGuest)
	wendy.wait("the host's video still playing", 5*time.Second, mainPlaying)

	// The host invites Wendy, who goes on; Gus sees her; her Leave ends it.
	invite := `#online-list li[data-user-id="` + wendyID + `"] .cohost-invite`
	host.wait("the invite button", 5*time.Second, `(b => b && !b.disabled)(document.querySelector('`+invite+`'))`)
	host.do("invite Wendy", chromedp.Click(invite, chromedp.ByQuery))
	wendy.wait("the invitation", 10*time.Second, `document.querySelector('#cohost-invitation h2')?.textContent === 'Hana invites you to co-host'`)
	wendy.settled()
	wendy.do("go on", chromedp.Click("#cohost-invite-accept", chromedp.ByQuery))
	wendy.wait("her camera beside the host", 20*time.Second, `document.querySelector('`+guestTile(wendyID)+`[data-source="local"] #cohost-leave')`)
	seesGuest(gus, wendyID)
	gus.screenshot("cohost-phone.png")
	wendy.do("leave", chromedp.Click("#cohost-leave", chromedp.ByQuery))
	gus.wait("Wendy's video gone", 10*time.Second, noGuest)
	host.wait("Wendy's video gone", 10*time.Second, noGuest)
	wendy.wait("off co-hosting", 10*time.Second, noGuest)

	noPageErrors(t, live, host, gus, wendy)
	t.Logf("co-host scenario took %v", time.Since(start).Round(time.Millisecond))
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/store/storetest"
)

// fakePrivate is the API's view of calls and co-hosts, set by hand.
type fakePrivate struct {
	mu     sync.Mutex
	calls  map[string]bool
	guests map[string]string
	heard  []string
}

func (f *fakePrivate) CallStream(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakePrivate) GuestStream(name string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.guests[name]
	return r, ok
}

func (f *fakePrivate) PrivateStreamPublishing(name string, live bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.heard = append(f.heard, fmt.Sprintf("%s %v", name, live))
}

// TestMediaAuthPrivateStreams: a call stream is taken with its own publish
// or play sign while the API says the call relays, and refused otherwise;
// a guest stream is published with its sign while the co-host is on and
// its room may publish, and played by the room's rules; their events go
// to the API, not to the rooms.
func TestMediaAuthPrivateStreams(t *testing.T) {
	st := storetest.Open(t, "sqlite")
	ctx := context.Background()
	u, err := st.CreateUser(ctx, store.NewUser{Name: "owner", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := st.CreateRoom(ctx, store.NewRoom{Name: "room_private", RoomName: "r", PasswordHash: "hash", UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := urlsign.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		callA = "call-0123456789abcdef-7"
		callB = "call-0123456789abcdef-8"
		guest = "room_private-guest-8-0a1b2c3d"
	)
	fake := &fakePrivate{calls: map[string]bool{callA: true, callB: true}, guests: map[string]string{guest: room.Name}}
	private := &apiStreams{}
	a := mediaAuth{store: st, signer: signer, private: private}
	publish := func(stream, sign string) error {
		return a.AuthorizePublish(ctx, media.AuthRequest{Stream: stream, Query: url.Values{"sign": {sign}}, Protocol: media.ProtocolRTMP})
	}
	play := func(stream, sign string) error {
		return a.AuthorizePlay(ctx, media.AuthRequest{Stream: stream, Query: url.Values{"sign": {sign}}, Protocol: media.ProtocolHTTPFLV})
	}
	refused := func(what string, err error, reason string) {
		t.Helper()
		var ref *media.RefusalError
		if !errors.As(err, &ref) || !strings.Contains(ref.Reason, reason) {
			t.Errorf("%s: %v, want a refusal naming %q", what, err, reason)
		}
	}
	pubA, _ := signer.Sign(urlsign.Publish, callA, time.Hour)
	playA, _ := signer.Sign(urlsign.Play, callA, time.Hour)
	pubGuest, _ := signer.Sign(urlsign.Publish, guest, time.Hour)
	playGuest, _ := signer.SignGen(urlsign.Play, guest, room.PasswordGen, time.Hour)

	// Before the API is wired, there are no private streams.
	refused("call stream without the API", publish(callA, pubA), "unknown stream")

	private.set(fake)
	if err := publish(callA, pubA); err != nil {
		t.Fatalf("a party's publish sign refused: %v", err)
	}
	if err := play(callA, playA); err != nil {
		t.Fatalf("the other party's play sign refused: %v", err)
	}
	refused("call stream, no sign", play(callA, ""), "sign")
	refused("call stream, play sign to publish", publish(callA, playA), "sign")
	refused("call stream, the other party's sign", publish(callB, pubA), "sign")
	if err := publish(guest, pubGuest); err != nil {
		t.Fatalf("the guest's publish sign refused: %v", err)
	}
	refused("guest stream, the room's play sign to publish", publish(guest, playGuest), "sign")
	refused("the host's stream with the guest's sign", publish(room.Name, pubGuest), "sign")
	if err := play(guest, playGuest); err != nil {
		t.Fatalf("a member's play sign of the guest stream refused: %v", err)
	}
	refused("guest stream of a room with a password, no sign", play(guest, ""), "sign")
	stale, _ := signer.SignGen(urlsign.Play, guest, room.PasswordGen+1, time.Hour)
	refused("guest stream, a play sign of another password generation", play(guest, stale), "sign")

	// The call over, the co-host off: the streams are unknown, whatever
	// the sign.
	fake.mu.Lock()
	fake.calls = nil
	fake.guests = nil
	fake.mu.Unlock()
	refused("ended call", publish(callA, pubA), "unknown stream")
	refused("ended call", play(callA, playA), "unknown stream")
	refused("ended co-host", publish(guest, pubGuest), "unknown stream")

	// A banned room's guest cannot publish.
	fake.guests = map[string]string{guest: room.Name}
	if err := st.SetRoomBanned(ctx, room.ID, true); err != nil {
		t.Fatal(err)
	}
	refused("guest of a banned room", publish(guest, pubGuest), "banned")

	// Their events go to the API; a room's to the rooms.
	ev := roomEvents{store: st, log: slog.New(slog.DiscardHandler), private: private}
	ev.PublishStarted(ctx, media.StreamInfo{Name: guest})
	ev.PublishStopped(ctx, media.StreamInfo{Name: callA})
	ev.PublishStarted(ctx, media.StreamInfo{Name: room.Name})
	if got := strings.Join(fake.heard, ", "); got != guest+" true, "+callA+" false" {
		t.Fatalf("the API heard %q", got)
	}
	if r, _ := st.RoomByID(ctx, room.ID); r.Status != store.RoomLive {
		t.Fatalf("the room's own stream did not make it live: %v", r.Status)
	}
}

// wsPeer is a websocket client of the API in these tests: calls, and the
// notifications of calls and co-hosts and room events it gets.
type wsPeer struct {
	t      *testing.T
	c      *websocket.Conn
	mu     sync.Mutex
	next   int
	waits  map[string]chan map[string]any
	notify chan map[string]any // Live.call.events, Live.cohost.events params, and room events
}

func dialPeer(t *testing.T, base, tok string) *wsPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	p := &wsPeer{t: t, c: c, waits: map[string]chan map[string]any{}, notify: make(chan map[string]any, 1000)}
	t.Cleanup(func() { c.CloseNow() })
	go func() {
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var msg struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
				Params map[string]any  `json:"params"`
				Result map[string]any  `json:"result"`
			}
			json.Unmarshal(data, &msg)
			switch msg.Method {
			case "":
				p.mu.Lock()
				ch := p.waits[string(msg.ID)]
				p.mu.Unlock()
				if ch != nil {
					ch <- msg.Result
				}
			case "Live.room.events":
				for _, ev := range msg.Params["events"].([]any) {
					m := ev.(map[string]any)
					m["method"] = msg.Method
					p.notify <- m
				}
			default:
				msg.Params["method"] = msg.Method
				p.notify <- msg.Params
			}
		}
	}()
	return p
}

// call makes a call and returns its result, wanting errno 1000.
func (p *wsPeer) call(method string, params any) map[string]any {
	p.t.Helper()
	p.mu.Lock()
	p.next++
	id := fmt.Sprint(p.next)
	ch := make(chan map[string]any, 1)
	p.waits[id] = ch
	p.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": p.next, "method": method, "params": params})
	if err := p.c.Write(context.Background(), websocket.MessageText, body); err != nil {
		p.t.Fatal(err)
	}
	select {
	case r := <-ch:
		if r["errno"] != float64(1000) {
			p.t.Fatalf("%s: %v", method, r)
		}
		return r
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s: no answer", method)
	}
	return nil
}

// await returns the next notification of method (and, for room events,
// of event type typ), skipping others.
func (p *wsPeer) await(method, typ string) map[string]any {
	p.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case n := <-p.notify:
			if n["method"] == method && (typ == "" || n["type"] == typ) {
				return n
			}
		case <-deadline:
			p.t.Fatalf("no %s %s", method, typ)
		}
	}
}

// publishRefused checks that ffmpeg cannot publish to rtmpURL.
func publishRefused(t *testing.T, rtmpURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip(t),
		"-t", "3", "-c", "copy", "-f", "flv", rtmpURL).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("publishing to %s was not refused (err %v): %s", rtmpURL, err, out)
	}
}

// TestMediaAuthCallsAndCohosts is the media side of calls and co-hosts,
// end to end on the real service: a relayed call's stream publishes with
// its party's sign and plays with the other party's, nothing else does,
// and the hangup ends it; a co-host's guest stream publishes with the
// guest's sign, plays from the room event's URL, is not listed as a room,
// and ends with the session.
func TestMediaAuthCallsAndCohosts(t *testing.T) {
	needFFmpeg(t)
	rtmpPort := freePort(t)
	base, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1")
	defer stop()
	register := func(name string) string {
		r := rpcCall(t, base, "", "User.register", map[string]any{"username": name, "password": name + "-pass"})
		return r["data"].(map[string]any)["access_token"].(string)
	}
	aliceTok, bobTok, carolTok, daveTok := register("alice"), register("bob"), register("carol"), register("dave")
	room := rpcCall(t, base, aliceTok, "Live.stream", map[string]any{"room_name": "calls"})["data"].(map[string]any)
	roomID, stream := room["room_id"], room["stream_name"].(string)
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", room["publish"].(map[string]any)["url"].(string))
	eventually(t, 20*time.Second, "room live", func() bool { return roomState(t, base, aliceTok, stream).Status })

	alice, bob, carol, dave := dialPeer(t, base, aliceTok), dialPeer(t, base, bobTok), dialPeer(t, base, carolTok), dialPeer(t, base, daveTok)
	ids := map[*wsPeer]float64{}
	for _, p := range []*wsPeer{alice, bob, carol, dave} {
		p.call("Live.room.join", map[string]any{"room_id": roomID})
		me := p.await("Live.room.events", "online")
		online := me["online"].([]any)
		ids[p] = online[len(online)-1].(map[string]any)["id"].(float64)
	}

	// A call, relayed.
	inv := bob.call("Live.call.invite", map[string]any{"room_id": roomID, "user_id": ids[carol]})
	callID := inv["data"].(map[string]any)["call_id"].(string)
	carol.await("Live.call.events", "invite")
	carol.call("Live.call.accept", map[string]any{"call_id": callID})
	bob.await("Live.call.events", "accept")
	rel := bob.call("Live.call.relay", map[string]any{"call_id": callID})["data"].(map[string]any)
	carolRel := carol.await("Live.call.events", "relay")["relay"].(map[string]any)
	bobPublish := rel["publish"].(map[string]any)
	carolPlay := carolRel["play"].(map[string]any) // bob's stream, carol's sign
	bobStream := bobPublish["stream"].(string)
	if carolPlay["stream"] != bobStream {
		t.Fatalf("carol plays %v, bob publishes %s", carolPlay["stream"], bobStream)
	}
	publisher := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", bobPublish["rtmp"].(string))
	flv := carolPlay["flv"].(string)
	eventually(t, 20*time.Second, "bob's call stream plays with carol's sign", func() bool { return probeHas(flv, "h264") })
	unsigned, _, _ := strings.Cut(flv, "?")
	probeRefused(t, unsigned)
	probeRefused(t, unsigned+"?sign="+bobPublish["sign"].(string))
	// Bob's publish sign does not publish carol's stream.
	carolStream := rel["play"].(map[string]any)["stream"].(string)
	publishRefused(t, fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s?sign=%s", rtmpPort, carolStream, bobPublish["sign"]))
	// Hanging up ends the call's streams, and their signs with them.
	carol.call("Live.call.hangup", map[string]any{"call_id": callID})
	bob.await("Live.call.events", "hangup")
	done := make(chan struct{})
	go func() { publisher.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the call's publisher was not disconnected at the hangup")
	}
	publishRefused(t, bobPublish["rtmp"].(string))

	// A co-host.
	alice.call("Live.cohost.invite", map[string]any{"room_id": roomID, "user_id": ids[dave]})
	dave.await("Live.cohost.events", "invite")
	acc := dave.call("Live.cohost.accept", map[string]any{"room_id": roomID})["data"].(map[string]any)
	guestPub := acc["publish"].(map[string]any)
	on := carol.await("Live.room.events", "cohost")
	if on["state"] != "on" {
		t.Fatalf("carol got %v", on)
	}
	guestPlay := on["play"].(map[string]any)
	guestStream := guestPub["stream"].(string)
	publishRefused(t, fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s?sign=%s", rtmpPort, stream, guestPub["sign"]))
	guest := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", guestPub["rtmp"].(string))
	if live := carol.await("Live.room.events", "cohost"); live["state"] != "live" {
		t.Fatalf("carol got %v, want the co-host live", live)
	}
	// "live" comes with the publish, maybe before the first key frame:
	// ffprobe may find nothing to read at first.
	eventually(t, 20*time.Second, "the guest stream plays over FLV with h264", func() bool {
		return probeHas(guestPlay["flv"].(string), "h264")
	})
	list := rpcCall(t, base, carolTok, "Live.stream.list", map[string]any{})
	b, _ := json.Marshal(list["stream_list"])
	if strings.Contains(string(b), guestStream) || strings.Contains(string(b), "call-") {
		t.Fatalf("Live.stream.list lists a private stream: %s", b)
	}
	read := rpcCall(t, base, carolTok, "Live.stream.read", map[string]any{"room_id": roomID})["data"].(map[string]any)
	cohosts, _ := read["cohosts"].([]any)
	if len(cohosts) != 1 || cohosts[0].(map[string]any)["live"] != true {
		t.Fatalf("Live.stream.read cohosts: %v", read["cohosts"])
	}
	alice.call("Live.cohost.end", map[string]any{"room_id": roomID})
	if off := carol.await("Live.room.events", "cohost"); off["state"] != "off" || off["reason"] != "ended" {
		t.Fatalf("carol got %v", off)
	}
	done = make(chan struct{})
	go func() { guest.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the guest's publisher was not disconnected at the end")
	}
	publishRefused(t, guestPub["rtmp"].(string))
}

// probeHas reports whether ffprobe reads url within 10 s and lists codec.
func probeHas(url, codec string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-hide_banner", "-loglevel", "error",
		"-show_entries", "stream=codec_name", "-of", "csv=p=0", url).Output()
	return err == nil && strings.Contains(string(out), codec)
}

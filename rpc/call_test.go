package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store/storetest"
)

// peer is a test's websocket client that keeps apart what the server
// sends it: responses, room events, and the notifications of calls and
// co-hosts meant for its user alone.
type peer struct {
	t    testing.TB
	name string
	id   int64
	c    *websocket.Conn
	pending

	room   chan peerRoomEvent
	calls  chan callEvent
	cohost chan cohostEvent
}

// peerRoomEvent is a room event as the co-host tests read it.
type peerRoomEvent struct {
	Type   string `json:"type"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	User   *struct {
		ID int64 `json:"id"`
	} `json:"user"`
	Play *struct {
		Stream  string `json:"stream"`
		WHEP    string `json:"whep"`
		FLV     string `json:"flv"`
		Sign    string `json:"sign"`
		Expires int64  `json:"expires"`
	} `json:"play"`
}

// callEvent is the params of a Live.call.events notification.
type callEvent struct {
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	RoomID int64  `json:"room_id"`
	From   *struct {
		ID       int64  `json:"id"`
		Nickname string `json:"nickname"`
	} `json:"from"`
	Reason     string          `json:"reason"`
	Data       json.RawMessage `json:"data"`
	ICEServers []rpc.ICEServer `json:"ice_servers"`
	Relay      *rpc.CallRelay  `json:"relay"`
}

// cohostEvent is the params of a Live.cohost.events notification.
type cohostEvent struct {
	Type   string `json:"type"`
	RoomID int64  `json:"room_id"`
	From   *struct {
		ID int64 `json:"id"`
	} `json:"from"`
	Publish *rpc.WHIPPublish `json:"publish"`
}

// dialPeer opens a websocket as a user.
func (e *env) dialPeer(name, tok string, id int64) *peer {
	e.t.Helper()
	p := &peer{t: e.t, name: name, id: id, c: e.wsDial(tok, false),
		room: make(chan peerRoomEvent, 1000), calls: make(chan callEvent, 1000), cohost: make(chan cohostEvent, 1000)}
	go p.readLoop()
	return p
}

func (p *peer) readLoop() {
	for {
		_, data, err := p.c.Read(context.Background())
		if err != nil {
			return
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(data, &msg); err != nil {
			panic(fmt.Sprintf("websocket message is not JSON: %s", data))
		}
		switch msg.Method {
		case "Live.room.events":
			var ps struct {
				Events []peerRoomEvent `json:"events"`
			}
			json.Unmarshal(msg.Params, &ps)
			for _, ev := range ps.Events {
				p.room <- ev
			}
		case "Live.call.events":
			var ev callEvent
			if err := json.Unmarshal(msg.Params, &ev); err != nil {
				panic(fmt.Sprintf("call event %s: %v", data, err))
			}
			p.calls <- ev
		case "Live.cohost.events":
			var ev cohostEvent
			if err := json.Unmarshal(msg.Params, &ev); err != nil {
				panic(fmt.Sprintf("co-host event %s: %v", data, err))
			}
			p.cohost <- ev
		case "":
			p.deliver(msg.ID, data)
		default:
			panic(fmt.Sprintf("unknown notification %s", data))
		}
	}
}

// rpc makes a call and returns the whole response.
func (p *peer) rpc(method string, params any) response {
	p.t.Helper()
	ch, err := p.send(p.c, method, params)
	if err != nil {
		p.t.Fatalf("%s %s: write: %v", p.name, method, err)
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s %s: no response in 10 s", p.name, method)
	}
	return response{}
}

// call makes a call and decodes its MoFang result into out (if not nil),
// returning the errno.
func (p *peer) call(method string, params any, out any) int {
	p.t.Helper()
	r := p.rpc(method, params)
	if r.Error != nil {
		p.t.Fatalf("%s %s: error %d %s %s", p.name, method, r.Error.Code, r.Error.Message, r.Error.Data)
	}
	var st struct {
		Errno  int    `json:"errno"`
		Errmsg string `json:"errmsg"`
	}
	if err := json.Unmarshal(r.Result, &st); err != nil {
		p.t.Fatalf("%s %s: result %s", p.name, method, r.Result)
	}
	if out != nil && st.Errno == 1000 {
		if err := json.Unmarshal(r.Result, out); err != nil {
			p.t.Fatalf("%s %s: result %s: %v", p.name, method, r.Result, err)
		}
	}
	return st.Errno
}

// must is call that wants errno 1000.
func (p *peer) must(method string, params any, out any) {
	p.t.Helper()
	if n := p.call(method, params, out); n != 1000 {
		p.t.Fatalf("%s %s(%v): errno %d", p.name, method, params, n)
	}
}

// join enters a room and skips the room events that joining brings.
func (p *peer) join(roomID int64, password string) {
	p.t.Helper()
	p.must("Live.room.join", map[string]any{"room_id": roomID, "password": password}, nil)
}

// nextCall returns the next call event.
func (p *peer) nextCall() callEvent {
	p.t.Helper()
	select {
	case ev := <-p.calls:
		return ev
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s: no call event in 10 s", p.name)
	}
	return callEvent{}
}

// nextCohost returns the next co-host notification.
func (p *peer) nextCohost() cohostEvent {
	p.t.Helper()
	select {
	case ev := <-p.cohost:
		return ev
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s: no co-host event in 10 s", p.name)
	}
	return cohostEvent{}
}

// nextRoom returns the next room event of type typ, skipping others.
func (p *peer) nextRoom(typ string) peerRoomEvent {
	p.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-p.room:
			if ev.Type == typ {
				return ev
			}
		case <-deadline:
			p.t.Fatalf("%s: no %q room event in 10 s", p.name, typ)
		}
	}
}

// noPrivate checks that no call or co-host notification arrives for d,
// nor a room event of a type in types.
func (p *peer) noPrivate(d time.Duration, types ...string) {
	p.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-p.calls:
			p.t.Fatalf("%s got call event %+v", p.name, ev)
		case ev := <-p.cohost:
			p.t.Fatalf("%s got co-host event %+v", p.name, ev)
		case ev := <-p.room:
			if contains(types, ev.Type) {
				p.t.Fatalf("%s got room event %+v", p.name, ev)
			}
		case <-deadline:
			return
		}
	}
}

// callRoom is a live room with its owner and two viewers joined, each on
// a websocket.
type callRoom struct {
	e                 *env
	roomID            int64
	stream            string
	alice, bob, carol *peer // alice owns the room
}

func (e *env) callRoom(password string) *callRoom {
	e.t.Helper()
	aliceTok, roomID, stream := e.liveRoom("alice", password)
	bobTok, bobID := e.register("bob")
	carolTok, carolID := e.register("carol")
	room, _ := e.store.RoomByID(context.Background(), roomID)
	cr := &callRoom{e: e, roomID: roomID, stream: stream,
		alice: e.dialPeer("alice", aliceTok, room.UserID),
		bob:   e.dialPeer("bob", bobTok, bobID),
		carol: e.dialPeer("carol", carolTok, carolID),
	}
	for _, p := range []*peer{cr.alice, cr.bob, cr.carol} {
		p.join(roomID, password)
	}
	return cr
}

// forEachDialectWith runs f against a server, with changes to its config,
// on every database.
func forEachDialectWith(t *testing.T, change func(*rpc.Config), f func(t *testing.T, e *env)) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) { f(t, newEnvWith(t, d, change)) })
	}
}

var testICE = []rpc.ICEServer{{URLs: []string{"stun:stun.example.org:3478"}}}

func withICE(c *rpc.Config) { c.Calls.ICEServers = testICE }

// invite has from call to, and checks that to's websocket rings.
func (cr *callRoom) invite(from, to *peer) string {
	cr.e.t.Helper()
	var inv struct {
		Data rpc.CallData `json:"data"`
	}
	from.must("Live.call.invite", map[string]any{"room_id": cr.roomID, "user_id": to.id}, &inv)
	if inv.Data.CallID == "" || inv.Data.Peer.ID != to.id {
		cr.e.t.Fatalf("invite: %+v", inv.Data)
	}
	ev := to.nextCall()
	if ev.Type != "invite" || ev.CallID != inv.Data.CallID || ev.From == nil || ev.From.ID != from.id || ev.RoomID != cr.roomID {
		cr.e.t.Fatalf("%s got %+v, want the invitation of call %s from %d", to.name, ev, inv.Data.CallID, from.id)
	}
	return inv.Data.CallID
}

// TestCallFlow: an invitation reaches the callee only (the third member of
// the room hears nothing), who accepts; offer, answer and candidates reach
// the other party as sent; someone else can neither signal nor hang up;
// hanging up tells the other party and ends the call.
func TestCallFlow(t *testing.T) {
	forEachDialectWith(t, withICE, func(t *testing.T, e *env) {
		cr := e.callRoom("pw")
		bob, carol, alice := cr.bob, cr.carol, cr.alice
		var inv struct {
			Data rpc.CallData `json:"data"`
		}
		bob.must("Live.call.invite", map[string]any{"room_id": cr.roomID, "user_id": carol.id}, &inv)
		id := inv.Data.CallID
		if len(id) != 16 || len(inv.Data.ICEServers) != 1 || inv.Data.ICEServers[0].URLs[0] != testICE[0].URLs[0] || inv.Data.TimeoutMS != 30000 {
			t.Fatalf("invite answer: %+v", inv.Data)
		}
		ev := carol.nextCall()
		if ev.Type != "invite" || ev.CallID != id || ev.From.ID != bob.id || ev.From.Nickname != "Nick bob" || len(ev.ICEServers) != 1 {
			t.Fatalf("carol got %+v", ev)
		}

		// Only the parties act on the call.
		if n := alice.call("Live.call.accept", map[string]any{"call_id": id}, nil); n != 1006 {
			t.Fatalf("alice accepts someone else's call: errno %d, want 1006", n)
		}
		if n := bob.call("Live.call.accept", map[string]any{"call_id": id}, nil); n != 1006 {
			t.Fatalf("the caller accepts: errno %d, want 1006", n)
		}
		if n := bob.call("Live.call.signal", map[string]any{"call_id": id, "data": map[string]any{"sdp": "x"}}, nil); n != 1001 {
			t.Fatalf("signal before the answer: errno %d, want 1001", n)
		}

		var acc struct {
			Data rpc.CallData `json:"data"`
		}
		carol.must("Live.call.accept", map[string]any{"call_id": id}, &acc)
		if acc.Data.Peer.ID != bob.id || len(acc.Data.ICEServers) != 1 || acc.Data.RoomID != cr.roomID {
			t.Fatalf("accept answer: %+v", acc.Data)
		}
		if ev := bob.nextCall(); ev.Type != "accept" || ev.CallID != id || ev.From.ID != carol.id {
			t.Fatalf("bob got %+v, want accept", ev)
		}

		offer := map[string]any{"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
		bob.must("Live.call.signal", map[string]any{"call_id": id, "data": offer}, nil)
		if ev := carol.nextCall(); ev.Type != "signal" || ev.From.ID != bob.id || !strings.Contains(string(ev.Data), `"type":"offer"`) || !strings.Contains(string(ev.Data), `IN IP4 127.0.0.1`) {
			t.Fatalf("carol got %+v (%s), want bob's offer", ev, ev.Data)
		}
		carol.must("Live.call.signal", []any{id, map[string]any{"type": "answer", "sdp": "v=0"}}, nil) // positional params too
		bob.must("Live.call.signal", map[string]any{"call_id": id, "data": map[string]any{"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0"}}, nil)
		if ev := bob.nextCall(); ev.Type != "signal" || !strings.Contains(string(ev.Data), "answer") {
			t.Fatalf("bob got %+v, want carol's answer", ev)
		}
		if ev := carol.nextCall(); ev.Type != "signal" || !strings.Contains(string(ev.Data), "typ host") {
			t.Fatalf("carol got %+v, want bob's candidate", ev)
		}

		// A third member of the room can do nothing to the call.
		for _, m := range []string{"Live.call.signal", "Live.call.hangup", "Live.call.relay", "Live.call.reject"} {
			params := map[string]any{"call_id": id}
			if m == "Live.call.signal" {
				params["data"] = "hi"
			}
			if n := alice.call(m, params, nil); n != 1006 {
				t.Fatalf("alice %s: errno %d, want 1006", m, n)
			}
		}

		bob.must("Live.call.hangup", map[string]any{"call_id": id}, nil)
		if ev := carol.nextCall(); ev.Type != "hangup" || ev.Reason != "hangup" || ev.From.ID != bob.id {
			t.Fatalf("carol got %+v, want hangup", ev)
		}
		if n := carol.call("Live.call.signal", map[string]any{"call_id": id, "data": 1}, nil); n != 1023 {
			t.Fatalf("signal after hangup: errno %d, want 1023", n)
		}
		// Alice heard nothing of it all; bob and carol nothing more.
		alice.noPrivate(200 * time.Millisecond)
		bob.noPrivate(0)
		carol.noPrivate(0)

		// Over, the two may call again.
		id2 := cr.invite(carol, bob)
		if id2 == id {
			t.Fatal("call ids are reused")
		}
	})
}

// TestCallBusy: a user has one call at a time. Calling someone in a call
// answers busy and tells them nothing; so does calling while in one.
func TestCallBusy(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		cr := e.callRoom("")
		id := cr.invite(cr.bob, cr.carol)
		if n := cr.alice.call("Live.call.invite", map[string]any{"room_id": cr.roomID, "user_id": cr.carol.id}, nil); n != 1022 {
			t.Fatalf("calling a callee whose phone rings: errno %d, want 1022", n)
		}
		if n := cr.alice.call("Live.call.invite", map[string]any{"room_id": cr.roomID, "user_id": cr.bob.id}, nil); n != 1022 {
			t.Fatalf("calling a caller: errno %d, want 1022", n)
		}
		if n := cr.bob.call("Live.call.invite", map[string]any{"room_id": cr.roomID, "user_id": cr.alice.id}, nil); n != 1022 {
			t.Fatalf("calling while in a call: errno %d, want 1022", n)
		}
		cr.carol.must("Live.call.accept", map[string]any{"call_id": id}, nil)
		cr.bob.nextCall() // accept
		if n := cr.alice.call("Live.call.invite", map[string]any{"room_id": cr.roomID, "user_id": cr.carol.id}, nil); n != 1022 {
			t.Fatalf("calling someone in a call: errno %d, want 1022", n)
		}
		cr.bob.noPrivate(200 * time.Millisecond)
		cr.carol.noPrivate(0)
		cr.alice.noPrivate(0)
	})
}

// TestCallTimeout: an invitation nobody answers rings out: both parties
// get "timeout", and the call is gone.
func TestCallTimeout(t *testing.T) {
	forEachDialectWith(t, func(c *rpc.Config) { c.Calls.RingTimeout = 300 * time.Millisecond }, func(t *testing.T, e *env) {
		cr := e.callRoom("")
		id := cr.invite(cr.bob, cr.carol)
		for _, p := range []*peer{cr.bob, cr.carol} {
			if ev := p.nextCall(); ev.Type != "timeout" || ev.CallID != id {
				t.Fatalf("%s got %+v, want timeout", p.name, ev)
			}
		}
		if n := cr.carol.call("Live.call.accept", map[string]any{"call_id": id}, nil); n != 1023 {
			t.Fatalf("accepting a call that rang out: errno %d, want 1023", n)
		}
		// An answered call does not time out.
		id = cr.invite(cr.bob, cr.carol)
		cr.carol.must("Live.call.accept", map[string]any{"call_id": id}, nil)
		cr.bob.nextCall()
		cr.bob.noPrivate(600 * time.Millisecond)
		cr.bob.must("Live.call.signal", map[string]any{"call_id": id, "data": "still here"}, nil)
	})
}

// TestCallEndsWithSocket: closing the websocket that carries a call, or
// leaving the room on it, hangs up (the other party gets "hangup", reason
// "left"); a callee who left before answering is hung up on too.
func TestCallEndsWithSocket(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		cr := e.callRoom("")
		id := cr.invite(cr.bob, cr.carol)
		cr.carol.must("Live.call.accept", map[string]any{"call_id": id}, nil)
		cr.bob.nextCall()
		cr.carol.c.CloseNow()
		if ev := cr.bob.nextCall(); ev.Type != "hangup" || ev.Reason != "left" || ev.CallID != id || ev.From.ID != cr.carol.id {
			t.Fatalf("bob got %+v, want hangup (left)", ev)
		}
		if n := cr.bob.call("Live.call.hangup", map[string]any{"call_id": id}, nil); n != 1023 {
			t.Fatalf("hangup of an ended call: errno %d, want 1023", n)
		}

		// The caller leaving the room on its socket hangs up a ringing call.
		id = cr.invite(cr.bob, cr.alice)
		cr.bob.must("Live.room.leave", map[string]any{"room_id": cr.roomID}, nil)
		if ev := cr.alice.nextCall(); ev.Type != "hangup" || ev.Reason != "left" || ev.CallID != id {
			t.Fatalf("alice got %+v, want hangup (left)", ev)
		}
		// Bob is no longer in the room: nobody can call him there.
		if n := cr.alice.call("Live.call.invite", map[string]any{"room_id": cr.roomID, "user_id": cr.bob.id}, nil); n != 1024 {
			t.Fatalf("calling someone who left: errno %d, want 1024", n)
		}
		// Nor can he call from outside it.
		if n := cr.bob.call("Live.call.invite", map[string]any{"room_id": cr.roomID, "user_id": cr.alice.id}, nil); n != 1014 {
			t.Fatalf("calling from outside the room: errno %d, want 1014", n)
		}
	})
}

// TestCallManySockets: every websocket of the callee in the room rings;
// the one that answers carries the call, the others hear "answered"; the
// callee's other socket closing does not end it.
func TestCallManySockets(t *testing.T) {
	e := newEnv(t, "sqlite")
	cr := e.callRoom("")
	tok := e.call("", "User.login", map[string]any{"username": "carol", "password": "secret-carol"}).Data["access_token"].(string)
	carol2 := e.dialPeer("carol2", tok, cr.carol.id)
	carol2.join(cr.roomID, "")
	id := cr.invite(cr.bob, cr.carol)
	if ev := carol2.nextCall(); ev.Type != "invite" || ev.CallID != id {
		t.Fatalf("carol's second socket got %+v", ev)
	}
	carol2.must("Live.call.accept", map[string]any{"call_id": id}, nil)
	if ev := cr.carol.nextCall(); ev.Type != "answered" || ev.CallID != id {
		t.Fatalf("carol's first socket got %+v, want answered", ev)
	}
	cr.bob.nextCall()
	// Signals go to the socket that answered, and come only from it.
	if n := cr.carol.call("Live.call.signal", map[string]any{"call_id": id, "data": "x"}, nil); n != 1006 {
		t.Fatalf("signal from the socket that did not answer: errno %d, want 1006", n)
	}
	cr.bob.must("Live.call.signal", map[string]any{"call_id": id, "data": "offer"}, nil)
	if ev := carol2.nextCall(); ev.Type != "signal" || string(ev.Data) != `"offer"` {
		t.Fatalf("carol2 got %+v", ev)
	}
	cr.carol.c.CloseNow()
	cr.bob.noPrivate(200 * time.Millisecond)
	carol2.must("Live.call.signal", map[string]any{"call_id": id, "data": "answer"}, nil)
	if ev := cr.bob.nextCall(); ev.Type != "signal" {
		t.Fatalf("bob got %+v", ev)
	}

	// A rejection stops every socket of the callee ringing.
	carol2.must("Live.call.hangup", map[string]any{"call_id": id}, nil)
	cr.bob.nextCall()
	carol3 := e.dialPeer("carol3", tok, cr.carol.id)
	carol3.join(cr.roomID, "")
	id = cr.invite(cr.alice, carol2)
	carol3.nextCall()
	carol3.must("Live.call.reject", map[string]any{"call_id": id}, nil)
	for _, p := range []*peer{cr.alice, carol2} {
		if ev := p.nextCall(); ev.Type != "reject" || ev.CallID != id {
			t.Fatalf("%s got %+v, want reject", p.name, ev)
		}
	}
	carol3.noPrivate(100 * time.Millisecond)
}

// TestCallBadInput: refusals of calls that cannot be, and of hostile
// params.
func TestCallBadInput(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) {
		c.Calls.Signals = rpc.Rate{Every: time.Hour, Burst: 3}
		c.Calls.Invites = rpc.Rate{Every: time.Hour, Burst: 3}
	})
	cr := e.callRoom("")
	with := func(k string, v any) map[string]any {
		m := map[string]any{"room_id": cr.roomID}
		m[k] = v
		return m
	}
	outsiderTok, outsiderID := e.register("dave")
	for name, c := range map[string]struct {
		p     *peer
		m     string
		args  any
		errno int
	}{
		"yourself":        {cr.bob, "Live.call.invite", with("user_id", cr.bob.id), 1001},
		"no such user":    {cr.bob, "Live.call.invite", with("user_id", 999999), 1024},
		"user not joined": {cr.bob, "Live.call.invite", with("user_id", outsiderID), 1024},
		"negative user":   {cr.bob, "Live.call.invite", with("user_id", -3), 1001},
		"short call id":   {cr.bob, "Live.call.accept", map[string]any{"call_id": "abc"}, 1001},
		"odd call id":     {cr.bob, "Live.call.hangup", map[string]any{"call_id": "../../etc/passwd"}, 1001},
		"unknown call":    {cr.bob, "Live.call.hangup", map[string]any{"call_id": "0123456789abcdef"}, 1023},
	} {
		if n := c.p.call(c.m, c.args, nil); n != c.errno {
			t.Errorf("%s: %s errno %d, want %d", name, c.m, n, c.errno)
		}
	}
	// Over HTTP: log in first, and signalling needs a websocket.
	if r := e.call("", "Live.call.invite", with("user_id", cr.carol.id)); r.Errno != 1005 {
		t.Fatalf("invite without a token: errno %d", r.Errno)
	}
	if r := e.call(outsiderTok, "Live.call.invite", with("user_id", cr.carol.id)); r.Errno != 1011 {
		t.Fatalf("invite over HTTP: errno %d, want 1011", r.Errno)
	}

	id := cr.invite(cr.bob, cr.carol)
	cr.carol.must("Live.call.accept", map[string]any{"call_id": id}, nil)
	cr.bob.nextCall()
	big := strings.Repeat("a", 16<<10) // 2 bytes over 16 KiB as a JSON string
	if n := cr.bob.call("Live.call.signal", map[string]any{"call_id": id, "data": big}, nil); n != 1001 {
		t.Fatalf("data over 16 KiB: errno %d, want 1001", n)
	}
	cr.bob.must("Live.call.signal", map[string]any{"call_id": id, "data": big[:16<<10-2]}, nil)
	cr.carol.nextCall()
	if r := cr.bob.rpc("Live.call.signal", map[string]any{"call_id": id}); r.Error == nil || r.Error.Code != -32602 {
		t.Fatalf("signal without data: %+v, want -32602", r)
	}
	for range 2 { // the third of the burst: the 16 KiB above
		cr.bob.must("Live.call.signal", map[string]any{"call_id": id, "data": "c"}, nil)
	}
	if n := cr.bob.call("Live.call.signal", map[string]any{"call_id": id, "data": "c"}, nil); n != 1003 {
		t.Fatalf("signal beyond the rate: errno %d, want 1003", n)
	}
	for range 2 {
		cr.carol.nextCall()
	}
	cr.carol.noPrivate(100 * time.Millisecond)
	cr.bob.must("Live.call.hangup", map[string]any{"call_id": id}, nil)
	// Invitations are limited per user: bob has made one, and the two
	// refused for the callee above count too.
	if n := cr.bob.call("Live.call.invite", with("user_id", cr.carol.id), nil); n != 1003 {
		t.Fatalf("invite beyond the rate: errno %d, want 1003", n)
	}
}

// TestCallRelay: the relay hands each party a publish sign for its own
// call stream and a play sign for the other's, which the media engine's
// check (CallStream and the signer) takes; a third user gets nothing, and
// once the call ends its streams are refused.
func TestCallRelay(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		cr := e.callRoom("pw")
		id := cr.invite(cr.bob, cr.carol)
		if n := cr.bob.call("Live.call.relay", map[string]any{"call_id": id}, nil); n != 1001 {
			t.Fatalf("relay of a ringing call: errno %d, want 1001", n)
		}
		cr.carol.must("Live.call.accept", map[string]any{"call_id": id}, nil)
		cr.bob.nextCall()
		bobStream := fmt.Sprintf("call-%s-%d", id, cr.bob.id)
		carolStream := fmt.Sprintf("call-%s-%d", id, cr.carol.id)
		if e.api.CallStream(bobStream) || e.api.CallStream(carolStream) {
			t.Fatal("call streams exist before the relay was asked")
		}
		var rel struct {
			Data rpc.CallRelay `json:"data"`
		}
		cr.bob.must("Live.call.relay", map[string]any{"call_id": id}, &rel)
		ev := cr.carol.nextCall()
		if ev.Type != "relay" || ev.Relay == nil {
			t.Fatalf("carol got %+v, want relay", ev)
		}
		mine, theirs := rel.Data, *ev.Relay
		if mine.Publish.Stream != bobStream || mine.Play.Stream != carolStream || theirs.Publish.Stream != carolStream || theirs.Play.Stream != bobStream {
			t.Fatalf("relay streams: bob %+v, carol %+v", mine, theirs)
		}
		want := fmt.Sprintf("http://live.example:8080/live/%s/whip?sign=%s", bobStream, mine.Publish.Sign)
		if mine.Publish.WHIP != want || mine.Play.WHEP != fmt.Sprintf("http://live.example:8080/live/%s/whep?sign=%s", carolStream, mine.Play.Sign) {
			t.Fatalf("relay URLs: %+v", mine)
		}
		for _, s := range []string{bobStream, carolStream} {
			if !e.api.CallStream(s) {
				t.Fatalf("CallStream(%s) is false during the relayed call", s)
			}
		}
		for _, c := range []struct {
			action urlsign.Action
			stream string
			sign   string
		}{
			{urlsign.Publish, bobStream, mine.Publish.Sign},
			{urlsign.Play, carolStream, mine.Play.Sign},
			{urlsign.Publish, carolStream, theirs.Publish.Sign},
			{urlsign.Play, bobStream, theirs.Play.Sign},
		} {
			if err := e.signer.Check(c.action, c.stream, c.sign); err != nil {
				t.Fatalf("%s sign of %s refused: %v", c.action, c.stream, err)
			}
		}
		// A sign is good for its stream and action only.
		if e.signer.Check(urlsign.Publish, carolStream, mine.Publish.Sign) == nil ||
			e.signer.Check(urlsign.Publish, carolStream, mine.Play.Sign) == nil ||
			e.signer.Check(urlsign.Publish, cr.stream, mine.Publish.Sign) == nil {
			t.Fatal("a call sign works for another stream or action")
		}
		// A third user: no relay, and no other name of theirs is a call stream.
		if n := cr.alice.call("Live.call.relay", map[string]any{"call_id": id}, nil); n != 1006 {
			t.Fatalf("alice asks for the relay: errno %d, want 1006", n)
		}
		for _, s := range []string{fmt.Sprintf("call-%s-%d", id, cr.alice.id), "call-" + id, "call-" + id + "-0" + fmt.Sprint(cr.bob.id), cr.stream} {
			if e.api.CallStream(s) {
				t.Fatalf("CallStream(%q) is true", s)
			}
		}
		cr.carol.must("Live.call.hangup", map[string]any{"call_id": id}, nil)
		cr.bob.nextCall()
		if e.api.CallStream(bobStream) || e.api.CallStream(carolStream) {
			t.Fatal("call streams still taken after the hangup")
		}
		if !rpc.IsPrivateStream(bobStream) || rpc.IsPrivateStream(cr.stream) {
			t.Fatal("IsPrivateStream")
		}
	})
}

// FuzzPrivateStreamName feeds the media engine's stream names (anything a
// client may put in a URL) to the checks of call and co-host streams:
// nothing panics, and no name is taken with no call or co-host on.
func FuzzPrivateStreamName(f *testing.F) {
	e := newEnv(f, "sqlite")
	for _, seed := range []string{
		"call-0123456789abcdef-7", "call-0123456789abcdef-07", "call-0123456789ABCDEF-7", "call--7", "call-",
		"room_000001-guest-8-0a1b2c3d", "-guest-8-0a1b2c3d", "x-guest--0a1b2c3d", "x-guest-8-0a1b2c3", "x-guest-9223372036854775808-0a1b2c3d",
		"", "-", "call-0123456789abcdef-7-guest-1-00000000",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		private := rpc.IsPrivateStream(name)
		if private && !strings.HasPrefix(name, "call-") && !strings.Contains(name, "-guest-") {
			t.Fatalf("%q taken for a private stream", name)
		}
		if e.api.CallStream(name) {
			t.Fatalf("CallStream(%q) with no call", name)
		}
		if _, ok := e.api.GuestStream(name); ok {
			t.Fatalf("GuestStream(%q) with no co-host", name)
		}
		e.api.PrivateStreamPublishing(name, true)
		e.api.PrivateStreamPublishing(name, false)
	})
}

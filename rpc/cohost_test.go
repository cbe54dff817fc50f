package rpc_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/urlsign"
)

// cohostOn checks that every member of the room got "cohost" on for
// guest, with play URLs of the guest stream, and returns its stream.
func (cr *callRoom) cohostOn(guest *peer, members ...*peer) string {
	cr.e.t.Helper()
	stream := ""
	for _, m := range members {
		ev := m.nextRoom("cohost")
		if ev.State != "on" || ev.User == nil || ev.User.ID != guest.id || ev.Play == nil {
			cr.e.t.Fatalf("%s got %+v, want cohost on", m.name, ev)
		}
		if stream != "" && ev.Play.Stream != stream {
			cr.e.t.Fatalf("%s: stream %s, others %s", m.name, ev.Play.Stream, stream)
		}
		stream = ev.Play.Stream
		if !strings.HasSuffix(ev.Play.WHEP, "/live/"+stream+"/whep?sign="+ev.Play.Sign) ||
			!strings.HasSuffix(ev.Play.FLV, "/live/"+stream+".flv?sign="+ev.Play.Sign) {
			cr.e.t.Fatalf("play URLs %+v", ev.Play)
		}
		room, _ := cr.e.store.RoomByID(context.Background(), cr.roomID)
		if err := cr.e.signer.CheckGen(urlsign.Play, stream, room.PasswordGen, ev.Play.Sign); err != nil {
			cr.e.t.Fatalf("play sign of the guest stream refused: %v", err)
		}
	}
	if !strings.HasPrefix(stream, cr.stream+"-guest-") {
		cr.e.t.Fatalf("guest stream %s is not tied to the room's %s", stream, cr.stream)
	}
	return stream
}

// cohostOff checks that every member got "cohost" off with the reason.
func (cr *callRoom) cohostOff(guest *peer, reason string, members ...*peer) {
	cr.e.t.Helper()
	for _, m := range members {
		ev := m.nextRoom("cohost")
		if ev.State != "off" || ev.User == nil || ev.User.ID != guest.id || ev.Reason != reason {
			cr.e.t.Fatalf("%s got %+v, want cohost off (%s)", m.name, ev, reason)
		}
	}
}

// TestCohostInvite: the host invites a viewer, who alone is told and
// accepts; every member hears that a co-host is on with where to watch
// it; the guest's publish sign is good for the guest stream only, which
// the media engine takes while the session lasts; Live.stream.read lists
// the co-host; the host ends it and everyone hears it is off.
func TestCohostInvite(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		cr := e.callRoom("pw")
		alice, bob, carol := cr.alice, cr.bob, cr.carol
		var inv struct {
			Data rpc.CohostData `json:"data"`
		}
		alice.must("Live.cohost.invite", map[string]any{"room_id": cr.roomID, "user_id": bob.id}, &inv)
		if inv.Data.User.ID != bob.id || inv.Data.TimeoutMS != 30000 {
			t.Fatalf("invite answer %+v", inv.Data)
		}
		if ev := bob.nextCohost(); ev.Type != "invite" || ev.From.ID != alice.id || ev.RoomID != cr.roomID {
			t.Fatalf("bob got %+v", ev)
		}
		carol.noPrivate(150*time.Millisecond, "cohost")
		if n := bob.call("Live.cohost.invite", map[string]any{"room_id": cr.roomID, "user_id": carol.id}, nil); n != 1006 {
			t.Fatalf("a viewer invites: errno %d, want 1006", n)
		}
		if n := carol.call("Live.cohost.accept", map[string]any{"room_id": cr.roomID}, nil); n != 1026 {
			t.Fatalf("accepting an invitation never made: errno %d, want 1026", n)
		}

		var acc struct {
			Data rpc.CohostData `json:"data"`
		}
		bob.must("Live.cohost.accept", map[string]any{"room_id": cr.roomID}, &acc)
		if ev := alice.nextCohost(); ev.Type != "accept" || ev.From.ID != bob.id {
			t.Fatalf("alice got %+v", ev)
		}
		stream := cr.cohostOn(bob, alice, bob, carol)
		pub := acc.Data.Publish
		if acc.Data.Stream != stream || pub == nil || pub.Stream != stream ||
			pub.WHIP != "http://live.example:8080/live/"+stream+"/whip?sign="+pub.Sign ||
			pub.RTMP != "rtmp://live.example/live/"+stream+"?sign="+pub.Sign {
			t.Fatalf("accept answer %+v", acc.Data)
		}
		if err := e.signer.Check(urlsign.Publish, stream, pub.Sign); err != nil {
			t.Fatalf("guest publish sign refused: %v", err)
		}
		if e.signer.Check(urlsign.Publish, cr.stream, pub.Sign) == nil {
			t.Fatal("the guest's publish sign publishes the host's stream")
		}
		if room, ok := e.api.GuestStream(stream); !ok || room != cr.stream {
			t.Fatalf("GuestStream(%s) = %q, %v", stream, room, ok)
		}
		if _, ok := e.api.GuestStream(cr.stream + "-guest-" + strconv.FormatInt(bob.id, 10) + "-00000000"); ok {
			t.Fatal("another session's name of the guest is taken")
		}
		if !rpc.IsPrivateStream(stream) {
			t.Fatal("IsPrivateStream of the guest stream")
		}

		// One co-host at a time.
		if n := alice.call("Live.cohost.invite", map[string]any{"room_id": cr.roomID, "user_id": carol.id}, nil); n != 1025 {
			t.Fatalf("a second co-host: errno %d, want 1025", n)
		}
		if n := carol.call("Live.cohost.request", map[string]any{"room_id": cr.roomID}, nil); n != 1025 {
			t.Fatalf("a request while a co-host is on: errno %d, want 1025", n)
		}

		// The room lists its co-host, to those who may watch it.
		var read struct {
			Errno int `json:"errno"`
			Data  struct {
				Cohosts []rpc.CohostInfo `json:"cohosts"`
			} `json:"data"`
		}
		e.callInto(carolTok(t, e), "Live.stream.read", map[string]any{"room_id": cr.roomID, "password": "pw"}, &read)
		if read.Errno != 1000 || len(read.Data.Cohosts) != 1 || read.Data.Cohosts[0].User.ID != bob.id || read.Data.Cohosts[0].Play.Stream != stream || read.Data.Cohosts[0].Live {
			t.Fatalf("Live.stream.read: %+v", read)
		}
		if r := e.call(carolTok(t, e), "Live.stream.read", map[string]any{"room_id": cr.roomID}); r.Errno != 1008 {
			t.Fatalf("read without the password: %+v", r)
		}
		// A member joining now learns of the co-host.
		var join struct {
			Data struct {
				Cohosts []rpc.CohostInfo `json:"cohosts"`
			} `json:"data"`
		}
		daveTok, daveID := e.register("dave")
		dave := e.dialPeer("dave", daveTok, daveID)
		dave.must("Live.room.join", map[string]any{"room_id": cr.roomID, "password": "pw"}, &join)
		if len(join.Data.Cohosts) != 1 || join.Data.Cohosts[0].User.ID != bob.id {
			t.Fatalf("join: %+v", join.Data)
		}

		// The guest's stream going live tells the room.
		e.api.PrivateStreamPublishing(stream, true)
		for _, m := range []*peer{alice, bob, carol, dave} {
			if ev := m.nextRoom("cohost"); ev.State != "live" || ev.Play == nil || ev.Play.Stream != stream {
				t.Fatalf("%s got %+v, want cohost live", m.name, ev)
			}
		}

		if n := carol.call("Live.cohost.end", map[string]any{"room_id": cr.roomID}, nil); n != 1006 {
			t.Fatalf("a viewer ends the co-host: errno %d, want 1006", n)
		}
		alice.must("Live.cohost.end", map[string]any{"room_id": cr.roomID}, nil)
		cr.cohostOff(bob, "ended", alice, bob, carol, dave)
		if _, ok := e.api.GuestStream(stream); ok {
			t.Fatal("the guest stream is still taken after the end")
		}
		if n := alice.call("Live.cohost.end", map[string]any{"room_id": cr.roomID}, nil); n != 1026 {
			t.Fatalf("ending twice: errno %d, want 1026", n)
		}
		bob.noPrivate(100 * time.Millisecond)
	})
}

// carolTok logs carol in over HTTP.
func carolTok(t *testing.T, e *env) string {
	t.Helper()
	r := e.call("", "User.login", map[string]any{"username": "carol", "password": "secret-carol"})
	if r.Errno != 1000 {
		t.Fatalf("login: %+v", r)
	}
	return r.Data["access_token"].(string)
}

// TestCohostRequest: a viewer asks, the host (alone) is told and accepts;
// the guest is told where to publish; the guest leaving the room ends the
// session, as does its stream ending.
func TestCohostRequest(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		cr := e.callRoom("")
		alice, bob, carol := cr.alice, cr.bob, cr.carol
		carol.must("Live.cohost.request", map[string]any{"room_id": cr.roomID}, nil)
		if ev := alice.nextCohost(); ev.Type != "request" || ev.From.ID != carol.id {
			t.Fatalf("alice got %+v", ev)
		}
		bob.noPrivate(150*time.Millisecond, "cohost")
		if n := alice.call("Live.cohost.accept", map[string]any{"room_id": cr.roomID}, nil); n != 1001 {
			t.Fatalf("the host accepts naming nobody: errno %d, want 1001", n)
		}
		if n := alice.call("Live.cohost.accept", map[string]any{"room_id": cr.roomID, "user_id": bob.id}, nil); n != 1026 {
			t.Fatalf("the host accepts a request never made: errno %d, want 1026", n)
		}
		if n := carol.call("Live.cohost.accept", map[string]any{"room_id": cr.roomID}, nil); n != 1026 {
			t.Fatalf("the viewer accepts its own request: errno %d, want 1026", n)
		}
		var acc struct {
			Data rpc.CohostData `json:"data"`
		}
		alice.must("Live.cohost.accept", map[string]any{"room_id": cr.roomID, "user_id": carol.id}, &acc)
		ev := carol.nextCohost()
		if ev.Type != "accept" || ev.From.ID != alice.id || ev.Publish == nil {
			t.Fatalf("carol got %+v", ev)
		}
		stream := cr.cohostOn(carol, alice, bob, carol)
		if ev.Publish.Stream != stream || acc.Data.Publish != nil || acc.Data.User.ID != carol.id || acc.Data.Play == nil {
			t.Fatalf("carol's publish %+v, alice's answer %+v", ev.Publish, acc.Data)
		}
		if err := e.signer.Check(urlsign.Publish, stream, ev.Publish.Sign); err != nil {
			t.Fatalf("guest publish sign refused: %v", err)
		}

		// The guest leaving ends it.
		carol.c.CloseNow()
		cr.cohostOff(carol, "left", alice, bob)
		if _, ok := e.api.GuestStream(stream); ok {
			t.Fatal("the guest stream outlives its guest")
		}

		// So does the guest stream ending (after the engine's grace).
		alice.must("Live.cohost.invite", map[string]any{"room_id": cr.roomID, "user_id": bob.id}, nil)
		bob.nextCohost()
		bob.must("Live.cohost.accept", map[string]any{"room_id": cr.roomID}, nil)
		alice.nextCohost()
		stream2 := cr.cohostOn(bob, alice, bob)
		if stream2 == stream {
			t.Fatal("a new session reuses the guest stream's name")
		}
		e.api.PrivateStreamPublishing(stream, false) // the earlier session's: nothing
		e.api.PrivateStreamPublishing(stream2, true)
		alice.nextRoom("cohost")
		bob.nextRoom("cohost")
		e.api.PrivateStreamPublishing(stream2, false)
		cr.cohostOff(bob, "stopped", alice, bob)
		alice.noPrivate(100*time.Millisecond, "cohost")
	})
}

// TestCohostAnswers: no, withdrawn, timed out, and the viewer leaving
// before an answer.
func TestCohostAnswers(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) { c.Calls.RingTimeout = 300 * time.Millisecond })
	cr := e.callRoom("")
	alice, bob, carol := cr.alice, cr.bob, cr.carol
	room := map[string]any{"room_id": cr.roomID}
	withUser := func(id int64) map[string]any { return map[string]any{"room_id": cr.roomID, "user_id": id} }

	// The viewer says no.
	alice.must("Live.cohost.invite", withUser(bob.id), nil)
	bob.nextCohost()
	bob.must("Live.cohost.reject", room, nil)
	if ev := alice.nextCohost(); ev.Type != "reject" || ev.From.ID != bob.id {
		t.Fatalf("alice got %+v", ev)
	}
	// The host says no.
	bob.must("Live.cohost.request", room, nil)
	alice.nextCohost()
	alice.must("Live.cohost.reject", withUser(bob.id), nil)
	if ev := bob.nextCohost(); ev.Type != "reject" || ev.From.ID != alice.id {
		t.Fatalf("bob got %+v", ev)
	}
	// The viewer withdraws its request.
	bob.must("Live.cohost.request", room, nil)
	alice.nextCohost()
	bob.must("Live.cohost.reject", room, nil)
	if ev := alice.nextCohost(); ev.Type != "cancel" || ev.From.ID != bob.id {
		t.Fatalf("alice got %+v", ev)
	}
	if n := alice.call("Live.cohost.accept", withUser(bob.id), nil); n != 1026 {
		t.Fatalf("accepting a withdrawn request: errno %d", n)
	}
	// Nobody answers.
	alice.must("Live.cohost.invite", withUser(carol.id), nil)
	carol.nextCohost()
	if ev := carol.nextCohost(); ev.Type != "timeout" {
		t.Fatalf("carol got %+v", ev)
	}
	if ev := alice.nextCohost(); ev.Type != "timeout" || ev.From.ID != carol.id {
		t.Fatalf("alice got %+v", ev)
	}
	if n := carol.call("Live.cohost.accept", room, nil); n != 1026 {
		t.Fatalf("accepting a timed out invitation: errno %d", n)
	}
	// The viewer leaves before an answer.
	carol.must("Live.cohost.request", room, nil)
	alice.nextCohost()
	carol.must("Live.room.leave", room, nil)
	if ev := alice.nextCohost(); ev.Type != "cancel" || ev.From.ID != carol.id {
		t.Fatalf("alice got %+v", ev)
	}
	// The host must be in the room to hear requests; the host cannot ask
	// itself; nobody outside the room is invited.
	alice.must("Live.room.leave", room, nil)
	if n := bob.call("Live.cohost.request", room, nil); n != 1024 {
		t.Fatalf("request with the host away: errno %d, want 1024", n)
	}
	alice.join(cr.roomID, "")
	if n := alice.call("Live.cohost.request", room, nil); n != 1001 {
		t.Fatalf("the host requests: errno %d, want 1001", n)
	}
	if n := alice.call("Live.cohost.invite", withUser(carol.id), nil); n != 1024 {
		t.Fatalf("inviting someone who left: errno %d, want 1024", n)
	}
	if n := alice.call("Live.cohost.invite", withUser(alice.id), nil); n != 1001 {
		t.Fatalf("inviting oneself: errno %d, want 1001", n)
	}
	if r := e.call("", "Live.cohost.end", room); r.Errno != 1005 {
		t.Fatalf("end without a token: %+v", r)
	}
	if n := bob.call("Live.cohost.reject", map[string]any{"room_id": 999999}, nil); n != 1007 {
		t.Fatalf("reject in no room: errno %d", n)
	}
	bob.noPrivate(100 * time.Millisecond)
}

// TestCohostPendingBounded: a room holds a bounded number of waiting
// requests.
func TestCohostPendingBounded(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) { c.Calls.MaxCohostPending = 2 })
	cr := e.callRoom("")
	daveTok, daveID := e.register("dave")
	dave := e.dialPeer("dave", daveTok, daveID)
	dave.join(cr.roomID, "")
	room := map[string]any{"room_id": cr.roomID}
	cr.bob.must("Live.cohost.request", room, nil)
	cr.carol.must("Live.cohost.request", room, nil)
	cr.bob.must("Live.cohost.request", room, nil) // a new request replaces the old
	if n := dave.call("Live.cohost.request", room, nil); n != 1003 {
		t.Fatalf("a third request waiting: errno %d, want 1003", n)
	}
}

package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/roomhub"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store/storetest"
)

// TestStreamKey: Live.stream hands out the same stream key every time, a
// key that a day (or a year) later still admits a publisher; only the
// owner resets it; a reset makes a new key, revokes the old one and
// disconnects whoever publishes the room's stream, nobody else.
func TestStreamKey(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			media := &fakeMedia{}
			e := newEnvWith(t, d, func(c *rpc.Config) { c.Media = media })
			alice, _ := e.register("alice")
			bob, _ := e.register("bob")
			first := e.call(alice, "Live.stream", map[string]any{"room_name": "r"})
			name := first.Data["stream_name"].(string)
			roomID := first.Data["room_id"]
			pub := first.Data["publish"].(map[string]any)
			key := pub["sign"].(string)
			if pub["expires"] != float64(0) || pub["stream_key"] != name+"?sign="+key {
				t.Fatalf("publish: %+v", pub)
			}
			again := e.call(alice, "Live.stream", map[string]any{"room_name": "r2"}).Data["publish"].(map[string]any)
			if again["sign"] != key {
				t.Fatalf("the stream key changed between two calls: %v, then %v", key, again["sign"])
			}
			for _, later := range []time.Duration{25 * time.Hour, 400 * 24 * time.Hour} {
				at := e.signer.WithClock(func() time.Time { return time.Now().Add(later) })
				if err := at.CheckGen(urlsign.Publish, name, 0, key); err != nil {
					t.Fatalf("the key %v later: %v", later, err)
				}
			}

			media.clients = []rpc.AdminClient{
				{ID: "rtmp-1", Stream: name, Role: "publish"},
				{ID: "rtmp-2", Stream: name, Role: "play"},
				{ID: "rtmp-3", Stream: "room_other", Role: "publish"},
			}
			for _, c := range []struct {
				who    string
				tok    string
				params map[string]any
				errno  int
			}{
				{"no login", "", map[string]any{}, 1005},
				{"another user's room", bob, map[string]any{"room_id": roomID}, 1006},
				{"a user without a room", bob, map[string]any{}, 1007},
				{"no such room", alice, map[string]any{"room_id": 999}, 1007},
			} {
				if r := e.call(c.tok, "Live.stream.key.reset", c.params); r.Errno != c.errno {
					t.Errorf("%s: errno %d, want %d", c.who, r.Errno, c.errno)
				}
			}
			if len(media.kicked) != 0 {
				t.Fatalf("refused resets kicked %v", media.kicked)
			}

			reset := e.call(alice, "Live.stream.key.reset", map[string]any{})
			if reset.Errno != 1000 || reset.Data["stream_name"] != name || reset.Data["room_id"] != roomID {
				t.Fatalf("reset: %+v", reset)
			}
			newKey := reset.Data["publish"].(map[string]any)["sign"].(string)
			if newKey == key {
				t.Fatal("the reset gave the same key")
			}
			if !slices.Equal(media.kicked, []string{"client:rtmp-1"}) {
				t.Fatalf("the reset kicked %v, want the room's publisher only", media.kicked)
			}
			if err := e.signer.CheckGen(urlsign.Publish, name, 1, key); !errors.Is(err, urlsign.ErrMismatch) {
				t.Fatalf("the old key after the reset: %v", err)
			}
			if err := e.signer.CheckGen(urlsign.Publish, name, 1, newKey); err != nil {
				t.Fatalf("the new key: %v", err)
			}
			if got := e.call(alice, "Live.stream", map[string]any{"room_name": "r2"}).Data["publish"].(map[string]any)["sign"]; got != newKey {
				t.Fatalf("Live.stream after the reset gives %v, want the new key", got)
			}
			if r := e.call(alice, "Live.stream.key.reset", map[string]any{"room_id": roomID}); r.Errno != 1000 ||
				r.Data["publish"].(map[string]any)["sign"] == newKey {
				t.Fatalf("a reset by room_id: %+v", r)
			}

			if r := e.call(alice, "Live.stream.status", map[string]any{"room_id": roomID, "type": "stop"}); r.Errno != 1000 {
				t.Fatal(r)
			}
			if r := e.call(alice, "Live.stream.key.reset", map[string]any{"room_id": roomID}); r.Errno != 1009 {
				t.Fatalf("a reset of an ended room: errno %d, want 1009", r.Errno)
			}
		})
	}
}

// TestOnRoomEvent: the hook hears every room event as members get it, in
// order, with its room.
func TestOnRoomEvent(t *testing.T) {
	var mu sync.Mutex
	type heard struct {
		room int64
		ev   roomhub.Event
	}
	var got []heard
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) {
		c.OnRoomEvent = func(roomID int64, ev roomhub.Event) {
			mu.Lock()
			got = append(got, heard{roomID, ev})
			mu.Unlock()
		}
	})
	ctx := context.Background()
	aliceTok, roomID, _ := e.liveRoom("alice", "")
	bobTok, bobID := e.register("bob")
	if _, err := e.store.AddCoins(ctx, bobID, 100); err != nil {
		t.Fatal(err)
	}
	alice := e.dialWS(aliceTok, false)
	alice.call("Live.room.join", map[string]any{"room_id": roomID})
	bob := e.dialWS(bobTok, false)
	bob.call("Live.room.join", map[string]any{"room_id": roomID})
	bob.call("Live.comment", map[string]any{"room_id": roomID, "content": "hello"})
	bob.call("Live.like", map[string]any{"room_id": roomID})
	if r := bob.call("Live.gift", map[string]any{"room_id": roomID, "gift_id": 1}); r.Errno != 1000 {
		t.Fatalf("gift: %+v", r)
	}
	bob.call("Live.room.leave", map[string]any{"room_id": roomID})

	want := []string{"join", "join", "comment", "like", "gift", "rank", "leave"}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var types []string
	for i, h := range got {
		types = append(types, h.ev.Type)
		if h.room != roomID || h.ev.Time == 0 || (i > 0 && h.ev.Seq <= got[i-1].ev.Seq) {
			t.Errorf("event %d: %+v in room %d (want room %d, a time, seq after the last)", i, h.ev, h.room, roomID)
		}
	}
	if !slices.Equal(types, want) {
		t.Fatalf("the hook heard %v, want %v", types, want)
	}
	if c := got[2].ev; c.Content != "hello" || c.User == nil || c.User.ID != bobID {
		t.Fatalf("comment: %+v", c)
	}
	if g := got[4].ev; g.Gift == nil || g.Gift.ID != 1 || g.Count != 1 {
		t.Fatalf("gift: %+v", g)
	}
}

// TestStreamKeyResetAcrossNodes: a reset on one node disconnects the
// publisher of the old key on the node it publishes to, nobody else.
func TestStreamKeyResetAcrossNodes(t *testing.T) {
	m := &mesh{ids: []string{"a", "b", "c"}, servers: map[string]*rpc.Server{}, streams: map[string]cluster.Stream{}}
	media := []*fakeMedia{{}, {}, {}}
	envs := clusterEnvs(t, "sqlite", func(i int, c *rpc.Config) {
		c.Cluster = meshNode{Local: c.Cluster.(*cluster.Local), m: m}
		c.Media = media[i]
	})
	for i, e := range envs {
		m.servers[m.ids[i]] = e.api
	}
	aliceTok, _, stream := envs[0].liveRoom("alice", "")
	media[0].clients = []rpc.AdminClient{{ID: "a1", Stream: stream, Role: "play"}}
	media[1].clients = []rpc.AdminClient{{ID: "b1", Stream: stream, Role: "publish"}, {ID: "b2", Stream: stream, Role: "play"}}
	if r := envs[0].call(aliceTok, "Live.stream.key.reset", map[string]any{}); r.Errno != 1000 {
		t.Fatalf("reset: %+v", r)
	}
	if got := fmt.Sprint(media[0].kicked, media[1].kicked, media[2].kicked); got != "[] [client:b1] []" {
		t.Fatalf("kicked on a and b: %s, want b's publisher only", got)
	}
}

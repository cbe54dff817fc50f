package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/internal/seal"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/store/storetest"
)

// fakeForwarder reports pushes and counts refreshes.
type fakeForwarder struct {
	mu        sync.Mutex
	states    map[string]map[int64]rpc.ForwardState
	refreshed []string
}

func (f *fakeForwarder) ForwardStates(stream string) map[int64]rpc.ForwardState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.states[stream]
}

func (f *fakeForwarder) RefreshForwards(stream string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshed = append(f.refreshed, stream)
}

// TestForwardAPI: the owner and admins manage a room's destinations,
// others are refused; the key is stored sealed (not in the database in
// clear) and only ever shown masked; states come from the media engine,
// idle otherwise; adds and removes refresh the room's pushes; bad URLs
// and keys, the cap, an unknown destination and a stopped room get their
// errnos.
func TestForwardAPI(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			sl, err := seal.New([]byte("0123456789abcdef0123456789abcdef"), "test")
			if err != nil {
				t.Fatal(err)
			}
			media := &fakeForwarder{states: map[string]map[int64]rpc.ForwardState{}}
			e := newEnvWith(t, d, func(c *rpc.Config) { c.Forwards = rpc.ForwardConfig{Sealer: sl, Max: 2, Media: media} })
			alice, _ := e.register("alice")
			bob, _ := e.register("bob")
			admin, adminID := e.register("admin")
			if err := e.store.SetAdmin(context.Background(), adminID, true); err != nil {
				t.Fatal(err)
			}
			room := e.call(alice, "Live.stream", map[string]any{"room_name": "r"}).Data
			roomID, stream := room["room_id"], room["stream_name"].(string)
			const key = "live_0123456789_SECRETKEY"

			for _, c := range []struct {
				what   string
				tok    string
				params map[string]any
				errno  int
			}{
				{"no login", "", map[string]any{"room_id": roomID, "url": "rtmp://a.example/live", "key": key}, 1005},
				{"another user", bob, map[string]any{"room_id": roomID, "url": "rtmp://a.example/live", "key": key}, 1006},
				{"no room", alice, map[string]any{"room_id": 999, "url": "rtmp://a.example/live", "key": key}, 1007},
				{"http URL", alice, map[string]any{"room_id": roomID, "url": "http://a.example/live", "key": key}, 1029},
				{"srt URL", alice, map[string]any{"room_id": roomID, "url": "srt://a.example:9000", "key": key}, 1029},
				{"no app", alice, map[string]any{"room_id": roomID, "url": "rtmp://a.example", "key": key}, 1029},
				{"empty key", alice, map[string]any{"room_id": roomID, "url": "rtmp://a.example/live", "key": ""}, 1001},
				{"key with a newline", alice, map[string]any{"room_id": roomID, "url": "rtmp://a.example/live", "key": "a\nb"}, 1001},
			} {
				if r := e.call(c.tok, "Live.forward.add", c.params); r.Errno != c.errno {
					t.Fatalf("%s: Live.forward.add errno %d %s, want %d", c.what, r.Errno, r.Errmsg, c.errno)
				}
			}
			add := e.call(alice, "Live.forward.add", map[string]any{"room_id": roomID, "url": "rtmp://a.example/live", "key": key})
			if add.Errno != 1000 || add.Data["key"] != "****TKEY" || add.Data["state"] != "idle" || add.Data["url"] != "rtmp://a.example/live" {
				t.Fatalf("Live.forward.add: %+v", add)
			}
			id := int64(add.Data["id"].(float64))
			short := e.call(admin, "Live.forward.add", map[string]any{"room_id": roomID, "url": "rtmps://b.example:443/app", "key": "tiny"})
			if short.Errno != 1000 || short.Data["key"] != "****" {
				t.Fatalf("an admin adds a short key: %+v", short)
			}
			if r := e.call(alice, "Live.forward.add", map[string]any{"room_id": roomID, "url": "rtmp://c.example/live", "key": key}); r.Errno != 1028 {
				t.Fatalf("past the cap: %+v", r)
			}
			media.mu.Lock()
			refreshed := len(media.refreshed)
			media.mu.Unlock()
			if refreshed != 2 {
				t.Fatalf("%d refreshes after two adds", refreshed)
			}

			// the database holds the key sealed for the room, not in clear
			rid, _ := strconv.ParseInt(roomID.(string), 10, 64)
			fs, err := e.store.Forwards(context.Background(), rid)
			if err != nil || len(fs) != 2 {
				t.Fatalf("stored: %v %v", fs, err)
			}
			if bytes.Contains(fs[0].KeySealed, []byte("SECRET")) {
				t.Fatal("the key is stored in clear")
			}
			if got, err := sl.Open(fs[0].KeySealed, rpc.ForwardKeyAD(rid)); err != nil || string(got) != key {
				t.Fatalf("the sealed key opens to %q, %v", got, err)
			}

			media.mu.Lock()
			media.states[stream] = map[int64]rpc.ForwardState{id: {State: "error", Reason: "connection refused", BytesSent: 1234, Since: time.UnixMilli(1_700_000_000_000)}}
			media.mu.Unlock()
			for _, tok := range []string{alice, admin} {
				var r struct {
					Errno int `json:"errno"`
					Data  struct {
						Forwards []rpc.ForwardData `json:"forwards"`
						Max      int               `json:"max"`
					} `json:"data"`
				}
				e.callInto(tok, "Live.forward.list", map[string]any{"room_id": roomID}, &r)
				b, _ := json.Marshal(r)
				if bytes.Contains(b, []byte("SECRET")) || bytes.Contains(b, []byte("tiny")) {
					t.Fatalf("Live.forward.list shows a key: %s", b)
				}
				if r.Errno != 1000 || r.Data.Max != 2 || len(r.Data.Forwards) != 2 {
					t.Fatalf("Live.forward.list: %s", b)
				}
				f0, f1 := r.Data.Forwards[0], r.Data.Forwards[1]
				if f0.State != "error" || f0.Reason != "connection refused" || f0.BytesSent != 1234 || f0.Since != 1_700_000_000_000 || !f0.Enabled || f1.State != "idle" {
					t.Fatalf("Live.forward.list: %s", b)
				}
			}
			if r := e.call(bob, "Live.forward.list", map[string]any{"room_id": roomID}); r.Errno != 1006 {
				t.Fatalf("another user lists: %+v", r)
			}
			if r := e.call(bob, "Live.forward.remove", map[string]any{"room_id": roomID, "forward_id": id}); r.Errno != 1006 {
				t.Fatalf("another user removes: %+v", r)
			}
			if r := e.call(alice, "Live.forward.remove", map[string]any{"room_id": roomID, "forward_id": id}); r.Errno != 1000 {
				t.Fatalf("remove: %+v", r)
			}
			if r := e.call(alice, "Live.forward.remove", map[string]any{"room_id": roomID, "forward_id": id}); r.Errno != 1027 {
				t.Fatalf("remove again: %+v", r)
			}
			// a destination of another room is not this room's
			bobRoom := e.call(bob, "Live.stream", map[string]any{"room_name": "b"}).Data["room_id"]
			if r := e.call(bob, "Live.forward.remove", map[string]any{"room_id": bobRoom, "forward_id": short.Data["id"]}); r.Errno != 1027 {
				t.Fatalf("remove through another room: %+v", r)
			}
			// a stopped room takes no new destination
			if r := e.call(alice, "Live.stream.status", map[string]any{"room_id": roomID, "type": "stop"}); r.Errno != 1000 {
				t.Fatalf("stop: %+v", r)
			}
			if r := e.call(alice, "Live.forward.add", map[string]any{"room_id": roomID, "url": "rtmp://a.example/live", "key": key}); r.Errno != 1009 {
				t.Fatalf("add to a stopped room: %+v", r)
			}
		})
	}
}

// TestForwardOff: without a sealer the methods say restreaming is off.
func TestForwardOff(t *testing.T) {
	e := newEnv(t, "sqlite")
	alice, _ := e.register("alice")
	roomID := e.call(alice, "Live.stream", map[string]any{"room_name": "r"}).Data["room_id"]
	if r := e.call(alice, "Live.forward.list", map[string]any{"room_id": roomID}); r.Errno != 1006 {
		t.Fatalf("Live.forward.list with restreaming off: %+v", r)
	}
}

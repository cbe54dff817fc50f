package rpc_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
)

// playersMedia is a MediaAdmin with fixed clients that records kicks.
type playersMedia struct {
	mu      sync.Mutex
	clients []rpc.AdminClient
	kicked  []string
}

func (m *playersMedia) Streams() []rpc.AdminStream { return nil }
func (m *playersMedia) Clients() []rpc.AdminClient { return m.clients }
func (m *playersMedia) KickStream(string) bool     { return true }
func (m *playersMedia) Totals() rpc.MediaTotals    { return rpc.MediaTotals{} }
func (m *playersMedia) KickClient(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kicked = append(m.kicked, id)
	return true
}

// signOf returns the sign param of a URL.
func signOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("sign")
}

// TestPasswordChangeRevokes is issue 10's "play signs outlive a password
// change": after the owner changes the password, the play and replay
// signs handed out before no longer work, the players of the stream are
// disconnected, and the sockets of other users leave the room with a
// "reenter" event, getting back in only with the new password.
func TestPasswordChangeRevokes(t *testing.T) {
	for _, d := range []string{"sqlite", "mysql"} {
		t.Run(d, func(t *testing.T) {
			media := &playersMedia{}
			e := newEnvWith(t, d, func(c *rpc.Config) { c.Media = media })
			ctx := context.Background()
			aliceTok, roomID, stream := e.liveRoom("alice", "one")
			media.clients = []rpc.AdminClient{
				{ID: "pub", Stream: stream, Role: "publish"},
				{ID: "viewer", Stream: stream, Role: "play"},
				{ID: "elsewhere", Stream: "room_other", Role: "play"},
			}
			recID, err := e.store.AddRecord(ctx, store.NewRecord{RoomID: roomID, Stream: stream, Path: "p", Start: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			bobTok, _ := e.register("bob")
			carolTok, _ := e.register("carol")

			read := e.call(bobTok, "Live.stream.read", map[string]any{"room_id": roomID, "password": "one"})
			oldPlay := read.Data["play"].(map[string]any)["sign"].(string)
			rec := e.call(bobTok, "Live.record.read", map[string]any{"record_id": recID, "password": "one"})
			oldRecord := signOf(t, rec.Data["mp4"].(string))
			gen := func() int64 {
				r, err := e.store.RoomByName(ctx, stream)
				if err != nil {
					t.Fatal(err)
				}
				return r.PasswordGen
			}
			g0 := gen()
			if err := e.signer.CheckGen(urlsign.Play, stream, g0, oldPlay); err != nil {
				t.Fatalf("play sign before the change: %v", err)
			}

			alice, bob, carol := e.dialWS(aliceTok, false), e.dialWS(bobTok, false), e.dialWS(carolTok, false)
			for name, w := range map[string]*wsClient{"alice": alice, "bob": bob, "carol": carol} {
				if r := w.call("Live.room.join", map[string]any{"room_id": roomID, "password": "one"}); r.Errno != 1000 {
					t.Fatalf("%s joins: %+v", name, r)
				}
			}

			if r := e.call(aliceTok, "Live.stream", map[string]any{"room_name": "r", "password": "two"}); r.Errno != 1000 {
				t.Fatalf("changing the password: %+v", r)
			}
			if gen() == g0 {
				t.Fatal("the password change kept the generation")
			}
			for name, w := range map[string]*wsClient{"bob": bob, "carol": carol} {
				if ev := w.next("online", "join", "leave"); ev.Type != "reenter" || ev.Seq != 0 {
					t.Fatalf("%s after the change: event %+v, want reenter", name, ev)
				}
				if r := w.call("Live.comment", map[string]any{"room_id": roomID, "content": "still here?"}); r.Errno != 1014 {
					t.Fatalf("%s comments after the change: errno %d, want 1014 (join again)", name, r.Errno)
				}
				if r := w.call("Live.comment.list", map[string]any{"room_id": roomID}); r.Errno != 1008 {
					t.Fatalf("%s lists comments on its socket after the change: errno %d, want 1008", name, r.Errno)
				}
			}
			if r := alice.call("Live.comment", map[string]any{"room_id": roomID, "content": "owners stay"}); r.Errno != 1000 {
				t.Fatalf("the owner comments after the change: %+v", r)
			}
			if ev := alice.next("online", "join", "leave"); ev.Type != "comment" || ev.Content != "owners stay" {
				t.Fatalf("the owner's socket after the change: %+v", ev)
			}
			bob.quiet(300 * time.Millisecond)

			media.mu.Lock()
			kicked := media.kicked
			media.mu.Unlock()
			if len(kicked) != 1 || kicked[0] != "viewer" {
				t.Fatalf("players kicked %v, want the stream's one player", kicked)
			}
			if err := e.signer.CheckGen(urlsign.Play, stream, gen(), oldPlay); !errors.Is(err, urlsign.ErrMismatch) {
				t.Fatalf("the old play sign after the change: %v, want refused", err)
			}
			if err := e.signer.CheckGen(urlsign.Play, rpc.RecordSignName(recID), gen(), oldRecord); !errors.Is(err, urlsign.ErrMismatch) {
				t.Fatalf("the old replay sign after the change: %v, want refused", err)
			}

			if r := bob.call("Live.room.join", map[string]any{"room_id": roomID, "password": "one"}); r.Errno != 1008 {
				t.Fatalf("re-joining with the old password: errno %d, want 1008", r.Errno)
			}
			if r := bob.call("Live.room.join", map[string]any{"room_id": roomID, "password": "two"}); r.Errno != 1000 {
				t.Fatalf("re-joining with the new password: %+v", r)
			}
			read = e.call(bobTok, "Live.stream.read", map[string]any{"room_id": roomID, "password": "two"})
			if err := e.signer.CheckGen(urlsign.Play, stream, gen(), read.Data["play"].(map[string]any)["sign"].(string)); err != nil {
				t.Fatalf("a new play sign: %v", err)
			}

			// Removing the password opens the room: nobody is put out.
			if r := e.call(aliceTok, "Live.stream", map[string]any{"room_name": "r", "password": ""}); r.Errno != 1000 {
				t.Fatalf("removing the password: %+v", r)
			}
			if r := bob.call("Live.comment", map[string]any{"room_id": roomID, "content": "open now"}); r.Errno != 1000 {
				t.Fatalf("bob after the password was removed: %+v", r)
			}

			// A ban puts everyone but the owner out too.
			adminTok, adminID := e.register("root")
			if err := e.store.SetAdmin(ctx, adminID, true); err != nil {
				t.Fatal(err)
			}
			if r := e.call(adminTok, "Admin.room.ban", map[string]any{"room_id": roomID}); r.Errno != 1000 {
				t.Fatalf("ban: %+v", r)
			}
			if ev := bob.next("online", "join", "leave", "comment"); ev.Type != "reenter" {
				t.Fatalf("bob after the ban: %+v", ev)
			}
		})
	}
}

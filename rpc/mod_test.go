package rpc_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/wordfilter"
	"github.com/mofang-live/mofang/store/storetest"
)

// modRoom is a live room with its owner, a moderator and viewers, each
// on a websocket joined to the room.
type modRoom struct {
	e                *env
	roomID           int64
	ownerTok, modTok string
	bobTok, carolTok string
	daveTok          string
	ownerID, modID   int64
	bobID, carolID   int64
	owner, mod       *wsClient
	bob, carol       *wsClient
}

// newModRoom makes alice's room with mia as its moderator, and alice, mia,
// bob and carol in it (dave is a user who is not in it).
func newModRoom(t *testing.T, e *env) *modRoom {
	t.Helper()
	m := &modRoom{e: e}
	m.ownerTok, m.roomID, _ = e.liveRoom("alice", "")
	m.ownerID = 1
	m.modTok, m.modID = e.register("mia")
	m.bobTok, m.bobID = e.register("bob")
	m.carolTok, m.carolID = e.register("carol")
	m.daveTok, _ = e.register("dave")
	if r := e.call(m.ownerTok, "Live.room.mod.add", map[string]any{"room_id": m.roomID, "user_id": m.modID}); r.Errno != 1000 {
		t.Fatalf("mod.add: %+v", r)
	}
	m.owner, m.mod = e.dialWS(m.ownerTok, false), e.dialWS(m.modTok, false)
	m.bob, m.carol = e.dialWS(m.bobTok, false), e.dialWS(m.carolTok, false)
	for _, w := range []*wsClient{m.owner, m.mod, m.bob, m.carol} {
		if r := w.call("Live.room.join", map[string]any{"room_id": m.roomID}); r.Errno != 1000 {
			t.Fatalf("join: %+v", r)
		}
	}
	// Everyone has seen everyone come.
	for _, w := range []*wsClient{m.owner, m.mod, m.bob} {
		for {
			if ev := w.next("online"); ev.Type == "join" && ev.User.ID == m.carolID {
				break
			}
		}
	}
	m.carol.next() // online
	m.carol.next() // her join
	return m
}

// everyone is every socket in the room.
func (m *modRoom) everyone() map[string]*wsClient {
	return map[string]*wsClient{"alice": m.owner, "mia": m.mod, "bob": m.bob, "carol": m.carol}
}

// wantMod checks that every socket in ws gets a "mod" event of action on
// target next.
func wantMod(t *testing.T, ws map[string]*wsClient, action string, target int64) {
	t.Helper()
	for name, w := range ws {
		ev := w.next()
		if ev.Type != "mod" || ev.Mod == nil || ev.Mod.Action != action || ev.Mod.Target == nil || ev.Mod.Target.ID != target {
			t.Fatalf("%s got %+v (mod %+v), want mod %s of %d", name, ev, ev.Mod, action, target)
		}
	}
}

// TestModeration: a moderator mutes, deletes, kicks and bans a viewer
// over real websockets; everyone sees the effects; the target is refused
// with the documented errnos and others are not; a non-moderator, an act
// on the owner and on another moderator are refused; the log lists every
// action, newest first.
func TestModeration(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		m := newModRoom(t, e)
		room := m.roomID
		all := m.everyone()

		// Who may do what.
		if r := e.call(m.daveTok, "Live.room.mod.mute", map[string]any{"room_id": room, "user_id": m.bobID, "duration": 60}); r.Errno != 1033 {
			t.Fatalf("a non-moderator's mute: %+v", r)
		}
		if r := m.bob.call("Live.room.mod.kick", map[string]any{"room_id": room, "user_id": m.carolID}); r.Errno != 1033 {
			t.Fatalf("a viewer's kick: %+v", r)
		}
		if r := m.mod.call("Live.room.mod.add", map[string]any{"room_id": room, "user_id": m.bobID}); r.Errno != 1006 {
			t.Fatalf("a moderator naming a moderator: %+v", r)
		}
		for _, method := range []string{"Live.room.mod.mute", "Live.room.mod.kick", "Live.room.mod.ban"} {
			if r := m.mod.call(method, map[string]any{"room_id": room, "user_id": m.ownerID, "duration": 60}); r.Errno != 1034 {
				t.Fatalf("%s of the owner: %+v", method, r)
			}
		}
		maxTok, maxID := e.register("max")
		if r := e.call(m.ownerTok, "Live.room.mod.add", map[string]any{"room_id": room, "user_id": maxID}); r.Errno != 1000 || len(r.Data["moderators"].([]any)) != 2 {
			t.Fatalf("second moderator: %+v", r)
		}
		wantMod(t, all, "mod_add", maxID)
		if r := m.mod.call("Live.room.mod.mute", map[string]any{"room_id": room, "user_id": maxID, "duration": 60}); r.Errno != 1034 {
			t.Fatalf("a moderator muting a moderator: %+v", r)
		}
		if r := e.call(maxTok, "Live.room.mod.remove", map[string]any{"room_id": room, "user_id": maxID}); r.Errno != 1006 {
			t.Fatalf("a moderator removing themselves: %+v", r)
		}
		if r := e.call(m.ownerTok, "Live.room.mod.remove", map[string]any{"room_id": room, "user_id": maxID}); r.Errno != 1000 || len(r.Data["moderators"].([]any)) != 1 {
			t.Fatalf("mod.remove: %+v", r)
		}
		wantMod(t, all, "mod_remove", maxID)
		if r := e.call(m.bobTok, "Live.room.mod.list", map[string]any{"room_id": room}); r.Errno != 1033 {
			t.Fatalf("a viewer listing moderators: %+v", r)
		}
		if r := m.mod.call("Live.room.mod.me", map[string]any{"room_id": room}); r.Errno != 1000 || r.Data["role"] != "moderator" {
			t.Fatalf("mod.me: %+v", r)
		}

		// Bob comments; mia mutes him: his comments are refused, carol's
		// are not.
		c := m.bob.call("Live.comment", map[string]any{"room_id": room, "content": "first"})
		if c.Errno != 1000 {
			t.Fatalf("comment: %+v", c)
		}
		commentID := int64(c.Data["id"].(float64))
		for name, w := range all {
			if ev := w.next(); ev.Type != "comment" || ev.ID != commentID {
				t.Fatalf("%s got %+v, want bob's comment %d", name, ev, commentID)
			}
		}
		if r := m.mod.call("Live.room.mod.mute", map[string]any{"room_id": room, "user_id": m.bobID, "duration": 300}); r.Errno != 1000 {
			t.Fatalf("mute: %+v", r)
		}
		wantMod(t, all, "mute", m.bobID)
		if r := m.bob.call("Live.comment", map[string]any{"room_id": room, "content": "am I muted?"}); r.Errno != 1030 || !strings.Contains(r.Errmsg, "until") {
			t.Fatalf("a muted comment: %+v", r)
		}
		if r := m.bob.call("Live.room.mod.me", map[string]any{"room_id": room}); r.Errno != 1000 || r.Data["muted_until"].(float64) < float64(time.Now().Unix()) {
			t.Fatalf("bob's mod.me: %+v", r)
		}
		if r := m.carol.call("Live.comment", map[string]any{"room_id": room, "content": "I am not"}); r.Errno != 1000 {
			t.Fatalf("carol's comment: %+v", r)
		}
		for name, w := range all {
			if ev := w.next(); ev.Type != "comment" || ev.User.ID != m.carolID {
				t.Fatalf("%s got %+v, want carol's comment only", name, ev)
			}
		}

		// Mia deletes bob's comment: everyone is told, the list no
		// longer has it; a comment of the owner may not be deleted.
		if r := m.mod.call("Live.comment.delete", map[string]any{"room_id": room, "comment_id": commentID}); r.Errno != 1000 {
			t.Fatalf("delete: %+v", r)
		}
		for name, w := range all {
			if ev := w.next(); ev.Type != "comment_delete" || ev.ID != commentID {
				t.Fatalf("%s got %+v, want the deletion of %d", name, ev, commentID)
			}
		}
		if r := m.mod.call("Live.comment.delete", map[string]any{"room_id": room, "comment_id": commentID}); r.Errno != 1038 {
			t.Fatalf("delete again: %+v", r)
		}
		list := e.call(m.carolTok, "Live.comment.list", map[string]any{"room_id": room})
		if cs := list.Data["comments"].([]any); list.Data["total"] != float64(1) || len(cs) != 1 || cs[0].(map[string]any)["content"] != "I am not" {
			t.Fatalf("comments after the deletion: %+v", list.Data)
		}
		oc := m.owner.call("Live.comment", map[string]any{"room_id": room, "content": "owner speaks"})
		for _, w := range all {
			w.next()
		}
		if r := m.mod.call("Live.comment.delete", map[string]any{"room_id": room, "comment_id": oc.Data["id"]}); r.Errno != 1034 {
			t.Fatalf("deleting the owner's comment: %+v", r)
		}

		// Mia kicks bob: his socket leaves (the others see him go), a
		// rejoin is refused; lifting it lets him back.
		if r := m.mod.call("Live.room.mod.kick", map[string]any{"room_id": room, "user_id": m.bobID, "duration": 600}); r.Errno != 1000 || r.Data["until"].(float64) < float64(time.Now().Add(500*time.Second).Unix()) {
			t.Fatalf("kick: %+v", r)
		}
		others := map[string]*wsClient{"alice": m.owner, "mia": m.mod, "carol": m.carol}
		wantMod(t, others, "kick", m.bobID)
		for name, w := range others {
			if ev := w.next(); ev.Type != "leave" || ev.User.ID != m.bobID {
				t.Fatalf("%s got %+v, want bob's leave", name, ev)
			}
		}
		if ev := m.bob.next("mod"); ev.Type != "reenter" || ev.Reason != "kicked" {
			t.Fatalf("bob got %+v, want reenter kicked", ev)
		}
		if r := m.bob.call("Live.comment", map[string]any{"room_id": room, "content": "still here"}); r.Errno != 1014 {
			t.Fatalf("bob's comment after the kick: %+v", r)
		}
		if r := m.bob.call("Live.room.join", map[string]any{"room_id": room}); r.Errno != 1031 {
			t.Fatalf("bob's rejoin after the kick: %+v", r)
		}
		if r := e.call(m.bobTok, "Live.stream.read", map[string]any{"room_id": room}); r.Errno != 1031 || r.Data != nil {
			t.Fatalf("bob's stream.read after the kick: %+v", r)
		}
		if r := m.mod.call("Live.room.mod.unban", map[string]any{"room_id": room, "user_id": m.bobID}); r.Errno != 1000 || r.Data["lifted"] != true {
			t.Fatalf("lifting the kick: %+v", r)
		}
		wantMod(t, others, "unban", m.bobID)
		if r := m.bob.call("Live.room.join", map[string]any{"room_id": room}); r.Errno != 1000 {
			t.Fatalf("bob's rejoin after the kick was lifted: %+v", r)
		}
		for _, w := range others {
			if ev := w.next(); ev.Type != "join" || ev.User.ID != m.bobID {
				t.Fatalf("got %+v, want bob's join", ev)
			}
		}

		// Mia bans bob: he is out, may not join, read the room (no play
		// sign) or its comments, until the ban is lifted.
		if r := m.mod.call("Live.room.mod.ban", map[string]any{"room_id": room, "user_id": m.bobID}); r.Errno != 1000 || r.Data["until"] != float64(0) {
			t.Fatalf("ban: %+v", r)
		}
		wantMod(t, others, "ban", m.bobID)
		if ev := m.bob.next("mod", "online", "join"); ev.Type != "reenter" || ev.Reason != "user_banned" {
			t.Fatalf("bob got %+v, want reenter user_banned", ev)
		}
		for _, call := range []struct {
			method string
			params map[string]any
		}{
			{"Live.room.join", map[string]any{"room_id": room}},
			{"Live.stream.read", map[string]any{"room_id": room}},
			{"Live.comment.list", map[string]any{"room_id": room}},
		} {
			if r := m.bob.call(call.method, call.params); r.Errno != 1032 || r.Data != nil {
				t.Fatalf("%s while banned: %+v", call.method, r)
			}
		}
		if r := m.carol.call("Live.stream.read", map[string]any{"room_id": room}); r.Errno != 1000 || r.Data["play"] == nil {
			t.Fatalf("carol's stream.read: %+v", r)
		}
		if r := m.mod.call("Live.room.mod.unban", map[string]any{"room_id": room, "user_id": m.bobID}); r.Errno != 1000 || r.Data["lifted"] != true {
			t.Fatalf("unban: %+v", r)
		}
		if r := e.call(m.bobTok, "Live.stream.read", map[string]any{"room_id": room}); r.Errno != 1000 || r.Data["play"] == nil {
			t.Fatalf("bob's stream.read after the unban: %+v", r)
		}
		if r := m.mod.call("Live.room.mod.unmute", map[string]any{"room_id": room, "user_id": m.bobID}); r.Errno != 1000 || r.Data["lifted"] != true {
			t.Fatalf("unmute: %+v", r)
		}

		// The log: every action, newest first, with who and whom.
		if r := e.call(m.bobTok, "Live.room.mod.log", map[string]any{"room_id": room}); r.Errno != 1033 {
			t.Fatalf("a viewer reading the log: %+v", r)
		}
		var log struct {
			Errno int `json:"errno"`
			Data  struct {
				Actions []rpc.ModLogEntry `json:"actions"`
				Total   int               `json:"total"`
			} `json:"data"`
		}
		e.callInto(m.ownerTok, "Live.room.mod.log", map[string]any{"room_id": room, "size": 100}, &log)
		var got []string
		for _, a := range log.Data.Actions {
			s := fmt.Sprintf("%d %s", a.By.ID, a.Action)
			if a.Target != nil {
				s += fmt.Sprintf(" %d", a.Target.ID)
			}
			if a.Action == "delete_comment" {
				s += " #" + a.Detail
			}
			got = append(got, s)
		}
		want := []string{
			fmt.Sprintf("%d unmute %d", m.modID, m.bobID),
			fmt.Sprintf("%d unban %d", m.modID, m.bobID),
			fmt.Sprintf("%d ban %d", m.modID, m.bobID),
			fmt.Sprintf("%d unkick %d", m.modID, m.bobID),
			fmt.Sprintf("%d kick %d", m.modID, m.bobID),
			fmt.Sprintf("%d delete_comment %d #%d", m.modID, m.bobID, commentID),
			fmt.Sprintf("%d mute %d", m.modID, m.bobID),
			fmt.Sprintf("%d mod_remove %d", m.ownerID, maxID),
			fmt.Sprintf("%d mod_add %d", m.ownerID, maxID),
			fmt.Sprintf("%d mod_add %d", m.ownerID, m.modID),
		}
		if log.Errno != 1000 || log.Data.Total != len(want) || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("log (%d in all):\n%s\nwant:\n%s", log.Data.Total, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if a := log.Data.Actions[4]; a.Until == 0 || a.By.Nickname != "Nick mia" || a.Target.Nickname != "Nick bob" {
			t.Fatalf("kick entry %+v", a)
		}
	})
}

// TestModeratorsAreLimited: a moderator's actions are counted (shared
// limiter); past the burst they are refused with 1003.
func TestModeratorsAreLimited(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) { c.Limits.ModActions = rpc.Rate{Every: time.Hour, Burst: 3} })
	m := newModRoom(t, e)
	var errnos []int
	for range 5 {
		r := e.call(m.modTok, "Live.room.mod.mute", map[string]any{"room_id": m.roomID, "user_id": m.carolID, "duration": 10})
		errnos = append(errnos, r.Errno)
	}
	if fmt.Sprint(errnos) != "[1000 1000 1000 1003 1003]" {
		t.Fatalf("errnos %v", errnos)
	}
}

// fakeFollowers says who follows whom.
type fakeFollowers map[int64]bool

func (f fakeFollowers) IsFollower(_ context.Context, user, host int64) (bool, error) {
	return f[user], nil
}

// burst sends n comments from w at once and returns their errnos by
// count, and the accepted ones' contents.
func burst(t *testing.T, w *wsClient, room int64, contents func(i int) string, n int) (map[int]int, []string) {
	t.Helper()
	chans := make([]chan response, n)
	for i := range n {
		chans[i] = w.send("Live.comment", map[string]any{"room_id": room, "content": contents(i)})
	}
	errnos := map[int]int{}
	var accepted []string
	for _, ch := range chans {
		r := w.await("Live.comment", ch)
		errnos[r.Errno]++
		if r.Errno == 1000 {
			accepted = append(accepted, r.Data["content"].(string))
		}
	}
	return errnos, accepted
}

// TestSlowModeAndWordsUnderBurst: in slow mode 50 comments sent at once
// by one viewer give exactly one accepted, 49 refused with 1035; the
// owner and moderators are exempt; the server's list masks and the room's
// refuses every one of 50 comments at once; followers-only chat takes
// followers, the owner and moderators only.
func TestSlowModeAndWordsUnderBurst(t *testing.T) {
	global, err := wordfilter.New(wordfilter.Mask, []string{"spam", "傻瓜"})
	if err != nil {
		t.Fatal(err)
	}
	followers := fakeFollowers{}
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			e := newEnvWith(t, d, func(c *rpc.Config) {
				c.Limits.Comments = rpc.Rate{Burst: -1}
				c.WordFilter = global
				c.Followers = followers
			})
			m := newModRoom(t, e)
			room := m.roomID
			if r := m.mod.call("Live.room.mod.settings", map[string]any{"room_id": room, "slow": 60}); r.Errno != 1000 || r.Data["slow"] != float64(60) {
				t.Fatalf("slow mode on: %+v", r)
			}
			if ev := m.carol.next(); ev.Type != "mod" || ev.Mod.Action != "slow" || *ev.Mod.Slow != 60 {
				t.Fatalf("carol got %+v", ev)
			}
			errnos, _ := burst(t, m.bob, room, func(i int) string { return fmt.Sprint("hi ", i) }, 50)
			if errnos[1000] != 1 || errnos[1035] != 49 {
				t.Fatalf("slow mode burst: errnos %v", errnos)
			}
			for _, w := range []*wsClient{m.owner, m.mod} {
				errnos, _ := burst(t, w, room, func(i int) string { return fmt.Sprint("exempt ", i) }, 5)
				if errnos[1000] != 5 {
					t.Fatalf("owner/moderator in slow mode: %v", errnos)
				}
			}
			if r := m.mod.call("Live.room.mod.settings", map[string]any{"room_id": room, "slow": 0}); r.Errno != 1000 || r.Data["slow"] != float64(0) {
				t.Fatalf("slow mode off: %+v", r)
			}

			// The room's own list refuses; the server's masks.
			if r := m.mod.call("Live.room.mod.words", map[string]any{"room_id": room, "words": []string{"广告"}, "mode": "refuse"}); r.Errno != 1006 {
				t.Fatalf("a moderator setting the words: %+v", r)
			}
			if r := m.owner.call("Live.room.mod.words", map[string]any{"room_id": room, "words": []string{"广告", "AD"}, "mode": "refuse"}); r.Errno != 1000 || r.Data["global"] != float64(2) {
				t.Fatalf("room words: %+v", r)
			}
			errnos, accepted := burst(t, m.carol, room, func(i int) string {
				if i%2 == 0 {
					return fmt.Sprint("SPAM 傻瓜 ", i)
				}
				return fmt.Sprint("看广告 ", i)
			}, 50)
			if errnos[1000] != 25 || errnos[1037] != 25 {
				t.Fatalf("words burst: errnos %v", errnos)
			}
			for _, c := range accepted {
				if !strings.HasPrefix(c, "**** ** ") {
					t.Fatalf("accepted %q, want the words masked", c)
				}
			}
			list := e.call(m.bobTok, "Live.comment.list", map[string]any{"room_id": room, "size": 100})
			for _, c := range list.Data["comments"].([]any) {
				s := c.(map[string]any)["content"].(string)
				if strings.Contains(strings.ToLower(s), "spam") || strings.Contains(s, "广告") || strings.Contains(s, "傻瓜") {
					t.Fatalf("stored comment %q holds a filtered word", s)
				}
			}
			if r := m.bob.call("Live.comment", map[string]any{"room_id": room, "content": "an ad"}); r.Errno != 1037 {
				t.Fatalf("room word in another case: %+v", r)
			}

			// Followers-only.
			if r := m.mod.call("Live.room.mod.settings", map[string]any{"room_id": room, "followers_only": true}); r.Errno != 1000 || r.Data["followers_only"] != true {
				t.Fatalf("followers-only: %+v", r)
			}
			followers[m.carolID] = true
			if r := m.bob.call("Live.comment", map[string]any{"room_id": room, "content": "me?"}); r.Errno != 1036 {
				t.Fatalf("a non-follower in followers-only: %+v", r)
			}
			for _, w := range []*wsClient{m.carol, m.mod, m.owner} {
				if r := w.call("Live.comment", map[string]any{"room_id": room, "content": "yes"}); r.Errno != 1000 {
					t.Fatalf("follower/mod/owner in followers-only: %+v", r)
				}
			}
			delete(followers, m.carolID)
		})
	}
}

// TestModerationAcrossNodes: on three nodes of one cluster (one store,
// one Redis), a moderator's kick on node a takes bob's socket on node b
// out of the room, his mute set on a holds for his comments on c, and a
// slow-mode burst sent to b and c at once lets exactly one through.
func TestModerationAcrossNodes(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			mesh := &mesh{ids: []string{"a", "b", "c"}, servers: map[string]*rpc.Server{}}
			envs := clusterEnvs(t, d, func(i int, c *rpc.Config) {
				c.Cluster = meshNode{Local: c.Cluster.(*cluster.Local), m: mesh}
				c.Limits.Comments = rpc.Rate{Burst: -1}
			})
			for i, e := range envs {
				mesh.servers[mesh.ids[i]] = e.api
			}
			a, b, c := envs[0], envs[1], envs[2]
			ownerTok, room, _ := a.liveRoom("alice", "")
			modTok, modID := a.register("mia")
			bobTok, bobID := a.register("bob")
			if r := a.call(ownerTok, "Live.room.mod.add", map[string]any{"room_id": room, "user_id": modID}); r.Errno != 1000 {
				t.Fatalf("mod.add: %+v", r)
			}
			bobB, bobC := b.dialWS(bobTok, false), c.dialWS(bobTok, false)
			for _, w := range []*wsClient{bobB, bobC} {
				if r := w.call("Live.room.join", map[string]any{"room_id": room}); r.Errno != 1000 {
					t.Fatalf("join: %+v", r)
				}
			}
			if r := a.call(modTok, "Live.room.mod.settings", map[string]any{"room_id": room, "slow": 60}); r.Errno != 1000 {
				t.Fatalf("slow: %+v", r)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			total := map[int]int{}
			for _, w := range []*wsClient{bobB, bobC} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errnos, _ := burst(t, w, room, func(i int) string { return fmt.Sprint("x", i) }, 25)
					mu.Lock()
					defer mu.Unlock()
					for k, v := range errnos {
						total[k] += v
					}
				}()
			}
			wg.Wait()
			if total[1000] != 1 || total[1035] != 49 {
				t.Fatalf("slow mode across nodes: %v", total)
			}
			if r := a.call(modTok, "Live.room.mod.settings", map[string]any{"room_id": room, "slow": 0}); r.Errno != 1000 {
				t.Fatalf("slow off: %+v", r)
			}
			if r := a.call(modTok, "Live.room.mod.mute", map[string]any{"room_id": room, "user_id": bobID, "duration": 60}); r.Errno != 1000 {
				t.Fatalf("mute: %+v", r)
			}
			if r := bobC.call("Live.comment", map[string]any{"room_id": room, "content": "on c"}); r.Errno != 1030 {
				t.Fatalf("muted on c: %+v", r)
			}
			if r := a.call(modTok, "Live.room.mod.kick", map[string]any{"room_id": room, "user_id": bobID}); r.Errno != 1000 {
				t.Fatalf("kick: %+v", r)
			}
			for name, w := range map[string]*wsClient{"b": bobB, "c": bobC} {
				if ev := w.next("online", "join", "mod", "comment", "leave"); ev.Type != "reenter" || ev.Reason != "kicked" {
					t.Fatalf("bob on %s got %+v, want reenter kicked", name, ev)
				}
			}
			if r := bobB.call("Live.room.join", map[string]any{"room_id": room}); r.Errno != 1031 {
				t.Fatalf("rejoin on b: %+v", r)
			}
		})
	}
}

// TestAdminModeration: an admin acts on anyone in any room but its owner,
// moderators included, and names moderators; a moderator cannot act on
// an admin; the owner can.
func TestAdminModeration(t *testing.T) {
	e := newEnv(t, "sqlite")
	m := newModRoom(t, e)
	adminTok, adminID := e.register("root")
	if err := e.store.SetAdmin(context.Background(), adminID, true); err != nil {
		t.Fatal(err)
	}
	mute := func(tok string, user int64) int {
		return e.call(tok, "Live.room.mod.mute", map[string]any{"room_id": m.roomID, "user_id": user, "duration": 60}).Errno
	}
	if got := []int{mute(adminTok, m.ownerID), mute(adminTok, m.modID), mute(m.modTok, adminID), mute(m.ownerTok, adminID)}; fmt.Sprint(got) != "[1034 1000 1034 1000]" {
		t.Fatalf("admin on owner, admin on moderator, moderator on admin, owner on admin: %v", got)
	}
	if r := e.call(adminTok, "Live.room.mod.add", map[string]any{"room_id": m.roomID, "user_id": m.bobID}); r.Errno != 1000 {
		t.Fatalf("an admin naming a moderator: %+v", r)
	}
	if r := e.call(adminTok, "Live.room.mod.me", map[string]any{"room_id": m.roomID}); r.Data["role"] != "admin" {
		t.Fatalf("admin's mod.me: %+v", r)
	}
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mofang-live/mofang/store"
)

// TestModerationStore: restrictions end at their time (an ended one is
// not in force and lifting it is no action), a ban without an end holds,
// chat settings start at their defaults and keep each change, deleted
// comments leave the list, and every action is logged in order with
// its actor's and target's names.
func TestModerationStore(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var ids []int64
		for _, n := range []string{"owner", "mod", "viewer"} {
			u, err := s.CreateUser(ctx, store.NewUser{Name: n, PasswordHash: "x", Nickname: "Nick " + n})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, u.ID)
		}
		r, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_mod", RoomName: "r", UserID: ids[0]})
		if err != nil {
			t.Fatal(err)
		}
		act := func(action string, until time.Time) store.ModAction {
			return store.ModAction{RoomID: r.ID, ActorID: ids[1], TargetID: ids[2], Action: action, Until: until}
		}
		if added, err := s.AddModerator(ctx, store.ModAction{RoomID: r.ID, ActorID: ids[0], TargetID: ids[1], Action: "mod_add"}); err != nil || !added {
			t.Fatalf("AddModerator: %v %v", added, err)
		}
		if added, err := s.AddModerator(ctx, store.ModAction{RoomID: r.ID, ActorID: ids[0], TargetID: ids[1], Action: "mod_add"}); err != nil || added {
			t.Fatalf("AddModerator twice: %v %v", added, err)
		}
		if mod, err := s.IsModerator(ctx, r.ID, ids[1]); err != nil || !mod {
			t.Fatalf("IsModerator: %v %v", mod, err)
		}
		if err := s.Restrict(ctx, store.RestrictMute, act("mute", time.Now().Add(-time.Second))); err != nil {
			t.Fatal(err)
		}
		if err := s.Restrict(ctx, store.RestrictBan, act("ban", time.Time{})); err != nil {
			t.Fatal(err)
		}
		rs, err := s.Restrictions(ctx, r.ID, ids[2])
		if err != nil || len(rs) != 1 || rs[0].Kind != store.RestrictBan || !rs[0].Until.IsZero() || rs[0].ByID != ids[1] {
			t.Fatalf("restrictions %+v %v, want the ban alone", rs, err)
		}
		if lifted, err := s.Unrestrict(ctx, store.RestrictMute, act("unmute", time.Time{})); err != nil || lifted {
			t.Fatalf("lifting an ended mute: %v %v", lifted, err)
		}
		if lifted, err := s.Unrestrict(ctx, store.RestrictBan, act("unban", time.Time{})); err != nil || !lifted {
			t.Fatalf("lifting the ban: %v %v", lifted, err)
		}
		if rs, _ := s.Restrictions(ctx, r.ID, ids[2]); len(rs) != 0 {
			t.Fatalf("restrictions after lifting: %+v", rs)
		}

		cs, err := s.ChatSettings(ctx, r.ID)
		if err != nil || cs.SlowSeconds != 0 || cs.FollowersOnly || cs.WordMode != "mask" || len(cs.Words) != 0 {
			t.Fatalf("default chat settings %+v %v", cs, err)
		}
		if err := s.SetSlowMode(ctx, 30, act("slow", time.Time{})); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRoomWords(ctx, "refuse", []string{"广告", "ad"}, act("words", time.Time{})); err != nil {
			t.Fatal(err)
		}
		if err := s.SetFollowersOnly(ctx, true, act("followers_only", time.Time{})); err != nil {
			t.Fatal(err)
		}
		cs, _ = s.ChatSettings(ctx, r.ID)
		if cs.SlowSeconds != 30 || !cs.FollowersOnly || cs.WordMode != "refuse" || fmt.Sprint(cs.Words) != "[广告 ad]" {
			t.Fatalf("chat settings %+v", cs)
		}

		c1, _ := s.AddComment(ctx, r.ID, ids[2], "one")
		s.AddComment(ctx, r.ID, ids[2], "two")
		del := act("delete_comment", time.Time{})
		del.Detail = fmt.Sprint(c1.ID)
		if err := s.DeleteComment(ctx, del); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteComment(ctx, del); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleting again: %v", err)
		}
		if _, err := s.CommentByID(ctx, c1.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("CommentByID of a deleted comment: %v", err)
		}
		list, total, err := s.Comments(ctx, r.ID, 0, 10)
		if err != nil || total != 1 || len(list) != 1 || list[0].Content != "two" {
			t.Fatalf("comments %+v %d %v", list, total, err)
		}

		log, total, err := s.ModLog(ctx, r.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range log {
			got = append(got, a.Action)
		}
		// The ended mute's lifting is not logged.
		want := "[delete_comment followers_only words slow unban ban mute mod_add]"
		if total != 8 || fmt.Sprint(got) != want {
			t.Fatalf("log %v (%d), want %s", got, total, want)
		}
		if a := log[len(log)-1]; a.ActorNickname != "Nick owner" || a.TargetNickname != "Nick mod" {
			t.Fatalf("first entry %+v", a)
		}
		if a := log[len(log)-2]; a.Until.IsZero() {
			t.Fatalf("the mute's entry has no end: %+v", a)
		}
	})
}

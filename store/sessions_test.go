package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mofang-live/mofang/store"
)

// TestSessionsAndRanking walks a room through two lives: each live's
// figures (likes, gifts, coins, comments, chatters, viewers, samples) are
// what happened in it, a publisher back within the grace resumes the
// same session, and both leaderboards hold what each user gave, in order,
// with a change reported only when a top three changes.
func TestSessionsAndRanking(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, _ := s.CreateUser(ctx, store.NewUser{Name: "host", PasswordHash: "h", Nickname: "Host"})
		room, err := s.CreateRoom(ctx, store.NewRoom{Name: "r1", UserID: owner.ID})
		if err != nil {
			t.Fatal(err)
		}
		var fans []store.User
		for i := range 5 {
			u, err := s.CreateUser(ctx, store.NewUser{Name: fmt.Sprintf("fan%d", i), PasswordHash: "h", Nickname: fmt.Sprintf("Fan %d", i)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddCoins(ctx, u.ID, 10000); err != nil {
				t.Fatal(err)
			}
			fans = append(fans, u)
		}
		gift := func(u store.User, giftID, count int64) *store.RankChange {
			t.Helper()
			rec, err := s.SendGift(ctx, store.GiftOrder{RoomID: room.ID, FromID: u.ID, GiftID: giftID, Count: count})
			if err != nil {
				t.Fatal(err)
			}
			return rec.Rank
		}
		// Before any live: all-time only.
		if ch := gift(fans[0], 1, 3); ch == nil || ch.SessionID != 0 || len(ch.All) != 1 || ch.All[0].Coins != 3 || ch.All[0].Nickname != "Fan 0" {
			t.Fatalf("first gift: %+v", ch)
		}
		s.AddComment(ctx, room.ID, fans[0].ID, "before the live")
		time.Sleep(2 * time.Millisecond) // MySQL keeps milliseconds: the comment is before the start

		if err := s.SetRoomStatus(ctx, room.ID, store.RoomLive); err != nil {
			t.Fatal(err)
		}
		sid, resumed, err := s.StartSession(ctx, room.ID)
		if err != nil || resumed {
			t.Fatalf("start: %d %v %v", sid, resumed, err)
		}
		if again, resumed, err := s.StartSession(ctx, room.ID); err != nil || !resumed || again != sid {
			t.Fatalf("a second start resumes: %d %v %v (want %d)", again, resumed, err, sid)
		}
		// fan1 100, fan2 10, fan3 5, fan0 1 (this live).
		gift(fans[1], 3, 1)
		gift(fans[2], 2, 2)
		gift(fans[3], 2, 1)
		if ch := gift(fans[0], 1, 1); ch != nil {
			t.Fatalf("a gift by the 4th of the live (and 4th all-time) changed no top three, got %+v", ch)
		}
		ch := gift(fans[3], 2, 2) // fan3 15: passes fan2
		if ch == nil || ch.SessionID != sid || len(ch.Live) != 3 || ch.Live[1].UserID != fans[3].ID || ch.Live[1].Coins != 15 || ch.Live[1].Rank != 2 {
			t.Fatalf("fan3 passing fan2: %+v", ch)
		}
		s.AddComment(ctx, room.ID, fans[1].ID, "hi")
		s.AddComment(ctx, room.ID, fans[1].ID, "again")
		s.AddComment(ctx, room.ID, fans[2].ID, "hello")
		s.AddLikes(ctx, room.ID, 1)
		s.AddLikes(ctx, room.ID, 1)
		if err := s.AddViewers(ctx, room.ID, 0, 3); err != nil {
			t.Fatal(err)
		}
		if err := s.AddSample(ctx, sid, 2, 3); err != nil {
			t.Fatal(err)
		}
		// samples are keyed by their millisecond (DATETIME(3) on MySQL);
		// the service takes one every few seconds.
		time.Sleep(2 * time.Millisecond)
		if err := s.AddSample(ctx, sid, 1, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.EndSession(ctx, room.ID, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
		s.AddComment(ctx, room.ID, fans[4].ID, "after the live")
		gift(fans[4], 1, 7) // after: all-time only

		ls, err := s.Session(ctx, sid)
		if err != nil {
			t.Fatal(err)
		}
		if !ls.End.Valid || ls.RoomID != room.ID || ls.Likes != 2 || ls.Gifts != 7 || ls.Coins != 100+10+5+1+10 ||
			ls.Comments != 3 || ls.Chatters != 2 || ls.Total != 4 || ls.Peak != 3 {
			t.Fatalf("session = %+v", ls)
		}
		samples, err := s.Samples(ctx, sid)
		if err != nil || len(samples) != 2 || samples[0].Viewers != 2 || samples[1].Viewers != 1 {
			t.Fatalf("samples = %+v, %v", samples, err)
		}
		live, err := s.Ranking(ctx, room.ID, sid, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct{ id, coins int64 }{{fans[1].ID, 100}, {fans[3].ID, 15}, {fans[2].ID, 10}, {fans[0].ID, 1}}
		if len(live) != len(want) {
			t.Fatalf("live ranking = %+v", live)
		}
		for i, w := range want {
			if live[i].UserID != w.id || live[i].Coins != w.coins || live[i].Rank != i+1 {
				t.Fatalf("live ranking[%d] = %+v, want %+v", i, live[i], w)
			}
		}
		all, _ := s.Ranking(ctx, room.ID, store.AllTime, 10)
		if len(all) != 5 || all[0].Coins != 100 || all[3].UserID != fans[4].ID || all[3].Coins != 7 || all[4].UserID != fans[0].ID || all[4].Coins != 4 {
			t.Fatalf("all-time ranking = %+v", all)
		}
		// A second live starts fresh; a live left open by a crash ends
		// when the rooms are reset.
		sid2, resumed, err := s.StartSession(ctx, room.ID)
		if err != nil || resumed || sid2 == sid {
			t.Fatalf("second live: %d %v %v", sid2, resumed, err)
		}
		if _, err := s.EndLiveRooms(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.OpenSession(ctx, room.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a session of a room reset: err = %v", err)
		}
		list, total, err := s.Sessions(ctx, room.ID, 0, 10)
		if err != nil || total != 2 || len(list) != 2 || list[0].ID != sid2 || !list[0].End.Valid || list[1].ID != sid {
			t.Fatalf("sessions = %+v %d %v", list, total, err)
		}
	})
}

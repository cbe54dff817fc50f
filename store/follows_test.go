package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mofang-live/mofang/store"
)

// users makes n users and returns their ids.
func users(t *testing.T, s *store.Store, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range ids {
		u, err := s.CreateUser(context.Background(), store.NewUser{Name: fmt.Sprintf("user%d", i), PasswordHash: "h", Nickname: fmt.Sprintf("U%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = u.ID
	}
	return ids
}

func TestFollows(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := users(t, s, 4)
		host := u[0]
		for _, f := range u[1:] {
			if added, err := s.Follow(ctx, f, host); err != nil || !added {
				t.Fatalf("follow %d: %v %v", f, added, err)
			}
		}
		if added, err := s.Follow(ctx, u[1], host); err != nil || added {
			t.Fatalf("second follow: added %v, err %v; want false, nil", added, err)
		}
		if _, err := s.Follow(ctx, u[1], 99999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("follow of nobody: %v, want ErrNotFound", err)
		}
		if _, err := s.Follow(ctx, u[1], u[2]); err != nil {
			t.Fatal(err)
		}
		followers, following, err := s.FollowCounts(ctx, host)
		if err != nil || followers != 3 || following != 0 {
			t.Fatalf("host counts %d %d %v, want 3 0", followers, following, err)
		}
		if _, following, _ := s.FollowCounts(ctx, u[1]); following != 2 {
			t.Fatalf("u1 follows %d, want 2", following)
		}
		if ok, err := s.IsFollower(ctx, u[1], host); err != nil || !ok {
			t.Fatalf("IsFollower(u1, host) = %v %v", ok, err)
		}
		if ok, _ := s.IsFollower(ctx, host, u[1]); ok {
			t.Fatal("IsFollower(host, u1) = true")
		}
		page, total, err := s.Followers(ctx, host, 0, 2)
		if err != nil || total != 3 || len(page) != 2 {
			t.Fatalf("followers page: %v total %d %v", page, total, err)
		}
		among, err := s.FollowersAmong(ctx, host, []int64{u[1], u[3], 12345})
		if err != nil || len(among) != 2 {
			t.Fatalf("FollowersAmong = %v %v", among, err)
		}
		if removed, err := s.Unfollow(ctx, u[3], host); err != nil || !removed {
			t.Fatalf("unfollow: %v %v", removed, err)
		}
		if removed, _ := s.Unfollow(ctx, u[3], host); removed {
			t.Fatal("second unfollow removed something")
		}
		if err := s.DeleteUser(ctx, u[2]); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := s.FollowCounts(ctx, host); n != 1 {
			t.Fatalf("followers after an unfollow and a deletion: %d, want 1", n)
		}
		list, total, _ := s.Following(ctx, u[1], 0, 10)
		if total != 1 || len(list) != 1 || list[0].ID != host {
			t.Fatalf("u1 follows %v (total %d), want the host alone (u2 deleted)", list, total)
		}

		// Rooms of followed hosts only.
		r0, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_a", RoomName: "A", UserID: host})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_b", RoomName: "B", UserID: u[3]}); err != nil {
			t.Fatal(err)
		}
		rooms, n, err := s.ListRooms(ctx, store.ListRoomsOptions{Limit: 10, FollowedBy: u[1]})
		if err != nil || n != 1 || len(rooms) != 1 || rooms[0].ID != r0.ID {
			t.Fatalf("followed rooms of u1: %v total %d %v", rooms, n, err)
		}
		if _, total, _ := s.ListRooms(ctx, store.ListRoomsOptions{Limit: 10}); total != 2 {
			t.Fatalf("every room: %d, want 2", total)
		}
	})
}

func TestBeginLiveOncePerLive(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := users(t, s, 1)
		r, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_a", RoomName: "A", UserID: u[0]})
		if err != nil {
			t.Fatal(err)
		}
		begin := func(want bool, what string) {
			t.Helper()
			got, err := s.BeginLive(ctx, r.ID)
			if err != nil || got != want {
				t.Fatalf("%s: BeginLive = %v %v, want %v", what, got, err, want)
			}
			if err := s.SetRoomStatus(ctx, r.ID, store.RoomLive); err != nil {
				t.Fatal(err)
			}
		}
		begin(true, "first publish")
		begin(false, "the publisher back on another node within grace")
		if err := s.EndLive(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		s.SetRoomStatus(ctx, r.ID, store.RoomIdle)
		begin(true, "after the live ended")
		// A node died: its room set back to not started, the notice open.
		if _, err := s.EndLiveRooms(ctx); err != nil {
			t.Fatal(err)
		}
		begin(true, "after a crash")
	})
}

func TestSchedules(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := users(t, s, 1)
		r, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_a", RoomName: "A", UserID: u[0]})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2030, 5, 1, 20, 0, 0, 0, time.UTC)
		add := func(at time.Time, title string) store.Schedule {
			c, err := s.AddSchedule(ctx, store.NewSchedule{RoomID: r.ID, UserID: u[0], At: at, Title: title})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		a := add(t0, "a")
		b := add(t0.Add(24*time.Hour), "b")
		c := add(t0.Add(48*time.Hour), "c")
		if !a.At.Equal(t0) || a.Title != "a" || a.Status != store.ScheduleUpcoming {
			t.Fatalf("stored %+v", a)
		}
		if err := s.CancelSchedule(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.CancelSchedule(ctx, c.ID); !errors.Is(err, store.ErrScheduleDone) {
			t.Fatalf("second cancel: %v", err)
		}
		if err := s.CancelSchedule(ctx, 9999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("cancel of nothing: %v", err)
		}
		list, err := s.Upcoming(ctx, store.UpcomingOptions{From: t0.Add(-time.Hour), Limit: 10})
		if err != nil || len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID || list[0].RoomName != "A" || list[0].Owner.Nickname != "U0" {
			t.Fatalf("upcoming: %+v %v", list, err)
		}
		// Live 20 min early: a starts; b is a day away.
		got, ok, err := s.StartSchedule(ctx, r.ID, t0.Add(-20*time.Minute), 30*time.Minute, 2*time.Hour)
		if err != nil || !ok || got.ID != a.ID {
			t.Fatalf("StartSchedule = %+v %v %v, want a", got, ok, err)
		}
		if _, ok, _ := s.StartSchedule(ctx, r.ID, t0, 30*time.Minute, 2*time.Hour); ok {
			t.Fatal("a started twice")
		}
		// b passes unused: missed 2 h after its time, not before.
		if n, err := s.MissSchedules(ctx, b.At.Add(-time.Second)); err != nil || n != 0 {
			t.Fatalf("missed before its time: %d %v", n, err)
		}
		if n, err := s.MissSchedules(ctx, b.At.Add(time.Second)); err != nil || n != 1 {
			t.Fatalf("MissSchedules = %d %v, want 1", n, err)
		}
		if n, _ := s.MissSchedules(ctx, b.At.Add(time.Second)); n != 0 {
			t.Fatalf("second sweep marked %d", n)
		}
		for id, want := range map[int64]store.ScheduleStatus{a.ID: store.ScheduleStarted, b.ID: store.ScheduleMissed, c.ID: store.ScheduleCancelled} {
			if x, _ := s.ScheduleByID(ctx, id); x.Status != want {
				t.Errorf("schedule %d: status %d, want %d", id, x.Status, want)
			}
		}
	})
}

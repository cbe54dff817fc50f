package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/mofang-live/mofang/store"
)

// TestRecordComments: a recording's comments are its room's made between
// its start and end, with their offsets, oldest first, paged by limit;
// comments before, after, in another room or deleted are not.
func TestRecordComments(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "h", Nickname: "Alice"})
		room, _ := s.CreateRoom(ctx, store.NewRoom{Name: "r", UserID: u.ID})
		other, _ := s.CreateRoom(ctx, store.NewRoom{Name: "o", UserID: u.ID})
		start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		id, err := s.AddRecord(ctx, store.NewRecord{RoomID: room.ID, Stream: "r", Path: "r/1", Start: start})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.EndRecord(ctx, id, store.RecordEnd{Status: store.RecordComplete, End: start.Add(60 * time.Second), DurationMS: 60000}); err != nil {
			t.Fatal(err)
		}
		add := func(roomID int64, at time.Duration, content string) {
			t.Helper()
			if _, err := s.DB().ExecContext(ctx, `INSERT INTO mf_comment (room_id, user_id, content, created_time) VALUES (?, ?, ?, ?)`,
				roomID, u.ID, content, start.Add(at).UTC()); err != nil {
				t.Fatal(err)
			}
		}
		add(room.ID, -time.Second, "before")
		add(room.ID, 2500*time.Millisecond, "a")
		add(other.ID, 3*time.Second, "elsewhere")
		add(room.ID, 10*time.Second+125*time.Millisecond, "b")
		add(room.ID, 59*time.Second, "c")
		add(room.ID, 30*time.Second, "deleted")
		if _, err := s.DB().ExecContext(ctx, `UPDATE mf_comment SET is_deleted = 1 WHERE content = 'deleted'`); err != nil {
			t.Fatal(err)
		}
		add(room.ID, 61*time.Second, "after")
		r, err := s.RecordByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got, more, err := s.RecordComments(ctx, r, 0, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			content string
			offset  int64
		}{{"a", 2500}, {"b", 10125}, {"c", 59000}}
		if more || len(got) != len(want) {
			t.Fatalf("got %d comments (more %v): %+v", len(got), more, got)
		}
		for i, w := range want {
			if got[i].Content != w.content || got[i].OffsetMS != w.offset || got[i].Nickname != "Alice" {
				t.Errorf("comment %d: %q at %d ms by %q, want %q at %d ms", i, got[i].Content, got[i].OffsetMS, got[i].Nickname, w.content, w.offset)
			}
		}
		// A window, and a page of one.
		got, more, err = s.RecordComments(ctx, r, 2500, 10125, 100)
		if err != nil || more || len(got) != 1 || got[0].Content != "a" {
			t.Fatalf("window [2500, 10125): %+v, more %v, %v", got, more, err)
		}
		got, more, err = s.RecordComments(ctx, r, 3000, 0, 1)
		if err != nil || !more || len(got) != 1 || got[0].Content != "b" {
			t.Fatalf("from 3000, one: %+v, more %v, %v", got, more, err)
		}
	})
}

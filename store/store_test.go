package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/schema"
	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/store/storetest"
)

// forEachDialect runs f on a fresh store of every dialect.
func forEachDialect(t *testing.T, f func(t *testing.T, s *store.Store)) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) { f(t, storetest.Open(t, d)) })
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		applied, err := s.Migrate(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 0 {
			t.Fatalf("second migrate applied %v, want nothing", applied)
		}
	})
}

func TestConcurrentMigrate(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			dsn := storetest.DSN(t, d)
			ctx := context.Background()
			var wg sync.WaitGroup
			total := make([]int, 4)
			errs := make([]error, 4)
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := store.Open(ctx, dsn)
					if err != nil {
						errs[i] = err
						return
					}
					defer s.Close()
					applied, err := s.Migrate(ctx)
					total[i], errs[i] = len(applied), err
				}()
			}
			wg.Wait()
			sum := 0
			for i := range 4 {
				if errs[i] != nil {
					t.Fatalf("migrate %d: %v", i, errs[i])
				}
				sum += total[i]
			}
			ms, err := schema.Migrations(schema.Dialect(d))
			if err != nil {
				t.Fatal(err)
			}
			if sum != len(ms) {
				t.Fatalf("4 concurrent migrations applied %d versions in all, want %d", sum, len(ms))
			}
		})
	}
}

func TestUsers(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "h", Nickname: "Alice"})
		if err != nil {
			t.Fatal(err)
		}
		if u.ID == 0 || u.Name != "alice" || u.Nickname != "Alice" || u.Created.IsZero() {
			t.Fatalf("created user = %+v", u)
		}
		if _, err := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "x"}); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("duplicate name: err = %v, want ErrDuplicate", err)
		}
		got, err := s.UserByName(ctx, "alice")
		if err != nil || got.ID != u.ID {
			t.Fatalf("UserByName = %+v, %v", got, err)
		}
		if _, err := s.UserByName(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown user: err = %v", err)
		}
		if err := s.SetUserIP(ctx, u.ID, "10.1.2.3"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.UserByID(ctx, u.ID); got.IPAddress != "10.1.2.3" {
			t.Fatalf("ip = %q", got.IPAddress)
		}
	})
}

func TestRefreshTokenWorksOnce(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddRefreshToken(ctx, u.ID, "hash1", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.AddRefreshToken(ctx, u.ID, "old", time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wins := make(chan int64, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if id, err := s.TakeRefreshToken(ctx, "hash1"); err == nil {
					wins <- id
				}
			}()
		}
		wg.Wait()
		close(wins)
		n := 0
		for id := range wins {
			n++
			if id != u.ID {
				t.Fatalf("token of user %d, want %d", id, u.ID)
			}
		}
		if n != 1 {
			t.Fatalf("%d callers took one token, want 1", n)
		}
		if _, err := s.TakeRefreshToken(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired token: err = %v", err)
		}
	})
}

func TestRooms(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, err := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "h", Nickname: "Alice", Avatar: "/a.png"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.OpenRoomOfUser(ctx, owner.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no room yet: err = %v", err)
		}
		r, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_1", RoomName: "Hi", PasswordHash: "ph", UserID: owner.ID})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != store.RoomIdle || !r.HasPassword() || r.RoomName != "Hi" {
			t.Fatalf("room = %+v", r)
		}
		if _, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_1", UserID: owner.ID}); !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("duplicate stream: err = %v", err)
		}
		empty := ""
		if err := s.UpdateRoom(ctx, r.ID, "Hello", &empty); err != nil {
			t.Fatal(err)
		}
		// The same values again change no row on MySQL: still no error.
		if err := s.UpdateRoom(ctx, r.ID, "Hello", nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.RoomByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.RoomName != "Hello" || got.HasPassword() || got.Owner.ID != owner.ID || got.Owner.Nickname != "Alice" || got.Owner.Avatar != "/a.png" {
			t.Fatalf("RoomByID = %+v", got)
		}
		if err := s.SetRoomStatus(ctx, r.ID, store.RoomLive); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRoomStatus(ctx, r.ID, store.RoomStopped); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRoomStatus(ctx, r.ID, store.RoomLive); !errors.Is(err, store.ErrRoomStopped) {
			t.Fatalf("changing a stopped room: err = %v", err)
		}
		if err := s.UpdateRoom(ctx, r.ID, "x", nil); !errors.Is(err, store.ErrRoomStopped) {
			t.Fatalf("renaming a stopped room: err = %v", err)
		}
		if _, err := s.OpenRoomOfUser(ctx, owner.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a stopped room is not open: err = %v", err)
		}
		if _, err := s.RoomByID(ctx, 99999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown room: err = %v", err)
		}
	})
}

func TestListRooms(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var names []string
		for i := range 25 {
			u, err := s.CreateUser(ctx, store.NewUser{Name: fmt.Sprintf("user%d", i), PasswordHash: "h", Nickname: fmt.Sprintf("U%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.CreateRoom(ctx, store.NewRoom{Name: fmt.Sprintf("room_%02d", i), RoomName: "r", UserID: u.ID})
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, r.Name)
			if i == 3 {
				if err := s.SetRoomStatus(ctx, r.ID, store.RoomStopped); err != nil {
					t.Fatal(err)
				}
			}
		}
		page, total, err := s.ListRooms(ctx, store.ListRoomsOptions{Offset: 20, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if total != 24 || len(page) != 4 {
			t.Fatalf("total %d, page of %d; want 24 and 4", total, len(page))
		}
		if page[0].Name != "room_04" || page[3].Name != "room_00" || page[0].Owner.Nickname != "U4" {
			t.Fatalf("last page: %s .. %s (owner %q)", page[0].Name, page[3].Name, page[0].Owner.Nickname)
		}
		only, total, err := s.ListRooms(ctx, store.ListRoomsOptions{Limit: 10, Names: []string{names[3], names[7], "nope"}})
		if err != nil {
			t.Fatal(err)
		}
		if total != 1 || len(only) != 1 || only[0].Name != names[7] {
			t.Fatalf("by names: total %d, %+v", total, only)
		}
		none, total, err := s.ListRooms(ctx, store.ListRoomsOptions{Limit: 10, Names: []string{}})
		if err != nil || total != 0 || len(none) != 0 {
			t.Fatalf("empty names: %v %d %v", none, total, err)
		}
	})
}

func TestExpiredRecords(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, _ := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "h"})
		room, _ := s.CreateRoom(ctx, store.NewRoom{Name: "r", UserID: u.ID})
		now := time.Now()
		var ids []int64
		for i, age := range []time.Duration{72 * time.Hour, 48 * time.Hour, 2 * time.Hour, time.Hour} {
			id, err := s.AddRecord(ctx, store.NewRecord{RoomID: room.ID, Stream: "r", Path: fmt.Sprint("r/", i), Start: now.Add(-age)})
			if err != nil {
				t.Fatal(err)
			}
			if i < 3 {
				s.EndRecord(ctx, id, store.RecordEnd{Status: store.RecordComplete, End: now, Size: 100})
			}
			ids = append(ids, id)
		}
		old, err := s.ExpiredRecords(ctx, now.Add(-24*time.Hour), 0)
		if err != nil || len(old) != 2 || old[0].ID != ids[0] {
			t.Fatalf("older than a day: %+v, %v", old, err)
		}
		big, err := s.ExpiredRecords(ctx, time.Time{}, 150)
		if err != nil || len(big) != 2 {
			t.Fatalf("beyond 150 bytes: %d records, %v", len(big), err)
		}
		if n, err := s.FailUnfinishedRecords(ctx); err != nil || n != 1 {
			t.Fatalf("unfinished: %d, %v", n, err)
		}
		if r, _ := s.RecordByID(ctx, ids[3]); r.Status != store.RecordFailed {
			t.Fatalf("unfinished record status %q", r.Status)
		}
	})
}

func TestEndLiveRoomsExcept(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ids := map[string]int64{}
		for _, name := range []string{"room_a", "room_b", "room_c"} {
			u, err := s.CreateUser(ctx, store.NewUser{Name: "o" + name, PasswordHash: "h", Nickname: name})
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.CreateRoom(ctx, store.NewRoom{Name: name, UserID: u.ID})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SetRoomStatus(ctx, r.ID, store.RoomLive); err != nil {
				t.Fatal(err)
			}
			ids[name] = r.ID
		}
		if n, err := s.EndLiveRoomsExcept(ctx, nil, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("rooms set live a moment ago ended: %d, %v", n, err)
		}
		n, err := s.EndLiveRoomsExcept(ctx, []string{"room_b"}, time.Now().Add(time.Second))
		if err != nil || n != 2 {
			t.Fatalf("ended %d rooms, err %v; want 2", n, err)
		}
		for name, id := range ids {
			r, err := s.RoomByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if want := name == "room_b"; (r.Status == store.RoomLive) != want {
				t.Errorf("%s: status %v", name, r.Status)
			}
		}
		if n, err := s.EndLiveRoomsExcept(ctx, nil, time.Now().Add(time.Second)); err != nil || n != 1 {
			t.Fatalf("ending the rest: %d, %v", n, err)
		}
	})
}

// TestRecordViewerRace: many users entering one room at once, as at the
// start of a popular live on several nodes, are each counted once and
// none is refused (on MySQL the viewer row's foreign key used to share-
// lock the room row that the count then had to update: deadlocks).
func TestRecordViewerRace(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, err := s.CreateUser(ctx, store.NewUser{Name: "host", PasswordHash: "h", Nickname: "Host"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_race", UserID: owner.ID})
		if err != nil {
			t.Fatal(err)
		}
		const n = 60
		ids := make([]int64, n)
		for i := range ids {
			u, err := s.CreateUser(ctx, store.NewUser{Name: fmt.Sprintf("viewer%d", i), PasswordHash: "h", Nickname: "V"})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = u.ID
		}
		errs := make(chan error, 2*n)
		var wg sync.WaitGroup
		for _, id := range append(ids, ids...) { // each enters twice
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.RecordViewer(ctx, r.ID, id)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("RecordViewer: %v", err)
			}
		}
		got, err := s.RoomByID(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LookCount != n {
			t.Fatalf("look_count = %d, want %d", got.LookCount, n)
		}
	})
}

package store_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/mofang-live/mofang/store"
)

// TestForwards: destinations are added up to the cap (concurrent adds
// cannot pass it), listed per room oldest first with their sealed key
// bytes as given, removed only from their own room.
func TestForwards(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, err := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_f", RoomName: "Hi", UserID: owner.ID})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_g", RoomName: "Other", UserID: owner.ID})
		if err != nil {
			t.Fatal(err)
		}
		sealed := []byte{0, 1, 2, 0xff, 'k'}
		f, err := s.AddForward(ctx, store.NewForward{RoomID: r.ID, URL: "rtmp://a.example/live", KeySealed: sealed, KeyHint: "abcd"}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if f.ID == 0 || !f.Enabled || f.URL != "rtmp://a.example/live" {
			t.Fatalf("added %+v", f)
		}
		if _, err := s.AddForward(ctx, store.NewForward{RoomID: 9999, URL: "rtmp://x/y", KeySealed: sealed}, 3); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("add to no room: %v", err)
		}
		// two more fit, racing adds beyond the cap are refused
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.AddForward(ctx, store.NewForward{RoomID: r.ID, URL: "rtmps://b.example/app", KeySealed: sealed, KeyHint: "wxyz"}, 3)
			}()
		}
		wg.Wait()
		okN, tooMany := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				okN++
			case errors.Is(err, store.ErrTooManyForwards):
				tooMany++
			default:
				t.Fatalf("racing add: %v", err)
			}
		}
		if okN != 2 || tooMany != 4 {
			t.Fatalf("racing adds: %d added, %d refused; want 2 and 4", okN, tooMany)
		}
		fs, err := s.Forwards(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 3 || fs[0].ID != f.ID || !bytes.Equal(fs[0].KeySealed, sealed) || fs[0].KeyHint != "abcd" || fs[1].ID <= fs[0].ID {
			t.Fatalf("forwards: %+v", fs)
		}
		if err := s.RemoveForward(ctx, r2.ID, f.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("remove from another room: %v", err)
		}
		if err := s.RemoveForward(ctx, r.ID, f.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveForward(ctx, r.ID, f.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second remove: %v", err)
		}
		if fs, _ := s.Forwards(ctx, r.ID); len(fs) != 2 {
			t.Fatalf("after remove: %d forwards", len(fs))
		}
		if fs, _ := s.Forwards(ctx, r2.ID); len(fs) != 0 {
			t.Fatalf("other room: %d forwards", len(fs))
		}
	})
}

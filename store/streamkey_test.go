package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mofang-live/mofang/store"
)

// TestStreamKeyGeneration: a new room's key generation is 0; every reset
// starts the next one and returns it; password changes and bans leave it;
// a stopped room cannot reset.
func TestStreamKeyGeneration(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, err := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_k", RoomName: "Hi", UserID: owner.ID})
		if err != nil {
			t.Fatal(err)
		}
		if r.KeyGen != 0 {
			t.Fatalf("a new room's key generation is %d", r.KeyGen)
		}
		for want := int64(1); want <= 3; want++ {
			got, err := s.ResetStreamKey(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.KeyGen != want || got.Name != "room_k" {
				t.Fatalf("reset %d: %+v", want, got)
			}
		}
		pw := "hash"
		if err := s.UpdateRoom(ctx, r.ID, "Hello", &pw); err != nil {
			t.Fatal(err)
		}
		if err := s.SetRoomBanned(ctx, r.ID, true); err != nil {
			t.Fatal(err)
		}
		for _, get := range []func() (int64, error){
			func() (int64, error) { r, err := s.RoomByName(ctx, "room_k"); return r.KeyGen, err },
			func() (int64, error) { r, err := s.RoomByID(ctx, r.ID); return r.KeyGen, err },
			func() (int64, error) { r, err := s.OpenRoomOfUser(ctx, owner.ID); return r.KeyGen, err },
		} {
			if g, err := get(); err != nil || g != 3 {
				t.Fatalf("key generation after a password change and a ban: %d, %v; want 3", g, err)
			}
		}
		if err := s.SetRoomStatus(ctx, r.ID, store.RoomStopped); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResetStreamKey(ctx, r.ID); !errors.Is(err, store.ErrRoomStopped) {
			t.Fatalf("reset of a stopped room: %v, want ErrRoomStopped", err)
		}
		if _, err := s.ResetStreamKey(ctx, 9999); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("reset of no room: %v, want ErrNotFound", err)
		}
	})
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/schema"
	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/store/storetest"
)

// TestUserNamesCaseInsensitive: a name differing from a taken one only in
// the case of its letters is taken too, and logs in as the same account.
func TestUserNamesCaseInsensitive(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice, err := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"Alice", "ALICE", "aLiCe"} {
			if _, err := s.CreateUser(ctx, store.NewUser{Name: name, PasswordHash: "h"}); !errors.Is(err, store.ErrDuplicate) {
				t.Errorf("CreateUser(%q) with alice taken: err = %v, want ErrDuplicate", name, err)
			}
			got, err := s.UserByName(ctx, name)
			if err != nil || got.ID != alice.ID || got.Name != "alice" {
				t.Errorf("UserByName(%q) = %+v, %v; want alice as stored", name, got, err)
			}
		}
		// Only ASCII letters fold, the same on every database: names made
		// on SQLite stay distinct on MariaDB.
		if _, err := s.CreateUser(ctx, store.NewUser{Name: "Émile", PasswordHash: "h"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateUser(ctx, store.NewUser{Name: "émile", PasswordHash: "h"}); err != nil {
			t.Errorf("émile beside Émile: %v (only ASCII letters fold)", err)
		}
		if _, err := s.CreateUser(ctx, store.NewUser{Name: "éMILE", PasswordHash: "h"}); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("éMILE beside émile: err = %v, want ErrDuplicate", err)
		}
	})
}

// TestMigrationRenamesClashingNames: a database made before names were
// case-insensitive may hold "bob", "Bob" and "BOB"; the migration keeps
// the oldest name and renames the later ones "<name>_<id>".
func TestMigrationRenamesClashingNames(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			s, err := store.Open(ctx, storetest.DSN(t, d))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			migrateTo(t, s, 4)
			now := time.Now().UTC()
			for _, name := range []string{"bob", "carol", "Bob", "BOB", "Carol", "dave"} {
				if _, err := s.DB().ExecContext(ctx, `INSERT INTO mf_user (name, password, created_time, updated_time) VALUES (?, 'h', ?, ?)`, name, now, now); err != nil {
					t.Fatal(err)
				}
			}
			applied, err := s.Migrate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) == 0 || applied[0] != 5 {
				t.Fatalf("applied %v, want 5 first", applied)
			}
			var names []string
			if err := s.DB().SelectContext(ctx, &names, `SELECT name FROM mf_user ORDER BY id`); err != nil {
				t.Fatal(err)
			}
			want := []string{"bob", "carol", "Bob_3", "BOB_4", "Carol_5", "dave"}
			if fmt.Sprint(names) != fmt.Sprint(want) {
				t.Fatalf("names after migrating: %v, want %v", names, want)
			}
			if u, err := s.UserByName(ctx, "bob_3"); err != nil || u.Name != "Bob_3" {
				t.Fatalf("renamed user by name: %+v, %v", u, err)
			}
			if _, err := s.CreateUser(ctx, store.NewUser{Name: "DAVE", PasswordHash: "h"}); !errors.Is(err, store.ErrDuplicate) {
				t.Fatalf("DAVE after migrating: err = %v, want ErrDuplicate", err)
			}
		})
	}
}

// migrateTo applies the migrations up to version last, recording them as
// schema.Migrate does, so that a test can fill an old schema.
func migrateTo(t *testing.T, s *store.Store, last int) {
	t.Helper()
	ctx := context.Background()
	ms, err := schema.Migrations(s.Dialect())
	if err != nil {
		t.Fatal(err)
	}
	db := s.DB()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER NOT NULL PRIMARY KEY,
	name VARCHAR(255) NOT NULL,
	applied_time VARCHAR(40) NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Version > last {
			break
		}
		for _, stmt := range splitSQL(m.SQL) {
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("migration %s: %v", m.Name, err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_time) VALUES (?, ?, 'test')`, m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
}

// splitSQL splits a migration into statements as schema does: at
// semicolons ending a line, comment lines dropped.
func splitSQL(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line + "\n")
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	return out
}

// TestDeleteUser: a deleted user is gone for lookups and refresh tokens,
// and its name stays taken.
func TestDeleteUser(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddRefreshToken(ctx, u.ID, "hash1", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByID(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByID of a deleted user: %v", err)
		}
		if _, err := s.UserByName(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByName of a deleted user: %v", err)
		}
		if _, err := s.TakeRefreshToken(ctx, "hash1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refresh token of a deleted user: %v", err)
		}
		if _, err := s.CreateUser(ctx, store.NewUser{Name: "Alice", PasswordHash: "h"}); !errors.Is(err, store.ErrDuplicate) {
			t.Errorf("the name of a deleted user: err = %v, want ErrDuplicate", err)
		}
		if err := s.DeleteUser(ctx, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleting twice: %v", err)
		}
	})
}

// TestPasswordGeneration: every change of a room's password, its removal
// and a ban start a new generation; renames and unchanged passwords keep it.
func TestPasswordGeneration(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		owner, err := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.CreateRoom(ctx, store.NewRoom{Name: "room_1", RoomName: "Hi", UserID: owner.ID})
		if err != nil {
			t.Fatal(err)
		}
		gen := func() int64 {
			t.Helper()
			got, err := s.RoomByName(ctx, "room_1")
			if err != nil {
				t.Fatal(err)
			}
			return got.PasswordGen
		}
		str := func(s string) *string { return &s }
		steps := []struct {
			what string
			do   func() error
			want int64
		}{
			{"new room", func() error { return nil }, 0},
			{"rename", func() error { return s.UpdateRoom(ctx, r.ID, "Hello", nil) }, 0},
			{"no password removed", func() error { return s.UpdateRoom(ctx, r.ID, "Hello", str("")) }, 0},
			{"password set", func() error { return s.UpdateRoom(ctx, r.ID, "Hello", str("h1")) }, 1},
			{"rename keeping it", func() error { return s.UpdateRoom(ctx, r.ID, "Hi", nil) }, 1},
			{"password changed", func() error { return s.UpdateRoom(ctx, r.ID, "Hi", str("h2")) }, 2},
			{"password removed", func() error { return s.UpdateRoom(ctx, r.ID, "Hi", str("")) }, 3},
			{"banned", func() error { return s.SetRoomBanned(ctx, r.ID, true) }, 4},
			{"unbanned", func() error { return s.SetRoomBanned(ctx, r.ID, false) }, 4},
		}
		for _, st := range steps {
			if err := st.do(); err != nil {
				t.Fatalf("%s: %v", st.what, err)
			}
			if g := gen(); g != st.want {
				t.Fatalf("after %s: generation %d, want %d", st.what, g, st.want)
			}
		}
		withOwner, err := s.RoomByID(ctx, r.ID)
		if err != nil || withOwner.PasswordGen != 4 {
			t.Fatalf("RoomByID: generation %d, %v", withOwner.PasswordGen, err)
		}
	})
}

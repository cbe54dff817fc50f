package store_test

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/store/storetest"
)

// TestHungMySQL opens the store through a proxy that then stops
// forwarding, as a MariaDB stopped with SIGSTOP behaves: a query with a
// deadline fails at the deadline, one without fails at the DSN's read
// timeout, and both errors say the database is unavailable. Before the
// DSN timeouts and store.IsUnavailable, the second query hung for good.
func TestHungMySQL(t *testing.T) {
	dsn := storetest.DSN(t, "mysql")
	proxy := storetest.NewProxy(t, storetest.MySQLAddr(t, dsn))
	ctx := context.Background()
	s, err := store.Open(ctx, proxy.MySQLDSN(t, dsn, "readTimeout=1s", "writeTimeout=1s"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.Freeze()
	defer proxy.Thaw()

	done := make(chan error, 1)
	go func() {
		qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := s.UserByName(qctx, "alice")
		done <- err
	}()
	expectUnavailable(t, "query with a deadline", done, 5*time.Second)

	go func() {
		_, err := s.UserByName(ctx, "alice")
		done <- err
	}()
	expectUnavailable(t, "query without a deadline", done, 10*time.Second)

	proxy.Thaw()
	if _, err := s.UserByName(ctx, "alice"); err == nil || store.IsUnavailable(err) {
		t.Fatalf("after the database is back: %v, want not found", err)
	}
}

// TestLockedSQLite holds SQLite's write lock from another connection: a
// write waits at most the busy timeout (or its deadline) and then fails
// as unavailable, instead of -32603 after 10 s.
func TestLockedSQLite(t *testing.T) {
	dsn := storetest.DSN(t, "sqlite")
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	lock := lockSQLite(t, s)
	defer lock.Rollback()

	done := make(chan error, 1)
	go func() {
		qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := s.CreateUser(qctx, store.NewUser{Name: "alice", PasswordHash: "x", Nickname: "alice"})
		done <- err
	}()
	expectUnavailable(t, "write with a deadline", done, 4*time.Second)

	start := time.Now()
	go func() {
		_, err := s.CreateUser(ctx, store.NewUser{Name: "bob", PasswordHash: "x", Nickname: "bob"})
		done <- err
	}()
	expectUnavailable(t, "write without a deadline", done, 9*time.Second)
	if d := time.Since(start); d < 4*time.Second {
		t.Fatalf("write gave up after %v, before the busy timeout", d)
	}
}

// lockSQLite takes SQLite's write lock on a connection of its own.
func lockSQLite(t *testing.T, s *store.Store) *sql.Tx {
	t.Helper()
	tx, err := s.DB().BeginTx(context.Background(), nil) // _txlock=immediate: BEGIN IMMEDIATE
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE mf_user SET coin = coin WHERE id = 0"); err != nil {
		t.Fatal(err)
	}
	return tx
}

func expectUnavailable(t *testing.T, what string, done chan error, within time.Duration) {
	t.Helper()
	select {
	case err := <-done:
		if !store.IsUnavailable(err) {
			t.Fatalf("%s: %v, want a database unavailable error", what, err)
		}
	case <-time.After(within):
		t.Fatalf("%s: still waiting after %v", what, within)
	}
}

// BenchmarkSQLiteConcurrentWrites has 64 goroutines write at once and
// reports the latency of a write: writers of one process take turns
// first come first served, so the slowest waits about as long as the
// median (SQLite's own busy wait let some wait 20 times the median).
func BenchmarkSQLiteConcurrentWrites(b *testing.B) {
	s := storetest.Open(b, "sqlite")
	ctx := context.Background()
	u, err := s.CreateUser(ctx, store.NewUser{Name: "alice", PasswordHash: "x", Nickname: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	next := make(chan struct{})
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	b.ResetTimer()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				start := time.Now()
				if _, err := s.AddCoins(ctx, u.ID, 1); err != nil {
					b.Error(err)
					return
				}
				d := time.Since(start)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	}
}

// Package storetest opens throw-away databases for tests: an SQLite file in
// the test's temporary folder, or a fresh database on the MySQL/MariaDB
// server named by MOFANG_TEST_MYSQL_DSN, dropped when the test ends.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/mofang-live/mofang/store"
)

// MySQLEnv names the environment variable with the DSN of a MySQL server
// that tests may create databases on, e.g. "root@tcp(127.0.0.1:3306)/test".
const MySQLEnv = "MOFANG_TEST_MYSQL_DSN"

// RequireMySQLEnv, when "1", makes a missing or unreachable MySQL server a
// test failure instead of a skip; CI sets it.
const RequireMySQLEnv = "MOFANG_REQUIRE_MYSQL"

// Dialects lists the databases a store test should run on.
var Dialects = []string{"sqlite", "mysql"}

// Open returns a migrated store on a new, empty database of the given
// dialect ("sqlite" or "mysql"), closed and removed when t ends. For mysql
// it skips t when no server is configured, unless CI requires one.
func Open(t testing.TB, dialect string) *store.Store {
	t.Helper()
	dsn := DSN(t, dialect)
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("opening %s test database: %v", dialect, err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrating %s test database: %v", dialect, err)
	}
	return s
}

// DSN returns the DSN of a new, empty database of the given dialect,
// removed when t ends.
func DSN(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case "sqlite":
		return "sqlite:" + filepath.Join(t.TempDir(), "mofang.db")
	case "mysql":
		return mysqlDatabase(t)
	}
	t.Fatalf("storetest: unknown dialect %q", dialect)
	return ""
}

func mysqlDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv(MySQLEnv)
	if base == "" {
		if os.Getenv(RequireMySQLEnv) == "1" {
			t.Fatalf("%s is not set but %s=1", MySQLEnv, RequireMySQLEnv)
		}
		t.Skipf("%s not set: skipping the MySQL run", MySQLEnv)
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("parsing %s: %v", MySQLEnv, err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("opening mysql: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if os.Getenv(RequireMySQLEnv) == "1" {
			t.Fatalf("MySQL at %s is required but unreachable: %v", cfg.Addr, err)
		}
		t.Skipf("MySQL at %s unreachable: %v", cfg.Addr, err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "mofang_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return "mysql://" + cfg.FormatDSN()
}

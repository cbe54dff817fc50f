// Package schema holds the database migrations of MoFang Live, one folder per
// SQL dialect, embedded in the binary, and applies them in order.
//
// A migration is a file named NNNN_description.sql. Applied versions are
// recorded in the table schema_migrations, so Migrate is idempotent: running
// it again applies only what is new.
package schema

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed sqlite/*.sql mysql/*.sql
var files embed.FS

// Dialect names a SQL dialect that has migrations.
type Dialect string

// The supported dialects.
const (
	SQLite Dialect = "sqlite"
	MySQL  Dialect = "mysql"
)

// String returns the dialect's name.
func (d Dialect) String() string { return string(d) }

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the migrations of a dialect, ordered by version.
func Migrations(d Dialect) ([]Migration, error) {
	entries, err := fs.ReadDir(files, string(d))
	if err != nil {
		return nil, fmt.Errorf("schema: no migrations for dialect %q: %w", d, err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("schema: migration %s/%s: name must start with a version number", d, name)
		}
		body, err := fs.ReadFile(files, path.Join(string(d), name))
		if err != nil {
			return nil, fmt.Errorf("schema: reading %s/%s: %w", d, name, err)
		}
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("schema: two migrations with version %d in %s", ms[i].Version, d)
		}
	}
	return ms, nil
}

// Migrate applies every migration of dialect d that db has not applied yet
// and returns the versions it applied. Concurrent callers are serialized: on
// MySQL by a named lock, on SQLite by an immediate transaction.
func Migrate(ctx context.Context, db *sql.DB, d Dialect) ([]int, error) {
	ms, err := Migrations(d)
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("schema: connecting: %w", err)
	}
	defer conn.Close()

	if d == MySQL {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('mofang_migrate', 60)").Scan(&got); err != nil {
			return nil, fmt.Errorf("schema: taking the migration lock: %w", err)
		}
		if got.Int64 != 1 {
			return nil, fmt.Errorf("schema: timed out waiting for the migration lock")
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK('mofang_migrate')")
	}

	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER NOT NULL PRIMARY KEY,
	name VARCHAR(255) NOT NULL,
	applied_time VARCHAR(40) NOT NULL)`
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return nil, fmt.Errorf("schema: creating schema_migrations: %w", err)
	}

	var applied []int
	for _, m := range ms {
		done, err := apply(ctx, conn, d, m)
		if err != nil {
			return applied, err
		}
		if done {
			applied = append(applied, m.Version)
		}
	}
	return applied, nil
}

// apply runs one migration unless it is recorded as applied already.
func apply(ctx context.Context, conn *sql.Conn, d Dialect, m Migration) (bool, error) {
	begin := "BEGIN"
	if d == SQLite {
		begin = "BEGIN IMMEDIATE"
	}
	// The statements run on conn itself (not database/sql's Tx) so that
	// SQLite takes its write lock before reading schema_migrations. MySQL
	// commits DDL implicitly; there the named lock serializes instead.
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return false, fmt.Errorf("schema: migration %s: begin: %w", m.Name, err)
	}
	rollback := func() { conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }

	var n int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.Version).Scan(&n); err != nil {
		rollback()
		return false, fmt.Errorf("schema: migration %s: reading schema_migrations: %w", m.Name, err)
	}
	if n > 0 {
		rollback()
		return false, nil
	}
	for i, stmt := range statements(m.SQL) {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			rollback()
			return false, fmt.Errorf("schema: migration %s, statement %d: %w", m.Name, i+1, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_time) VALUES (?, ?, ?)",
		m.Version, m.Name, time.Now().UTC().Format(time.RFC3339)); err != nil {
		rollback()
		return false, fmt.Errorf("schema: migration %s: recording it: %w", m.Name, err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		rollback()
		return false, fmt.Errorf("schema: migration %s: commit: %w", m.Name, err)
	}
	return true, nil
}

// statements splits a migration file into statements at semicolons that end
// a line, dropping comment lines. Migrations hold no procedures or string
// literals with such semicolons.
func statements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			out = append(out, stmt)
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Package store keeps MoFang Live's users and rooms in a SQL database: an
// embedded SQLite file by default, or MySQL/MariaDB.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/mofang-live/mofang/schema"
)

// Errors the store returns; callers test them with errors.Is.
var (
	// ErrNotFound means no row matched.
	ErrNotFound = errors.New("store: not found")
	// ErrDuplicate means a unique value (a user name, a stream name) is taken.
	ErrDuplicate = errors.New("store: duplicate")
	// ErrRoomStopped means the room has ended and can no longer change.
	ErrRoomStopped = errors.New("store: room stopped")
	// ErrUnavailable means the database did not answer in time or could
	// not be reached. IsUnavailable also recognizes the drivers' own
	// errors of that kind.
	ErrUnavailable = errors.New("store: database unavailable")
)

// IsUnavailable reports whether err means the database did not answer
// (in time) rather than that a query was wrong: a deadline that passed, a
// broken or refused connection, a network timeout, SQLite's lock wait
// running out. Callers answer it with "try again later", not as a bug.
// A context canceled by the caller is not unavailability.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true // a timeout, a refused or reset connection: the database is not reachable
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT:
			return true
		}
	}
	return false
}

// Store is a handle on the database. It is safe for concurrent use.
type Store struct {
	db      *pool
	dialect schema.Dialect
	now     func() time.Time
	lists   *listCache
}

// Open connects to the database named by dsn and checks that it answers.
//
// A dsn is one of:
//   - "sqlite:PATH" or "file:PATH" or a path ending in .db or .sqlite: an
//     SQLite file, created (with its folder) if missing;
//   - "mysql://user:pass@tcp(host:3306)/db" or a plain go-sql-driver DSN
//     ("user:pass@tcp(host:3306)/db").
//
// Open does not migrate; call Migrate.
func Open(ctx context.Context, dsn string) (*Store, error) {
	dialect, driverDSN, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	var db *sqlx.DB
	switch dialect {
	case schema.SQLite:
		path := driverDSN
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("store: creating folder of %s: %w", path, err)
			}
		}
		// WAL lets readers run beside the writer; busy_timeout makes
		// writers queue instead of failing, for at most SQLiteBusyTimeout
		// (then the write fails as unavailable); immediate transactions
		// take the write lock at BEGIN so read-then-write transactions
		// never deadlock on a lock upgrade.
		q := fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate",
			SQLiteBusyTimeout.Milliseconds())
		db, err = sqlx.Open("sqlite", "file:"+path+q)
		if err != nil {
			return nil, fmt.Errorf("store: opening sqlite %s: %w", path, err)
		}
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	case schema.MySQL:
		cfg, err := mysqlConfig(driverDSN)
		if err != nil {
			return nil, err
		}
		db, err = sqlx.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return nil, fmt.Errorf("store: opening mysql: %w", err)
		}
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(32)
		db.SetConnMaxLifetime(30 * time.Minute)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := db.PingContext(pingCtx)
		if err == nil {
			break
		}
		// Switching a new SQLite file to WAL fails at once, without
		// waiting, while another process migrates it: wait and retry.
		if retryable(err) && pingCtx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		db.Close()
		return nil, fmt.Errorf("store: connecting to %s database: %w", dialect, err)
	}
	p := &pool{DB: db}
	if dialect == schema.SQLite {
		p.writer = make(chan struct{}, 1)
		p.stmts = map[string]*sqlx.Stmt{}
	}
	return &Store{db: p, dialect: dialect, now: time.Now, lists: newListCache(time.Second)}, nil
}

// pool is the connection pool. On SQLite it also queues writers: SQLite
// lets one connection write at a time, and its own wait (busy_timeout)
// polls with growing sleeps, so under load a writer that has waited long
// keeps losing to newcomers until its deadline passes. Writes of this
// process instead take turns, first come first served, on a Go channel
// that gives up at the caller's deadline; busy_timeout is left for other
// processes (a "mofang user" command beside the service).
type pool struct {
	*sqlx.DB
	writer chan struct{} // the turn to write; nil: no queue (MySQL)

	// stmts holds the queries of GetContext and SelectContext prepared,
	// by their text, at most maxPrepared of them: SQLite's parsing and
	// planning of a query cost more than running the store's small ones.
	// Nil on MySQL, whose server parses (and counts prepared statements
	// against a limit of its own).
	stmtsMu sync.Mutex
	stmts   map[string]*sqlx.Stmt
}

// maxPrepared bounds the statements a pool keeps prepared; queries beyond
// them (texts built at run time) are prepared each time, as before.
const maxPrepared = 256

// prepared returns query prepared, or nil when it is not kept (the pool
// keeps as many as it may, or preparing failed: running it unprepared
// then tells why).
func (p *pool) prepared(ctx context.Context, query string) *sqlx.Stmt {
	p.stmtsMu.Lock()
	st, ok := p.stmts[query]
	full := p.stmts == nil || len(p.stmts) >= maxPrepared
	p.stmtsMu.Unlock()
	if ok || full {
		return st
	}
	// Prepared without the lock (preparing may wait for a connection),
	// for every later call too: not ended by the caller's context.
	st, err := p.DB.PreparexContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil
	}
	p.stmtsMu.Lock()
	defer p.stmtsMu.Unlock()
	if kept, ok := p.stmts[query]; ok || p.stmts == nil || len(p.stmts) >= maxPrepared {
		st.Close() // prepared meanwhile, or closed, or full
		return kept
	}
	p.stmts[query] = st
	return st
}

// GetContext runs a query for one row into dest, prepared once.
func (p *pool) GetContext(ctx context.Context, dest any, query string, args ...any) error {
	if st := p.prepared(ctx, query); st != nil {
		return st.GetContext(ctx, dest, args...)
	}
	return p.DB.GetContext(ctx, dest, query, args...)
}

// SelectContext runs a query for rows into dest, prepared once.
func (p *pool) SelectContext(ctx context.Context, dest any, query string, args ...any) error {
	if st := p.prepared(ctx, query); st != nil {
		return st.SelectContext(ctx, dest, args...)
	}
	return p.DB.SelectContext(ctx, dest, query, args...)
}

// Close closes the prepared statements, then the database.
func (p *pool) Close() error {
	p.stmtsMu.Lock()
	for _, st := range p.stmts {
		st.Close()
	}
	p.stmts = nil
	p.stmtsMu.Unlock()
	return p.DB.Close()
}

// ExecContext runs a statement outside a transaction, in turn on SQLite.
func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	release, err := p.turn(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return p.DB.ExecContext(ctx, query, args...)
}

// turn waits for this process's turn to write, at most until ctx ends
// or, without a deadline, SQLiteBusyTimeout.
func (p *pool) turn(ctx context.Context) (release func(), err error) {
	if p.writer == nil {
		return func() {}, nil
	}
	select {
	case p.writer <- struct{}{}:
		return func() { <-p.writer }, nil
	default:
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, SQLiteBusyTimeout)
		defer cancel()
	}
	select {
	case p.writer <- struct{}{}:
		return func() { <-p.writer }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("store: waiting to write: %w (%w)", ErrUnavailable, ctx.Err())
	}
}

// Bounds on waiting for the database when the caller's context has no
// deadline (API calls have their own, shorter one). A MySQL DSN's own
// timeout, readTimeout and writeTimeout params win over these, "0"
// included (no limit, e.g. for a long migration).
const (
	MySQLDialTimeout  = 5 * time.Second  // connecting: "timeout"
	MySQLReadTimeout  = 30 * time.Second // one read of the connection: "readTimeout"
	MySQLWriteTimeout = 30 * time.Second // one write: "writeTimeout"
	// SQLiteBusyTimeout is the longest a write waits for SQLite's write
	// lock before failing as unavailable.
	SQLiteBusyTimeout = 5 * time.Second
)

// mysqlConfig reads a go-sql-driver DSN and sets what the store needs:
// UTC times, utf8mb4, and the I/O timeouts the DSN does not set, so that
// a database that stops answering fails queries instead of hanging them.
func mysqlConfig(driverDSN string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(driverDSN)
	if err != nil {
		return nil, fmt.Errorf("store: parsing mysql dsn: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["charset"] = "utf8mb4"
	cfg.Params["time_zone"] = "'+00:00'"
	_, query, _ := strings.Cut(driverDSN, "?")
	for _, t := range []struct {
		param string
		v     *time.Duration
		def   time.Duration
	}{
		{"timeout", &cfg.Timeout, MySQLDialTimeout},
		{"readTimeout", &cfg.ReadTimeout, MySQLReadTimeout},
		{"writeTimeout", &cfg.WriteTimeout, MySQLWriteTimeout},
	} {
		if !hasParam(query, t.param) {
			*t.v = t.def
		}
	}
	return cfg, nil
}

// hasParam reports whether a DSN's query string sets param.
func hasParam(query, param string) bool {
	for kv := range strings.SplitSeq(query, "&") {
		if k, _, _ := strings.Cut(kv, "="); k == param {
			return true
		}
	}
	return false
}

// parseDSN tells the dialect of dsn and the DSN its driver takes.
func parseDSN(dsn string) (schema.Dialect, string, error) {
	switch {
	case dsn == "":
		return "", "", errors.New("store: empty database dsn")
	case strings.HasPrefix(dsn, "sqlite://"):
		return schema.SQLite, strings.TrimPrefix(dsn, "sqlite://"), nil
	case strings.HasPrefix(dsn, "sqlite:"):
		return schema.SQLite, strings.TrimPrefix(dsn, "sqlite:"), nil
	case strings.HasPrefix(dsn, "file:"):
		return schema.SQLite, strings.TrimPrefix(dsn, "file:"), nil
	case strings.HasPrefix(dsn, "mysql://"):
		return schema.MySQL, strings.TrimPrefix(dsn, "mysql://"), nil
	case strings.Contains(dsn, "@tcp(") || strings.Contains(dsn, "@unix(") || strings.Contains(dsn, "@/"):
		return schema.MySQL, dsn, nil
	case strings.HasSuffix(dsn, ".db") || strings.HasSuffix(dsn, ".sqlite"):
		return schema.SQLite, dsn, nil
	}
	return "", "", fmt.Errorf("store: cannot tell the database kind of dsn (want sqlite:PATH or mysql://user:pass@tcp(host:port)/db)")
}

// SetListCacheTTL sets how long a page of ListRooms may be served from
// memory when no write went through this Store meanwhile (default 1 s;
// writes by other processes show within it). Zero turns the cache off.
func (s *Store) SetListCacheTTL(d time.Duration) { s.lists.setTTL(d) }

// Migrate brings the schema up to date and returns the versions it applied.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	return schema.Migrate(ctx, s.db.DB.DB, s.dialect)
}

// Dialect tells which kind of database the store talks to.
func (s *Store) Dialect() schema.Dialect { return s.dialect }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the underlying pool, for tests and maintenance commands.
func (s *Store) DB() *sqlx.DB { return s.db.DB }

// isDuplicate reports whether err is a unique-constraint violation.
func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1062
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// inTx runs fn in a transaction, committing if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	release, err := s.db.turn(ctx) // a transaction here writes
	if err != nil {
		return err
	}
	defer release()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

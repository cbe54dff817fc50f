package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// User is a row of mf_user.
type User struct {
	ID           int64     `db:"id"`
	Name         string    `db:"name"`
	PasswordHash string    `db:"password"`
	Nickname     string    `db:"nickname"`
	Avatar       string    `db:"avatar"`
	IPAddress    string    `db:"ip_address"`
	Coin         int64     `db:"coin"`
	IsAdmin      bool      `db:"is_admin"`
	IsDeleted    bool      `db:"is_deleted"`
	Created      time.Time `db:"created_time"`
	Updated      time.Time `db:"updated_time"`
}

const userColumns = `id, name, password, nickname, avatar, ip_address, coin, is_admin, is_deleted, created_time, updated_time`

// NewUser is what CreateUser needs. PasswordHash is already hashed.
type NewUser struct {
	Name         string
	PasswordHash string
	Nickname     string
	Avatar       string
	IPAddress    string
	IsAdmin      bool
}

// CreateUser inserts a user. A taken name gives ErrDuplicate, and so does
// a name that differs from a taken one only in the case of its ASCII
// letters (see FoldName).
func (s *Store) CreateUser(ctx context.Context, u NewUser) (User, error) {
	now := s.now().UTC()
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO mf_user (name, password, nickname, avatar, ip_address, is_admin, created_time, updated_time)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Name, u.PasswordHash, u.Nickname, u.Avatar, u.IPAddress, u.IsAdmin, now, now)
	if err != nil {
		if isDuplicate(err) {
			return User{}, fmt.Errorf("store: user %q: %w", u.Name, ErrDuplicate)
		}
		return User{}, fmt.Errorf("store: creating user: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return User{}, fmt.Errorf("store: creating user: %w", err)
	}
	return s.UserByID(ctx, id)
}

// UserByID returns a user that is not deleted.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM mf_user WHERE id = ? AND is_deleted = 0`, id)
	return u, notFound(err, "user")
}

// UserByName returns a user that is not deleted, by its name in any case
// of its ASCII letters (see FoldName).
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM mf_user WHERE name_key = ? AND is_deleted = 0`, FoldName(name))
	return u, notFound(err, "user")
}

// FoldName is the form of a user name that is unique: its ASCII letters
// in lower case, other characters as they are. The database computes the
// same (the name_key column), on SQLite and MySQL alike, so that "Alice"
// and "alice" are one account everywhere and a database moves between
// the two.
func FoldName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return name
}

// DeleteUser deletes a user: it can no longer log in, its refresh tokens
// are dropped, and the API refuses its access tokens from then on. Its
// name stays taken and its rows (rooms, comments, gifts) stay. An unknown
// or already deleted user gives ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, id int64) error {
	defer s.lists.invalidate()
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE mf_user SET is_deleted = 1, updated_time = ? WHERE id = ? AND is_deleted = 0`, s.now().UTC(), id)
		if err != nil {
			return fmt.Errorf("store: deleting user %d: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: deleting user %d: %w", id, err)
		} else if n != 1 {
			return fmt.Errorf("store: deleting user %d: %w", id, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM mf_refresh_token WHERE user_id = ?`, id); err != nil {
			return fmt.Errorf("store: dropping refresh tokens of user %d: %w", id, err)
		}
		return nil
	})
}

// SetUserIP records the address a user last logged in from.
func (s *Store) SetUserIP(ctx context.Context, id int64, ip string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE mf_user SET ip_address = ?, updated_time = ? WHERE id = ?`, ip, s.now().UTC(), id)
	s.lists.invalidate()
	if err != nil {
		return fmt.Errorf("store: setting user ip: %w", err)
	}
	return nil
}

// SetAdmin makes a user an admin or not.
func (s *Store) SetAdmin(ctx context.Context, id int64, admin bool) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE mf_user SET is_admin = ?, updated_time = ? WHERE id = ?`, admin, s.now().UTC(), id); err != nil {
		return fmt.Errorf("store: setting admin: %w", err)
	}
	return nil
}

// AddRefreshToken stores the hash of a refresh token of a user.
func (s *Store) AddRefreshToken(ctx context.Context, userID int64, hash string, expires time.Time) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO mf_refresh_token (user_id, token_hash, expires_time, created_time) VALUES (?, ?, ?, ?)`,
		userID, hash, expires.UTC(), s.now().UTC())
	if err != nil {
		return fmt.Errorf("store: adding refresh token: %w", err)
	}
	return nil
}

// TakeRefreshToken consumes a refresh token by its hash and returns its
// user. A token works once: of concurrent callers only one gets it. An
// unknown or expired token gives ErrNotFound.
func (s *Store) TakeRefreshToken(ctx context.Context, hash string) (int64, error) {
	var row struct {
		ID      int64     `db:"id"`
		UserID  int64     `db:"user_id"`
		Expires time.Time `db:"expires_time"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT id, user_id, expires_time FROM mf_refresh_token WHERE token_hash = ?`, hash)
	if err != nil {
		return 0, notFound(err, "refresh token")
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM mf_refresh_token WHERE id = ?`, row.ID)
	if err != nil {
		return 0, fmt.Errorf("store: consuming refresh token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return 0, fmt.Errorf("store: refresh token: %w", ErrNotFound)
	}
	if !s.now().Before(row.Expires) {
		return 0, fmt.Errorf("store: refresh token expired: %w", ErrNotFound)
	}
	return row.UserID, nil
}

// notFound turns sql.ErrNoRows into ErrNotFound and wraps other errors.
func notFound(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	default:
		return fmt.Errorf("store: reading %s: %w", what, err)
	}
}

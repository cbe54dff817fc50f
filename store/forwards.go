package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// ErrTooManyForwards means a room has as many restreaming destinations
// as it may have.
var ErrTooManyForwards = errors.New("store: too many forward destinations")

// Forward is a row of mf_forward: one RTMP(S) destination a room's lives
// are pushed to. KeySealed is the stream key sealed by the caller (the
// store never sees it in clear); KeyHint is its last characters, for a
// masked display.
type Forward struct {
	ID        int64     `db:"id"`
	RoomID    int64     `db:"room_id"`
	URL       string    `db:"url"`
	KeySealed []byte    `db:"key_sealed"`
	KeyHint   string    `db:"key_hint"`
	Enabled   bool      `db:"enabled"`
	Created   time.Time `db:"created_time"`
}

const forwardColumns = `id, room_id, url, key_sealed, key_hint, enabled, created_time`

// NewForward is what AddForward needs.
type NewForward struct {
	RoomID    int64
	URL       string
	KeySealed []byte
	KeyHint   string
}

// AddForward adds a destination to a room that has fewer than max (max
// <= 0: no cap); ErrTooManyForwards otherwise, ErrNotFound when the room
// does not exist. Concurrent adds to one room cannot pass the cap
// together: the room's row is locked (MySQL) or the write serialized
// (SQLite) while counting.
func (s *Store) AddForward(ctx context.Context, f NewForward, max int) (Forward, error) {
	var out Forward
	err := s.retryTx(ctx, func(tx *sqlx.Tx) error {
		lock := `SELECT id FROM mf_live_stream WHERE id = ? AND is_deleted = 0`
		if s.dialect == "mysql" {
			lock += ` FOR UPDATE`
		}
		var id int64
		if err := tx.GetContext(ctx, &id, lock, f.RoomID); err != nil {
			return notFound(err, "room")
		}
		if max > 0 {
			var n int
			if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM mf_forward WHERE room_id = ?`, f.RoomID); err != nil {
				return fmt.Errorf("store: counting forwards: %w", err)
			}
			if n >= max {
				return ErrTooManyForwards
			}
		}
		now := s.now().UTC().Truncate(time.Millisecond)
		res, err := tx.ExecContext(ctx, `INSERT INTO mf_forward (room_id, url, key_sealed, key_hint, enabled, created_time) VALUES (?, ?, ?, ?, 1, ?)`,
			f.RoomID, f.URL, f.KeySealed, f.KeyHint, now)
		if err != nil {
			return fmt.Errorf("store: adding forward: %w", err)
		}
		fid, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("store: adding forward: %w", err)
		}
		out = Forward{ID: fid, RoomID: f.RoomID, URL: f.URL, KeySealed: f.KeySealed, KeyHint: f.KeyHint, Enabled: true, Created: now}
		return nil
	})
	return out, err
}

// Forwards returns a room's destinations, oldest first.
func (s *Store) Forwards(ctx context.Context, roomID int64) ([]Forward, error) {
	var fs []Forward
	if err := s.db.SelectContext(ctx, &fs, `SELECT `+forwardColumns+` FROM mf_forward WHERE room_id = ? ORDER BY id`, roomID); err != nil {
		return nil, fmt.Errorf("store: reading forwards: %w", err)
	}
	return fs, nil
}

// RemoveForward deletes destination id of room roomID; ErrNotFound when
// the room has no such destination.
func (s *Store) RemoveForward(ctx context.Context, roomID, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM mf_forward WHERE id = ? AND room_id = ?`, id, roomID)
	if err != nil {
		return fmt.Errorf("store: removing forward: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: removing forward: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("store: forward %d: %w", id, ErrNotFound)
	}
	return nil
}

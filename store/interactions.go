package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrInsufficientCoins means a user has fewer coins than a gift costs.
var ErrInsufficientCoins = errors.New("store: insufficient coins")

// Comment is a row of mf_comment with its author.
type Comment struct {
	ID       int64     `db:"id"`
	RoomID   int64     `db:"room_id"`
	UserID   int64     `db:"user_id"`
	Content  string    `db:"content"`
	Created  time.Time `db:"created_time"`
	Nickname string    `db:"nickname"`
	Avatar   string    `db:"avatar"`
}

// AddComment stores a comment in a room.
func (s *Store) AddComment(ctx context.Context, roomID, userID int64, content string) (Comment, error) {
	now := s.now().UTC()
	res, err := s.db.ExecContext(ctx, `INSERT INTO mf_comment (room_id, user_id, content, created_time) VALUES (?, ?, ?, ?)`,
		roomID, userID, content, now)
	if err != nil {
		return Comment{}, fmt.Errorf("store: adding comment: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Comment{}, fmt.Errorf("store: adding comment: %w", err)
	}
	return Comment{ID: id, RoomID: roomID, UserID: userID, Content: content, Created: now}, nil
}

// Comments returns a page of a room's comments, newest first, and how many
// there are in all; deleted comments are left out.
func (s *Store) Comments(ctx context.Context, roomID int64, offset, limit int) ([]Comment, int, error) {
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM mf_comment WHERE room_id = ? AND is_deleted = 0`, roomID); err != nil {
		return nil, 0, fmt.Errorf("store: counting comments: %w", err)
	}
	cs := []Comment{}
	err := s.db.SelectContext(ctx, &cs, `SELECT c.id, c.room_id, c.user_id, c.content, c.created_time, u.nickname, u.avatar
		FROM mf_comment c JOIN mf_user u ON u.id = c.user_id
		WHERE c.room_id = ? AND c.is_deleted = 0 ORDER BY c.id DESC LIMIT ? OFFSET ?`, roomID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("store: listing comments: %w", err)
	}
	return cs, total, nil
}

// Gift is a row of mf_gift: something viewers can send, for coins.
type Gift struct {
	ID    int64  `db:"id"`
	Name  string `db:"name"`
	Image string `db:"image"`
	Coin  int64  `db:"coin"`
	Sort  int    `db:"sort"`
}

// Gifts lists the gifts on offer.
func (s *Store) Gifts(ctx context.Context) ([]Gift, error) {
	gs := []Gift{}
	if err := s.db.SelectContext(ctx, &gs, `SELECT id, name, image, coin, sort FROM mf_gift WHERE is_deleted = 0 ORDER BY sort, id`); err != nil {
		return nil, fmt.Errorf("store: listing gifts: %w", err)
	}
	return gs, nil
}

// GiftOrder is a viewer sending Count of a gift in a room.
type GiftOrder struct {
	RoomID int64
	FromID int64
	GiftID int64
	Count  int64
}

// GiftRecord is a row of mf_live_gift: a gift sent.
type GiftRecord struct {
	ID      int64
	Gift    Gift
	Count   int64
	Coin    int64 // all coins paid: gift coin × count
	OwnerID int64 // who received them
	Balance int64 // the sender's coins after paying
	// Rank is the room's tops after the gift when the gift changed them
	// (see RankChange); nil when it did not.
	Rank *RankChange
}

// SendGift moves the price of a gift from the sender to the room's owner,
// adds it to the room's takings and records the gift, all in one
// transaction: coins are never created or lost and never go negative,
// however many gifts race. The same transaction adds the gift to the
// room's leaderboards and open live session (see Ranking). An unknown gift
// or room gives ErrNotFound; too few coins, ErrInsufficientCoins.
func (s *Store) SendGift(ctx context.Context, o GiftOrder) (GiftRecord, error) {
	var rec GiftRecord
	err := s.retryTx(ctx, func(tx *sqlx.Tx) error {
		rec = GiftRecord{Count: o.Count}
		if err := tx.GetContext(ctx, &rec.Gift, `SELECT id, name, image, coin, sort FROM mf_gift WHERE id = ? AND is_deleted = 0`, o.GiftID); err != nil {
			return notFound(err, "gift")
		}
		if err := tx.GetContext(ctx, &rec.OwnerID, `SELECT user_id FROM mf_live_stream WHERE id = ? AND is_deleted = 0`, o.RoomID); err != nil {
			return notFound(err, "room")
		}
		rec.Coin = rec.Gift.Coin * o.Count
		// Lock both users in id order, so that crossing gifts (A to B's
		// room while B sends to A's) cannot deadlock.
		lock := `SELECT id FROM mf_user WHERE id IN (?, ?) ORDER BY id`
		if s.dialect == "mysql" {
			lock += ` FOR UPDATE`
		}
		var ids []int64
		if err := tx.SelectContext(ctx, &ids, lock, o.FromID, rec.OwnerID); err != nil {
			return fmt.Errorf("store: locking users: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE mf_user SET coin = coin - ? WHERE id = ? AND coin >= ?`, rec.Coin, o.FromID, rec.Coin)
		if err != nil {
			return fmt.Errorf("store: charging sender: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: charging sender: %w", err)
		} else if n != 1 {
			return ErrInsufficientCoins
		}
		if _, err := tx.ExecContext(ctx, `UPDATE mf_user SET coin = coin + ? WHERE id = ?`, rec.Coin, rec.OwnerID); err != nil {
			return fmt.Errorf("store: paying owner: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE mf_live_stream SET coin = coin + ? WHERE id = ?`, rec.Coin, o.RoomID); err != nil {
			return fmt.Errorf("store: adding to room: %w", err)
		}
		now := s.now().UTC()
		r, err := tx.ExecContext(ctx, `INSERT INTO mf_live_gift (room_id, user_id, gift_id, count, coin, created_time) VALUES (?, ?, ?, ?, ?, ?)`,
			o.RoomID, o.FromID, o.GiftID, o.Count, rec.Coin, now)
		if err != nil {
			return fmt.Errorf("store: recording gift: %w", err)
		}
		if rec.ID, err = r.LastInsertId(); err != nil {
			return fmt.Errorf("store: recording gift: %w", err)
		}
		if rec.Rank, err = s.addToRanking(ctx, tx, o.RoomID, o.FromID, rec.ID, o.Count, rec.Coin, now); err != nil {
			return err
		}
		return tx.GetContext(ctx, &rec.Balance, `SELECT coin FROM mf_user WHERE id = ?`, o.FromID)
	})
	return rec, err
}

// AddCoins adds amount (which may be negative, but never below zero) to a
// user's coins and returns the new balance.
func (s *Store) AddCoins(ctx context.Context, userID, amount int64) (int64, error) {
	var balance int64
	err := s.retryTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE mf_user SET coin = coin + ? WHERE id = ? AND coin + ? >= 0 AND is_deleted = 0`, amount, userID, amount)
		if err != nil {
			return fmt.Errorf("store: adding coins: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: adding coins: %w", err)
		} else if n != 1 {
			if _, err := s.UserByID(ctx, userID); err != nil {
				return err
			}
			return ErrInsufficientCoins
		}
		return tx.GetContext(ctx, &balance, `SELECT coin FROM mf_user WHERE id = ?`, userID)
	})
	return balance, err
}

// RecordViewer notes that a user entered a room. The first time it counts
// the user in the room's look_count and reports true.
//
// A user seen before costs one read. A new one is two statements, each
// its own transaction: the viewer row, then the count. In one transaction
// they deadlock on MySQL when many users enter at once (the row's foreign
// key share-locks the room row that the count must then update), and
// with the count first every entry would hold the room row's lock through
// its commit. Should the count fail after the row, the room's look_count
// is one short: it is a counter of views, not of coins.
func (s *Store) RecordViewer(ctx context.Context, roomID, userID int64) (bool, error) {
	var seen int
	if err := s.db.GetContext(ctx, &seen, `SELECT COUNT(*) FROM mf_live_user WHERE room_id = ? AND user_id = ?`, roomID, userID); err != nil {
		return false, fmt.Errorf("store: looking up viewer: %w", err)
	}
	if seen > 0 {
		return false, nil
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO mf_live_user (room_id, user_id, created_time) VALUES (?, ?, ?)`, roomID, userID, s.now().UTC())
	if isDuplicate(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: recording viewer: %w", err)
	}
	for attempt := 0; ; attempt++ {
		_, err = s.db.ExecContext(ctx, `UPDATE mf_live_stream SET look_count = look_count + 1 WHERE id = ?`, roomID)
		if !retryable(err) || attempt == 4 {
			break
		}
	}
	if err != nil {
		return true, fmt.Errorf("store: counting viewer: %w", err)
	}
	return true, nil
}

// AddLikes adds n likes to a room, and to its open live session, and
// returns its like count.
func (s *Store) AddLikes(ctx context.Context, roomID, n int64) (int64, error) {
	var count int64
	err := s.retryTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE mf_live_stream SET like_count = like_count + ? WHERE id = ?`, n, roomID); err != nil {
			return fmt.Errorf("store: adding likes: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE mf_live_session SET likes = likes + ? WHERE open_room = ?`, n, roomID); err != nil {
			return fmt.Errorf("store: adding likes to session: %w", err)
		}
		return notFound(tx.GetContext(ctx, &count, `SELECT like_count FROM mf_live_stream WHERE id = ?`, roomID), "room")
	})
	return count, err
}

// retryTx runs fn in a transaction and retries it (a few times) when the
// database chose it as a deadlock victim or was busy.
func (s *Store) retryTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	var err error
	for attempt := range 5 {
		err = s.inTx(ctx, fn)
		if !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}

// retryable reports whether err is a deadlock or lock timeout.
func retryable(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 1213 || me.Number == 1205
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_LOCKED
	}
	return false
}

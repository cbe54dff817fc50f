package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Kinds of a Restriction of a user in a room.
const (
	RestrictMute = "mute" // the user's comments are refused
	RestrictKick = "kick" // the user may not enter the room (for a while)
	RestrictBan  = "ban"  // the user may not enter the room, nor watch it
)

// Moderator is a moderator of a room, with who they are.
type Moderator struct {
	UserID   int64     `db:"user_id"`
	Nickname string    `db:"nickname"`
	Avatar   string    `db:"avatar"`
	Created  time.Time `db:"created_time"`
}

// Restriction is a mute, kick or ban of a user in a room in force.
type Restriction struct {
	Kind string
	// Until is when it ends; the zero time: when it is lifted.
	Until time.Time
	ByID  int64
}

// ModAction is an entry of a room's moderation log: who (ActorID) did
// what (Action) to whom (TargetID, 0 for none) and when, with until when
// (zero: not timed) and a detail (a comment's id, a setting's new value).
type ModAction struct {
	ID             int64
	RoomID         int64
	ActorID        int64
	ActorNickname  string
	TargetID       int64
	TargetNickname string
	Action         string
	Detail         string
	Until          time.Time
	Created        time.Time
}

// ChatSettings are a room's chat settings.
type ChatSettings struct {
	SlowSeconds   int      // one comment per user every so many seconds; 0: off
	FollowersOnly bool     // only the owner's followers may comment
	WordMode      string   // "mask" or "refuse": what Words do to a comment
	Words         []string // the room's own word list
}

// logTx stores a in the room's moderation log, in tx.
func (s *Store) logTx(ctx context.Context, tx *sqlx.Tx, a ModAction) error {
	var until any
	if !a.Until.IsZero() {
		until = a.Until.UTC()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO mf_room_mod_log (room_id, actor_id, target_id, action, detail, until_time, created_time)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, a.RoomID, a.ActorID, a.TargetID, a.Action, a.Detail, until, s.now().UTC())
	if err != nil {
		return fmt.Errorf("store: logging moderation action %s: %w", a.Action, err)
	}
	return nil
}

// AddModerator makes a.TargetID a moderator of room a.RoomID and logs a;
// false (and no log) when they were one already.
func (s *Store) AddModerator(ctx context.Context, a ModAction) (bool, error) {
	added := false
	err := s.retryTx(ctx, func(tx *sqlx.Tx) error {
		added = false
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM mf_room_mod WHERE room_id = ? AND user_id = ?`, a.RoomID, a.TargetID); err != nil {
			return fmt.Errorf("store: looking up moderator: %w", err)
		}
		if n > 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO mf_room_mod (room_id, user_id, created_time) VALUES (?, ?, ?)`, a.RoomID, a.TargetID, s.now().UTC())
		if isDuplicate(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: adding moderator: %w", err)
		}
		added = true
		return s.logTx(ctx, tx, a)
	})
	return added, err
}

// RemoveModerator ends a.TargetID's moderation of room a.RoomID and logs
// a; false (and no log) when they were none.
func (s *Store) RemoveModerator(ctx context.Context, a ModAction) (bool, error) {
	removed := false
	err := s.retryTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM mf_room_mod WHERE room_id = ? AND user_id = ?`, a.RoomID, a.TargetID)
		if err != nil {
			return fmt.Errorf("store: removing moderator: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: removing moderator: %w", err)
		}
		if removed = n > 0; !removed {
			return nil
		}
		return s.logTx(ctx, tx, a)
	})
	return removed, err
}

// Moderators lists a room's moderators in the order they were named.
func (s *Store) Moderators(ctx context.Context, roomID int64) ([]Moderator, error) {
	ms := []Moderator{}
	err := s.db.SelectContext(ctx, &ms, `SELECT m.user_id, u.nickname, u.avatar, m.created_time
		FROM mf_room_mod m JOIN mf_user u ON u.id = m.user_id
		WHERE m.room_id = ? ORDER BY m.created_time, m.user_id`, roomID)
	if err != nil {
		return nil, fmt.Errorf("store: listing moderators: %w", err)
	}
	return ms, nil
}

// IsModerator reports whether a user moderates a room.
func (s *Store) IsModerator(ctx context.Context, roomID, userID int64) (bool, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM mf_room_mod WHERE room_id = ? AND user_id = ?`, roomID, userID); err != nil {
		return false, fmt.Errorf("store: looking up moderator: %w", err)
	}
	return n > 0, nil
}

// Restrict puts a restriction of kind (RestrictMute, RestrictKick or
// RestrictBan) on a.TargetID in room a.RoomID until a.Until (zero: until
// lifted), replacing one of that kind, and logs a.
func (s *Store) Restrict(ctx context.Context, kind string, a ModAction) error {
	return s.retryTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM mf_room_restrict WHERE room_id = ? AND user_id = ? AND kind = ?`, a.RoomID, a.TargetID, kind); err != nil {
			return fmt.Errorf("store: replacing restriction: %w", err)
		}
		var until any
		if !a.Until.IsZero() {
			until = a.Until.UTC()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO mf_room_restrict (room_id, user_id, kind, until_time, by_id, created_time) VALUES (?, ?, ?, ?, ?, ?)`,
			a.RoomID, a.TargetID, kind, until, a.ActorID, s.now().UTC()); err != nil {
			return fmt.Errorf("store: adding restriction: %w", err)
		}
		return s.logTx(ctx, tx, a)
	})
}

// Unrestrict lifts a restriction of kind on a.TargetID in room a.RoomID
// and logs a; false (and no log) when none was in force.
func (s *Store) Unrestrict(ctx context.Context, kind string, a ModAction) (bool, error) {
	lifted := false
	err := s.retryTx(ctx, func(tx *sqlx.Tx) error {
		var until sql.NullTime
		err := tx.GetContext(ctx, &until, `SELECT until_time FROM mf_room_restrict WHERE room_id = ? AND user_id = ? AND kind = ?`, a.RoomID, a.TargetID, kind)
		if err == sql.ErrNoRows {
			lifted = false
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: looking up restriction: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM mf_room_restrict WHERE room_id = ? AND user_id = ? AND kind = ?`, a.RoomID, a.TargetID, kind); err != nil {
			return fmt.Errorf("store: lifting restriction: %w", err)
		}
		if lifted = !until.Valid || until.Time.After(s.now()); !lifted {
			return nil // it had ended already
		}
		return s.logTx(ctx, tx, a)
	})
	return lifted, err
}

// Restrictions returns the restrictions in force on a user in a room.
func (s *Store) Restrictions(ctx context.Context, roomID, userID int64) ([]Restriction, error) {
	var rows []struct {
		Kind  string       `db:"kind"`
		Until sql.NullTime `db:"until_time"`
		ByID  int64        `db:"by_id"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT kind, until_time, by_id FROM mf_room_restrict WHERE room_id = ? AND user_id = ?`, roomID, userID); err != nil {
		return nil, fmt.Errorf("store: reading restrictions: %w", err)
	}
	now := s.now()
	var out []Restriction
	for _, r := range rows {
		if r.Until.Valid && !r.Until.Time.After(now) {
			continue
		}
		x := Restriction{Kind: r.Kind, ByID: r.ByID}
		if r.Until.Valid {
			x.Until = r.Until.Time
		}
		out = append(out, x)
	}
	return out, nil
}

// ChatSettings returns a room's chat settings (the defaults when none
// were set).
func (s *Store) ChatSettings(ctx context.Context, roomID int64) (ChatSettings, error) {
	var row struct {
		Slow          int    `db:"slow_seconds"`
		FollowersOnly bool   `db:"followers_only"`
		WordMode      string `db:"word_mode"`
		Words         string `db:"words"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT slow_seconds, followers_only, word_mode, words FROM mf_room_chat WHERE room_id = ?`, roomID)
	if err == sql.ErrNoRows {
		return ChatSettings{WordMode: "mask", Words: []string{}}, nil
	}
	if err != nil {
		return ChatSettings{}, fmt.Errorf("store: reading chat settings: %w", err)
	}
	cs := ChatSettings{SlowSeconds: row.Slow, FollowersOnly: row.FollowersOnly, WordMode: row.WordMode, Words: []string{}}
	for _, w := range strings.Split(row.Words, "\n") {
		if w != "" {
			cs.Words = append(cs.Words, w)
		}
	}
	return cs, nil
}

// SetSlowMode sets a room's slow mode (0: off) and logs a.
func (s *Store) SetSlowMode(ctx context.Context, seconds int, a ModAction) error {
	return s.setChat(ctx, `slow_seconds = ?`, []any{seconds}, a)
}

// SetFollowersOnly turns a room's followers-only chat on or off and logs
// a.
func (s *Store) SetFollowersOnly(ctx context.Context, on bool, a ModAction) error {
	return s.setChat(ctx, `followers_only = ?`, []any{on}, a)
}

// SetRoomWords sets a room's own word list and its mode and logs a.
// Words must not hold newlines.
func (s *Store) SetRoomWords(ctx context.Context, mode string, words []string, a ModAction) error {
	return s.setChat(ctx, `word_mode = ?, words = ?`, []any{mode, strings.Join(words, "\n")}, a)
}

// setChat updates columns of a room's chat settings, making its row if
// it has none, and logs a, in one transaction.
func (s *Store) setChat(ctx context.Context, set string, args []any, a ModAction) error {
	ignore := "INSERT OR IGNORE"
	if s.dialect == "mysql" {
		ignore = "INSERT IGNORE"
	}
	return s.retryTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, ignore+` INTO mf_room_chat (room_id, slow_seconds, followers_only, word_mode, words) VALUES (?, 0, 0, 'mask', '')`, a.RoomID); err != nil {
			return fmt.Errorf("store: making chat settings: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE mf_room_chat SET `+set+` WHERE room_id = ?`, append(args, a.RoomID)...); err != nil {
			return fmt.Errorf("store: setting chat settings: %w", err)
		}
		return s.logTx(ctx, tx, a)
	})
}

// ModLog returns a page of a room's moderation log, newest first, and how
// many entries it has.
func (s *Store) ModLog(ctx context.Context, roomID int64, offset, limit int) ([]ModAction, int, error) {
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM mf_room_mod_log WHERE room_id = ?`, roomID); err != nil {
		return nil, 0, fmt.Errorf("store: counting moderation log: %w", err)
	}
	var rows []struct {
		ID             int64          `db:"id"`
		ActorID        int64          `db:"actor_id"`
		ActorNickname  sql.NullString `db:"actor_nickname"`
		TargetID       int64          `db:"target_id"`
		TargetNickname sql.NullString `db:"target_nickname"`
		Action         string         `db:"action"`
		Detail         string         `db:"detail"`
		Until          sql.NullTime   `db:"until_time"`
		Created        time.Time      `db:"created_time"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT l.id, l.actor_id, a.nickname AS actor_nickname, l.target_id, t.nickname AS target_nickname,
			l.action, l.detail, l.until_time, l.created_time
		FROM mf_room_mod_log l LEFT JOIN mf_user a ON a.id = l.actor_id LEFT JOIN mf_user t ON t.id = l.target_id
		WHERE l.room_id = ? ORDER BY l.id DESC LIMIT ? OFFSET ?`, roomID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("store: reading moderation log: %w", err)
	}
	out := make([]ModAction, len(rows))
	for i, r := range rows {
		out[i] = ModAction{ID: r.ID, RoomID: roomID, ActorID: r.ActorID, ActorNickname: r.ActorNickname.String,
			TargetID: r.TargetID, TargetNickname: r.TargetNickname.String, Action: r.Action, Detail: r.Detail, Created: r.Created}
		if r.Until.Valid {
			out[i].Until = r.Until.Time
		}
	}
	return out, total, nil
}

// CommentByID returns a comment not deleted.
func (s *Store) CommentByID(ctx context.Context, id int64) (Comment, error) {
	var c Comment
	err := s.db.GetContext(ctx, &c, `SELECT c.id, c.room_id, c.user_id, c.content, c.created_time, u.nickname, u.avatar
		FROM mf_comment c JOIN mf_user u ON u.id = c.user_id WHERE c.id = ? AND c.is_deleted = 0`, id)
	return c, notFound(err, "comment")
}

// DeleteComment marks comment a.Detail (its id) of room a.RoomID deleted
// and logs a: it is no longer listed. ErrNotFound when the room has no
// such comment, or it is deleted already.
func (s *Store) DeleteComment(ctx context.Context, a ModAction) error {
	id, err := strconv.ParseInt(a.Detail, 10, 64)
	if err != nil {
		return fmt.Errorf("store: comment id %q: %w", a.Detail, ErrNotFound)
	}
	return s.retryTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE mf_comment SET is_deleted = 1 WHERE id = ? AND room_id = ? AND is_deleted = 0`, id, a.RoomID)
		if err != nil {
			return fmt.Errorf("store: deleting comment: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: deleting comment: %w", err)
		} else if n != 1 {
			return fmt.Errorf("store: comment %d: %w", id, ErrNotFound)
		}
		return s.logTx(ctx, tx, a)
	})
}

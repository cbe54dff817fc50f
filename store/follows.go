package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// FollowUser is a user in a list of followers or followings, with when
// the follow was made.
type FollowUser struct {
	ID       int64     `db:"id"`
	Nickname string    `db:"nickname"`
	Avatar   string    `db:"avatar"`
	Since    time.Time `db:"created_time"`
}

// Follow makes follower follow followee. It reports false when follower
// followed followee already. A followee that does not exist (or is
// deleted) gives ErrNotFound; following oneself is refused by the
// database (the caller checks it first).
func (s *Store) Follow(ctx context.Context, follower, followee int64) (bool, error) {
	if _, err := s.UserByID(ctx, followee); err != nil {
		return false, err
	}
	ins := `INSERT INTO mf_follow (follower_id, followee_id, created_time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
	if s.dialect == "mysql" {
		ins = `INSERT IGNORE INTO mf_follow (follower_id, followee_id, created_time) VALUES (?, ?, ?)`
	}
	defer s.lists.invalidate()
	res, err := s.db.ExecContext(ctx, ins, follower, followee, s.now().UTC())
	if err != nil {
		return false, fmt.Errorf("store: user %d following %d: %w", follower, followee, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: user %d following %d: %w", follower, followee, err)
	}
	return n == 1, nil
}

// Unfollow ends follower's follow of followee; it reports false when
// there was none.
func (s *Store) Unfollow(ctx context.Context, follower, followee int64) (bool, error) {
	defer s.lists.invalidate()
	res, err := s.db.ExecContext(ctx, `DELETE FROM mf_follow WHERE follower_id = ? AND followee_id = ?`, follower, followee)
	if err != nil {
		return false, fmt.Errorf("store: user %d unfollowing %d: %w", follower, followee, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: user %d unfollowing %d: %w", follower, followee, err)
	}
	return n == 1, nil
}

// IsFollower reports whether follower follows followee (one indexed
// lookup: for checks on every comment, such as followers-only chat). A
// deleted follower still counts until the follow is removed; callers
// refuse deleted users' tokens anyway.
func (s *Store) IsFollower(ctx context.Context, follower, followee int64) (bool, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM mf_follow WHERE follower_id = ? AND followee_id = ?`, follower, followee)
	if err != nil {
		return false, fmt.Errorf("store: does user %d follow %d: %w", follower, followee, err)
	}
	return n > 0, nil
}

// FollowCounts returns how many users follow userID and how many userID
// follows; deleted accounts are not counted.
func (s *Store) FollowCounts(ctx context.Context, userID int64) (followers, following int64, err error) {
	err = s.db.GetContext(ctx, &followers, `SELECT COUNT(*) FROM mf_follow f JOIN mf_user u ON u.id = f.follower_id
		WHERE f.followee_id = ? AND u.is_deleted = 0`, userID)
	if err == nil {
		err = s.db.GetContext(ctx, &following, `SELECT COUNT(*) FROM mf_follow f JOIN mf_user u ON u.id = f.followee_id
			WHERE f.follower_id = ? AND u.is_deleted = 0`, userID)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: follow counts of user %d: %w", userID, err)
	}
	return followers, following, nil
}

// Followers returns a page of the users who follow userID, the latest
// follow first, and how many there are.
func (s *Store) Followers(ctx context.Context, userID int64, offset, limit int) ([]FollowUser, int64, error) {
	return s.followList(ctx, "followee_id", "follower_id", userID, offset, limit)
}

// Following returns a page of the users userID follows, the latest
// follow first, and how many there are.
func (s *Store) Following(ctx context.Context, userID int64, offset, limit int) ([]FollowUser, int64, error) {
	return s.followList(ctx, "follower_id", "followee_id", userID, offset, limit)
}

// followList lists the users in column other of the follows whose
// column by is userID.
func (s *Store) followList(ctx context.Context, by, other string, userID int64, offset, limit int) ([]FollowUser, int64, error) {
	from := ` FROM mf_follow f JOIN mf_user u ON u.id = f.` + other + ` WHERE f.` + by + ` = ? AND u.is_deleted = 0`
	var total int64
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*)`+from, userID); err != nil {
		return nil, 0, fmt.Errorf("store: follows of user %d: %w", userID, err)
	}
	out := []FollowUser{}
	if total == 0 || int64(offset) >= total {
		return out, total, nil
	}
	err := s.db.SelectContext(ctx, &out, `SELECT u.id, u.nickname, u.avatar, f.created_time`+from+
		` ORDER BY f.created_time DESC, u.id DESC LIMIT ? OFFSET ?`, userID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("store: follows of user %d: %w", userID, err)
	}
	return out, total, nil
}

// FollowersAmong returns the users of among who follow followee: a node
// asks it of the users it has websockets of.
func (s *Store) FollowersAmong(ctx context.Context, followee int64, among []int64) ([]int64, error) {
	var out []int64
	const chunk = 500
	for len(among) > 0 {
		part := among[:min(chunk, len(among))]
		among = among[len(part):]
		q, args, err := sqlx.In(`SELECT follower_id FROM mf_follow WHERE followee_id = ? AND follower_id IN (?)`, followee, part)
		if err != nil {
			return nil, fmt.Errorf("store: followers of user %d: %w", followee, err)
		}
		var ids []int64
		if err := s.db.SelectContext(ctx, &ids, s.db.Rebind(q), args...); err != nil {
			return nil, fmt.Errorf("store: followers of user %d: %w", followee, err)
		}
		out = append(out, ids...)
	}
	return out, nil
}

// BeginLive records that a room's stream started and reports whether
// that begins a new live, whose followers are to be told: false while
// the room's live goes on (its publisher came back, on this node or
// another, within the grace period). A live begins when the previous one
// was ended (EndLive) or the room is not live in the database (a node
// that died left the notice open; the rooms it left live were set back).
// Call it before setting the room live. One of several racing calls
// wins.
func (s *Store) BeginLive(ctx context.Context, roomID int64) (bool, error) {
	now := s.now().UTC()
	ins := `INSERT INTO mf_live_notice (room_id, open, lives) VALUES (?, 0, 0) ON CONFLICT DO NOTHING`
	if s.dialect == "mysql" {
		ins = `INSERT IGNORE INTO mf_live_notice (room_id, open, lives) VALUES (?, 0, 0)`
	}
	if _, err := s.db.ExecContext(ctx, ins, roomID); err != nil {
		return false, fmt.Errorf("store: live notice of room %d: %w", roomID, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE mf_live_notice SET open = 1, lives = lives + 1, started_time = ?, ended_time = NULL
		WHERE room_id = ? AND (open = 0 OR (SELECT status FROM mf_live_stream WHERE id = ?) <> ?)`, now, roomID, roomID, RoomLive)
	if err != nil {
		return false, fmt.Errorf("store: beginning live of room %d: %w", roomID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: beginning live of room %d: %w", roomID, err)
	}
	return n == 1, nil
}

// EndLive records that a room's live ended (its stream stopped and no
// publisher came back within the grace period).
func (s *Store) EndLive(ctx context.Context, roomID int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE mf_live_notice SET open = 0, ended_time = ? WHERE room_id = ? AND open = 1`, s.now().UTC(), roomID)
	if err != nil {
		return fmt.Errorf("store: ending live of room %d: %w", roomID, err)
	}
	return nil
}

package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
)

// AllTime is the session ID of a room's all-time leaderboard.
const AllTime int64 = 0

// Contributor is one row of a gift leaderboard: a user and what they gave
// in a room (all-time, or in one live session).
type Contributor struct {
	Rank     int    `db:"-"` // from 1
	UserID   int64  `db:"user_id"`
	Nickname string `db:"nickname"`
	Avatar   string `db:"avatar"`
	Coins    int64  `db:"coins"`
	Gifts    int64  `db:"gifts"` // gifts given (a gift of count n is n)
}

// RankTop is the size of the top that a gift reports changes of.
const RankTop = 3

// RankChange is what a gift did to the room's tops (RankTop): the tops
// after it, of both scopes, when either changed (who is in it, in what
// order, or their coins).
type RankChange struct {
	SessionID int64         // the open session; 0: the room is not live
	All       []Contributor // the all-time top
	Live      []Contributor // the open session's top (empty when not live)
	// Total is the room's coins in all after the gift: it grows with
	// every gift, so of two changes the one with the larger Total is the
	// later.
	Total int64
}

// Ranking returns the top limit contributors of a room by coins: sessionID
// AllTime for all-time, else one live session's. On equal coins who got
// there first ranks first. It reads an aggregate kept by SendGift in the
// gift's own transaction: one index range, however many gifts there were.
func (s *Store) Ranking(ctx context.Context, roomID, sessionID int64, limit int) ([]Contributor, error) {
	cs, err := s.ranking(ctx, s.db.DB, roomID, sessionID, limit, "")
	if err != nil {
		return nil, err
	}
	return cs, s.nameContributors(ctx, s.db.DB, cs)
}

// ranking reads a top from q; lock is appended to the query (a locking
// read on MySQL inside SendGift's transaction, which locks only the
// leaderboard's rows: names are read after, without locks).
func (s *Store) ranking(ctx context.Context, q sqlx.QueryerContext, roomID, sessionID int64, limit int, lock string) ([]Contributor, error) {
	cs := []Contributor{}
	err := sqlx.SelectContext(ctx, q, &cs, `SELECT user_id, coins, gifts FROM mf_gift_rank
		WHERE room_id = ? AND session_id = ? ORDER BY coins DESC, reached DESC LIMIT ?`+lock, roomID, sessionID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading gift ranking: %w", err)
	}
	for i := range cs {
		cs[i].Rank = i + 1
	}
	return cs, nil
}

// nameContributors fills in the names of contributors.
func (s *Store) nameContributors(ctx context.Context, q sqlx.QueryerContext, cs ...[]Contributor) error {
	var ids []int64
	for _, c := range cs {
		for _, x := range c {
			ids = append(ids, x.UserID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	query, args, err := sqlx.In(`SELECT id, nickname, avatar FROM mf_user WHERE id IN (?)`, ids)
	if err != nil {
		return fmt.Errorf("store: naming contributors: %w", err)
	}
	var us []Owner
	if err := sqlx.SelectContext(ctx, q, &us, s.db.Rebind(query), args...); err != nil {
		return fmt.Errorf("store: naming contributors: %w", err)
	}
	byID := make(map[int64]Owner, len(us))
	for _, u := range us {
		byID[u.ID] = u
	}
	for _, c := range cs {
		for i := range c {
			u := byID[c[i].UserID]
			c[i].Nickname, c[i].Avatar = u.Nickname, u.Avatar
		}
	}
	return nil
}

// addToRanking adds a gift to the all-time leaderboard and, when the room
// is live, to its session's, inside the gift's transaction (which holds
// the room's row: gifts to one room take turns here). It reports the tops
// when they changed.
func (s *Store) addToRanking(ctx context.Context, tx *sqlx.Tx, roomID, userID, giftID, count, coins int64, now time.Time) (*RankChange, error) {
	sessionID, err := s.addToOpenSession(ctx, tx, roomID, count, coins)
	if err != nil {
		return nil, err
	}
	lock := ""
	if s.dialect == "mysql" {
		// A plain read sees the transaction's snapshot, taken before the
		// room's row was locked: read the latest rows instead.
		lock = " LOCK IN SHARE MODE"
	}
	scopes := []int64{AllTime}
	if sessionID != 0 {
		scopes = append(scopes, sessionID)
	}
	change := &RankChange{SessionID: sessionID, All: []Contributor{}, Live: []Contributor{}}
	changed := false
	for _, sid := range scopes {
		before, err := s.ranking(ctx, tx, roomID, sid, RankTop, lock)
		if err != nil {
			return nil, err
		}
		upsert := `INSERT INTO mf_gift_rank (room_id, session_id, user_id, coins, gifts, reached, updated_time) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (room_id, session_id, user_id) DO UPDATE SET coins = coins + excluded.coins, gifts = gifts + excluded.gifts,
			reached = excluded.reached, updated_time = excluded.updated_time`
		if s.dialect == "mysql" {
			upsert = `INSERT INTO mf_gift_rank (room_id, session_id, user_id, coins, gifts, reached, updated_time) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON DUPLICATE KEY UPDATE coins = coins + VALUES(coins), gifts = gifts + VALUES(gifts),
			reached = VALUES(reached), updated_time = VALUES(updated_time)`
		}
		if _, err := tx.ExecContext(ctx, upsert, roomID, sid, userID, coins, count, -giftID, now); err != nil {
			return nil, fmt.Errorf("store: adding to gift ranking: %w", err)
		}
		after, err := s.ranking(ctx, tx, roomID, sid, RankTop, lock)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(before, after) {
			changed = true
		}
		if sid == AllTime {
			change.All = after
		} else {
			change.Live = after
		}
	}
	if !changed {
		return nil, nil
	}
	if err := tx.GetContext(ctx, &change.Total, `SELECT coin FROM mf_live_stream WHERE id = ?`, roomID); err != nil {
		return nil, fmt.Errorf("store: reading room coins: %w", err)
	}
	return change, s.nameContributors(ctx, tx, change.All, change.Live)
}

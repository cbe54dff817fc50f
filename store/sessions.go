package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// LiveSession is a row of mf_live_session: one live of a room, from its
// publish start to its end (a publisher back within the grace is the same
// live), with what happened in it.
//
// Peak and Total viewers are the media engine's (every protocol); Likes,
// Gifts and Coins are counted in the like's and the gift's own
// transaction; Comments and Chatters are counted from the stored comments
// of the room between Start and End (now while live).
type LiveSession struct {
	ID       int64        `db:"id"`
	RoomID   int64        `db:"room_id"`
	Start    time.Time    `db:"start_time"`
	End      sql.NullTime `db:"end_time"` // not Valid while live
	Peak     int64        `db:"peak_viewers"`
	Total    int64        `db:"total_viewers"` // plays started, every protocol
	Likes    int64        `db:"likes"`
	Gifts    int64        `db:"gifts"` // a gift of count n is n
	Coins    int64        `db:"coins"`
	Comments int64        `db:"comments"`
	Chatters int64        `db:"chatters"` // distinct users who commented
}

// Sample is the number of viewers of a live at one moment.
type Sample struct {
	Time    time.Time `db:"sample_time"`
	Viewers int64     `db:"viewers"`
}

// StartSession opens a live session of a room now and returns its ID; a
// session already open (its publisher came back, or another node took
// the stream over) is returned instead.
func (s *Store) StartSession(ctx context.Context, roomID int64) (id int64, resumed bool, err error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO mf_live_session (room_id, start_time, open_room) VALUES (?, ?, ?)`,
		roomID, s.now().UTC(), roomID)
	if isDuplicate(err) {
		err = s.db.GetContext(ctx, &id, `SELECT id FROM mf_live_session WHERE open_room = ?`, roomID)
		if err != nil {
			return 0, false, fmt.Errorf("store: finding the open session of room %d: %w", roomID, err)
		}
		return id, true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: starting session of room %d: %w", roomID, err)
	}
	id, err = res.LastInsertId()
	if err != nil {
		return 0, false, fmt.Errorf("store: starting session of room %d: %w", roomID, err)
	}
	return id, false, nil
}

// OpenSession returns the ID of a room's open session; ErrNotFound when
// it is not live.
func (s *Store) OpenSession(ctx context.Context, roomID int64) (int64, error) {
	var id int64
	err := s.db.GetContext(ctx, &id, `SELECT id FROM mf_live_session WHERE open_room = ?`, roomID)
	return id, notFound(err, "session")
}

// LatestSession returns the ID of a room's open session, or else of its
// last one; ErrNotFound when it was never live.
func (s *Store) LatestSession(ctx context.Context, roomID int64) (id int64, open bool, err error) {
	var row struct {
		ID   int64         `db:"id"`
		Open sql.NullInt64 `db:"open_room"`
	}
	err = s.db.GetContext(ctx, &row, `SELECT id, open_room FROM mf_live_session WHERE room_id = ? ORDER BY id DESC LIMIT 1`, roomID)
	return row.ID, row.Open.Valid, notFound(err, "session")
}

// EndSession closes a room's open session now, first adding viewers that
// started playing and were not counted yet (see AddViewers). It does
// nothing when the room has no open session.
func (s *Store) EndSession(ctx context.Context, roomID, viewers int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE mf_live_session SET end_time = ?, open_room = NULL, total_viewers = total_viewers + ?
		WHERE open_room = ?`, s.now().UTC(), viewers, roomID)
	if err != nil {
		return fmt.Errorf("store: ending session of room %d: %w", roomID, err)
	}
	return nil
}

// AddViewers adds n plays started to a live session: sessionID, or when
// 0 the room's latest session (open, or just ended: plays counted on
// another node reach it a moment after its end). Each node counts its own
// viewers and adds them.
func (s *Store) AddViewers(ctx context.Context, roomID, sessionID, n int64) error {
	if n == 0 {
		return nil
	}
	if sessionID == 0 {
		err := s.db.GetContext(ctx, &sessionID, `SELECT id FROM mf_live_session WHERE room_id = ? ORDER BY id DESC LIMIT 1`, roomID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: finding session of room %d: %w", roomID, err)
		}
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE mf_live_session SET total_viewers = total_viewers + ? WHERE id = ?`, n, sessionID); err != nil {
		return fmt.Errorf("store: adding viewers to session %d: %w", sessionID, err)
	}
	return nil
}

// AddSample stores the viewers of a live session now (unless it ended)
// and raises its
// peak to at least peak (the most viewers seen at once since the last
// sample, which may exceed viewers).
func (s *Store) AddSample(ctx context.Context, sessionID, viewers, peak int64) error {
	peak = max(peak, viewers)
	return s.retryTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO mf_live_sample (session_id, sample_time, viewers)
			SELECT id, ?, ? FROM mf_live_session WHERE id = ? AND open_room IS NOT NULL`, s.now().UTC(), viewers, sessionID)
		if err != nil && !isDuplicate(err) {
			return fmt.Errorf("store: adding sample to session %d: %w", sessionID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE mf_live_session SET peak_viewers = CASE WHEN peak_viewers < ? THEN ? ELSE peak_viewers END WHERE id = ?`,
			peak, peak, sessionID); err != nil {
			return fmt.Errorf("store: raising peak of session %d: %w", sessionID, err)
		}
		return nil
	})
}

// RaisePeak raises a session's peak viewers to at least peak.
func (s *Store) RaisePeak(ctx context.Context, sessionID, peak int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE mf_live_session SET peak_viewers = CASE WHEN peak_viewers < ? THEN ? ELSE peak_viewers END WHERE id = ?`,
		peak, peak, sessionID); err != nil {
		return fmt.Errorf("store: raising peak of session %d: %w", sessionID, err)
	}
	return nil
}

// sessionColumns selects a LiveSession; its two params are the end of an
// open session's window (just after now). A session's comments are those
// of its room from its start (included) to its end (excluded).
const sessionColumns = `s.id, s.room_id, s.start_time, s.end_time, s.peak_viewers, s.total_viewers, s.likes, s.gifts, s.coins,
	(SELECT COUNT(*) FROM mf_comment c WHERE c.room_id = s.room_id AND c.created_time >= s.start_time AND c.created_time < COALESCE(s.end_time, ?)) AS comments,
	(SELECT COUNT(DISTINCT c.user_id) FROM mf_comment c WHERE c.room_id = s.room_id AND c.created_time >= s.start_time AND c.created_time < COALESCE(s.end_time, ?)) AS chatters`

// Sessions returns a page of a room's live sessions, newest first, and
// how many there are.
func (s *Store) Sessions(ctx context.Context, roomID int64, offset, limit int) ([]LiveSession, int, error) {
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM mf_live_session WHERE room_id = ?`, roomID); err != nil {
		return nil, 0, fmt.Errorf("store: counting sessions: %w", err)
	}
	now := s.now().UTC().Add(time.Millisecond)
	ss := []LiveSession{}
	err := s.db.SelectContext(ctx, &ss, `SELECT `+sessionColumns+` FROM mf_live_session s WHERE s.room_id = ? ORDER BY s.id DESC LIMIT ? OFFSET ?`,
		now, now, roomID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("store: listing sessions: %w", err)
	}
	return ss, total, nil
}

// Session returns one live session; ErrNotFound if there is none.
func (s *Store) Session(ctx context.Context, id int64) (LiveSession, error) {
	now := s.now().UTC().Add(time.Millisecond)
	var ls LiveSession
	err := s.db.GetContext(ctx, &ls, `SELECT `+sessionColumns+` FROM mf_live_session s WHERE s.id = ?`, now, now, id)
	return ls, notFound(err, "session")
}

// maxSamples bounds the samples Samples returns: a day at one every 5 s.
const maxSamples = 17280

// Samples returns a session's viewer samples in time order (at most a
// day's worth at the default interval).
func (s *Store) Samples(ctx context.Context, sessionID int64) ([]Sample, error) {
	ss := []Sample{}
	err := s.db.SelectContext(ctx, &ss, `SELECT sample_time, viewers FROM mf_live_sample WHERE session_id = ? ORDER BY sample_time LIMIT ?`,
		sessionID, maxSamples)
	if err != nil {
		return nil, fmt.Errorf("store: listing samples: %w", err)
	}
	return ss, nil
}

// endStaleSessions closes the open sessions of rooms that are not live
// (left open by a node that died or a crash), ending them at their last
// sample (or start).
func (s *Store) endStaleSessions(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE mf_live_session SET open_room = NULL,
		end_time = COALESCE((SELECT MAX(m.sample_time) FROM mf_live_sample m WHERE m.session_id = mf_live_session.id), start_time)
		WHERE open_room IS NOT NULL AND room_id IN (SELECT id FROM mf_live_stream WHERE status IN (?, ?))`, RoomIdle, RoomStopped)
	if err != nil {
		return fmt.Errorf("store: ending stale sessions: %w", err)
	}
	return nil
}

// addToOpenSession counts a gift in the room's open session, inside the
// gift's transaction, and returns the session (0: not live).
func (s *Store) addToOpenSession(ctx context.Context, tx *sqlx.Tx, roomID, count, coins int64) (int64, error) {
	res, err := tx.ExecContext(ctx, `UPDATE mf_live_session SET gifts = gifts + ?, coins = coins + ? WHERE open_room = ?`, count, coins, roomID)
	if err != nil {
		return 0, fmt.Errorf("store: counting gift in session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, fmt.Errorf("store: counting gift in session: %w", err)
	} else if n == 0 {
		return 0, nil
	}
	var id int64
	if err := tx.GetContext(ctx, &id, `SELECT id FROM mf_live_session WHERE open_room = ?`, roomID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		return 0, fmt.Errorf("store: finding open session: %w", err)
	}
	return id, nil
}

package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ScheduleStatus is the state of a scheduled live.
type ScheduleStatus int

// The states of a scheduled live.
const (
	ScheduleUpcoming  ScheduleStatus = 0
	ScheduleStarted   ScheduleStatus = 1 // the host went live in its window
	ScheduleMissed    ScheduleStatus = 2 // its window passed without a live
	ScheduleCancelled ScheduleStatus = 3
)

// ErrScheduleDone means the scheduled live is no longer upcoming: it
// started, was missed or was cancelled.
var ErrScheduleDone = errors.New("store: schedule no longer upcoming")

// Schedule is a row of mf_live_schedule: a live its host announced.
type Schedule struct {
	ID      int64          `db:"id"`
	RoomID  int64          `db:"room_id"`
	UserID  int64          `db:"user_id"` // the host
	At      time.Time      `db:"at_time"`
	Title   string         `db:"title"`
	Cover   string         `db:"cover"`
	Status  ScheduleStatus `db:"status"`
	Started *time.Time     `db:"started_time"` // when the live began (ScheduleStarted)
	Created time.Time      `db:"created_time"`
}

// ScheduleWithRoom is a schedule with its room's name and host.
type ScheduleWithRoom struct {
	Schedule
	RoomName string `db:"room_name"`
	Stream   string `db:"stream"` // the room's stream name
	Owner    Owner  `db:"owner"`
}

const scheduleColumns = `c.id, c.room_id, c.user_id, c.at_time, c.title, c.cover, c.status, c.started_time, c.created_time`

// NewSchedule is what AddSchedule needs.
type NewSchedule struct {
	RoomID int64
	UserID int64
	At     time.Time
	Title  string
	Cover  string
}

// AddSchedule stores an upcoming live.
func (s *Store) AddSchedule(ctx context.Context, n NewSchedule) (Schedule, error) {
	now := s.now().UTC()
	res, err := s.db.ExecContext(ctx, `INSERT INTO mf_live_schedule (room_id, user_id, at_time, title, cover, status, created_time, updated_time)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, n.RoomID, n.UserID, n.At.UTC(), n.Title, n.Cover, ScheduleUpcoming, now, now)
	if err != nil {
		return Schedule{}, fmt.Errorf("store: scheduling a live of room %d: %w", n.RoomID, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Schedule{}, fmt.Errorf("store: scheduling a live of room %d: %w", n.RoomID, err)
	}
	return s.ScheduleByID(ctx, id)
}

// ScheduleByID returns a scheduled live; ErrNotFound if there is none.
func (s *Store) ScheduleByID(ctx context.Context, id int64) (Schedule, error) {
	var c Schedule
	err := s.db.GetContext(ctx, &c, `SELECT `+scheduleColumns+` FROM mf_live_schedule c WHERE c.id = ?`, id)
	return c, notFound(err, "schedule")
}

// CancelSchedule cancels an upcoming live; one no longer upcoming gives
// ErrScheduleDone, an unknown one ErrNotFound.
func (s *Store) CancelSchedule(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE mf_live_schedule SET status = ?, updated_time = ? WHERE id = ? AND status = ?`,
		ScheduleCancelled, s.now().UTC(), id, ScheduleUpcoming)
	if err != nil {
		return fmt.Errorf("store: cancelling schedule %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: cancelling schedule %d: %w", id, err)
	} else if n == 1 {
		return nil
	}
	if _, err := s.ScheduleByID(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("store: cancelling schedule %d: %w", id, ErrScheduleDone)
}

// CountUpcoming counts a room's upcoming lives whose time is from on.
func (s *Store) CountUpcoming(ctx context.Context, roomID int64, from time.Time) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM mf_live_schedule WHERE room_id = ? AND status = ? AND at_time >= ?`,
		roomID, ScheduleUpcoming, from.UTC())
	if err != nil {
		return 0, fmt.Errorf("store: counting schedules of room %d: %w", roomID, err)
	}
	return n, nil
}

// UpcomingOptions selects upcoming lives.
type UpcomingOptions struct {
	RoomID int64     // 0: every room's
	From   time.Time // lives scheduled at or after this time
	Limit  int
}

// Upcoming lists the upcoming lives scheduled from opt.From on, soonest
// first, of rooms that can still go live.
func (s *Store) Upcoming(ctx context.Context, opt UpcomingOptions) ([]ScheduleWithRoom, error) {
	q := `SELECT ` + scheduleColumns + `, s.room_name, s.name AS stream, ` + ownerColumns + `
		FROM mf_live_schedule c JOIN mf_live_stream s ON s.id = c.room_id JOIN mf_user u ON u.id = c.user_id
		WHERE c.status = ? AND c.at_time >= ? AND s.is_deleted = 0 AND s.status <> 3 AND u.is_deleted = 0`
	args := []any{ScheduleUpcoming, opt.From.UTC()}
	if opt.RoomID != 0 {
		q += ` AND c.room_id = ?`
		args = append(args, opt.RoomID)
	}
	q += ` ORDER BY c.at_time, c.id LIMIT ?`
	args = append(args, opt.Limit)
	out := []ScheduleWithRoom{}
	if err := s.db.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("store: listing upcoming lives: %w", err)
	}
	return out, nil
}

// StartSchedule marks as started the room's upcoming live whose time is
// nearest to now within the window from early before it to late after
// it, and returns it; ok is false when there is none. Of several nodes
// racing for one schedule, one gets it.
func (s *Store) StartSchedule(ctx context.Context, roomID int64, now time.Time, early, late time.Duration) (c Schedule, ok bool, err error) {
	var cands []Schedule
	err = s.db.SelectContext(ctx, &cands, `SELECT `+scheduleColumns+` FROM mf_live_schedule c
		WHERE c.room_id = ? AND c.status = ? AND c.at_time >= ? AND c.at_time <= ? ORDER BY c.at_time, c.id LIMIT 20`,
		roomID, ScheduleUpcoming, now.Add(-late).UTC(), now.Add(early).UTC())
	if err != nil {
		return Schedule{}, false, fmt.Errorf("store: schedules of room %d: %w", roomID, err)
	}
	for len(cands) > 0 {
		best := 0
		for i, x := range cands {
			if x.At.Sub(now).Abs() < cands[best].At.Sub(now).Abs() {
				best = i
			}
		}
		c = cands[best]
		cands = append(cands[:best], cands[best+1:]...)
		res, err := s.db.ExecContext(ctx, `UPDATE mf_live_schedule SET status = ?, started_time = ?, updated_time = ? WHERE id = ? AND status = ?`,
			ScheduleStarted, now.UTC(), now.UTC(), c.ID, ScheduleUpcoming)
		if err != nil {
			return Schedule{}, false, fmt.Errorf("store: starting schedule %d: %w", c.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return Schedule{}, false, fmt.Errorf("store: starting schedule %d: %w", c.ID, err)
		} else if n == 1 {
			c.Status = ScheduleStarted
			t := now.UTC()
			c.Started = &t
			return c, true, nil
		}
	}
	return Schedule{}, false, nil
}

// MissSchedules marks as missed every upcoming live scheduled before
// before, and returns how many. Running it on several nodes at once is
// harmless.
func (s *Store) MissSchedules(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE mf_live_schedule SET status = ?, updated_time = ? WHERE status = ? AND at_time < ?`,
		ScheduleMissed, s.now().UTC(), ScheduleUpcoming, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("store: marking missed schedules: %w", err)
	}
	return res.RowsAffected()
}

package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Recording states.
const (
	RecordRecording = "recording" // being written
	RecordComplete  = "complete"
	RecordFailed    = "failed" // stopped by an error; what was written is kept
	// RecordInterrupted: the server stopped while recording (killed, a
	// power cut); the next start repaired the files, which play to where
	// it stopped.
	RecordInterrupted = "interrupted"
)

// Record is a row of mf_record: one recorded publish session of a room.
type Record struct {
	ID         int64        `db:"id"`
	RoomID     int64        `db:"room_id"`
	Stream     string       `db:"stream"`
	Path       string       `db:"path"` // relative to the recording folder
	Status     string       `db:"status"`
	Error      string       `db:"error"`
	VideoCodec string       `db:"video_codec"`
	AudioCodec string       `db:"audio_codec"`
	Width      int          `db:"width"`
	Height     int          `db:"height"`
	DurationMS int64        `db:"duration_ms"`
	Size       int64        `db:"size"`
	Start      time.Time    `db:"start_time"`
	End        sql.NullTime `db:"end_time"`
	IsDeleted  bool         `db:"is_deleted"`
}

const recordColumns = `id, room_id, stream, path, status, error, video_codec, audio_codec, width, height, duration_ms, size, start_time, end_time, is_deleted`

// NewRecord is what AddRecord needs.
type NewRecord struct {
	RoomID     int64
	Stream     string
	Path       string
	VideoCodec string
	AudioCodec string
	Width      int
	Height     int
	Start      time.Time
}

// AddRecord stores a recording that has started.
func (s *Store) AddRecord(ctx context.Context, r NewRecord) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO mf_record (room_id, stream, path, status, video_codec, audio_codec, width, height, start_time)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.RoomID, r.Stream, r.Path, RecordRecording, r.VideoCodec, r.AudioCodec, r.Width, r.Height, r.Start.UTC())
	if err != nil {
		return 0, fmt.Errorf("store: adding record: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("store: adding record: %w", err)
	}
	return id, nil
}

// RecordEnd is how a recording ended.
type RecordEnd struct {
	Status     string // RecordComplete, RecordInterrupted or RecordFailed
	Error      string
	End        time.Time
	DurationMS int64
	Size       int64
	VideoCodec string
	AudioCodec string
	Width      int
	Height     int
}

// EndRecord stores how a recording ended.
func (s *Store) EndRecord(ctx context.Context, id int64, e RecordEnd) error {
	_, err := s.db.ExecContext(ctx, `UPDATE mf_record SET status = ?, error = ?, end_time = ?, duration_ms = ?, size = ?,
		video_codec = CASE WHEN ? = '' THEN video_codec ELSE ? END, audio_codec = CASE WHEN ? = '' THEN audio_codec ELSE ? END,
		width = CASE WHEN ? = 0 THEN width ELSE ? END, height = CASE WHEN ? = 0 THEN height ELSE ? END
		WHERE id = ?`,
		e.Status, e.Error, e.End.UTC(), e.DurationMS, e.Size,
		e.VideoCodec, e.VideoCodec, e.AudioCodec, e.AudioCodec, e.Width, e.Width, e.Height, e.Height, id)
	if err != nil {
		return fmt.Errorf("store: ending record %d: %w", id, err)
	}
	return nil
}

// RecordByID returns a recording that is not deleted.
func (s *Store) RecordByID(ctx context.Context, id int64) (Record, error) {
	var r Record
	err := s.db.GetContext(ctx, &r, `SELECT `+recordColumns+` FROM mf_record WHERE id = ? AND is_deleted = 0`, id)
	return r, notFound(err, "record")
}

// Records returns a page of a room's recordings, newest first, and how
// many there are.
func (s *Store) Records(ctx context.Context, roomID int64, offset, limit int) ([]Record, int, error) {
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM mf_record WHERE room_id = ? AND is_deleted = 0`, roomID); err != nil {
		return nil, 0, fmt.Errorf("store: counting records: %w", err)
	}
	rs := []Record{}
	err := s.db.SelectContext(ctx, &rs, `SELECT `+recordColumns+` FROM mf_record WHERE room_id = ? AND is_deleted = 0
		ORDER BY id DESC LIMIT ? OFFSET ?`, roomID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("store: listing records: %w", err)
	}
	return rs, total, nil
}

// DeleteRecord marks a recording deleted; its files are the caller's to
// remove.
func (s *Store) DeleteRecord(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE mf_record SET is_deleted = 1 WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: deleting record %d: %w", id, err)
	}
	return nil
}

// ExpiredRecords returns finished recordings that retention removes:
// those that started before olderThan (when not zero), then the oldest
// while the finished recordings' sizes add up to more than maxBytes (when
// positive).
func (s *Store) ExpiredRecords(ctx context.Context, olderThan time.Time, maxBytes int64) ([]Record, error) {
	var all []Record
	if err := s.db.SelectContext(ctx, &all, `SELECT `+recordColumns+` FROM mf_record
		WHERE is_deleted = 0 AND status <> ? ORDER BY start_time, id`, RecordRecording); err != nil {
		return nil, fmt.Errorf("store: listing records: %w", err)
	}
	var total int64
	for _, r := range all {
		total += r.Size
	}
	var out []Record
	for _, r := range all {
		old := !olderThan.IsZero() && r.Start.Before(olderThan)
		over := maxBytes > 0 && total > maxBytes
		if !old && !over {
			break
		}
		out = append(out, r)
		total -= r.Size
	}
	return out, nil
}

// UnfinishedRecords returns the recordings still "recording", oldest
// first: at start-up, those the last run left unfinished.
func (s *Store) UnfinishedRecords(ctx context.Context) ([]Record, error) {
	rs := []Record{}
	if err := s.db.SelectContext(ctx, &rs, `SELECT `+recordColumns+` FROM mf_record WHERE status = ? ORDER BY id`, RecordRecording); err != nil {
		return nil, fmt.Errorf("store: listing unfinished records: %w", err)
	}
	return rs, nil
}

// FailUnfinishedRecords marks recordings still "recording" as failed: at
// start-up none can be, whatever a crash left.
func (s *Store) FailUnfinishedRecords(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE mf_record SET status = ?, error = ? WHERE status = ?`,
		RecordFailed, "the server stopped while recording", RecordRecording)
	if err != nil {
		return 0, fmt.Errorf("store: failing unfinished records: %w", err)
	}
	return res.RowsAffected()
}

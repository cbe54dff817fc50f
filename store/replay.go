package store

import (
	"context"
	"fmt"
	"time"
)

// replayCommentFilter narrows the comments a replay shows beyond their
// room and time: deleted comments (moderation, migration 0008) are not
// shown.
const replayCommentFilter = `AND c.is_deleted = 0`

// ReplayComment is a comment made during a recording, with when.
type ReplayComment struct {
	Comment
	OffsetMS int64 // from the recording's start
}

// RecordComments returns the comments made in a recording's room while it
// was being recorded, from fromMS (inclusive) to toMS (exclusive) into it,
// oldest first, at most limit, and whether there are more after them. A
// toMS of 0 or less means the recording's end (now while it is being
// written).
func (s *Store) RecordComments(ctx context.Context, r Record, fromMS, toMS int64, limit int) ([]ReplayComment, bool, error) {
	end := s.now()
	if r.End.Valid {
		end = r.End.Time
	}
	// Whole milliseconds, as the offsets: a comment is in [from, to) when
	// its offset is.
	start := r.Start.Truncate(time.Millisecond)
	lo := start.Add(time.Duration(fromMS) * time.Millisecond)
	hi := end.Add(time.Millisecond) // the end itself is in
	if toMS > 0 {
		if t := start.Add(time.Duration(toMS) * time.Millisecond); t.Before(hi) {
			hi = t
		}
	}
	out := []ReplayComment{}
	if !lo.Before(hi) || limit <= 0 {
		return out, false, nil
	}
	var cs []Comment
	err := s.db.SelectContext(ctx, &cs, `SELECT c.id, c.room_id, c.user_id, c.content, c.created_time, u.nickname, u.avatar
		FROM mf_comment c JOIN mf_user u ON u.id = c.user_id
		WHERE c.room_id = ? AND c.created_time >= ? AND c.created_time < ? `+replayCommentFilter+`
		ORDER BY c.created_time, c.id LIMIT ?`, r.RoomID, lo.UTC(), hi.UTC(), limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("store: listing comments of record %d: %w", r.ID, err)
	}
	more := len(cs) > limit
	if more {
		cs = cs[:limit]
	}
	for _, c := range cs {
		// In whole milliseconds of both, so that two comments' offsets
		// differ by exactly the difference of their (millisecond) times.
		out = append(out, ReplayComment{Comment: c, OffsetMS: c.Created.UnixMilli() - r.Start.UnixMilli()})
	}
	return out, more, nil
}

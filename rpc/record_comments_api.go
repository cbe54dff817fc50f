package rpc

import (
	"context"

	"github.com/mofang-live/mofang/rpc/roomhub"
)

// maxReplayComments is how many comments one Live.record.comments call
// returns at most; "more" then says to ask again from the last offset.
const maxReplayComments = 500

// RecordCommentsParams are the params of Live.record.comments.
type RecordCommentsParams struct {
	RecordID int64  `json:"record_id" rpc:"required"`
	From     int64  `json:"from"` // ms into the recording, inclusive [0]
	To       int64  `json:"to"`   // ms into the recording, exclusive [0: its end]
	Password string `json:"password"`
}

// ReplayCommentData is a comment of a replay: Live.comment.list's shape
// with its offset into the recording.
type ReplayCommentData struct {
	CommentData
	Offset int64 `json:"offset"` // ms from the recording's start
}

// RecordCommentsData is the data of Live.record.comments.
type RecordCommentsData struct {
	RecordID int64               `json:"record_id"`
	Comments []ReplayCommentData `json:"comments"` // oldest first
	// More says that the window held more than one answer carries: ask
	// again from the last comment's offset (dropping the ids seen).
	More bool `json:"more"`
}

// RecordComments returns the comments made in a recording's room while it
// was recorded, from From to To ms into it, each with its offset, for a
// replay to show them at their moments. Access is the recording's (its
// room's password, unless the owner).
func (a *liveAPI) RecordComments(ctx context.Context, p RecordCommentsParams) (*Reply[RecordCommentsData], error) {
	if p.From < 0 || p.To < 0 || (p.To > 0 && p.To <= p.From) {
		return &Reply[RecordCommentsData]{Status: failf(ErrnoInvalid, "from and to are milliseconds into the recording, from < to (to 0: its end)")}, nil
	}
	r, _, st, err := a.s.recordFor(ctx, p.RecordID, p.Password, false)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[RecordCommentsData]{Status: st}, err
	}
	cs, more, err := a.s.cfg.Store.RecordComments(ctx, r, p.From, p.To, maxReplayComments)
	if err != nil {
		return nil, err
	}
	d := &RecordCommentsData{RecordID: r.ID, Comments: make([]ReplayCommentData, len(cs)), More: more}
	for i, c := range cs {
		d.Comments[i] = ReplayCommentData{
			CommentData: CommentData{ID: c.ID, User: roomhub.User{ID: c.UserID, Nickname: c.Nickname, Avatar: c.Avatar}, Content: c.Content, Time: c.Created.UnixMilli()},
			Offset:      c.OffsetMS,
		}
	}
	return &Reply[RecordCommentsData]{Status: ok(), Data: d}, nil
}

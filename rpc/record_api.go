package rpc

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
)

// RecordFiles removes the files of recordings. The media engine's
// recorder implements it.
type RecordFiles interface {
	// Remove deletes a recording's files, given its path relative to the
	// recording folder.
	Remove(path string) error
}

// RecordProgress is what a RecordFiles may also tell: how far a
// recording being written has got. The media engine's recorder does.
type RecordProgress interface {
	// Progress returns the media duration and the bytes written so far
	// of recording id, and false when it is not being written.
	Progress(id int64) (time.Duration, int64, bool)
}

// noFiles is the RecordFiles of a server that records nothing.
type noFiles struct{}

func (noFiles) Remove(string) error { return nil }

// RecordSignName is the name a recording's URL signs are made for: the
// play sign of "record_<id>", for its room's password generation (see
// urlsign.SignGen), so that a change of the password revokes them.
func RecordSignName(id int64) string { return "record_" + strconv.FormatInt(id, 10) }

// RecordData is a recording as the record methods show it.
type RecordData struct {
	ID         int64   `json:"id"`
	RoomID     string  `json:"room_id"`
	Status     string  `json:"status"`          // recording, complete, interrupted or failed
	Error      string  `json:"error,omitempty"` // why it failed or was interrupted, in plain words
	VideoCodec string  `json:"video_codec"`
	AudioCodec string  `json:"audio_codec"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	Duration   float64 `json:"duration"` // seconds; while recording, so far
	Size       int64   `json:"size"`     // bytes; while recording, so far
	StartTime  int64   `json:"start_time"`
	EndTime    int64   `json:"end_time,omitempty"`
	// HLS and MP4 are the replay URLs, signed: a VOD HLS playlist and one
	// MP4 file to download.
	HLS     string `json:"hls,omitempty"`
	MP4     string `json:"mp4,omitempty"`
	Expires int64  `json:"expires,omitempty"`
}

// recordData shows a recording; with urls, signed for the room's password
// generation gen.
func (s *Server) recordData(ctx context.Context, r store.Record, urls bool, gen int64) RecordData {
	d := RecordData{
		ID: r.ID, RoomID: formatRoomID(r.RoomID), Status: r.Status, Error: plainRecordError(r.Error),
		VideoCodec: r.VideoCodec, AudioCodec: r.AudioCodec, Width: r.Width, Height: r.Height,
		Duration: float64(r.DurationMS) / 1000, Size: r.Size, StartTime: r.Start.Unix(),
	}
	if r.End.Valid {
		d.EndTime = r.End.Time.Unix()
	}
	if r.Status == store.RecordRecording {
		if p, ok := s.cfg.RecordFiles.(RecordProgress); ok {
			if dur, size, ok := p.Progress(r.ID); ok {
				d.Duration, d.Size = dur.Seconds(), size
			}
		}
	}
	if urls {
		sign, exp := s.cfg.Signer.SignGen(urlsign.Play, RecordSignName(r.ID), gen, s.cfg.PlaySignTTL)
		base := s.webBase(s.mediaHost(ctx)) + "/record/" + strconv.FormatInt(r.ID, 10)
		d.HLS = base + "/index.m3u8?sign=" + sign
		d.MP4 = base + ".mp4?sign=" + sign
		d.Expires = exp.Unix()
	}
	return d
}

// plainRecordError is a recording's error as the API shows it. The
// recorder stores plain reasons; rows of older versions may hold a file
// error naming server paths, which is not shown.
func plainRecordError(e string) string {
	if strings.ContainsAny(e, "/\\") {
		return "the recording failed"
	}
	return e
}

// RecordListParams are the params of Live.record.list.
type RecordListParams struct {
	RoomID   RoomID `json:"room_id" rpc:"required"`
	Page     int    `json:"page"`
	Size     int    `json:"size"`
	Password string `json:"password"`
}

// RecordListData is the data of Live.record.list.
type RecordListData struct {
	Records []RecordData `json:"records"`
	Total   int          `json:"total"`
	Page    int          `json:"page"`
	Size    int          `json:"size"`
}

// RecordList lists a room's recordings, newest first, with their replay
// URLs. A room with a password shows them to its owner, or with it.
func (a *liveAPI) RecordList(ctx context.Context, p RecordListParams) (*Reply[RecordListData], error) {
	uid, st, err := a.s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[RecordListData]{Status: st}, err
	}
	pp := PageParams{Page: p.Page, Size: p.Size}
	if _, _, msg := pp.bounds(0); msg != "" {
		return &Reply[RecordListData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	room, st, err := a.s.enterRoom(ctx, uid, p.RoomID, p.Password)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[RecordListData]{Status: st}, err
	}
	rs, total, err := a.s.cfg.Store.Records(ctx, int64(p.RoomID), (pp.Page-1)*pp.Size, pp.Size)
	if err != nil {
		return nil, err
	}
	d := &RecordListData{Records: make([]RecordData, len(rs)), Total: total, Page: pp.Page, Size: pp.Size}
	for i, r := range rs {
		d.Records[i] = a.s.recordData(ctx, r, true, room.PasswordGen)
	}
	return &Reply[RecordListData]{Status: ok(), Data: d}, nil
}

// RecordParams name a recording.
type RecordParams struct {
	RecordID int64  `json:"record_id" rpc:"required"`
	Password string `json:"password"`
}

// RecordRead returns one recording with its replay URLs, on the same terms
// as its room.
func (a *liveAPI) RecordRead(ctx context.Context, p RecordParams) (*Reply[RecordData], error) {
	r, gen, st, err := a.s.recordFor(ctx, p.RecordID, p.Password, false)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[RecordData]{Status: st}, err
	}
	d := a.s.recordData(ctx, r, true, gen)
	return &Reply[RecordData]{Status: ok(), Data: &d}, nil
}

// RecordDeleteParams are the params of Live.record.delete.
type RecordDeleteParams struct {
	RecordID int64 `json:"record_id" rpc:"required"`
}

// RecordDelete deletes a recording and its files: the room's owner only.
func (a *liveAPI) RecordDelete(ctx context.Context, p RecordDeleteParams) (*Reply[struct{}], error) {
	r, _, st, err := a.s.recordFor(ctx, p.RecordID, "", true)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, err
	}
	if r.Status == store.RecordRecording {
		return &Reply[struct{}]{Status: failf(ErrnoInvalid, "the recording is still being written")}, nil
	}
	if err := a.s.cfg.Store.DeleteRecord(ctx, r.ID); err != nil {
		return nil, err
	}
	if err := a.s.cfg.RecordFiles.Remove(r.Path); err != nil {
		a.s.log.Error("removing recording files", "record", r.ID, "err", err)
	}
	return &Reply[struct{}]{Status: ok()}, nil
}

// recordFor loads a recording for the caller: its room's owner, or (unless
// ownerOnly) anyone with the room's password. It also returns the room's
// password generation.
func (s *Server) recordFor(ctx context.Context, id int64, password string, ownerOnly bool) (store.Record, int64, Status, error) {
	uid, st, err := s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return store.Record{}, 0, st, err
	}
	r, err := s.cfg.Store.RecordByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, 0, fail(ErrnoNoRecord), nil
	}
	if err != nil {
		return r, 0, Status{}, err
	}
	room, st, err := s.enterRoom(ctx, uid, RoomID(r.RoomID), password)
	if err != nil || st.Errno != ErrnoOK {
		return r, 0, st, err
	}
	if ownerOnly && room.UserID != uid {
		return r, 0, fail(ErrnoForbidden), nil
	}
	return r, room.PasswordGen, ok(), nil
}

// Recording returns recording id as Live.record.read shows it to its
// room's owner, with replay URLs signed for the room's current password
// generation, on the public host (or localhost without one): for the
// operator's webhooks, which have no caller to check.
func (s *Server) Recording(ctx context.Context, id int64) (RecordData, error) {
	r, err := s.cfg.Store.RecordByID(ctx, id)
	if err != nil {
		return RecordData{}, err
	}
	room, err := s.cfg.Store.RoomByID(ctx, r.RoomID)
	if err != nil {
		return RecordData{}, err
	}
	return s.recordData(ctx, r, true, room.PasswordGen), nil
}

package rpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mofang-live/mofang/store"
)

// scheduleAPI is the Live namespace's scheduled lives: Live.schedule.add,
// .cancel, .list and .read.
type scheduleAPI struct{ s *Server }

// ScheduleLimits tune scheduled lives. Zero fields take the defaults in
// brackets.
type ScheduleLimits struct {
	// A live that begins from Early before a scheduled time to Late after
	// it starts that schedule [30m, 2h]; one still unused Late after its
	// time is marked missed.
	Early time.Duration
	Late  time.Duration
	// Ahead is how far ahead a live may be scheduled [90 days].
	Ahead time.Duration
	// PerRoom is how many upcoming lives a room may have [20].
	PerRoom int
	// Sweep is how often RunScheduleSweep marks missed lives [1m].
	Sweep time.Duration
}

func (l *ScheduleLimits) setDefaults() {
	setDefault(&l.Early, 30*time.Minute)
	setDefault(&l.Late, 2*time.Hour)
	setDefault(&l.Ahead, 90*24*time.Hour)
	setDefault(&l.PerRoom, 20)
	setDefault(&l.Sweep, time.Minute)
}

// maxScheduleTitleLen is the longest title of a scheduled live.
const maxScheduleTitleLen = 64

// ScheduleAddParams are the params of Live.schedule.add.
type ScheduleAddParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	At     int64  `json:"at" rpc:"required"` // when, ms since 1970
	Title  string `json:"title"`             // default: the room's name
	Cover  string `json:"cover"`             // an image URL
}

// ScheduleData is one scheduled live.
type ScheduleData struct {
	ID       int64     `json:"id"`
	RoomID   string    `json:"room_id"`
	RoomName string    `json:"room_name"`
	Host     OwnerInfo `json:"host"`
	At       int64     `json:"at"` // ms since 1970
	Title    string    `json:"title"`
	Cover    string    `json:"cover"`
	// Status is "upcoming", "started", "missed" or "cancelled".
	Status  string `json:"status"`
	Started int64  `json:"started,omitempty"` // when its live began, ms
	Live    bool   `json:"live"`              // the room is live now
}

var scheduleStatusName = map[store.ScheduleStatus]string{
	store.ScheduleUpcoming:  "upcoming",
	store.ScheduleStarted:   "started",
	store.ScheduleMissed:    "missed",
	store.ScheduleCancelled: "cancelled",
}

func (s *Server) scheduleData(c store.Schedule, roomName, stream string, host OwnerInfo) *ScheduleData {
	d := &ScheduleData{ID: c.ID, RoomID: formatRoomID(c.RoomID), RoomName: roomName, Host: host, At: c.At.UnixMilli(),
		Title: c.Title, Cover: c.Cover, Status: scheduleStatusName[c.Status]}
	if c.Started != nil {
		d.Started = c.Started.UnixMilli()
	}
	_, d.Live = s.cfg.Live.LiveStream(stream)
	return d
}

// ScheduleAdd announces a live of the caller's room: its time, title and
// cover. Only the room's owner may.
func (a *scheduleAPI) ScheduleAdd(ctx context.Context, p ScheduleAddParams) (*Reply[ScheduleData], error) {
	s := a.s
	uid, st, err := s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[ScheduleData]{Status: st}, err
	}
	lim := s.cfg.Schedules
	now := s.now()
	at := time.UnixMilli(p.At)
	if !at.After(now) || at.After(now.Add(lim.Ahead)) {
		return &Reply[ScheduleData]{Status: failf(ErrnoInvalid, fmt.Sprintf("at must be a time (ms since 1970) from now to %d days ahead", int(lim.Ahead.Hours()/24)))}, nil
	}
	p.Title = strings.TrimSpace(p.Title)
	if msg := checkText("title", p.Title, maxScheduleTitleLen); msg != "" {
		return &Reply[ScheduleData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	if msg := checkText("cover", p.Cover, maxURLLen); msg != "" {
		return &Reply[ScheduleData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	if p.Cover != "" && !strings.HasPrefix(p.Cover, "https://") && !strings.HasPrefix(p.Cover, "http://") && !strings.HasPrefix(p.Cover, "/") {
		return &Reply[ScheduleData]{Status: failf(ErrnoInvalid, "cover must be an http(s) URL or a path on this site")}, nil
	}
	r, err := s.cfg.Store.RoomByID(ctx, int64(p.RoomID))
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[ScheduleData]{Status: fail(ErrnoNoRoom)}, nil
	}
	if err != nil {
		return nil, err
	}
	if r.UserID != uid {
		return &Reply[ScheduleData]{Status: fail(ErrnoForbidden)}, nil
	}
	if r.Status == store.RoomStopped {
		return &Reply[ScheduleData]{Status: fail(ErrnoRoomStopped)}, nil
	}
	n, err := s.cfg.Store.CountUpcoming(ctx, r.ID, now.Add(-lim.Late))
	if err != nil {
		return nil, err
	}
	if n >= lim.PerRoom {
		return &Reply[ScheduleData]{Status: fail(ErrnoManySchedules)}, nil
	}
	if p.Title == "" {
		p.Title = r.RoomName
	}
	c, err := s.cfg.Store.AddSchedule(ctx, store.NewSchedule{RoomID: r.ID, UserID: uid, At: at, Title: p.Title, Cover: p.Cover})
	if err != nil {
		return nil, err
	}
	host := OwnerInfo{ID: r.Owner.ID, Nickname: r.Owner.Nickname, Avatar: r.Owner.Avatar}
	return &Reply[ScheduleData]{Status: ok(), Data: s.scheduleData(c, r.RoomName, r.Name, host)}, nil
}

// ScheduleIDParams name one scheduled live.
type ScheduleIDParams struct {
	ScheduleID int64 `json:"schedule_id" rpc:"required"`
}

// ScheduleCancel cancels an upcoming live of the caller's room.
func (a *scheduleAPI) ScheduleCancel(ctx context.Context, p ScheduleIDParams) (*Reply[ScheduleData], error) {
	s := a.s
	uid, st, err := s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[ScheduleData]{Status: st}, err
	}
	c, err := s.cfg.Store.ScheduleByID(ctx, p.ScheduleID)
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[ScheduleData]{Status: fail(ErrnoNoSchedule)}, nil
	}
	if err != nil {
		return nil, err
	}
	if c.UserID != uid {
		return &Reply[ScheduleData]{Status: fail(ErrnoForbidden)}, nil
	}
	if err := s.cfg.Store.CancelSchedule(ctx, c.ID); errors.Is(err, store.ErrScheduleDone) {
		return &Reply[ScheduleData]{Status: fail(ErrnoScheduleDone)}, nil
	} else if err != nil {
		return nil, err
	}
	return a.ScheduleRead(ctx, p)
}

// ScheduleRead returns one scheduled live, whatever its status.
func (a *scheduleAPI) ScheduleRead(ctx context.Context, p ScheduleIDParams) (*Reply[ScheduleData], error) {
	s := a.s
	c, err := s.cfg.Store.ScheduleByID(ctx, p.ScheduleID)
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[ScheduleData]{Status: fail(ErrnoNoSchedule)}, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := s.cfg.Store.RoomByID(ctx, c.RoomID)
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[ScheduleData]{Status: fail(ErrnoNoSchedule)}, nil
	}
	if err != nil {
		return nil, err
	}
	host := OwnerInfo{ID: r.Owner.ID, Nickname: r.Owner.Nickname, Avatar: r.Owner.Avatar}
	return &Reply[ScheduleData]{Status: ok(), Data: s.scheduleData(c, r.RoomName, r.Name, host)}, nil
}

// ScheduleListParams are the params of Live.schedule.list, all optional.
type ScheduleListParams struct {
	RoomID RoomID `json:"room_id"` // one room's; absent: every room's
	// From is the earliest time listed, ms since 1970; absent: lives
	// that can still start (scheduled up to the late window ago).
	From  int64 `json:"from"`
	Limit int   `json:"limit"` // default 20, at most 100
}

// ScheduleListData is the data of Live.schedule.list.
type ScheduleListData struct {
	Schedules []*ScheduleData `json:"schedules"`
}

// ScheduleList lists upcoming lives, the soonest first. Anyone may call
// it.
func (a *scheduleAPI) ScheduleList(ctx context.Context, p ScheduleListParams) (*Reply[ScheduleListData], error) {
	s := a.s
	if p.Limit < 0 || p.Limit > maxPageSize || p.From < 0 {
		return &Reply[ScheduleListData]{Status: failf(ErrnoInvalid, fmt.Sprintf("limit must be 1 to %d, from a time in ms", maxPageSize))}, nil
	}
	if p.Limit == 0 {
		p.Limit = defaultPageSize
	}
	from := s.now().Add(-s.cfg.Schedules.Late)
	if p.From > 0 {
		from = time.UnixMilli(p.From)
	}
	list, err := s.cfg.Store.Upcoming(ctx, store.UpcomingOptions{RoomID: int64(p.RoomID), From: from, Limit: p.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]*ScheduleData, len(list))
	for i, c := range list {
		out[i] = s.scheduleData(c.Schedule, c.RoomName, c.Stream, OwnerInfo{ID: c.Owner.ID, Nickname: c.Owner.Nickname, Avatar: c.Owner.Avatar})
	}
	return &Reply[ScheduleListData]{Status: ok(), Data: &ScheduleListData{Schedules: out}}, nil
}

// SweepSchedules marks missed every upcoming live whose late window
// passed, and returns how many. Several nodes may run it at once.
func (s *Server) SweepSchedules(ctx context.Context) (int64, error) {
	return s.cfg.Store.MissSchedules(ctx, s.now().Add(-s.cfg.Schedules.Late))
}

// RunScheduleSweep runs SweepSchedules every ScheduleLimits.Sweep until
// ctx ends.
func (s *Server) RunScheduleSweep(ctx context.Context) {
	t := time.NewTicker(s.cfg.Schedules.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		n, err := s.SweepSchedules(sctx)
		cancel()
		switch {
		case err != nil:
			s.log.Warn("marking missed scheduled lives", "err", err)
		case n > 0:
			s.log.Info("scheduled lives missed", "count", n)
		}
	}
}

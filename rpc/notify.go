package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/store"
)

// NotifyMethod is the notification that tells a user's websockets of
// something outside any room they joined: a host they follow went live
// (Type "live").
const NotifyMethod = "Live.notify"

// CommandLiveNotice asks every node to tell the followers it has
// websockets of that a host went live; Arg is the host's user id, Data
// the Notice.
const CommandLiveNotice = "live-notice"

// noticeTimeout bounds the work of telling one node's followers of one
// live (a database query and the deliveries).
const noticeTimeout = 10 * time.Second

// publishingTimeout bounds what RoomPublishing asks the database.
const publishingTimeout = 5 * time.Second

// Notice is the params of a Live.notify notification. Go programs that
// use go-jsonrpc's client receive it, as room events, with a client
// handler in the "Live" namespace whose method is
//
//	func (h *Handler) Notify(ctx context.Context, n rpc.Notice)
//
// on a websocket opened with "?events=array".
type Notice struct {
	Type     string    `json:"type"` // "live"
	RoomID   int64     `json:"room_id"`
	RoomName string    `json:"room_name"`
	Title    string    `json:"title"` // the scheduled live's title, else the room's name
	Cover    string    `json:"cover"`
	Host     OwnerInfo `json:"host"`
	// Schedule is the scheduled live that started, if the host went live
	// in the window of one.
	Schedule *int64 `json:"schedule_id,omitempty"`
	Time     int64  `json:"time"` // when the live began, ms since 1970
}

// OwnerInfo is a host in a notice.
type OwnerInfo struct {
	ID       int64  `json:"id"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
}

// notifySockets indexes every websocket opened with a valid token by its
// user, rooms or none, for notices.
type notifySockets struct {
	mu sync.Mutex
	by map[int64]map[*wsConn]struct{}
}

func (x *notifySockets) add(uid int64, w *wsConn) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.by == nil {
		x.by = map[int64]map[*wsConn]struct{}{}
	}
	m := x.by[uid]
	if m == nil {
		m = map[*wsConn]struct{}{}
		x.by[uid] = m
	}
	m[w] = struct{}{}
}

func (x *notifySockets) remove(uid int64, w *wsConn) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.by[uid], w)
	if len(x.by[uid]) == 0 {
		delete(x.by, uid)
	}
}

func (x *notifySockets) users() []int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	ids := make([]int64, 0, len(x.by))
	for id := range x.by {
		ids = append(ids, id)
	}
	return ids
}

func (x *notifySockets) of(uid int64) []*wsConn {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]*wsConn, 0, len(x.by[uid]))
	for w := range x.by[uid] {
		out = append(out, w)
	}
	return out
}

// RoomPublishing hears from the media engine that a room's stream
// started (live true) or ended after its grace period (false). Call it
// before the room's status is set: a start that begins a new live (not
// the publisher coming back, on this node or another) marks the room's
// scheduled live in its window started and tells the host's followers
// with a websocket open, on every node, once. It returns at once; the
// followers are told in the background.
func (s *Server) RoomPublishing(ctx context.Context, stream string, live bool) {
	// The media engine's events wait for this: a hung database must not
	// hold them up for long.
	ctx, cancel := context.WithTimeout(ctx, publishingTimeout)
	defer cancel()
	room, err := s.cfg.Store.RoomByNameWithOwner(ctx, stream)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("room of a stream", "stream", stream, "err", err)
		}
		return
	}
	if !live {
		if err := s.cfg.Store.EndLive(ctx, room.ID); err != nil {
			s.log.Warn("ending the live of a room", "room", room.ID, "err", err)
		}
		return
	}
	began, err := s.cfg.Store.BeginLive(ctx, room.ID)
	if err != nil {
		s.log.Warn("beginning the live of a room: followers not told", "room", room.ID, "err", err)
		return
	}
	if !began {
		s.log.Debug("room's live goes on: followers told before", "room", room.ID)
		return
	}
	now := s.now()
	n := Notice{Type: "live", RoomID: room.ID, RoomName: room.RoomName, Title: room.RoomName, Cover: room.Cover,
		Host: OwnerInfo{ID: room.Owner.ID, Nickname: room.Owner.Nickname, Avatar: room.Owner.Avatar}, Time: now.UnixMilli()}
	w := s.cfg.Schedules
	if c, ok, err := s.cfg.Store.StartSchedule(ctx, room.ID, now, w.Early, w.Late); err != nil {
		s.log.Warn("starting the scheduled live of a room", "room", room.ID, "err", err)
	} else if ok {
		n.Schedule = &c.ID
		if c.Title != "" {
			n.Title = c.Title
		}
		if c.Cover != "" {
			n.Cover = c.Cover
		}
		s.log.Info("scheduled live started", "room", room.ID, "schedule", c.ID)
	}
	go s.spreadNotice(n)
}

// spreadNotice tells every node (this one included) to deliver a notice
// to the followers it has websockets of; alone, or when the other nodes
// cannot be reached, this node delivers its own.
func (s *Server) spreadNotice(n Notice) {
	if s.othersExist() {
		data, _ := json.Marshal(n)
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		err := s.cfg.Cluster.Send(ctx, cluster.Command{Kind: CommandLiveNotice, Arg: strconv.FormatInt(n.Host.ID, 10), Data: data})
		cancel()
		if err == nil {
			return
		}
		s.log.Warn("could not tell the other nodes of a live: only this node's followers are told", "room", n.RoomID, "err", err)
	}
	s.deliverNotice(n)
}

// deliverNotice sends a live notice to this node's websockets of the
// host's followers.
func (s *Server) deliverNotice(n Notice) {
	users := s.notifySockets.users()
	if len(users) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), noticeTimeout)
	defer cancel()
	followers, err := s.cfg.Store.FollowersAmong(ctx, n.Host.ID, users)
	if err != nil {
		s.log.Warn("followers of a host gone live: not told", "room", n.RoomID, "err", err)
		return
	}
	msg := notification(NotifyMethod, n)
	told := 0
	for _, uid := range followers {
		for _, w := range s.notifySockets.of(uid) {
			if w.stillLoggedIn() && w.Deliver(msg) {
				told++
			}
		}
	}
	s.log.Info("followers told of a live", "room", n.RoomID, "host", n.Host.ID, "sockets", told)
}

// runNoticeCommand delivers the notice of a CommandLiveNotice.
func (s *Server) runNoticeCommand(c cluster.Command) {
	var n Notice
	if err := json.Unmarshal(c.Data, &n); err != nil || n.Host.ID <= 0 {
		s.log.Warn("cluster command not understood", "kind", c.Kind, "arg", c.Arg)
		return
	}
	go s.deliverNotice(n)
}

// stillLoggedIn tells whether the token the websocket was opened with
// still holds (not expired).
func (w *wsConn) stillLoggedIn() bool {
	_, err := w.s.cfg.Tokens.Verify(callerOf(w.ctx).token)
	return err == nil
}

package rpc

import (
	"context"
	"errors"
	"time"

	"github.com/mofang-live/mofang/rpc/roomhub"
	"github.com/mofang-live/mofang/store"
)

// Limits of leaderboards and session pages.
const (
	defaultRankLimit   = 10
	maxRankLimit       = 100
	defaultSessionPage = 20
)

// Scopes of Live.rank.
const (
	rankScopeLive = "live" // the room's live now, or its last one
	rankScopeAll  = "all"  // all-time
)

// RankParams are the params of Live.rank.
type RankParams struct {
	RoomID   RoomID `json:"room_id" rpc:"required"`
	Scope    string `json:"scope"`    // "live" or "all" ["live"]
	Limit    int    `json:"limit"`    // [10], 1 to 100
	Password string `json:"password"` // for a room with a password, unless joined or the owner
}

// RankItem is one place of a leaderboard.
type RankItem struct {
	Rank     int    `json:"rank"` // from 1; on equal coins who got there first ranks first
	UserID   int64  `json:"user_id"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
	Coins    int64  `json:"coins"`
	Gifts    int64  `json:"gifts"` // gifts given (a gift of count n is n)
}

// RankData is the data of Live.rank.
type RankData struct {
	Scope string `json:"scope"`
	// SessionID is the live session ranked (scope "live"); 0 when the
	// room was never live.
	SessionID int64 `json:"session_id"`
	// Live is true while that session is on.
	Live  bool       `json:"live"`
	Ranks []RankItem `json:"ranks"`
}

// Rank returns a room's top contributors by coins: of its live now (or,
// when not live, of its last live) or of all time. A room with a password
// shows them to its owner, to members joined on this websocket, or with
// the password.
func (a *liveAPI) Rank(ctx context.Context, p RankParams) (*Reply[RankData], error) {
	uid, st, err := a.s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[RankData]{Status: st}, err
	}
	if p.Scope == "" {
		p.Scope = rankScopeLive
	}
	if p.Scope != rankScopeLive && p.Scope != rankScopeAll {
		return &Reply[RankData]{Status: failf(ErrnoInvalid, `scope must be "live" or "all"`)}, nil
	}
	if p.Limit == 0 {
		p.Limit = defaultRankLimit
	}
	if p.Limit < 1 || p.Limit > maxRankLimit {
		return &Reply[RankData]{Status: failf(ErrnoInvalid, "limit must be 1 to 100")}, nil
	}
	if _, in := a.s.memberOf(ctx, p.RoomID, uid); !in {
		if _, st, err := a.s.enterRoom(ctx, uid, p.RoomID, p.Password); err != nil || st.Errno != ErrnoOK {
			return &Reply[RankData]{Status: st}, err
		}
	}
	d := &RankData{Scope: p.Scope, Ranks: []RankItem{}}
	sessionID := store.AllTime
	if p.Scope == rankScopeLive {
		id, open, err := a.s.cfg.Store.LatestSession(ctx, int64(p.RoomID))
		if errors.Is(err, store.ErrNotFound) {
			return &Reply[RankData]{Status: ok(), Data: d}, nil
		}
		if err != nil {
			return nil, err
		}
		sessionID, d.SessionID, d.Live = id, id, open
	}
	cs, err := a.s.cfg.Store.Ranking(ctx, int64(p.RoomID), sessionID, p.Limit)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		d.Ranks = append(d.Ranks, RankItem{Rank: c.Rank, UserID: c.UserID, Nickname: c.Nickname, Avatar: c.Avatar, Coins: c.Coins, Gifts: c.Gifts})
	}
	return &Reply[RankData]{Status: ok(), Data: d}, nil
}

// rankEvent is the "rank" room event of a gift that changed a top three.
func rankEvent(ch *store.RankChange) roomhub.Event {
	entries := func(cs []store.Contributor) []roomhub.RankEntry {
		out := make([]roomhub.RankEntry, len(cs))
		for i, c := range cs {
			out[i] = roomhub.RankEntry{Rank: c.Rank, User: roomhub.User{ID: c.UserID, Nickname: c.Nickname, Avatar: c.Avatar}, Coins: c.Coins}
		}
		return out
	}
	return roomhub.Event{Type: "rank", Rank: &roomhub.RankEvent{
		SessionID: ch.SessionID, Live: entries(ch.Live), All: entries(ch.All), Total: ch.Total,
	}}
}

// SessionListParams are the params of Live.session.list.
type SessionListParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	Page   int    `json:"page"` // from 1 [1]
	Size   int    `json:"size"` // [20], at most 100
}

// SessionData is one live of a room and how it went.
type SessionData struct {
	ID     int64  `json:"id"`
	RoomID string `json:"room_id"`
	Start  int64  `json:"start"` // Unix milliseconds
	End    int64  `json:"end"`   // Unix milliseconds; 0 while live
	Live   bool   `json:"live"`
	// Duration is in seconds (until now while live).
	Duration int64 `json:"duration"`
	// PeakViewers is the most viewers at once, every protocol and node.
	PeakViewers int64 `json:"peak_viewers"`
	// TotalViewers counts plays started (a viewer who comes back counts
	// again), every protocol and node.
	TotalViewers int64 `json:"total_viewers"`
	Comments     int64 `json:"comments"`
	Chatters     int64 `json:"chatters"` // distinct users who commented
	Likes        int64 `json:"likes"`
	Gifts        int64 `json:"gifts"` // a gift of count n is n
	Coins        int64 `json:"coins"`
}

// SampleData is the viewers of a live at one moment.
type SampleData struct {
	Time    int64 `json:"time"` // Unix milliseconds
	Viewers int64 `json:"viewers"`
}

// SessionListData is the data of Live.session.list.
type SessionListData struct {
	Sessions []SessionData `json:"sessions"`
	Total    int           `json:"total"`
	Page     int           `json:"page"`
	Size     int           `json:"size"`
}

// SessionList returns a room's lives, newest first, with their figures:
// for the room's owner and for admins.
func (a *liveAPI) SessionList(ctx context.Context, p SessionListParams) (*Reply[SessionListData], error) {
	if p.Page == 0 {
		p.Page = 1
	}
	if p.Size == 0 {
		p.Size = defaultSessionPage
	}
	if p.Page < 1 || p.Page > maxPage || p.Size < 1 || p.Size > maxPageSize {
		return &Reply[SessionListData]{Status: failf(ErrnoInvalid, pageRangeMsg)}, nil
	}
	if st, err := a.s.roomHostOrAdmin(ctx, int64(p.RoomID)); err != nil || st.Errno != ErrnoOK {
		return &Reply[SessionListData]{Status: st}, err
	}
	ss, total, err := a.s.cfg.Store.Sessions(ctx, int64(p.RoomID), (p.Page-1)*p.Size, p.Size)
	if err != nil {
		return nil, err
	}
	d := &SessionListData{Sessions: make([]SessionData, len(ss)), Total: total, Page: p.Page, Size: p.Size}
	for i, s := range ss {
		d.Sessions[i] = a.s.sessionData(s)
	}
	return &Reply[SessionListData]{Status: ok(), Data: d}, nil
}

// SessionReadParams are the params of Live.session.read.
type SessionReadParams struct {
	SessionID int64 `json:"session_id" rpc:"required"`
}

// SessionReadData is the data of Live.session.read.
type SessionReadData struct {
	SessionData
	// Samples are the viewers over time, every few seconds while live,
	// oldest first.
	Samples []SampleData `json:"samples"`
}

// SessionRead returns one live with its viewers over time: for the
// room's owner and for admins.
func (a *liveAPI) SessionRead(ctx context.Context, p SessionReadParams) (*Reply[SessionReadData], error) {
	if _, st, err := a.s.loginID(ctx); err != nil || st.Errno != ErrnoOK {
		return &Reply[SessionReadData]{Status: st}, err
	}
	s, err := a.s.cfg.Store.Session(ctx, p.SessionID)
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[SessionReadData]{Status: fail(ErrnoNoSession)}, nil
	}
	if err != nil {
		return nil, err
	}
	if st, err := a.s.roomHostOrAdmin(ctx, s.RoomID); err != nil || st.Errno != ErrnoOK {
		return &Reply[SessionReadData]{Status: st}, err
	}
	samples, err := a.s.cfg.Store.Samples(ctx, s.ID)
	if err != nil {
		return nil, err
	}
	d := &SessionReadData{SessionData: a.s.sessionData(s), Samples: make([]SampleData, len(samples))}
	for i, m := range samples {
		d.Samples[i] = SampleData{Time: m.Time.UnixMilli(), Viewers: m.Viewers}
	}
	return &Reply[SessionReadData]{Status: ok(), Data: d}, nil
}

// roomHostOrAdmin checks that the caller owns the room or is an admin.
func (s *Server) roomHostOrAdmin(ctx context.Context, roomID int64) (Status, error) {
	u, st, err := s.currentUser(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return st, err
	}
	r, err := s.cfg.Store.RoomByID(ctx, roomID)
	if errors.Is(err, store.ErrNotFound) {
		return fail(ErrnoNoRoom), nil
	}
	if err != nil {
		return Status{}, err
	}
	if r.UserID != u.ID && !u.IsAdmin {
		return fail(ErrnoForbidden), nil
	}
	return ok(), nil
}

// sessionData is a session as the API shows it.
func (s *Server) sessionData(ls store.LiveSession) SessionData {
	d := SessionData{
		ID: ls.ID, RoomID: formatRoomID(ls.RoomID), Start: ls.Start.UnixMilli(), Live: !ls.End.Valid,
		PeakViewers: ls.Peak, TotalViewers: ls.Total, Comments: ls.Comments, Chatters: ls.Chatters,
		Likes: ls.Likes, Gifts: ls.Gifts, Coins: ls.Coins,
	}
	end := time.Now()
	if ls.End.Valid {
		end = ls.End.Time
		d.End = end.UnixMilli()
	}
	d.Duration = int64(end.Sub(ls.Start).Seconds())
	return d
}

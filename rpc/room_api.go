package rpc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/mofang-live/mofang/rpc/roomhub"
	"github.com/mofang-live/mofang/store"
)

// Limits of gifts and comment pages.
const (
	maxGiftCount       = 9999
	maxRecharge        = 1_000_000
	defaultCommentPage = 20
)

// JoinParams are the params of Live.room.join.
type JoinParams struct {
	RoomID   RoomID `json:"room_id" rpc:"required"`
	Password string `json:"password"`
}

// JoinData is the data of Live.room.join.
type JoinData struct {
	RoomID    string         `json:"room_id"`
	Online    []roomhub.User `json:"online"`
	Viewers   int            `json:"viewers"`
	LookCount int64          `json:"look_count"`
	Likes     int64          `json:"likes"`
	// Cohosts are the room's co-hosts on now, with where to watch them;
	// later changes come as "cohost" events.
	Cohosts []CohostInfo `json:"cohosts"`
}

// RoomJoin enters a live room on this websocket: the connection then gets
// the room's events as Live.room.events notifications, the online list
// first. Refused for a room that does not exist or is not live, and for a
// wrong password.
func (a *liveAPI) RoomJoin(ctx context.Context, p JoinParams) (*Reply[JoinData], error) {
	u, st, err := a.s.currentUser(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[JoinData]{Status: st}, err
	}
	conn := connOf(ctx)
	if conn == nil {
		return &Reply[JoinData]{Status: fail(ErrnoNeedSocket)}, nil
	}
	r, st, err := a.s.enterRoom(ctx, u.ID, p.RoomID, p.Password)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[JoinData]{Status: st}, err
	}
	if _, live := a.s.cfg.Live.LiveStream(r.Name); !live {
		return &Reply[JoinData]{Status: fail(ErrnoNotLive)}, nil
	}
	who := roomhub.User{ID: u.ID, Nickname: u.Nickname, Avatar: u.Avatar}
	if !conn.join(r.ID, who) {
		return &Reply[JoinData]{Status: fail(ErrnoTooManyRooms)}, nil
	}
	first, err := a.s.cfg.Store.RecordViewer(ctx, r.ID, u.ID)
	if err != nil {
		conn.leave(r.ID)
		return nil, err
	}
	online := a.s.rooms.Join(r.ID, conn, who)
	if r.HasPassword() && r.UserID != u.ID {
		// A password change racing this join revoked the sockets in the
		// room before this one was: look again now that it is in.
		now, err := a.s.cfg.Store.RoomByID(ctx, r.ID)
		if err != nil || now.PasswordGen != r.PasswordGen {
			conn.leave(r.ID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			return &Reply[JoinData]{Status: fail(ErrnoRoomPassword)}, nil
		}
	}
	look := r.LookCount
	if first {
		look++
	}
	return &Reply[JoinData]{Status: ok(), Data: &JoinData{
		RoomID: formatRoomID(r.ID), Online: online, Viewers: len(online), LookCount: look, Likes: r.LikeCount,
		Cohosts: a.s.cohostsOf(ctx, r.ID, r.PasswordGen),
	}}, nil
}

// enterRoom loads a room and checks its password for a user: the owner
// needs none. A status other than ok means the caller must answer with it.
//
// It is the one place room passwords are checked (Live.stream.read,
// Live.room.join, comment and record lists, over POST, batches and
// websockets alike), and every guess is counted before bcrypt looks at it:
// per user and room, per room and per address, with growing lockouts (see
// AuthLimits). A missing password is no guess and is not counted.
func (s *Server) enterRoom(ctx context.Context, userID int64, id RoomID, password string) (store.RoomWithOwner, Status, error) {
	r, err := s.cfg.Store.RoomByID(ctx, int64(id))
	if errors.Is(err, store.ErrNotFound) {
		return r, fail(ErrnoNoRoom), nil
	}
	if err != nil {
		return r, Status{}, err
	}
	if r.UserID == userID {
		return r, ok(), nil
	}
	if st, err := s.entryRefused(ctx, r.ID, userID); err != nil || st.Errno != ErrnoOK {
		return r, st, err
	}
	if !r.HasPassword() {
		return r, ok(), nil
	}
	if password == "" {
		return r, fail(ErrnoRoomPassword), nil
	}
	guess, allowed := s.roomGuess(userID, r.ID, r.PasswordGen, callerOf(ctx).ip)
	if !allowed {
		return r, fail(ErrnoTooMany), nil
	}
	if len(password) > maxRoomPasswordLen ||
		bcrypt.CompareHashAndPassword([]byte(r.PasswordHash), []byte(password)) != nil {
		return r, fail(ErrnoRoomPassword), nil
	}
	guess.succeeded()
	s.guard.remember(entrantKey(userID, r.ID, r.PasswordGen), knownEntrantTTL)
	return r, ok(), nil
}

// Reasons of a "reenter" event.
const (
	reenterPassword = "password" // the room's password was set or changed
	reenterBanned   = "banned"   // an admin banned the room
)

// revokeRoom ends what was handed out under a room's earlier password
// generation (the store started a new one), on every node: every
// websocket of a user other than the owner leaves the room and gets a
// "reenter" event, and the media clients playing its stream are
// disconnected (their play signs no longer work, so they come back only
// with the new password).
func (s *Server) revokeRoom(roomID, ownerID int64, stream, reason string) {
	s.revokeHere(roomID, ownerID, stream, reason)
	s.reenterElsewhere(roomID, ownerID, stream, reason)
}

// revokeHere is revokeRoom on this node; stream "" keeps the players.
func (s *Server) revokeHere(roomID, ownerID int64, stream, reason string) {
	sockets := s.evictViewers(roomID, ownerID, reason)
	players := 0
	if stream != "" {
		for _, c := range s.cfg.Media.Clients() {
			if c.Stream == stream && c.Role == "play" && s.cfg.Media.KickClient(c.ID) {
				players++
			}
		}
	}
	s.log.Info("room access revoked", "room", roomID, "reason", reason, "sockets", sockets, "players", players)
}

// evictViewers takes every websocket of a user other than the owner out
// of a room, telling each with a "reenter" event (see roomhub.Notice), and
// returns how many left.
func (s *Server) evictViewers(roomID, ownerID int64, reason string) int {
	notice := roomhub.Notice(roomID, roomhub.Event{Type: "reenter", Reason: reason})
	n := 0
	for _, o := range s.rooms.Occupants(roomID) {
		w, isConn := o.Member.(*wsConn)
		if o.UserID == ownerID || !isConn {
			continue
		}
		if w.leave(roomID) {
			w.Deliver(notice)
			n++
		}
	}
	return n
}

// RoomParams are params naming a room only.
type RoomParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
}

// RoomLeave leaves a room joined on this websocket. Closing the websocket
// leaves every room it joined.
func (a *liveAPI) RoomLeave(ctx context.Context, p RoomParams) (*Reply[struct{}], error) {
	conn := connOf(ctx)
	if conn == nil {
		return &Reply[struct{}]{Status: fail(ErrnoNeedSocket)}, nil
	}
	if !conn.leave(int64(p.RoomID)) {
		return &Reply[struct{}]{Status: fail(ErrnoNotJoined)}, nil
	}
	return &Reply[struct{}]{Status: ok()}, nil
}

// member checks that the caller is logged in and joined the room on this
// websocket, and returns who it is there.
func (s *Server) member(ctx context.Context, id RoomID) (roomhub.User, Status, error) {
	uid, st, err := s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return roomhub.User{}, st, err
	}
	if connOf(ctx) == nil {
		return roomhub.User{}, fail(ErrnoNeedSocket), nil
	}
	u, in := s.memberOf(ctx, id, uid)
	if !in {
		return roomhub.User{}, fail(ErrnoNotJoined), nil
	}
	return u, ok(), nil
}

// CommentParams are the params of Live.comment.
type CommentParams struct {
	RoomID  RoomID `json:"room_id" rpc:"required"`
	Content string `json:"content" rpc:"required"`
}

// CommentData is a comment as stored and broadcast.
type CommentData struct {
	ID      int64        `json:"id"`
	User    roomhub.User `json:"user"`
	Content string       `json:"content"`
	Time    int64        `json:"time"` // Unix milliseconds
}

// Comment says something in a room joined on this websocket: it is stored
// and everyone in the room gets it as a "comment" event. The room's
// moderation applies first (see chatCheck): mutes, followers-only chat,
// the word lists and slow mode.
func (a *liveAPI) Comment(ctx context.Context, p CommentParams) (*Reply[CommentData], error) {
	u, st, err := a.s.member(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[CommentData]{Status: st}, err
	}
	content := strings.TrimSpace(p.Content)
	if msg := checkComment(content, a.s.cfg.Limits.MaxCommentLen); msg != "" {
		return &Reply[CommentData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	content, st, err = a.s.chatCheck(ctx, int64(p.RoomID), u.ID, content)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[CommentData]{Status: st}, err
	}
	if !a.s.allowShared(ctx, "comment:"+strconv.FormatInt(u.ID, 10), a.s.cfg.Limits.Comments) {
		return &Reply[CommentData]{Status: fail(ErrnoTooMany)}, nil
	}
	c, err := a.s.cfg.Store.AddComment(ctx, int64(p.RoomID), u.ID, content)
	if err != nil {
		return nil, err
	}
	a.s.rooms.Publish(int64(p.RoomID), roomhub.Event{Type: "comment", ID: c.ID, Time: c.Created.UnixMilli(), User: &u, Content: content})
	return &Reply[CommentData]{Status: ok(), Data: &CommentData{ID: c.ID, User: u, Content: content, Time: c.Created.UnixMilli()}}, nil
}

// checkComment returns why a comment is not acceptable, or "".
func checkComment(s string, max int) string {
	switch {
	case s == "":
		return "content is empty"
	case !utf8.ValidString(s):
		return "content must be valid UTF-8"
	case utf8.RuneCountInString(s) > max:
		return fmt.Sprintf("content must be at most %d characters", max)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' {
			return "content must not hold control characters"
		}
	}
	return ""
}

// CommentListParams are the params of Live.comment.list.
type CommentListParams struct {
	RoomID   RoomID `json:"room_id" rpc:"required"`
	Page     int    `json:"page"` // from 1 [1]
	Size     int    `json:"size"` // [20], at most 100
	Password string `json:"password"`
}

// CommentListData is the data of Live.comment.list.
type CommentListData struct {
	Comments []CommentData `json:"comments"`
	Total    int           `json:"total"`
	Page     int           `json:"page"`
	Size     int           `json:"size"`
}

// CommentList returns a room's comments, newest first. A room with a
// password shows them to its owner, or with the password.
func (a *liveAPI) CommentList(ctx context.Context, p CommentListParams) (*Reply[CommentListData], error) {
	uid, st, err := a.s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[CommentListData]{Status: st}, err
	}
	if p.Page == 0 {
		p.Page = 1
	}
	if p.Size == 0 {
		p.Size = defaultCommentPage
	}
	if p.Page < 1 || p.Page > maxPage || p.Size < 1 || p.Size > maxPageSize {
		return &Reply[CommentListData]{Status: failf(ErrnoInvalid, pageRangeMsg)}, nil
	}
	if _, in := a.s.memberOf(ctx, p.RoomID, uid); !in {
		if _, st, err := a.s.enterRoom(ctx, uid, p.RoomID, p.Password); err != nil || st.Errno != ErrnoOK {
			return &Reply[CommentListData]{Status: st}, err
		}
	}
	cs, total, err := a.s.cfg.Store.Comments(ctx, int64(p.RoomID), (p.Page-1)*p.Size, p.Size)
	if err != nil {
		return nil, err
	}
	d := &CommentListData{Comments: make([]CommentData, len(cs)), Total: total, Page: p.Page, Size: p.Size}
	for i, c := range cs {
		d.Comments[i] = CommentData{ID: c.ID, User: roomhub.User{ID: c.UserID, Nickname: c.Nickname, Avatar: c.Avatar}, Content: c.Content, Time: c.Created.UnixMilli()}
	}
	return &Reply[CommentListData]{Status: ok(), Data: d}, nil
}

// memberOf reports whether this websocket joined the room as uid (joining
// already checked the password).
func (s *Server) memberOf(ctx context.Context, id RoomID, uid int64) (roomhub.User, bool) {
	conn := connOf(ctx)
	if conn == nil {
		return roomhub.User{}, false
	}
	u, in := conn.member(int64(id))
	return u, in && u.ID == uid
}

// LikeData is the data of Live.like.
type LikeData struct {
	Likes int64 `json:"likes"` // the room's likes in all
}

// Like likes a room joined on this websocket; everyone in it gets a
// "like" event with the room's new count.
func (a *liveAPI) Like(ctx context.Context, p RoomParams) (*Reply[LikeData], error) {
	u, st, err := a.s.member(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[LikeData]{Status: st}, err
	}
	if !a.s.allowShared(ctx, "like:"+strconv.FormatInt(u.ID, 10), a.s.cfg.Limits.Likes) {
		return &Reply[LikeData]{Status: fail(ErrnoTooMany)}, nil
	}
	likes, err := a.s.cfg.Store.AddLikes(ctx, int64(p.RoomID), 1)
	if err != nil {
		return nil, err
	}
	a.s.rooms.Publish(int64(p.RoomID), roomhub.Event{Type: "like", User: &u, Count: 1, Likes: likes})
	return &Reply[LikeData]{Status: ok(), Data: &LikeData{Likes: likes}}, nil
}

// giftAPI is the Gift namespace.
type giftAPI struct{ s *Server }

// GiftData is a gift on offer.
type GiftData struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Image string `json:"image"`
	Coin  int64  `json:"coin"` // price of one
}

// ListParams are the params of Gift.list: none.
type ListParams struct{}

// GiftListData is the data of Gift.list.
type GiftListData struct {
	Gifts []GiftData `json:"gifts"`
}

// List returns the gifts on offer, cheapest first.
func (a *giftAPI) List(ctx context.Context, p ListParams) (*Reply[GiftListData], error) {
	gs, err := a.s.cfg.Store.Gifts(ctx)
	if err != nil {
		return nil, err
	}
	d := &GiftListData{Gifts: make([]GiftData, len(gs))}
	for i, g := range gs {
		d.Gifts[i] = GiftData{ID: g.ID, Name: g.Name, Image: g.Image, Coin: g.Coin}
	}
	return &Reply[GiftListData]{Status: ok(), Data: d}, nil
}

// GiftParams are the params of Live.gift.
type GiftParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	GiftID int64  `json:"gift_id" rpc:"required"`
	Count  int64  `json:"count"` // [1], at most 9999
}

// GiftSentData is the data of Live.gift.
type GiftSentData struct {
	ID      int64 `json:"id"`      // the gift record
	Coin    int64 `json:"coin"`    // coins paid
	Balance int64 `json:"balance"` // the sender's coins left
}

// Gift sends a gift in a room joined on this websocket: its price moves
// from the sender's coins to the room owner's, in one transaction, and
// everyone in the room gets a "gift" event (then a "rank" event when the
// gift changed a top three of the room's leaderboards).
func (a *liveAPI) Gift(ctx context.Context, p GiftParams) (*Reply[GiftSentData], error) {
	u, st, err := a.s.member(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[GiftSentData]{Status: st}, err
	}
	if p.Count == 0 {
		p.Count = 1
	}
	if p.Count < 1 || p.Count > maxGiftCount {
		return &Reply[GiftSentData]{Status: failf(ErrnoInvalid, fmt.Sprintf("count must be 1 to %d", maxGiftCount))}, nil
	}
	if !a.s.allowShared(ctx, "gift:"+strconv.FormatInt(u.ID, 10), a.s.cfg.Limits.Gifts) {
		return &Reply[GiftSentData]{Status: fail(ErrnoTooMany)}, nil
	}
	r, err := a.s.cfg.Store.RoomByID(ctx, int64(p.RoomID))
	if err != nil {
		return nil, err
	}
	if r.UserID == u.ID {
		return &Reply[GiftSentData]{Status: failf(ErrnoInvalid, "you cannot send gifts to your own room")}, nil
	}
	rec, err := a.s.cfg.Store.SendGift(ctx, store.GiftOrder{RoomID: r.ID, FromID: u.ID, GiftID: p.GiftID, Count: p.Count})
	switch {
	case errors.Is(err, store.ErrInsufficientCoins):
		return &Reply[GiftSentData]{Status: fail(ErrnoNoCoins)}, nil
	case errors.Is(err, store.ErrNotFound):
		return &Reply[GiftSentData]{Status: fail(ErrnoNoGift)}, nil
	case err != nil:
		return nil, err
	}
	g := rec.Gift
	a.s.rooms.Publish(r.ID, roomhub.Event{Type: "gift", User: &u, Count: rec.Count, Coin: rec.Coin,
		Gift: &roomhub.GiftEvent{ID: g.ID, Name: g.Name, Image: g.Image, Coin: g.Coin}})
	if rec.Rank != nil {
		a.s.rooms.Publish(r.ID, rankEvent(rec.Rank))
	}
	return &Reply[GiftSentData]{Status: ok(), Data: &GiftSentData{ID: rec.ID, Coin: rec.Coin, Balance: rec.Balance}}, nil
}

// RechargeParams are the params of User.coin.recharge.
type RechargeParams struct {
	Amount int64 `json:"amount" rpc:"required"` // 1 to 1,000,000
	UserID int64 `json:"user_id"`               // admins only: whom to credit [the caller]
}

// CoinData is a user's balance.
type CoinData struct {
	UserID int64 `json:"user_id"`
	Coin   int64 `json:"coin"`
}

// CoinRecharge adds coins to an account: for admins, and for everyone on
// their own account when the server allows it (development).
func (a *userAPI) CoinRecharge(ctx context.Context, p RechargeParams) (*Reply[CoinData], error) {
	u, st, err := a.s.currentUser(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[CoinData]{Status: st}, err
	}
	target := p.UserID
	if target == 0 {
		target = u.ID
	}
	if !u.IsAdmin && (target != u.ID || !a.s.cfg.AllowRecharge) {
		return &Reply[CoinData]{Status: fail(ErrnoForbidden)}, nil
	}
	if p.Amount < 1 || p.Amount > maxRecharge {
		return &Reply[CoinData]{Status: failf(ErrnoInvalid, fmt.Sprintf("amount must be 1 to %d", maxRecharge))}, nil
	}
	balance, err := a.s.cfg.Store.AddCoins(ctx, target, p.Amount)
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[CoinData]{Status: fail(ErrnoNoUser)}, nil
	}
	if err != nil {
		return nil, err
	}
	a.s.log.Info("coins recharged", "by", u.ID, "user", target, "amount", p.Amount)
	return &Reply[CoinData]{Status: ok(), Data: &CoinData{UserID: target, Coin: balance}}, nil
}

package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/rpc/roomhub"
	"github.com/mofang-live/mofang/rpc/wordfilter"
	"github.com/mofang-live/mofang/store"
)

// Limits of moderation.
const (
	maxModerators   = 50
	maxMuteDuration = 30 * 24 * time.Hour
	maxBanDuration  = 365 * 24 * time.Hour
	defaultKick     = 5 * time.Minute
	maxSlowSeconds  = 3600
	maxRoomWords    = 200
)

// Reasons of a "reenter" event sent to one user's websockets.
const (
	reenterKicked     = "kicked"      // a moderator kicked the user: rejoin refused for a while (1031)
	reenterUserBanned = "user_banned" // a moderator banned the user from the room (1032)
)

// Followers tells who follows whom, for followers-only chat.
type Followers interface {
	// IsFollower reports whether user follows host.
	IsFollower(ctx context.Context, userID, hostID int64) (bool, error)
}

// modRole is what a user is in a room, from least to most.
type modRole int

const (
	roleViewer modRole = iota
	roleModerator
	roleAdmin
	roleOwner
)

func (r modRole) String() string {
	return [...]string{"viewer", "moderator", "admin", "owner"}[r]
}

// canAct reports whether a user of role actor may moderate one of role
// target: nobody acts on the owner; the owner and admins act on anyone
// else; a moderator on viewers only (not on another moderator, nor on an
// admin).
func canAct(actor, target modRole) bool {
	switch {
	case target == roleOwner:
		return false
	case actor == roleOwner || actor == roleAdmin:
		return true
	case actor == roleModerator:
		return target == roleViewer
	}
	return false
}

// roleOf tells what user u (admin or not) is in room r.
func (s *Server) roleOf(ctx context.Context, r store.RoomWithOwner, uid int64, admin bool) (modRole, error) {
	switch {
	case r.UserID == uid:
		return roleOwner, nil
	case admin:
		return roleAdmin, nil
	}
	mod, err := s.cfg.Store.IsModerator(ctx, r.ID, uid)
	if err != nil {
		return roleViewer, err
	}
	if mod {
		return roleModerator, nil
	}
	return roleViewer, nil
}

// modAPI is Live.room.mod.* and Live.comment.delete: room moderation.
type modAPI struct{ s *Server }

// moderator is the caller of a moderation method, in its room.
type moderator struct {
	user store.User
	room store.RoomWithOwner
	role modRole
}

// who is the moderator as room events show them.
func (m moderator) who() *roomhub.User {
	return &roomhub.User{ID: m.user.ID, Nickname: m.user.Nickname, Avatar: m.user.Avatar}
}

// log is an entry of the room's log by the moderator.
func (m moderator) log(action string, target int64) store.ModAction {
	return store.ModAction{RoomID: m.room.ID, ActorID: m.user.ID, TargetID: target, Action: action}
}

// moderatorOf checks that the caller is at least least in the room, and,
// when act, that it has not run out of moderation actions (Limits.ModActions,
// shared by every node).
func (s *Server) moderatorOf(ctx context.Context, id RoomID, least modRole, act bool) (moderator, Status, error) {
	u, st, err := s.currentUser(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return moderator{}, st, err
	}
	r, err := s.cfg.Store.RoomByID(ctx, int64(id))
	if errors.Is(err, store.ErrNotFound) {
		return moderator{}, fail(ErrnoNoRoom), nil
	}
	if err != nil {
		return moderator{}, Status{}, err
	}
	role, err := s.roleOf(ctx, r, u.ID, u.IsAdmin)
	if err != nil {
		return moderator{}, Status{}, err
	}
	if role < least {
		if least > roleModerator {
			return moderator{}, fail(ErrnoForbidden), nil
		}
		return moderator{}, fail(ErrnoNotModerator), nil
	}
	if act && !s.allowShared(ctx, "mod:"+strconv.FormatInt(u.ID, 10), s.cfg.Limits.ModActions) {
		return moderator{}, fail(ErrnoTooMany), nil
	}
	return moderator{user: u, room: r, role: role}, ok(), nil
}

// target loads the user a moderator acts on and checks it may.
func (s *Server) target(ctx context.Context, m moderator, uid int64) (store.User, Status, error) {
	if uid == m.user.ID {
		return store.User{}, failf(ErrnoInvalid, "you cannot act on yourself"), nil
	}
	t, err := s.cfg.Store.UserByID(ctx, uid)
	if errors.Is(err, store.ErrNotFound) {
		return t, fail(ErrnoNoUser), nil
	}
	if err != nil {
		return t, Status{}, err
	}
	role, err := s.roleOf(ctx, m.room, t.ID, t.IsAdmin)
	if err != nil {
		return t, Status{}, err
	}
	if !canAct(m.role, role) {
		return t, fail(ErrnoProtected), nil
	}
	return t, ok(), nil
}

// eventUser is u as room events show them.
func eventUser(u store.User) *roomhub.User {
	return &roomhub.User{ID: u.ID, Nickname: u.Nickname, Avatar: u.Avatar}
}

// ModUserParams name a room and a user in it.
type ModUserParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	UserID int64  `json:"user_id" rpc:"required"`
}

// ModeratorData is a moderator as Live.room.mod.list shows them.
type ModeratorData struct {
	ID       int64  `json:"id"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
	Since    int64  `json:"since"` // Unix seconds
}

// ModListData is the data of Live.room.mod.add, .remove and .list.
type ModListData struct {
	Moderators []ModeratorData `json:"moderators"`
}

// RoomModAdd names a moderator of the room: for its owner (and admins).
func (a *modAPI) RoomModAdd(ctx context.Context, p ModUserParams) (*Reply[ModListData], error) {
	return a.setModerator(ctx, p, true)
}

// RoomModRemove ends a user's moderation of the room: for its owner (and
// admins).
func (a *modAPI) RoomModRemove(ctx context.Context, p ModUserParams) (*Reply[ModListData], error) {
	return a.setModerator(ctx, p, false)
}

func (a *modAPI) setModerator(ctx context.Context, p ModUserParams, add bool) (*Reply[ModListData], error) {
	m, st, err := a.s.moderatorOf(ctx, p.RoomID, roleAdmin, true)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[ModListData]{Status: st}, err
	}
	t, err := a.s.cfg.Store.UserByID(ctx, p.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[ModListData]{Status: fail(ErrnoNoUser)}, nil
	}
	if err != nil {
		return nil, err
	}
	if t.ID == m.room.UserID {
		return &Reply[ModListData]{Status: failf(ErrnoInvalid, "the owner is more than a moderator")}, nil
	}
	action := "mod_add"
	if add {
		mods, err := a.s.cfg.Store.Moderators(ctx, m.room.ID)
		if err != nil {
			return nil, err
		}
		if len(mods) >= maxModerators {
			return &Reply[ModListData]{Status: fail(ErrnoTooManyMods)}, nil
		}
		if _, err := a.s.cfg.Store.AddModerator(ctx, m.log(action, t.ID)); err != nil {
			return nil, err
		}
	} else {
		action = "mod_remove"
		removed, err := a.s.cfg.Store.RemoveModerator(ctx, m.log(action, t.ID))
		if err != nil {
			return nil, err
		}
		if !removed {
			return &Reply[ModListData]{Status: failf(ErrnoInvalid, "the user is not a moderator of this room")}, nil
		}
	}
	a.s.rooms.Publish(m.room.ID, roomhub.Event{Type: "mod", Mod: &roomhub.ModEvent{Action: action, By: m.who(), Target: eventUser(t)}})
	a.s.log.Info("room moderator set", "room", m.room.ID, "by", m.user.ID, "user", t.ID, "action", action)
	return a.moderators(ctx, m.room.ID)
}

// RoomModList lists the room's moderators: for its owner, its moderators
// and admins.
func (a *modAPI) RoomModList(ctx context.Context, p RoomParams) (*Reply[ModListData], error) {
	m, st, err := a.s.moderatorOf(ctx, p.RoomID, roleModerator, false)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[ModListData]{Status: st}, err
	}
	return a.moderators(ctx, m.room.ID)
}

func (a *modAPI) moderators(ctx context.Context, roomID int64) (*Reply[ModListData], error) {
	ms, err := a.s.cfg.Store.Moderators(ctx, roomID)
	if err != nil {
		return nil, err
	}
	d := &ModListData{Moderators: make([]ModeratorData, len(ms))}
	for i, m := range ms {
		d.Moderators[i] = ModeratorData{ID: m.UserID, Nickname: m.Nickname, Avatar: m.Avatar, Since: m.Created.Unix()}
	}
	return &Reply[ModListData]{Status: ok(), Data: d}, nil
}

// ModTimedParams name a room, a user and for how long.
type ModTimedParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	UserID int64  `json:"user_id" rpc:"required"`
	// Duration in seconds: a mute's is required (at most 30 days); a
	// kick's defaults to 300 (at most 30 days); a ban's to 0, until
	// lifted (at most 365 days).
	Duration int64 `json:"duration"`
}

// RestrictData is the data of Live.room.mod.mute, .kick and .ban.
type RestrictData struct {
	UserID int64 `json:"user_id"`
	Until  int64 `json:"until"` // Unix seconds; 0: until lifted
}

// RoomModMute mutes a user in the room for a time: their comments are
// refused with errno 1030; everyone in the room gets a "mod" event.
func (a *modAPI) RoomModMute(ctx context.Context, p ModTimedParams) (*Reply[RestrictData], error) {
	if p.Duration < 1 || p.Duration > int64(maxMuteDuration/time.Second) {
		return &Reply[RestrictData]{Status: failf(ErrnoInvalid, fmt.Sprintf("duration must be 1 to %d seconds", int64(maxMuteDuration/time.Second)))}, nil
	}
	return a.restrict(ctx, p, store.RestrictMute, "mute", "")
}

// RoomModKick takes a user out of the room, on every node (their
// websockets get a "reenter" event with reason "kicked"), and refuses
// their coming back (errno 1031) for duration seconds [300].
func (a *modAPI) RoomModKick(ctx context.Context, p ModTimedParams) (*Reply[RestrictData], error) {
	if p.Duration == 0 {
		p.Duration = int64(defaultKick / time.Second)
	}
	if p.Duration < 1 || p.Duration > int64(maxMuteDuration/time.Second) {
		return &Reply[RestrictData]{Status: failf(ErrnoInvalid, fmt.Sprintf("duration must be 1 to %d seconds", int64(maxMuteDuration/time.Second)))}, nil
	}
	return a.restrict(ctx, p, store.RestrictKick, "kick", reenterKicked)
}

// RoomModBan bans a user from the room until lifted (or for duration
// seconds): they are taken out of it on every node ("reenter", reason
// "user_banned"), and Live.room.join, Live.stream.read (no play sign) and
// Live.comment.list refuse them with errno 1032.
func (a *modAPI) RoomModBan(ctx context.Context, p ModTimedParams) (*Reply[RestrictData], error) {
	if p.Duration < 0 || p.Duration > int64(maxBanDuration/time.Second) {
		return &Reply[RestrictData]{Status: failf(ErrnoInvalid, fmt.Sprintf("duration must be 0 (until lifted) to %d seconds", int64(maxBanDuration/time.Second)))}, nil
	}
	return a.restrict(ctx, p, store.RestrictBan, "ban", reenterUserBanned)
}

func (a *modAPI) restrict(ctx context.Context, p ModTimedParams, kind, action, evict string) (*Reply[RestrictData], error) {
	m, st, err := a.s.moderatorOf(ctx, p.RoomID, roleModerator, true)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[RestrictData]{Status: st}, err
	}
	t, st, err := a.s.target(ctx, m, p.UserID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[RestrictData]{Status: st}, err
	}
	entry := m.log(action, t.ID)
	var until int64
	if p.Duration > 0 {
		entry.Until = time.Now().Add(time.Duration(p.Duration) * time.Second).Truncate(time.Millisecond)
		until = entry.Until.Unix()
	}
	if err := a.s.cfg.Store.Restrict(ctx, kind, entry); err != nil {
		return nil, err
	}
	a.s.rooms.Publish(m.room.ID, roomhub.Event{Type: "mod", Mod: &roomhub.ModEvent{Action: action, By: m.who(), Target: eventUser(t), Until: until}})
	if evict != "" {
		a.s.evictUser(m.room.ID, t.ID, evict)
		a.s.evictUserElsewhere(m.room.ID, t.ID, evict)
	}
	a.s.log.Info("room moderation", "room", m.room.ID, "by", m.user.ID, "user", t.ID, "action", action, "until", until)
	return &Reply[RestrictData]{Status: ok(), Data: &RestrictData{UserID: t.ID, Until: until}}, nil
}

// LiftData is the data of Live.room.mod.unmute and .unban.
type LiftData struct {
	UserID int64 `json:"user_id"`
	Lifted bool  `json:"lifted"` // false: there was none in force
}

// RoomModUnmute lifts a user's mute in the room.
func (a *modAPI) RoomModUnmute(ctx context.Context, p ModUserParams) (*Reply[LiftData], error) {
	return a.lift(ctx, p, store.RestrictMute, "unmute")
}

// RoomModUnban lifts a user's ban from the room (a kick too): they may
// join and watch again.
func (a *modAPI) RoomModUnban(ctx context.Context, p ModUserParams) (*Reply[LiftData], error) {
	return a.lift(ctx, p, store.RestrictBan, "unban")
}

func (a *modAPI) lift(ctx context.Context, p ModUserParams, kind, action string) (*Reply[LiftData], error) {
	m, st, err := a.s.moderatorOf(ctx, p.RoomID, roleModerator, true)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[LiftData]{Status: st}, err
	}
	t, st, err := a.s.target(ctx, m, p.UserID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[LiftData]{Status: st}, err
	}
	lifted, err := a.s.cfg.Store.Unrestrict(ctx, kind, m.log(action, t.ID))
	if err != nil {
		return nil, err
	}
	if kind == store.RestrictBan {
		kicked, err := a.s.cfg.Store.Unrestrict(ctx, store.RestrictKick, m.log("unkick", t.ID))
		if err != nil {
			return nil, err
		}
		lifted = lifted || kicked
	}
	if lifted {
		a.s.rooms.Publish(m.room.ID, roomhub.Event{Type: "mod", Mod: &roomhub.ModEvent{Action: action, By: m.who(), Target: eventUser(t)}})
	}
	return &Reply[LiftData]{Status: ok(), Data: &LiftData{UserID: t.ID, Lifted: lifted}}, nil
}

// CommentDeleteParams are the params of Live.comment.delete.
type CommentDeleteParams struct {
	RoomID    RoomID `json:"room_id" rpc:"required"`
	CommentID int64  `json:"comment_id" rpc:"required"`
}

// CommentDelete deletes a comment of the room: it is kept as deleted, no
// longer listed by Live.comment.list, and everyone in the room gets a
// "comment_delete" event with its id. A moderator may delete their own
// comments and viewers' ones, not the owner's, another moderator's or an
// admin's.
func (a *modAPI) CommentDelete(ctx context.Context, p CommentDeleteParams) (*Reply[struct{}], error) {
	m, st, err := a.s.moderatorOf(ctx, p.RoomID, roleModerator, true)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, err
	}
	c, err := a.s.cfg.Store.CommentByID(ctx, p.CommentID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.RoomID != m.room.ID) {
		return &Reply[struct{}]{Status: fail(ErrnoNoComment)}, nil
	}
	if err != nil {
		return nil, err
	}
	if c.UserID != m.user.ID {
		if _, st, err := a.s.target(ctx, m, c.UserID); err != nil || st.Errno != ErrnoOK {
			return &Reply[struct{}]{Status: st}, err
		}
	}
	entry := m.log("delete_comment", c.UserID)
	entry.Detail = strconv.FormatInt(c.ID, 10)
	if err := a.s.cfg.Store.DeleteComment(ctx, entry); errors.Is(err, store.ErrNotFound) {
		return &Reply[struct{}]{Status: fail(ErrnoNoComment)}, nil
	} else if err != nil {
		return nil, err
	}
	a.s.rooms.Publish(m.room.ID, roomhub.Event{Type: "comment_delete", ID: c.ID})
	return &Reply[struct{}]{Status: ok()}, nil
}

// ChatParams are the params of Live.room.mod.settings: absent fields are
// left as they are (none: read the settings).
type ChatParams struct {
	RoomID        RoomID `json:"room_id" rpc:"required"`
	Slow          *int   `json:"slow"`           // slow mode: seconds between a user's comments, 0 to 3600 (0: off)
	FollowersOnly *bool  `json:"followers_only"` // only the owner's followers comment
}

// ChatData is the data of Live.room.mod.settings.
type ChatData struct {
	Slow          int  `json:"slow"`
	FollowersOnly bool `json:"followers_only"`
}

// RoomModSettings reads or sets the room's slow mode and followers-only
// chat (owner, moderators and admins, who are exempt from both); each
// change is logged and told to the room as a "mod" event.
func (a *modAPI) RoomModSettings(ctx context.Context, p ChatParams) (*Reply[ChatData], error) {
	set := p.Slow != nil || p.FollowersOnly != nil
	if p.Slow != nil && (*p.Slow < 0 || *p.Slow > maxSlowSeconds) {
		return &Reply[ChatData]{Status: failf(ErrnoInvalid, fmt.Sprintf("slow must be 0 to %d seconds", maxSlowSeconds))}, nil
	}
	m, st, err := a.s.moderatorOf(ctx, p.RoomID, roleModerator, set)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[ChatData]{Status: st}, err
	}
	if p.Slow != nil {
		entry := m.log("slow", 0)
		entry.Detail = strconv.Itoa(*p.Slow)
		if err := a.s.cfg.Store.SetSlowMode(ctx, *p.Slow, entry); err != nil {
			return nil, err
		}
		a.s.rooms.Publish(m.room.ID, roomhub.Event{Type: "mod", Mod: &roomhub.ModEvent{Action: "slow", By: m.who(), Slow: p.Slow}})
	}
	if p.FollowersOnly != nil {
		entry := m.log("followers_only", 0)
		entry.Detail = strconv.FormatBool(*p.FollowersOnly)
		if err := a.s.cfg.Store.SetFollowersOnly(ctx, *p.FollowersOnly, entry); err != nil {
			return nil, err
		}
		a.s.rooms.Publish(m.room.ID, roomhub.Event{Type: "mod", Mod: &roomhub.ModEvent{Action: "followers_only", By: m.who(), FollowersOnly: p.FollowersOnly}})
	}
	cs, err := a.s.cfg.Store.ChatSettings(ctx, m.room.ID)
	if err != nil {
		return nil, err
	}
	return &Reply[ChatData]{Status: ok(), Data: &ChatData{Slow: cs.SlowSeconds, FollowersOnly: cs.FollowersOnly}}, nil
}

// WordsParams are the params of Live.room.mod.words: with words (and
// mode) it sets the room's own list, without it reads it.
type WordsParams struct {
	RoomID RoomID    `json:"room_id" rpc:"required"`
	Words  *[]string `json:"words"` // at most 200, each 1 to 32 characters
	Mode   *string   `json:"mode"`  // "mask" [as before] or "refuse"
}

// WordsData is the data of Live.room.mod.words.
type WordsData struct {
	Words []string `json:"words"`
	Mode  string   `json:"mode"`
	// Global is how many words the server's own list has (its words are
	// not shown), and GlobalMode its mode.
	Global     int    `json:"global"`
	GlobalMode string `json:"global_mode"`
}

// RoomModWords reads (owner, moderators, admins) or sets (owner and
// admins) the room's own word list: comments holding one of its words,
// whatever their case, are masked with '*' or refused (errno 1037), as
// its mode says, and so they are for the server's list (word-filter).
func (a *modAPI) RoomModWords(ctx context.Context, p WordsParams) (*Reply[WordsData], error) {
	set := p.Words != nil || p.Mode != nil
	least := roleModerator
	if set {
		least = roleAdmin
	}
	m, st, err := a.s.moderatorOf(ctx, p.RoomID, least, set)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[WordsData]{Status: st}, err
	}
	cs, err := a.s.cfg.Store.ChatSettings(ctx, m.room.ID)
	if err != nil {
		return nil, err
	}
	if set {
		mode, words := cs.WordMode, cs.Words
		if p.Mode != nil {
			mode = *p.Mode
		}
		if p.Words != nil {
			words = *p.Words
		}
		if len(words) > maxRoomWords {
			return &Reply[WordsData]{Status: failf(ErrnoInvalid, fmt.Sprintf("at most %d words", maxRoomWords))}, nil
		}
		for _, w := range words {
			if strings.ContainsAny(w, "\r\n") {
				return &Reply[WordsData]{Status: failf(ErrnoInvalid, "a word must not hold a newline")}, nil
			}
		}
		l, err := wordfilter.New(mode, words)
		if err != nil {
			return &Reply[WordsData]{Status: failf(ErrnoInvalid, strings.TrimPrefix(err.Error(), "wordfilter: "))}, nil
		}
		entry := m.log("words", 0)
		entry.Detail = fmt.Sprintf("%s, %d words", l.Mode(), l.Len())
		if err := a.s.cfg.Store.SetRoomWords(ctx, l.Mode(), l.Words(), entry); err != nil {
			return nil, err
		}
		cs.WordMode, cs.Words = l.Mode(), l.Words()
	}
	return &Reply[WordsData]{Status: ok(), Data: &WordsData{Words: cs.Words, Mode: cs.WordMode,
		Global: a.s.cfg.WordFilter.Len(), GlobalMode: a.s.cfg.WordFilter.Mode()}}, nil
}

// ModLogParams are the params of Live.room.mod.log.
type ModLogParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	Page   int    `json:"page"` // from 1 [1]
	Size   int    `json:"size"` // [20], at most 100
}

// ModLogEntry is one moderation action.
type ModLogEntry struct {
	ID     int64         `json:"id"`
	Action string        `json:"action"` // mod_add, mod_remove, mute, unmute, kick, ban, unban, unkick, delete_comment, slow, followers_only, words
	By     roomhub.User  `json:"by"`
	Target *roomhub.User `json:"target,omitempty"`
	Detail string        `json:"detail,omitempty"` // the comment's id, the new setting
	Until  int64         `json:"until,omitempty"`  // Unix seconds
	Time   int64         `json:"time"`             // Unix milliseconds
}

// ModLogData is the data of Live.room.mod.log.
type ModLogData struct {
	Actions []ModLogEntry `json:"actions"`
	Total   int           `json:"total"`
	Page    int           `json:"page"`
	Size    int           `json:"size"`
}

// RoomModLog lists the room's moderation actions, newest first: for its
// owner, its moderators and admins.
func (a *modAPI) RoomModLog(ctx context.Context, p ModLogParams) (*Reply[ModLogData], error) {
	pp := PageParams{Page: p.Page, Size: p.Size}
	if _, _, msg := pp.bounds(0); msg != "" {
		return &Reply[ModLogData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	m, st, err := a.s.moderatorOf(ctx, p.RoomID, roleModerator, false)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[ModLogData]{Status: st}, err
	}
	as, total, err := a.s.cfg.Store.ModLog(ctx, m.room.ID, (pp.Page-1)*pp.Size, pp.Size)
	if err != nil {
		return nil, err
	}
	d := &ModLogData{Actions: make([]ModLogEntry, len(as)), Total: total, Page: pp.Page, Size: pp.Size}
	for i, x := range as {
		e := ModLogEntry{ID: x.ID, Action: x.Action, By: roomhub.User{ID: x.ActorID, Nickname: x.ActorNickname},
			Detail: x.Detail, Time: x.Created.UnixMilli()}
		if x.TargetID != 0 {
			e.Target = &roomhub.User{ID: x.TargetID, Nickname: x.TargetNickname}
		}
		if !x.Until.IsZero() {
			e.Until = x.Until.Unix()
		}
		d.Actions[i] = e
	}
	return &Reply[ModLogData]{Status: ok(), Data: d}, nil
}

// ModMeData is the data of Live.room.mod.me.
type ModMeData struct {
	Role       string `json:"role"`        // owner, admin, moderator or viewer
	MutedUntil int64  `json:"muted_until"` // Unix seconds; 0: not muted
	ChatData
}

// RoomModMe tells the caller what they are in the room, whether they are
// muted, and the room's chat settings: what a page needs to show (or not)
// the moderation actions.
func (a *modAPI) RoomModMe(ctx context.Context, p RoomParams) (*Reply[ModMeData], error) {
	m, st, err := a.s.moderatorOf(ctx, p.RoomID, roleViewer, false)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[ModMeData]{Status: st}, err
	}
	d := &ModMeData{Role: m.role.String()}
	rs, err := a.s.cfg.Store.Restrictions(ctx, m.room.ID, m.user.ID)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.Kind == store.RestrictMute {
			d.MutedUntil = r.Until.Unix()
		}
	}
	cs, err := a.s.cfg.Store.ChatSettings(ctx, m.room.ID)
	if err != nil {
		return nil, err
	}
	d.Slow, d.FollowersOnly = cs.SlowSeconds, cs.FollowersOnly
	return &Reply[ModMeData]{Status: ok(), Data: d}, nil
}

// entryRefused tells whether a restriction keeps a user (not the owner)
// out of a room: a ban (1032) or a kick not over (1031).
func (s *Server) entryRefused(ctx context.Context, roomID, userID int64) (Status, error) {
	rs, err := s.cfg.Store.Restrictions(ctx, roomID, userID)
	if err != nil {
		return Status{}, err
	}
	st := ok()
	for _, r := range rs {
		switch r.Kind {
		case store.RestrictBan:
			if r.Until.IsZero() {
				return fail(ErrnoBannedHere), nil
			}
			return failf(ErrnoBannedHere, "you are banned from this room until "+r.Until.UTC().Format(time.RFC3339)), nil
		case store.RestrictKick:
			st = failf(ErrnoKicked, "you were kicked out of this room; you may come back after "+r.Until.UTC().Format(time.RFC3339))
		}
	}
	return st, nil
}

// chatCheck applies the room's moderation to a comment of user u: a mute
// (1030), followers-only chat (1036), the word lists (masked, or 1037)
// and slow mode (1035, one comment per user every N seconds, counted in
// the cluster's Limiter so that it holds on every node). The owner,
// moderators and admins are exempt from followers-only and slow mode. It
// returns the content to store.
func (s *Server) chatCheck(ctx context.Context, roomID, uid int64, content string) (string, Status, error) {
	r, err := s.cfg.Store.RoomByID(ctx, roomID)
	if errors.Is(err, store.ErrNotFound) {
		return "", fail(ErrnoNoRoom), nil
	}
	if err != nil {
		return "", Status{}, err
	}
	if r.UserID != uid {
		rs, err := s.cfg.Store.Restrictions(ctx, roomID, uid)
		if err != nil {
			return "", Status{}, err
		}
		for _, x := range rs {
			if x.Kind == store.RestrictMute {
				return "", failf(ErrnoMuted, "you are muted in this room until "+x.Until.UTC().Format(time.RFC3339)), nil
			}
		}
	}
	cs, err := s.cfg.Store.ChatSettings(ctx, roomID)
	if err != nil {
		return "", Status{}, err
	}
	exempt := false
	if cs.SlowSeconds > 0 || cs.FollowersOnly {
		acct, st, err := s.account(ctx)
		if err != nil || st.Errno != ErrnoOK {
			return "", st, err
		}
		role, err := s.roleOf(ctx, r, uid, acct.admin)
		if err != nil {
			return "", Status{}, err
		}
		exempt = role != roleViewer
	}
	if cs.FollowersOnly && !exempt {
		follows, err := s.cfg.Followers.IsFollower(ctx, uid, r.UserID)
		if err != nil {
			return "", Status{}, err
		}
		if !follows {
			return "", fail(ErrnoFollowersOnly), nil
		}
	}
	out, refused := s.filterWords(cs, content)
	if refused {
		return "", fail(ErrnoWordRefused), nil
	}
	if cs.SlowSeconds > 0 && !exempt {
		key := fmt.Sprintf("slow:%d:%d:%d", roomID, uid, cs.SlowSeconds)
		if !s.allowShared(ctx, key, Rate{Every: time.Duration(cs.SlowSeconds) * time.Second, Burst: 1}) {
			return "", failf(ErrnoSlowMode, fmt.Sprintf("slow mode: one comment every %d seconds", cs.SlowSeconds)), nil
		}
	}
	return out, ok(), nil
}

// filterWords applies the server's and the room's word lists.
func (s *Server) filterWords(cs store.ChatSettings, content string) (string, bool) {
	var room *wordfilter.List
	if len(cs.Words) > 0 {
		l, err := wordfilter.New(cs.WordMode, cs.Words)
		if err != nil {
			s.log.Warn("a room's word list is not usable", "error", err)
		} else {
			room = l
		}
	}
	return wordfilter.Apply(content, s.cfg.WordFilter, room)
}

// evictUser takes every websocket of one user on this node out of a room,
// telling each with a "reenter" event, and returns how many left.
func (s *Server) evictUser(roomID, userID int64, reason string) int {
	notice := roomhub.Notice(roomID, roomhub.Event{Type: "reenter", Reason: reason})
	n := 0
	for _, o := range s.rooms.Occupants(roomID) {
		w, isConn := o.Member.(*wsConn)
		if o.UserID != userID || !isConn {
			continue
		}
		if w.leave(roomID) {
			w.Deliver(notice)
			n++
		}
	}
	return n
}

// EvictCommand is the Data of a CommandRoomEvictUser.
type EvictCommand struct {
	From   string `json:"from"` // the node that sent it, which took its own sockets out already
	User   int64  `json:"user"`
	Reason string `json:"reason"` // of the "reenter" event: "kicked", "user_banned"
}

// evictUserElsewhere asks every other node to take a user's sockets out
// of a room.
func (s *Server) evictUserElsewhere(roomID, userID int64, reason string) {
	if !s.othersExist() {
		return
	}
	data, _ := json.Marshal(EvictCommand{From: s.cfg.Cluster.Self().ID, User: userID, Reason: reason})
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	c := cluster.Command{Kind: CommandRoomEvictUser, Arg: strconv.FormatInt(roomID, 10), Data: data}
	if err := s.cfg.Cluster.Send(ctx, c); err != nil {
		s.log.Warn("could not tell the other nodes to take a user out of a room", "room", roomID, "user", userID, "error", err)
	}
}

// runEvict runs a CommandRoomEvictUser sent by another node.
func (s *Server) runEvict(c cluster.Command) {
	var d EvictCommand
	room, err := strconv.ParseInt(c.Arg, 10, 64)
	if err != nil || json.Unmarshal(c.Data, &d) != nil {
		s.log.Warn("cluster command not understood", "kind", c.Kind, "arg", c.Arg)
		return
	}
	if d.From == s.cfg.Cluster.Self().ID {
		return
	}
	n := s.evictUser(room, d.User, d.Reason)
	s.log.Info("cluster command: user taken out of room", "room", room, "user", d.User, "reason", d.Reason, "sockets", n)
}

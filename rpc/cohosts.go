package rpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mofang-live/mofang/rpc/roomhub"
	"github.com/mofang-live/mofang/store"
)

// CohostEvent are the params of a Live.cohost.events notification, sent to
// the websockets in the room of one user only. From is the other side.
// Type is one of:
//
//   - "invite": the host (From) invites you to co-host: answer with
//     Live.cohost.accept or Live.cohost.reject.
//   - "request": a viewer (From) asks to co-host: answer with
//     Live.cohost.accept or reject, naming the viewer (user_id).
//   - "accept": the other side accepted. To the guest, when the host
//     accepted its request, Publish is where to publish the guest stream.
//   - "reject": the other side said no.
//   - "cancel": the other side withdrew its invitation or request, or left
//     the room.
//   - "timeout": nobody answered in time.
//
// The room hears of the co-host session itself in "cohost" room events.
type CohostEvent struct {
	Type    string        `json:"type"`
	RoomID  int64         `json:"room_id"`
	From    *roomhub.User `json:"from,omitempty"`
	Publish *WHIPPublish  `json:"publish,omitempty"`
	Time    int64         `json:"time"` // Unix milliseconds
}

// Why a co-host session ended, in a "cohost" room event of state "off".
const (
	offEnded   = "ended"   // Live.cohost.end, by the host or the guest
	offLeft    = "left"    // the guest left the room
	offStopped = "stopped" // the guest's stream ended
)

// tellCohost sends a co-host event to some websockets.
func tellCohost(conns []*wsConn, ev CohostEvent) {
	ev.Time = time.Now().UnixMilli()
	tell(conns, notification(CohostEventsMethod, ev))
}

// cohostBook holds the co-host sessions, invitations and requests of the
// rooms, in memory: a restart ends them (the guest streams end with the
// engine).
type cohostBook struct {
	mu       sync.Mutex
	rooms    map[int64]*cohostRoom
	byStream map[string]*cohostRoom // by guest stream
}

// cohostRoom is one room's co-host state: at most one guest, and the
// invitations and requests waiting, one per viewer.
type cohostRoom struct {
	id      int64
	stream  string       // the room's own stream
	host    roomhub.User // the room's owner
	pending map[int64]*cohostOffer
	guest   *cohostGuest
}

// cohostOffer is an invitation of the host to a viewer (invite), or a
// viewer's request to the host.
type cohostOffer struct {
	viewer roomhub.User
	invite bool
	timer  *time.Timer
}

// cohostGuest is the co-host on now.
type cohostGuest struct {
	user   roomhub.User
	stream string
	gen    int64  // the room's password generation: of the play signs
	host   string // the media host name of the URLs in room events
	since  time.Time
	live   bool // its stream is being published
}

// room returns the co-host state of a room, made if need be. b.mu is
// held.
func (b *cohostBook) room(r store.RoomWithOwner) *cohostRoom {
	if b.rooms == nil {
		b.rooms = map[int64]*cohostRoom{}
		b.byStream = map[string]*cohostRoom{}
	}
	cr := b.rooms[r.ID]
	if cr == nil {
		cr = &cohostRoom{
			id: r.ID, stream: r.Name, pending: map[int64]*cohostOffer{},
			host: roomhub.User{ID: r.UserID, Nickname: r.Owner.Nickname, Avatar: r.Owner.Avatar},
		}
		b.rooms[r.ID] = cr
	}
	return cr
}

// dropIfIdle forgets a room with nothing going on. b.mu is held.
func (b *cohostBook) dropIfIdle(cr *cohostRoom) {
	if cr.guest == nil && len(cr.pending) == 0 && b.rooms[cr.id] == cr {
		delete(b.rooms, cr.id)
	}
}

// guestStreamName is the stream of a co-host session:
// "<room stream>-guest-<user id>-<8 hex digits>", new for each session so
// that the engine's events of an earlier one never touch it.
func guestStreamName(roomStream string, uid int64) string {
	var b [4]byte
	rand.Read(b[:])
	return roomStream + "-guest-" + strconv.FormatInt(uid, 10) + "-" + hex.EncodeToString(b[:])
}

// parseGuestStream reads a guest stream's name.
func parseGuestStream(name string) (uid int64, ok bool) {
	i := strings.LastIndex(name, "-guest-")
	if i <= 0 {
		return 0, false
	}
	digits, session, ok := strings.Cut(name[i+len("-guest-"):], "-")
	if !ok || len(session) != 8 || !isLowerHex(session) {
		return 0, false
	}
	return parseUserID(digits)
}

// isLowerHex reports whether s is made of lower-case hex digits only.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// GuestStream reports whether name is the stream of a co-host on now, and
// the stream of its room: the media engine takes the guest's publish sign
// (urlsign, generation 0) for it, and plays it by the room's rules (a
// room with a password needs a play sign of the room's password
// generation). Once the session ends, the stream is refused and ended.
func (s *Server) GuestStream(name string) (roomStream string, ok bool) {
	b := &s.cohosts
	b.mu.Lock()
	defer b.mu.Unlock()
	cr := b.byStream[name]
	if cr == nil {
		return "", false
	}
	return cr.stream, true
}

// guestPublishing hears that a guest stream started or stopped.
func (s *Server) guestPublishing(name string, live bool) {
	b := &s.cohosts
	b.mu.Lock()
	cr := b.byStream[name]
	if cr == nil {
		b.mu.Unlock()
		return
	}
	var kick []string
	if live {
		g := cr.guest
		g.live = true
		play := s.signedPlayAt(g.host, g.stream, g.gen)
		s.rooms.Publish(cr.id, roomhub.Event{Type: "cohost", State: "live", User: &g.user, Play: &play})
	} else {
		kick = s.endCohostLocked(cr, offStopped)
	}
	b.mu.Unlock()
	s.kickStreams(kick)
}

// endCohostLocked ends a room's co-host session: the room gets "cohost"
// off. It returns the guest stream, to end. b.mu is held.
func (s *Server) endCohostLocked(cr *cohostRoom, reason string) []string {
	b := &s.cohosts
	g := cr.guest
	cr.guest = nil
	delete(b.byStream, g.stream)
	b.dropIfIdle(cr)
	s.rooms.Publish(cr.id, roomhub.Event{Type: "cohost", State: "off", User: &g.user, Reason: reason})
	s.log.Info("co-host ended", "room", cr.id, "guest", g.user.ID, "reason", reason)
	return []string{g.stream}
}

// takeOfferLocked forgets an invitation or request. b.mu is held.
func (s *Server) takeOfferLocked(cr *cohostRoom, o *cohostOffer) {
	o.timer.Stop()
	delete(cr.pending, o.viewer.ID)
	s.cohosts.dropIfIdle(cr)
}

// cohostRingOut ends an invitation or request nobody answered in time:
// both sides get "timeout".
func (s *Server) cohostRingOut(roomID int64, o *cohostOffer) {
	b := &s.cohosts
	b.mu.Lock()
	defer b.mu.Unlock()
	cr := b.rooms[roomID]
	if cr == nil || cr.pending[o.viewer.ID] != o {
		return
	}
	s.takeOfferLocked(cr, o)
	tellCohost(s.userSockets.inRoom(o.viewer.ID, roomID), CohostEvent{Type: "timeout", RoomID: roomID, From: &cr.host})
	tellCohost(s.userSockets.inRoom(cr.host.ID, roomID), CohostEvent{Type: "timeout", RoomID: roomID, From: &o.viewer})
}

// cohostLeft hears that a websocket of user uid left a room: once none of
// the user's is left there, the user's invitation or request is withdrawn
// (the host gets "cancel") and a co-host session of the user as guest
// ends.
func (s *Server) cohostLeft(roomID, uid int64) {
	b := &s.cohosts
	b.mu.Lock()
	cr := b.rooms[roomID]
	if cr == nil || len(s.userSockets.inRoom(uid, roomID)) > 0 {
		b.mu.Unlock()
		return
	}
	if o := cr.pending[uid]; o != nil {
		s.takeOfferLocked(cr, o)
		tellCohost(s.userSockets.inRoom(cr.host.ID, roomID), CohostEvent{Type: "cancel", RoomID: roomID, From: &o.viewer})
	}
	var kick []string
	if cr.guest != nil && cr.guest.user.ID == uid {
		kick = s.endCohostLocked(cr, offLeft)
	}
	b.mu.Unlock()
	s.kickStreams(kick)
}

// CohostInfo is the co-host of a room as Live.stream.read and
// Live.room.join show it.
type CohostInfo struct {
	User  roomhub.User `json:"user"`
	Live  bool         `json:"live"`  // the guest's stream is being published
	Since int64        `json:"since"` // Unix milliseconds
	Play  roomhub.Play `json:"play"`
}

// cohostsOf lists the co-hosts of a room (none or one), with play URLs
// signed for the room's password generation gen, for a caller who may
// watch the room.
func (s *Server) cohostsOf(ctx context.Context, roomID, gen int64) []CohostInfo {
	b := &s.cohosts
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []CohostInfo{}
	if cr := b.rooms[roomID]; cr != nil && cr.guest != nil {
		g := cr.guest
		out = append(out, CohostInfo{User: g.user, Live: g.live, Since: g.since.UnixMilli(), Play: s.signedPlay(ctx, g.stream, gen)})
	}
	return out
}

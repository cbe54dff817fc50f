package rpc

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/mofang-live/mofang/rpc/roomhub"
	"github.com/mofang-live/mofang/store"
)

// cohostAPI holds the Live.cohost methods: the host of a room brings a
// viewer on as co-host (连麦), who publishes a guest stream beside the
// host's.
type cohostAPI struct{ s *Server }

// CohostUserParams name a room and a user in it.
type CohostUserParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	UserID int64  `json:"user_id" rpc:"required"`
}

// CohostAnswerParams are the params of Live.cohost.accept and reject.
type CohostAnswerParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	// UserID is the viewer whose request the host answers (or whose
	// invitation the host withdraws); a viewer leaves it out.
	UserID int64 `json:"user_id"`
}

// CohostData is the data of the Live.cohost methods.
type CohostData struct {
	RoomID int64 `json:"room_id"`
	// User is the other side: the viewer invited, the host asked, the
	// guest (or the host, to the guest) once accepted.
	User roomhub.User `json:"user"`
	// Stream is the guest stream (accept).
	Stream string `json:"stream,omitempty"`
	// Publish is where the guest publishes (accept by the guest).
	Publish *WHIPPublish `json:"publish,omitempty"`
	// Play is where to watch the guest (accept).
	Play *roomhub.Play `json:"play,omitempty"`
	// TimeoutMS is how long the invitation or request waits (invite,
	// request).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// cohostMember checks that the caller is a member of room id (as member
// does) and loads the room, which must be live and not banned, for the
// co-host methods that make or take an offer. A status other than ok
// means the caller must answer with it.
func (s *Server) cohostMember(ctx context.Context, id RoomID) (roomhub.User, store.RoomWithOwner, Status, error) {
	var r store.RoomWithOwner
	u, st, err := s.member(ctx, id)
	if err != nil || st.Errno != ErrnoOK {
		return u, r, st, err
	}
	r, err = s.cfg.Store.RoomByID(ctx, int64(id))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return u, r, fail(ErrnoNoRoom), nil
	case err != nil:
		return u, r, Status{}, err
	case r.Status == store.RoomStopped:
		return u, r, fail(ErrnoRoomStopped), nil
	case r.IsBanned:
		return u, r, failf(ErrnoForbidden, "the room is banned"), nil
	}
	return u, r, ok(), nil
}

// cohostLogin checks that the caller is logged in and loads room id, for
// the co-host methods that end an offer or a session. A status other than
// ok means the caller must answer with it.
func (s *Server) cohostLogin(ctx context.Context, id RoomID) (int64, store.RoomWithOwner, Status, error) {
	var r store.RoomWithOwner
	uid, st, err := s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return uid, r, st, err
	}
	r, err = s.cfg.Store.RoomByID(ctx, int64(id))
	if errors.Is(err, store.ErrNotFound) {
		return uid, r, fail(ErrnoNoRoom), nil
	}
	if err != nil {
		return uid, r, Status{}, err
	}
	return uid, r, ok(), nil
}

// offerLocked records an invitation or request of viewer v in a room,
// replacing the viewer's earlier one; false when too many wait. b.mu is
// held.
func (s *Server) offerLocked(cr *cohostRoom, v roomhub.User, invite bool) bool {
	if old := cr.pending[v.ID]; old != nil {
		old.timer.Stop()
	} else if len(cr.pending) >= s.cfg.Calls.MaxCohostPending {
		return false
	}
	o := &cohostOffer{viewer: v, invite: invite}
	roomID := cr.id
	o.timer = time.AfterFunc(s.cfg.Calls.RingTimeout, func() { s.cohostRingOut(roomID, o) })
	cr.pending[v.ID] = o
	return true
}

// CohostInvite invites a viewer in the room to co-host: the host, joined
// on this websocket, names a user joined in the room, whose websockets
// there (only theirs) get a Live.cohost.events "invite".
func (a *cohostAPI) CohostInvite(ctx context.Context, p CohostUserParams) (*Reply[CohostData], error) {
	s := a.s
	u, r, st, err := s.cohostMember(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[CohostData]{Status: st}, err
	}
	if r.UserID != u.ID {
		return &Reply[CohostData]{Status: failf(ErrnoForbidden, "only the host invites co-hosts")}, nil
	}
	if p.UserID <= 0 || p.UserID == u.ID {
		return &Reply[CohostData]{Status: failf(ErrnoInvalid, "user_id must be a viewer in the room")}, nil
	}
	if !s.allowShared(ctx, "invite:"+strconv.FormatInt(u.ID, 10), s.cfg.Calls.Invites) {
		return &Reply[CohostData]{Status: fail(ErrnoTooMany)}, nil
	}
	b := &s.cohosts
	b.mu.Lock()
	defer b.mu.Unlock()
	cr := b.room(r)
	defer b.dropIfIdle(cr)
	if cr.guest != nil {
		return &Reply[CohostData]{Status: fail(ErrnoCohostOn)}, nil
	}
	viewers := s.userSockets.inRoom(p.UserID, r.ID)
	if len(viewers) == 0 {
		return &Reply[CohostData]{Status: fail(ErrnoNotInRoom)}, nil
	}
	v, in := viewers[0].member(r.ID)
	if !in {
		return &Reply[CohostData]{Status: fail(ErrnoNotInRoom)}, nil
	}
	if !s.offerLocked(cr, v, true) {
		return &Reply[CohostData]{Status: failf(ErrnoTooMany, "too many co-host invitations and requests wait in this room")}, nil
	}
	tellCohost(viewers, CohostEvent{Type: "invite", RoomID: r.ID, From: &u})
	return &Reply[CohostData]{Status: ok(), Data: &CohostData{RoomID: r.ID, User: v, TimeoutMS: s.cfg.Calls.RingTimeout.Milliseconds()}}, nil
}

// CohostRequest asks the host to co-host: a viewer joined on this
// websocket; the host's websockets in the room get a "request".
func (a *cohostAPI) CohostRequest(ctx context.Context, p RoomParams) (*Reply[CohostData], error) {
	s := a.s
	u, r, st, err := s.cohostMember(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[CohostData]{Status: st}, err
	}
	if r.UserID == u.ID {
		return &Reply[CohostData]{Status: failf(ErrnoInvalid, "you are the host: invite a viewer instead")}, nil
	}
	if !s.allowShared(ctx, "invite:"+strconv.FormatInt(u.ID, 10), s.cfg.Calls.Invites) {
		return &Reply[CohostData]{Status: fail(ErrnoTooMany)}, nil
	}
	b := &s.cohosts
	b.mu.Lock()
	defer b.mu.Unlock()
	cr := b.room(r)
	defer b.dropIfIdle(cr)
	if cr.guest != nil {
		return &Reply[CohostData]{Status: fail(ErrnoCohostOn)}, nil
	}
	hosts := s.userSockets.inRoom(r.UserID, r.ID)
	if len(hosts) == 0 {
		return &Reply[CohostData]{Status: failf(ErrnoNotInRoom, "the host is not in the room")}, nil
	}
	if me, in := connOf(ctx).member(r.ID); !in || me.ID != u.ID {
		// This websocket left the room meanwhile: no request may
		// outlive it.
		return &Reply[CohostData]{Status: fail(ErrnoNotJoined)}, nil
	}
	if !s.offerLocked(cr, u, false) {
		return &Reply[CohostData]{Status: failf(ErrnoTooMany, "too many co-host invitations and requests wait in this room")}, nil
	}
	tellCohost(hosts, CohostEvent{Type: "request", RoomID: r.ID, From: &u})
	return &Reply[CohostData]{Status: ok(), Data: &CohostData{RoomID: r.ID, User: cr.host, TimeoutMS: s.cfg.Calls.RingTimeout.Milliseconds()}}, nil
}

// CohostAccept starts a co-host session: the host accepts a viewer's
// request (user_id), or a viewer the host's invitation, on a websocket
// joined to the room. The guest gets where to publish the guest stream
// (in the result, or in an "accept" event when the host accepted), and
// every member of the room a "cohost" room event (state "on") with where
// to watch it. One co-host at a time: errno 1025 while one is on.
func (a *cohostAPI) CohostAccept(ctx context.Context, p CohostAnswerParams) (*Reply[CohostData], error) {
	s := a.s
	u, r, st, err := s.cohostMember(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[CohostData]{Status: st}, err
	}
	host := u.ID == r.UserID
	if host && p.UserID <= 0 {
		return &Reply[CohostData]{Status: failf(ErrnoInvalid, "user_id: whose request to accept")}, nil
	}
	b := &s.cohosts
	b.mu.Lock()
	cr := b.rooms[r.ID]
	if cr == nil {
		b.mu.Unlock()
		return &Reply[CohostData]{Status: fail(ErrnoNoCohost)}, nil
	}
	viewer := u.ID
	if host {
		viewer = p.UserID
	}
	o := cr.pending[viewer]
	if o == nil || o.invite == host {
		b.mu.Unlock()
		return &Reply[CohostData]{Status: fail(ErrnoNoCohost)}, nil
	}
	if cr.guest != nil {
		b.mu.Unlock()
		return &Reply[CohostData]{Status: fail(ErrnoCohostOn)}, nil
	}
	guestConns := s.userSockets.inRoom(viewer, r.ID)
	if len(guestConns) == 0 {
		b.mu.Unlock()
		return &Reply[CohostData]{Status: fail(ErrnoNotInRoom)}, nil
	}
	g := &cohostGuest{user: o.viewer, stream: guestStreamName(r.Name, viewer), gen: r.PasswordGen, host: s.mediaHost(ctx), since: time.Now()}
	cr.guest = g
	b.byStream[g.stream] = cr
	s.takeOfferLocked(cr, o)
	play := s.signedPlayAt(g.host, g.stream, g.gen)
	s.rooms.Publish(r.ID, roomhub.Event{Type: "cohost", State: "on", User: &g.user, Play: &play})
	d := &CohostData{RoomID: r.ID, Stream: g.stream, Play: &play}
	if host {
		pub := s.signedPublish(guestConns[0].ctx, g.stream)
		tellCohost(guestConns, CohostEvent{Type: "accept", RoomID: r.ID, From: &cr.host, Publish: &pub})
		d.User = g.user
	} else {
		pub := s.signedPublish(ctx, g.stream)
		tellCohost(s.userSockets.inRoom(r.UserID, r.ID), CohostEvent{Type: "accept", RoomID: r.ID, From: &g.user})
		d.User, d.Publish = cr.host, &pub
	}
	b.mu.Unlock()
	s.log.Info("co-host on", "room", r.ID, "guest", g.user.ID, "stream", g.stream)
	return &Reply[CohostData]{Status: ok(), Data: d}, nil
}

// CohostReject says no to an invitation (a viewer) or a request (the
// host, naming the viewer), or withdraws one's own: the other side gets
// "reject" or "cancel".
func (a *cohostAPI) CohostReject(ctx context.Context, p CohostAnswerParams) (*Reply[struct{}], error) {
	s := a.s
	uid, r, st, err := s.cohostLogin(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, err
	}
	host := uid == r.UserID
	viewer := uid
	if host {
		viewer = p.UserID
	}
	b := &s.cohosts
	b.mu.Lock()
	defer b.mu.Unlock()
	cr := b.rooms[r.ID]
	if cr == nil || cr.pending[viewer] == nil {
		return &Reply[struct{}]{Status: fail(ErrnoNoCohost)}, nil
	}
	o := cr.pending[viewer]
	s.takeOfferLocked(cr, o)
	// The side that made the offer withdraws it ("cancel"); the other
	// says no ("reject").
	typ := "reject"
	if o.invite == host {
		typ = "cancel"
	}
	if host {
		tellCohost(s.userSockets.inRoom(viewer, r.ID), CohostEvent{Type: typ, RoomID: r.ID, From: &cr.host})
	} else {
		tellCohost(s.userSockets.inRoom(r.UserID, r.ID), CohostEvent{Type: typ, RoomID: r.ID, From: &o.viewer})
	}
	return &Reply[struct{}]{Status: ok()}, nil
}

// CohostEnd ends the room's co-host session, by the host or the guest:
// the room gets a "cohost" event of state "off" and the guest stream ends.
// It also ends when the guest leaves the room (all its websockets) or its
// stream ends.
func (a *cohostAPI) CohostEnd(ctx context.Context, p RoomParams) (*Reply[struct{}], error) {
	s := a.s
	uid, r, st, err := s.cohostLogin(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, err
	}
	b := &s.cohosts
	b.mu.Lock()
	cr := b.rooms[r.ID]
	if cr == nil || cr.guest == nil {
		b.mu.Unlock()
		return &Reply[struct{}]{Status: fail(ErrnoNoCohost)}, nil
	}
	if uid != r.UserID && uid != cr.guest.user.ID {
		b.mu.Unlock()
		return &Reply[struct{}]{Status: failf(ErrnoForbidden, "only the host or the guest ends a co-host session")}, nil
	}
	kick := s.endCohostLocked(cr, offEnded)
	b.mu.Unlock()
	s.kickStreams(kick)
	return &Reply[struct{}]{Status: ok()}, nil
}

package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/mofang-live/mofang/rpc/roomhub"
)

// callAPI holds the Live.call methods: 1:1 calls between two users in the
// same room, signalled over their websockets (seed 004).
type callAPI struct{ s *Server }

// CallInviteParams are the params of Live.call.invite.
type CallInviteParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	UserID int64  `json:"user_id" rpc:"required"` // whom to call
}

// CallData is the data of Live.call.invite and Live.call.accept.
type CallData struct {
	CallID     string       `json:"call_id"`
	RoomID     int64        `json:"room_id"`
	Peer       roomhub.User `json:"peer"` // the other party
	ICEServers []ICEServer  `json:"ice_servers"`
	// TimeoutMS is how long the invitation rings (invite only).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// CallInvite calls a user who is in the same room: both must have joined
// it (the caller on this websocket). The callee's websockets in the room,
// and nobody else's, get a Live.call.events "invite"; it rings until the
// callee answers or the ring timeout ("timeout" to both). A user has one
// call at a time: calling someone in a call answers errno 1022 and tells
// them nothing.
func (a *callAPI) CallInvite(ctx context.Context, p CallInviteParams) (*Reply[CallData], error) {
	s := a.s
	u, st, err := s.member(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[CallData]{Status: st}, err
	}
	if p.UserID <= 0 {
		return &Reply[CallData]{Status: failf(ErrnoInvalid, "user_id must be a user's id")}, nil
	}
	if p.UserID == u.ID {
		return &Reply[CallData]{Status: failf(ErrnoInvalid, "you cannot call yourself")}, nil
	}
	if !s.allowShared(ctx, "invite:"+strconv.FormatInt(u.ID, 10), s.cfg.Calls.Invites) {
		return &Reply[CallData]{Status: fail(ErrnoTooMany)}, nil
	}
	roomID := int64(p.RoomID)
	b := &s.calls
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	if b.byUser[u.ID] != nil {
		return &Reply[CallData]{Status: failf(ErrnoBusy, "you are in another call: hang it up first")}, nil
	}
	ringing := s.userSockets.inRoom(p.UserID, roomID)
	if len(ringing) == 0 {
		return &Reply[CallData]{Status: fail(ErrnoNotInRoom)}, nil
	}
	if b.byUser[p.UserID] != nil {
		return &Reply[CallData]{Status: fail(ErrnoBusy)}, nil
	}
	conn := connOf(ctx)
	if me, in := conn.member(roomID); !in || me.ID != u.ID {
		// This websocket left the room meanwhile: its leaving found no
		// call to hang up, so none may start on it.
		return &Reply[CallData]{Status: fail(ErrnoNotJoined)}, nil
	}
	callee, in := ringing[0].member(roomID)
	if !in {
		return &Reply[CallData]{Status: fail(ErrnoNotInRoom)}, nil
	}
	c := &call{
		id: newCallID(), roomID: roomID, state: callRinging,
		caller: callParty{user: u, conn: conn},
		callee: callParty{user: callee},
	}
	id := c.id
	c.timer = time.AfterFunc(s.cfg.Calls.RingTimeout, func() { s.ringOut(id) })
	b.calls[id] = c
	b.byUser[u.ID] = c
	b.byUser[callee.ID] = c
	tellCall(ringing, CallEvent{Type: "invite", CallID: id, RoomID: roomID, From: &u, ICEServers: s.iceServers()})
	s.log.Debug("call invited", "call", id, "room", roomID, "caller", u.ID, "callee", callee.ID)
	return &Reply[CallData]{Status: ok(), Data: &CallData{
		CallID: id, RoomID: roomID, Peer: callee, ICEServers: s.iceServers(), TimeoutMS: s.cfg.Calls.RingTimeout.Milliseconds(),
	}}, nil
}

// CallParams name a call.
type CallParams struct {
	CallID string `json:"call_id" rpc:"required"`
}

// findCall checks the caller and the call id and returns the call and
// which party the caller is, with b.mu held (the caller unlocks it) when
// the status is ok.
func (s *Server) findCall(ctx context.Context, id string) (*call, *callParty, *callParty, Status, error) {
	uid, st, err := s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return nil, nil, nil, st, err
	}
	if !validCallID(id) {
		return nil, nil, nil, failf(ErrnoInvalid, fmt.Sprintf("call_id must be %d hex digits", callIDLen)), nil
	}
	b := &s.calls
	b.mu.Lock()
	c := b.calls[id]
	if c == nil {
		b.mu.Unlock()
		return nil, nil, nil, fail(ErrnoNoCall), nil
	}
	me, peer, party := c.sides(uid)
	if !party {
		b.mu.Unlock()
		return nil, nil, nil, failf(ErrnoForbidden, "you are not a party to this call"), nil
	}
	return c, me, peer, ok(), nil
}

// CallAccept answers a call on this websocket, which must be in the
// call's room: it then carries the callee's signalling. The caller gets
// "accept"; the callee's other websockets get "answered".
func (a *callAPI) CallAccept(ctx context.Context, p CallParams) (*Reply[CallData], error) {
	s := a.s
	conn := connOf(ctx)
	if conn == nil {
		return &Reply[CallData]{Status: fail(ErrnoNeedSocket)}, nil
	}
	c, me, peer, st, err := s.findCall(ctx, p.CallID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[CallData]{Status: st}, err
	}
	defer s.calls.mu.Unlock()
	if me != &c.callee {
		return &Reply[CallData]{Status: failf(ErrnoForbidden, "only the callee answers a call")}, nil
	}
	if c.state != callRinging {
		return &Reply[CallData]{Status: failf(ErrnoInvalid, "the call is already answered")}, nil
	}
	if u, in := conn.member(c.roomID); !in || u.ID != me.user.ID {
		return &Reply[CallData]{Status: fail(ErrnoNotJoined)}, nil
	}
	others := s.partyConns(c, me)
	c.state = callActive
	c.timer.Stop()
	me.conn = conn
	tellCall([]*wsConn{peer.conn}, CallEvent{Type: "accept", CallID: c.id, RoomID: c.roomID, From: &me.user})
	for _, w := range others {
		if w != conn {
			tellCall([]*wsConn{w}, CallEvent{Type: "answered", CallID: c.id, RoomID: c.roomID})
		}
	}
	return &Reply[CallData]{Status: ok(), Data: &CallData{
		CallID: c.id, RoomID: c.roomID, Peer: peer.user, ICEServers: s.iceServers(),
	}}, nil
}

// CallReject says no to a call that rings: the caller gets "reject", and
// so do the callee's websockets (they stop ringing).
func (a *callAPI) CallReject(ctx context.Context, p CallParams) (*Reply[struct{}], error) {
	s := a.s
	c, me, peer, st, err := s.findCall(ctx, p.CallID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, err
	}
	if me != &c.callee {
		s.calls.mu.Unlock()
		return &Reply[struct{}]{Status: failf(ErrnoForbidden, "only the callee rejects a call: hang up instead")}, nil
	}
	if c.state != callRinging {
		s.calls.mu.Unlock()
		return &Reply[struct{}]{Status: failf(ErrnoInvalid, "the call was answered: hang up instead")}, nil
	}
	kick := s.hangUpLocked(c, me, peer, hangupAsked, connOf(ctx))
	s.calls.mu.Unlock()
	s.kickStreams(kick)
	return &Reply[struct{}]{Status: ok()}, nil
}

// CallHangup ends a call, ringing or answered: the other party gets
// "hangup" (a callee hanging up a call that rings rejects it). Leaving the
// room, or closing the websocket that carries the call, hangs up too.
func (a *callAPI) CallHangup(ctx context.Context, p CallParams) (*Reply[struct{}], error) {
	s := a.s
	c, me, peer, st, err := s.findCall(ctx, p.CallID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, err
	}
	kick := s.hangUpLocked(c, me, peer, hangupAsked, connOf(ctx))
	s.calls.mu.Unlock()
	s.kickStreams(kick)
	return &Reply[struct{}]{Status: ok()}, nil
}

// CallSignalParams are the params of Live.call.signal.
type CallSignalParams struct {
	CallID string `json:"call_id" rpc:"required"`
	// Data is passed on as it is: an SDP offer or answer, an ICE
	// candidate, any JSON up to CallLimits.MaxSignalBytes.
	Data json.RawMessage `json:"data" rpc:"required"`
}

// CallSignal passes data (an SDP offer or answer, an ICE candidate) to
// the other party of an answered call, and to nobody else: it gets a
// "signal" event on the websocket that carries its side of the call. It
// must come on the websocket that carries the sender's side.
func (a *callAPI) CallSignal(ctx context.Context, p CallSignalParams) (*Reply[struct{}], error) {
	s := a.s
	conn := connOf(ctx)
	if conn == nil {
		return &Reply[struct{}]{Status: fail(ErrnoNeedSocket)}, nil
	}
	if len(p.Data) > s.cfg.Calls.MaxSignalBytes {
		return &Reply[struct{}]{Status: failf(ErrnoInvalid, fmt.Sprintf("data must be at most %d bytes", s.cfg.Calls.MaxSignalBytes))}, nil
	}
	c, me, peer, st, err := s.findCall(ctx, p.CallID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, err
	}
	defer s.calls.mu.Unlock()
	if c.state != callActive {
		return &Reply[struct{}]{Status: failf(ErrnoInvalid, "the call is not answered yet")}, nil
	}
	if me.conn != conn {
		return &Reply[struct{}]{Status: failf(ErrnoForbidden, "signal on the websocket that placed or answered the call")}, nil
	}
	if !s.allowShared(ctx, "signal:"+strconv.FormatInt(me.user.ID, 10), s.cfg.Calls.Signals) {
		return &Reply[struct{}]{Status: fail(ErrnoTooMany)}, nil
	}
	tellCall([]*wsConn{peer.conn}, CallEvent{Type: "signal", CallID: c.id, RoomID: c.roomID, From: &me.user, Data: p.Data})
	return &Reply[struct{}]{Status: ok()}, nil
}

// CallRelay routes an answered call through the server, for when the
// peers cannot reach each other directly (ICE failed): the caller gets
// its share (its call stream to publish over WHIP, the other party's to
// play over WHEP, with signs that work for this call only) and the other
// party gets its own in a "relay" event.
func (a *callAPI) CallRelay(ctx context.Context, p CallParams) (*Reply[CallRelay], error) {
	s := a.s
	c, me, peer, st, err := s.findCall(ctx, p.CallID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[CallRelay]{Status: st}, err
	}
	defer s.calls.mu.Unlock()
	if c.state != callActive {
		return &Reply[CallRelay]{Status: failf(ErrnoInvalid, "the call is not answered yet")}, nil
	}
	mine := callStreamName(c.id, me.user.ID)
	theirs := callStreamName(c.id, peer.user.ID)
	c.relayed = true
	tellCall([]*wsConn{peer.conn}, CallEvent{Type: "relay", CallID: c.id, RoomID: c.roomID, From: &me.user, Relay: &CallRelay{
		Publish: s.signedPublish(peer.conn.ctx, theirs),
		Play:    s.signedPlay(peer.conn.ctx, mine, 0),
	}})
	return &Reply[CallRelay]{Status: ok(), Data: &CallRelay{
		Publish: s.signedPublish(ctx, mine),
		Play:    s.signedPlay(ctx, theirs, 0),
	}}, nil
}

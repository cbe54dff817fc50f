package rpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mofang-live/mofang/rpc/roomhub"
	"github.com/mofang-live/mofang/rpc/urlsign"
)

// CallLimits tune 1:1 calls and co-hosts. Zero fields take the defaults in
// brackets.
type CallLimits struct {
	// ICEServers are the STUN and TURN servers handed to both parties of
	// every call (Live.call.invite and accept, and the invitation), in
	// the shape of a browser's RTCIceServer. None: the peers find each
	// other with host candidates only (one network), or through the
	// server's relay (Live.call.relay).
	ICEServers []ICEServer

	RingTimeout      time.Duration // how long a call or co-host invitation (or request) waits for an answer [30s]
	Invites          Rate          // call invitations, co-host invitations and requests per user [burst 5, then 1 every 3s]
	Signals          Rate          // Live.call.signal messages per user [burst 64, then 1 every 20ms]
	MaxSignalBytes   int           // largest data of one Live.call.signal [16 KiB]
	MaxCohostPending int           // co-host invitations and requests waiting at once in one room [16]
}

func (l *CallLimits) setDefaults() {
	setDefault(&l.RingTimeout, 30*time.Second)
	setDefault(&l.Invites, Rate{Every: 3 * time.Second, Burst: 5})
	setDefault(&l.Signals, Rate{Every: 20 * time.Millisecond, Burst: 64})
	setDefault(&l.MaxSignalBytes, 16<<10)
	setDefault(&l.MaxCohostPending, 16)
}

// ICEServer is a STUN or TURN server as a browser's RTCIceServer takes it:
// {"urls": ["stun:stun.example.org"]}, with a username and credential for
// TURN.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// iceServers returns the configured ICE servers, never nil: pages hand
// the list to RTCPeerConnection as it is.
func (s *Server) iceServers() []ICEServer {
	if s.cfg.Calls.ICEServers == nil {
		return []ICEServer{}
	}
	return s.cfg.Calls.ICEServers
}

// CallEventsMethod is the notification that carries a call's events to
// the websockets of one party only.
const CallEventsMethod = "Live.call.events"

// CohostEventsMethod is the notification that carries co-host
// invitations, requests and answers to the websockets of one user only.
const CohostEventsMethod = "Live.cohost.events"

// CallEvent are the params of a Live.call.events notification. Type says
// what happened and which fields are set:
//
//   - "invite": From calls you in room RoomID (ICEServers for the call);
//     answer with Live.call.accept or reject before the ring timeout.
//   - "accept": the callee (From) answered: send your SDP offer.
//   - "answered": you answered this call on another websocket: stop
//     ringing here.
//   - "reject": the callee said no (on every websocket of the callee too).
//   - "hangup": the other party hung up; Reason "hangup", or "left" when
//     it left the room or its websocket closed.
//   - "timeout": nobody answered in time (to both parties).
//   - "signal": Data from the other party (From): an SDP offer or answer,
//     or an ICE candidate, as it sent it.
//   - "relay": the other party asked for the server's relay; Relay is
//     yours: publish your camera to Relay.Publish, play Relay.Play.
type CallEvent struct {
	Type       string          `json:"type"`
	CallID     string          `json:"call_id"`
	RoomID     int64           `json:"room_id"`
	From       *roomhub.User   `json:"from,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	ICEServers []ICEServer     `json:"ice_servers,omitempty"`
	Relay      *CallRelay      `json:"relay,omitempty"`
	Time       int64           `json:"time"` // Unix milliseconds
}

// Why a call ended, in a "hangup" event.
const (
	hangupAsked = "hangup" // the party hung up
	hangupLeft  = "left"   // the party left the room or closed its websocket
)

// WHIPPublish tells a party of a call or a co-host where to publish a
// stream: over WebRTC (WHIP: POST an SDP offer to WHIP) or RTMP.
type WHIPPublish struct {
	Stream  string `json:"stream"`
	WHIP    string `json:"whip"`
	RTMP    string `json:"rtmp"`
	Sign    string `json:"sign"`
	Expires int64  `json:"expires"` // Unix seconds
}

// CallRelay is one party's share of a call relayed through the server:
// its own call stream to publish, the other party's to play.
type CallRelay struct {
	Publish WHIPPublish  `json:"publish"`
	Play    roomhub.Play `json:"play"`
}

// callState is where a call stands.
type callState int

const (
	callRinging callState = iota // invited, not answered
	callActive                   // answered
)

// call is a 1:1 call between two users of a room.
type call struct {
	id      string
	roomID  int64
	state   callState
	caller  callParty
	callee  callParty
	timer   *time.Timer // rings out
	relayed bool        // Live.call.relay was asked: call streams may exist
}

// callParty is one side of a call.
type callParty struct {
	user roomhub.User
	// conn is the websocket that carries the party's signalling: the
	// caller's that invited, the callee's that accepted (nil while the
	// call rings: every websocket of the callee in the room rings).
	conn *wsConn
}

// sides returns the party that uid is and the other one, or false when uid
// is neither.
func (c *call) sides(uid int64) (me, peer *callParty, ok bool) {
	switch uid {
	case c.caller.user.ID:
		return &c.caller, &c.callee, true
	case c.callee.user.ID:
		return &c.callee, &c.caller, true
	}
	return nil, nil, false
}

// callBook holds the calls in progress: at most one per user.
type callBook struct {
	mu     sync.Mutex
	calls  map[string]*call
	byUser map[int64]*call
}

// init makes the maps. b.mu is held.
func (b *callBook) init() {
	if b.calls == nil {
		b.calls = map[string]*call{}
		b.byUser = map[int64]*call{}
	}
}

// callIDLen is the length of a call id: 16 hex digits, random.
const callIDLen = 16

func newCallID() string {
	var b [callIDLen / 2]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validCallID reports whether id has the shape of a call id.
func validCallID(id string) bool {
	return len(id) == callIDLen && isLowerHex(id)
}

// callStreamName is the stream a party of a relayed call publishes:
// "call-<call id>-<user id>".
func callStreamName(callID string, uid int64) string {
	return "call-" + callID + "-" + strconv.FormatInt(uid, 10)
}

// parseCallStream reads a call stream's name.
func parseCallStream(name string) (callID string, uid int64, ok bool) {
	rest, ok := strings.CutPrefix(name, "call-")
	if !ok {
		return "", 0, false
	}
	callID, digits, ok := strings.Cut(rest, "-")
	if !ok || !validCallID(callID) {
		return "", 0, false
	}
	uid, ok = parseUserID(digits)
	return callID, uid, ok
}

// parseUserID reads a user id as stream names write it: decimal digits,
// no sign, no leading zero.
func parseUserID(s string) (int64, bool) {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// notification frames a JSON-RPC notification.
func notification(method string, params any) []byte {
	b, _ := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  any    `json:"params"`
	}{"2.0", method, params})
	return b
}

// tell sends one notification to some websockets, without blocking (a
// full queue drops the websocket, as for room events).
func tell(conns []*wsConn, msg []byte) {
	for _, w := range conns {
		w.Deliver(msg)
	}
}

// tellCall sends a call event to some websockets.
func tellCall(conns []*wsConn, ev CallEvent) {
	ev.Time = time.Now().UnixMilli()
	tell(conns, notification(CallEventsMethod, ev))
}

// partyConns are the websockets that hear of a call for one party: the
// one bound to the call, or while it rings every websocket of the party
// in the room.
func (s *Server) partyConns(c *call, p *callParty) []*wsConn {
	if p.conn != nil {
		return []*wsConn{p.conn}
	}
	return s.userSockets.inRoom(p.user.ID, c.roomID)
}

// removeCallLocked forgets a call and returns the call streams to end.
// b.mu is held.
func (s *Server) removeCallLocked(c *call) []string {
	b := &s.calls
	c.timer.Stop()
	delete(b.calls, c.id)
	for _, uid := range []int64{c.caller.user.ID, c.callee.user.ID} {
		if b.byUser[uid] == c {
			delete(b.byUser, uid)
		}
	}
	if !c.relayed {
		return nil
	}
	return []string{callStreamName(c.id, c.caller.user.ID), callStreamName(c.id, c.callee.user.ID)}
}

// kickStreams ends streams of calls and co-hosts that are over: their
// publishers and players are disconnected.
func (s *Server) kickStreams(names []string) {
	for _, n := range names {
		s.cfg.Media.KickStream(n)
	}
}

// ringOut ends a call that nobody answered in time: both parties get
// "timeout".
func (s *Server) ringOut(id string) {
	b := &s.calls
	b.mu.Lock()
	c := b.calls[id]
	if c == nil || c.state != callRinging {
		b.mu.Unlock()
		return
	}
	ev := CallEvent{Type: "timeout", CallID: c.id, RoomID: c.roomID}
	tellCall(s.partyConns(c, &c.caller), ev)
	tellCall(s.partyConns(c, &c.callee), ev)
	kick := s.removeCallLocked(c)
	b.mu.Unlock()
	s.kickStreams(kick)
}

// hangUpLocked ends a call because party me hung up (or left) on
// websocket from (nil: over HTTP): the other party gets "hangup" with the
// reason. A callee hanging up a call that rings rejects it: the caller
// and the callee's other websockets get "reject". b.mu is held.
func (s *Server) hangUpLocked(c *call, me, peer *callParty, reason string, from *wsConn) []string {
	ev := CallEvent{Type: "hangup", CallID: c.id, RoomID: c.roomID, From: &me.user, Reason: reason}
	if c.state == callRinging && me == &c.callee {
		if reason == hangupAsked {
			ev = CallEvent{Type: "reject", CallID: c.id, RoomID: c.roomID, From: &me.user}
		}
		var others []*wsConn
		for _, w := range s.partyConns(c, me) {
			if w != from {
				others = append(others, w)
			}
		}
		tellCall(others, ev)
	}
	tellCall(s.partyConns(c, peer), ev)
	return s.removeCallLocked(c)
}

// leftRoom hears that a websocket of user uid left a room (or closed): a
// call of the user carried by that websocket, or ringing on none of the
// user's websockets any more, is hung up; so is a co-host session of the
// user as guest when no websocket of the user is left in the room, and
// the user's co-host invitation or request is withdrawn.
func (s *Server) leftRoom(w *wsConn, roomID, uid int64) {
	b := &s.calls
	b.mu.Lock()
	var kick []string
	if c := b.byUser[uid]; c != nil && c.roomID == roomID {
		me, peer, _ := c.sides(uid)
		if me.conn == w || (me.conn == nil && len(s.userSockets.inRoom(uid, roomID)) == 0) {
			kick = s.hangUpLocked(c, me, peer, hangupLeft, w)
		}
	}
	b.mu.Unlock()
	s.kickStreams(kick)
	s.cohostLeft(roomID, uid)
}

// CallStream reports whether name is the stream of a party of a call in
// progress whose relay was asked for (Live.call.relay): the media engine
// may take it, with the publish or play sign that Live.call.relay hands
// to the parties (the publish sign to the stream's own party, the play
// sign to the other), signed as any stream's (urlsign, generation 0).
// Once the call ends, its streams are refused and ended.
func (s *Server) CallStream(name string) bool {
	id, uid, ok := parseCallStream(name)
	if !ok {
		return false
	}
	b := &s.calls
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls[id]
	if c == nil || c.state != callActive || !c.relayed {
		return false
	}
	_, _, party := c.sides(uid)
	return party
}

// IsPrivateStream reports whether name has the shape of a stream of a call
// ("call-<call id>-<user id>") or of a co-host
// ("<room stream>-guest-<user id>-<session>"), which belong to no room of
// their own: the media engine's events of such streams go to
// Server.PrivateStreamPublishing, not to the rooms.
func IsPrivateStream(name string) bool {
	if _, _, ok := parseCallStream(name); ok {
		return true
	}
	_, ok := parseGuestStream(name)
	return ok
}

// PrivateStreamPublishing hears from the media engine that a call or
// co-host stream started (live) or stopped being published. A co-host's
// stream starting tells the room ("cohost" event, state "live"); its end
// (after the engine's reconnect grace) ends the co-host session.
func (s *Server) PrivateStreamPublishing(name string, live bool) {
	if _, ok := parseGuestStream(name); ok {
		s.guestPublishing(name, live)
	}
}

// signedPublish signs the publish URLs of a stream that is no room's for
// the caller.
func (s *Server) signedPublish(ctx context.Context, stream string) WHIPPublish {
	sign, exp := s.cfg.Signer.Sign(urlsign.Publish, stream, s.cfg.PublishSignTTL)
	host := s.mediaHost(ctx)
	q := "?sign=" + sign
	return WHIPPublish{
		Stream:  stream,
		WHIP:    s.webBase(host) + "/live/" + stream + "/whip" + q,
		RTMP:    s.rtmpBase(host) + "/" + stream + q,
		Sign:    sign,
		Expires: exp.Unix(),
	}
}

// signedPlay signs the play URLs of a stream that is no room's, for
// access generation gen (a co-host's: its room's password generation;
// 0 for calls).
func (s *Server) signedPlay(ctx context.Context, stream string, gen int64) roomhub.Play {
	return s.signedPlayAt(s.mediaHost(ctx), stream, gen)
}

func (s *Server) signedPlayAt(host, stream string, gen int64) roomhub.Play {
	sign, exp := s.cfg.Signer.SignGen(urlsign.Play, stream, gen, s.cfg.PlaySignTTL)
	q := "?sign=" + sign
	web := s.webBase(host) + "/live/" + stream
	return roomhub.Play{
		Stream:  stream,
		WHEP:    web + "/whep" + q,
		FLV:     web + ".flv" + q,
		HLS:     web + "/index.m3u8" + q,
		Sign:    sign,
		Expires: exp.Unix(),
	}
}

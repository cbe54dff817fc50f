// Package roomhub fans the events of live rooms (comments, likes, gifts,
// joins and leaves) out to the connections in each room.
//
// Events are encoded once, when published. A room sends them in batches:
// the first event after a quiet spell goes out at once, later ones are
// gathered for at most the hub's interval, and each batch is one message
// whose bytes every member of the room shares. A member that cannot take a
// message at once is not waited for: Deliver tells it to go.
package roomhub

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Member is one connection in a room.
type Member interface {
	// Deliver queues a message for the member without blocking. False
	// means the member cannot keep up; it must then close itself and
	// Leave.
	Deliver(msg []byte) bool
}

// User is a person as room events show them.
type User struct {
	ID       int64  `json:"id"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
}

// Event is something that happened in a room. Type says which fields are
// set: "comment" (User, Content), "like" (User, Count, Likes), "gift"
// (User, Gift, Count, Coin), "join" and "leave" (User, Viewers), "online"
// (Online, Viewers: the first event a member gets), "end" (the live ended),
// "reenter" (Reason: this member was taken out of the room and must join
// again; sent to it alone, see Notice), "cohost" (State "on": User is now
// the room's co-host, Play where to watch the guest; "live": the guest's
// stream started, Play again; "off": the co-host session ended, User the
// guest, Reason why).
type Event struct {
	Seq     uint64     `json:"seq"`
	Type    string     `json:"type"`
	Time    int64      `json:"time"` // Unix milliseconds
	User    *User      `json:"user,omitempty"`
	Content string     `json:"content,omitempty"`
	Gift    *GiftEvent `json:"gift,omitempty"`
	Count   int64      `json:"count,omitempty"`
	Coin    int64      `json:"coin,omitempty"`
	Likes   int64      `json:"likes,omitempty"`
	Online  []User     `json:"online,omitempty"`
	Viewers int        `json:"viewers,omitempty"` // distinct users online
	Reason  string     `json:"reason,omitempty"`
	State   string     `json:"state,omitempty"`
	Play    *Play      `json:"play,omitempty"`
}

// Play is where to watch a stream that is not a room's own (a co-host's):
// its URLs, each carrying the play sign.
type Play struct {
	Stream  string `json:"stream"`
	WHEP    string `json:"whep"` // WebRTC: POST an SDP offer
	FLV     string `json:"flv"`
	HLS     string `json:"hls"`
	Sign    string `json:"sign"`
	Expires int64  `json:"expires"` // Unix seconds
}

// GiftEvent names the gift of a "gift" event.
type GiftEvent struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Image string `json:"image"`
	Coin  int64  `json:"coin"`
}

// Method is the JSON-RPC notification method that carries a batch of
// events: {"jsonrpc":"2.0","method":"Live.room.events","params":{"room_id":1,"events":[...]}}.
const Method = "Live.room.events"

// Hub holds the rooms that have members.
type Hub struct {
	interval time.Duration

	mu    sync.Mutex
	rooms map[int64]*room

	delivered atomic.Uint64 // events delivered, counted per member
	refused   atomic.Uint64 // messages a member could not take
}

// New returns a Hub that gathers events for at most interval per batch.
func New(interval time.Duration) *Hub {
	return &Hub{interval: interval, rooms: map[int64]*room{}}
}

// room is one room's members and pending events.
type room struct {
	id  int64
	hub *Hub

	mu        sync.Mutex
	members   map[Member]membership
	online    []presence // users online, in order of arrival
	pending   []pending  // events not yet sent
	scheduled bool       // a flush is on its way
	last      time.Time  // when the last batch went out
	seq       uint64
}

// membership is a member's user and the last event it has seen (its
// "online" snapshot at joining).
type membership struct {
	userID int64
	seen   uint64
}

// pending is an encoded event waiting for the next batch.
type pending struct {
	seq uint64
	enc []byte
}

// presence is a user online in a room, with how many connections.
type presence struct {
	user  User
	conns int
}

func (h *Hub) room(id int64, create bool) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rooms[id]
	if r == nil && create {
		r = &room{id: id, hub: h, members: map[Member]membership{}}
		h.rooms[id] = r
	}
	return r
}

// Join adds a member to a room as user u. The member first gets an
// "online" event with everyone online, then every later event. The first
// connection of a user also makes a "join" event for the others. Join
// reports the users online.
func (h *Hub) Join(roomID int64, m Member, u User) []User {
	r := h.room(roomID, true)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.members[m]; dup {
		return r.usersLocked()
	}
	i := slices.IndexFunc(r.online, func(p presence) bool { return p.user.ID == u.ID })
	first := i < 0
	if first {
		r.online = append(r.online, presence{user: u, conns: 1})
	} else {
		r.online[i].conns++
	}
	users := r.usersLocked()
	r.seq++
	// The snapshot covers everything before it: pending events are not
	// sent to m (see flushLocked).
	r.members[m] = membership{userID: u.ID, seen: r.seq}
	snapshot := Event{Seq: r.seq, Type: "online", Time: time.Now().UnixMilli(), Online: users, Viewers: len(users)}
	enc, _ := json.Marshal(snapshot)
	if m.Deliver(r.batch([]pending{{r.seq, enc}})) {
		h.delivered.Add(1)
	} else {
		h.refused.Add(1)
	}
	if first {
		r.publishLocked(Event{Type: "join", User: &u, Viewers: len(users)})
	}
	return users
}

// Leave removes a member from a room. The user's last connection leaving
// makes a "leave" event.
func (h *Hub) Leave(roomID int64, m Member) {
	r := h.room(roomID, false)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ms, ok := r.members[m]
	if !ok {
		return
	}
	uid := ms.userID
	delete(r.members, m)
	i := slices.IndexFunc(r.online, func(p presence) bool { return p.user.ID == uid })
	if i >= 0 {
		r.online[i].conns--
		if r.online[i].conns == 0 {
			u := r.online[i].user
			r.online = slices.Delete(r.online, i, i+1)
			r.publishLocked(Event{Type: "leave", User: &u, Viewers: len(r.online)})
		}
	}
	if len(r.members) == 0 {
		r.pending = nil
		h.mu.Lock()
		if h.rooms[roomID] == r {
			delete(h.rooms, roomID)
		}
		h.mu.Unlock()
	}
}

// Publish sends an event to everyone in a room, stamping its sequence
// number and time. It never blocks on members.
func (h *Hub) Publish(roomID int64, ev Event) {
	r := h.room(roomID, false)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publishLocked(ev)
}

// Online returns the users online in a room, in order of arrival.
func (h *Hub) Online(roomID int64) []User {
	r := h.room(roomID, false)
	if r == nil {
		return []User{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.usersLocked()
}

// Members tells how many connections are in a room.
func (h *Hub) Members(roomID int64) int {
	r := h.room(roomID, false)
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// Occupant is a member of a room and the user it joined as.
type Occupant struct {
	Member Member
	UserID int64
}

// Occupants lists the members of a room.
func (h *Hub) Occupants(roomID int64) []Occupant {
	r := h.room(roomID, false)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Occupant, 0, len(r.members))
	for m, ms := range r.members {
		out = append(out, Occupant{Member: m, UserID: ms.userID})
	}
	return out
}

// Notice frames one event for a single member, outside the room's
// sequence (its seq is 0), as a Live.room.events notification.
func Notice(roomID int64, ev Event) []byte {
	ev.Seq = 0
	if ev.Time == 0 {
		ev.Time = time.Now().UnixMilli()
	}
	enc, _ := json.Marshal(ev)
	r := &room{id: roomID}
	return r.batch([]pending{{0, enc}})
}

// Stats are the hub's counters.
type Stats struct {
	Rooms     int
	Members   int
	Delivered uint64 // events delivered, counted per member
	Refused   uint64 // messages refused by members that could not keep up
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	st := Stats{Rooms: len(rooms), Delivered: h.delivered.Load(), Refused: h.refused.Load()}
	for _, r := range rooms {
		r.mu.Lock()
		st.Members += len(r.members)
		r.mu.Unlock()
	}
	return st
}

func (r *room) usersLocked() []User {
	us := make([]User, len(r.online))
	for i, p := range r.online {
		us[i] = p.user
	}
	return us
}

// publishLocked encodes ev and schedules its batch. r.mu is held.
func (r *room) publishLocked(ev Event) {
	if len(r.members) == 0 {
		return
	}
	r.seq++
	ev.Seq = r.seq
	if ev.Time == 0 {
		ev.Time = time.Now().UnixMilli()
	}
	enc, err := json.Marshal(ev)
	if err != nil {
		return
	}
	r.pending = append(r.pending, pending{ev.Seq, enc})
	if r.scheduled {
		return
	}
	r.scheduled = true
	wait := time.Until(r.last.Add(r.hub.interval))
	if wait <= 0 {
		// Quiet room: send now, on another goroutine so that the
		// publisher does not pay for the fan-out.
		go r.flush()
		return
	}
	time.AfterFunc(wait, r.flush)
}

func (r *room) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
}

// flushLocked sends the pending events as one message shared by every
// member. A member that joined while they were pending gets only those
// after its snapshot: one more message per such suffix, shared by
// everyone who joined at that point. r.mu is held.
func (r *room) flushLocked() {
	r.scheduled = false
	if len(r.pending) == 0 {
		return
	}
	suffixes := map[int][]byte{}
	for m, ms := range r.members {
		start, _ := slices.BinarySearchFunc(r.pending, ms.seen+1, func(p pending, seq uint64) int {
			return cmp.Compare(p.seq, seq)
		})
		if start == len(r.pending) {
			continue
		}
		msg, ok := suffixes[start]
		if !ok {
			msg = r.batch(r.pending[start:])
			suffixes[start] = msg
		}
		if m.Deliver(msg) {
			r.hub.delivered.Add(uint64(len(r.pending) - start))
		} else {
			r.hub.refused.Add(1)
		}
	}
	r.pending = r.pending[:0]
	r.last = time.Now()
}

// batch frames encoded events as one Live.room.events notification.
func (r *room) batch(events []pending) []byte {
	size := 80
	for _, e := range events {
		size += len(e.enc) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"jsonrpc":"2.0","method":"`+Method+`","params":{"room_id":`...)
	b = strconv.AppendInt(b, r.id, 10)
	b = append(b, `,"events":[`...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.enc...)
	}
	return append(b, "]}}"...)
}

// Package roomhub fans the events of live rooms (comments, likes, gifts,
// joins and leaves) out to the connections in each room.
//
// Events go through a cluster.Rooms, which numbers them in the room's one
// sequence and brings them back, on every node with members in the room,
// to that node's hub (a node that runs alone uses cluster.LocalRooms,
// which hands them back at once). Who is online, and so when a user's
// "join" and "leave" are told, is the cluster's too. When the cluster
// cannot take an event, the hub still sends it to its own members, with
// seq 0: local chat goes on.
//
// Events are encoded once, when published. A room sends them in batches:
// the first event after a quiet spell goes out at once, later ones are
// gathered for at most the hub's interval, and each batch is one message
// whose bytes every member of the room on this node shares. A member that
// cannot take a message at once is not waited for: Deliver tells it to go.
package roomhub

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mofang-live/mofang/cluster"
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
// guest, Reason why), "comment_delete" (ID: the comment removed by a
// moderator), "mod" (Mod: a moderation action or a change of the room's
// chat settings), "rank" (Rank: the room's gift leaderboards' top
// three changed). "comment" events carry the comment's ID.
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
	ID      int64      `json:"id,omitempty"` // the comment's
	Mod     *ModEvent  `json:"mod,omitempty"`
	Rank    *RankEvent `json:"rank,omitempty"`
}

// ModEvent is what a "mod" event tells: Action ("mute", "unmute", "kick",
// "ban", "unban", "mod_add", "mod_remove", "slow", "followers_only")
// done by By to Target (none for settings) until Until (Unix seconds, 0:
// not timed or until lifted), Slow the slow mode's seconds and
// FollowersOnly its state after "slow" and "followers_only".
type ModEvent struct {
	Action        string `json:"action"`
	By            *User  `json:"by,omitempty"`
	Target        *User  `json:"target,omitempty"`
	Until         int64  `json:"until,omitempty"`
	Slow          *int   `json:"slow,omitempty"`
	FollowersOnly *bool  `json:"followers_only,omitempty"`
}

// RankEvent is the top three of a room's gift leaderboards after a gift
// that changed either: who is in it, in what order, or their coins.
type RankEvent struct {
	// SessionID is the live session of Live; absent when not live.
	SessionID int64       `json:"session_id,omitempty"`
	Live      []RankEntry `json:"live"` // this live's top
	All       []RankEntry `json:"all"`  // all-time
	// Total is the room's coins in all: it grows with every gift, so a
	// page keeps the rank event with the largest Total it has seen.
	Total int64 `json:"total"`
}

// RankEntry is one place of a leaderboard.
type RankEntry struct {
	Rank  int   `json:"rank"` // from 1
	User  User  `json:"user"`
	Coins int64 `json:"coins"`
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

// busTimeout bounds each call of the hub to the cluster.
const busTimeout = 2 * time.Second

// Hub holds the rooms that have members on this node.
type Hub struct {
	interval time.Duration
	bus      cluster.Rooms
	observe  func(roomID int64, ev Event) // see Observe

	mu    sync.Mutex
	rooms map[int64]*room

	delivered      atomic.Uint64 // events delivered, counted per member
	refused        atomic.Uint64 // messages a member could not take
	unshared       atomic.Uint64 // events the cluster could not take
	missed         atomic.Uint64 // events the cluster lost on the way here
	presenceErrors atomic.Uint64 // presence calls the cluster could not answer
}

// New returns a Hub that sends its rooms' events through bus (nil: a
// cluster.LocalRooms of its own) and gathers them for at most interval
// per batch.
func New(interval time.Duration, bus cluster.Rooms) *Hub {
	if bus == nil {
		bus = cluster.NewLocalRooms()
	}
	return &Hub{interval: interval, bus: bus, rooms: map[int64]*room{}}
}

// Observe makes f hear of every event this node publishes in a room
// (comments, likes, gifts, joins, leaves...), with its seq (0 when the
// cluster could not take it) and time, once the cluster gave it its seq.
// Events of one room published at once from several calls may reach f
// out of seq order: the seq says the order. f must return at once and
// not call the Hub. Call Observe before the Hub is used.
func (h *Hub) Observe(f func(roomID int64, ev Event)) { h.observe = f }

// room is one room's members on this node and its pending events.
type room struct {
	id  int64
	hub *Hub
	// ready is closed once the room is subscribed to the cluster and
	// cancel set.
	ready  chan struct{}
	cancel func()

	mu        sync.Mutex
	closed    bool // the last member left: the room is out of the hub
	members   map[Member]membership
	online    []presence // this node's users, in order of arrival
	pending   []pending  // events not yet sent
	scheduled bool       // a flush is on its way
	last      time.Time  // when the last batch went out
	pos       uint64     // events queued in the room so far
	seq       uint64     // the room's seq of the last event from the cluster
}

// membership is a member's user and where it entered the room's events.
type membership struct {
	user User
	// seen is the pos of the last event queued before the member came:
	// it gets those after.
	seen uint64
	// seq is the room's seq at seen, for the member's "online" event.
	seq uint64
	// joining is closed once Join is done with the member (nil then).
	// Until then the batches meant for the member wait in backlog: it
	// gets its "online" event first.
	joining chan struct{}
	backlog []batchOf
}

// batchOf is a message of n events.
type batchOf struct {
	msg []byte
	n   int
}

// pending is an encoded event waiting for the next batch.
type pending struct {
	pos uint64
	enc []byte
}

// presence is a user online in a room on this node, with how many
// connections.
type presence struct {
	user  User
	conns int
}

func (h *Hub) lookup(id int64) *room {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rooms[id]
}

// acquire returns a room, created and subscribed to the cluster if it had
// no members here, with r.mu held.
func (h *Hub) acquire(id int64) *room {
	for {
		h.mu.Lock()
		r := h.rooms[id]
		created := r == nil
		if created {
			r = &room{id: id, hub: h, ready: make(chan struct{}), members: map[Member]membership{}}
			h.rooms[id] = r
		}
		h.mu.Unlock()
		if created {
			r.cancel = h.bus.Subscribe(id, r.receive)
			close(r.ready)
		} else {
			<-r.ready
		}
		r.mu.Lock()
		if !r.closed {
			return r
		}
		r.mu.Unlock() // its last member left meanwhile: start again
	}
}

// Join adds a member to a room as user u. The member first gets an
// "online" event with everyone online (on every node), then every later
// event. The user's first connection in the room, on any node, also makes
// a "join" event. Join reports the users online.
func (h *Hub) Join(roomID int64, m Member, u User) []User {
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	r := h.acquire(roomID)
	if _, dup := r.members[m]; dup {
		local := r.usersLocked()
		r.mu.Unlock()
		return h.online(ctx, roomID, local)
	}
	// The member takes the events from now on, though the online list
	// is read after: an event may tell it what the list shows already
	// (clients take a join of a user online as a no-op), none is lost.
	joining := make(chan struct{})
	defer close(joining)
	r.members[m] = membership{user: u, seen: r.pos, seq: r.seq, joining: joining}
	firstHere := r.arriveLocked(u)
	r.mu.Unlock()

	enc, _ := json.Marshal(u)
	first, err := h.bus.Enter(ctx, roomID, cluster.PresentUser{ID: u.ID, User: enc, Since: time.Now()})
	if err != nil {
		h.presenceErrors.Add(1)
		first = firstHere
	}
	r.mu.Lock()
	local := r.usersLocked()
	r.mu.Unlock()
	users := h.online(ctx, roomID, local)

	r.mu.Lock()
	ms := r.members[m]
	snapshot := Event{Seq: ms.seq, Type: "online", Time: time.Now().UnixMilli(), Online: users, Viewers: len(users)}
	msg, _ := json.Marshal(snapshot)
	r.deliverLocked(m, r.batch([]pending{{enc: msg}}), 1)
	for _, b := range ms.backlog {
		r.deliverLocked(m, b.msg, b.n)
	}
	ms.joining, ms.backlog = nil, nil
	r.members[m] = ms
	r.mu.Unlock()
	if first {
		h.Publish(roomID, Event{Type: "join", User: &u, Viewers: len(users)})
	}
	return users
}

// Leave removes a member from a room. The user's last connection leaving,
// on every node, makes a "leave" event.
func (h *Hub) Leave(roomID int64, m Member) {
	r := h.lookup(roomID)
	if r == nil {
		return
	}
	r.mu.Lock()
	ms, ok := r.members[m]
	for ok && ms.joining != nil {
		ch := ms.joining
		r.mu.Unlock()
		<-ch
		r.mu.Lock()
		ms, ok = r.members[m]
	}
	if !ok {
		r.mu.Unlock()
		return
	}
	delete(r.members, m)
	lastHere := r.departLocked(ms.user.ID)
	empty := len(r.members) == 0
	if empty {
		r.closed = true
		r.pending = nil
		h.mu.Lock()
		if h.rooms[roomID] == r {
			delete(h.rooms, roomID)
		}
		h.mu.Unlock()
	}
	local := len(r.online)
	r.mu.Unlock()
	if empty {
		r.cancel()
	}

	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	last, err := h.bus.Exit(ctx, roomID, ms.user.ID)
	if err != nil {
		h.presenceErrors.Add(1)
		last = lastHere
	}
	if last {
		u := ms.user
		h.Publish(roomID, Event{Type: "leave", User: &u, Viewers: h.viewers(ctx, roomID, local)})
	}
}

// Vanished publishes a "leave" for each of users, who left a room because
// their node died. It is the function for cluster.Rooms.HandleVanished.
func (h *Hub) Vanished(roomID int64, users []cluster.PresentUser) {
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	local := 0
	if r := h.lookup(roomID); r != nil {
		r.mu.Lock()
		local = len(r.online)
		r.mu.Unlock()
	}
	viewers := h.viewers(ctx, roomID, local)
	for _, p := range users {
		u := decodeUser(p)
		h.Publish(roomID, Event{Type: "leave", User: &u, Viewers: viewers})
	}
}

// online returns the users online in a room on every node, or local when
// the cluster cannot tell.
func (h *Hub) online(ctx context.Context, roomID int64, local []User) []User {
	ps, err := h.bus.Online(ctx, roomID)
	if err != nil {
		h.presenceErrors.Add(1)
		if local == nil {
			local = []User{}
		}
		return local
	}
	out := make([]User, len(ps))
	for i, p := range ps {
		out[i] = decodeUser(p)
	}
	return out
}

// viewers counts the users online in a room on every node, without
// decoding them (a leave tells only how many stay), or returns local
// when the cluster cannot tell.
func (h *Hub) viewers(ctx context.Context, roomID int64, local int) int {
	ps, err := h.bus.Online(ctx, roomID)
	if err != nil {
		h.presenceErrors.Add(1)
		return local
	}
	return len(ps)
}

func decodeUser(p cluster.PresentUser) User {
	var u User
	if json.Unmarshal(p.User, &u) != nil {
		u = User{}
	}
	u.ID = p.ID
	return u
}

// Publish sends an event to everyone in a room, on every node, with the
// next seq of the room and the time (unless set). When the cluster cannot
// take it, the members on this node get it still, with seq 0. It never
// waits on members.
func (h *Hub) Publish(roomID int64, ev Event) {
	ev.Seq = 0
	if ev.Time == 0 {
		ev.Time = time.Now().UnixMilli()
	}
	enc, err := json.Marshal(ev)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	seq, err := h.bus.Publish(ctx, roomID, enc)
	if h.observe != nil {
		if err == nil {
			ev.Seq = seq
		}
		h.observe(roomID, ev)
	}
	if err == nil {
		return // it comes back through receive
	}
	h.unshared.Add(1)
	if r := h.lookup(roomID); r != nil {
		r.mu.Lock()
		if !r.closed {
			r.queueLocked(enc)
		}
		r.mu.Unlock()
	}
}

// receive takes an event of the room from the cluster.
func (r *room) receive(d cluster.Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if d.Missed > 0 {
		r.hub.missed.Add(d.Missed)
	}
	r.seq = d.Seq
	r.queueLocked(withSeq(d.Payload, d.Seq))
}

// unnumbered starts an event encoded by Publish, before its seq is known.
var unnumbered = []byte(`{"seq":0,`)

// withSeq writes seq into an event encoded by Publish.
func withSeq(enc []byte, seq uint64) []byte {
	if !bytes.HasPrefix(enc, unnumbered) {
		return enc
	}
	out := make([]byte, 0, len(enc)+20)
	out = append(out, `{"seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	out = append(out, ',')
	return append(out, enc[len(unnumbered):]...)
}

// Online returns the users online in a room on this node, in order of
// arrival.
func (h *Hub) Online(roomID int64) []User {
	r := h.lookup(roomID)
	if r == nil {
		return []User{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.usersLocked()
}

// Members tells how many connections are in a room on this node.
func (h *Hub) Members(roomID int64) int {
	r := h.lookup(roomID)
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

// Occupants lists the members of a room on this node.
func (h *Hub) Occupants(roomID int64) []Occupant {
	r := h.lookup(roomID)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Occupant, 0, len(r.members))
	for m, ms := range r.members {
		out = append(out, Occupant{Member: m, UserID: ms.user.ID})
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
	return r.batch([]pending{{enc: enc}})
}

// Stats are the hub's counters.
type Stats struct {
	Rooms     int
	Members   int
	Delivered uint64 // events delivered, counted per member
	Refused   uint64 // messages refused by members that could not keep up
	// Unshared counts events the cluster could not take (its shared
	// state unreachable): only this node's members got them.
	Unshared uint64
	// Missed counts events of other nodes lost on their way here (older
	// than the cluster's history when this node caught up).
	Missed uint64
	// PresenceErrors counts presence calls the cluster could not answer;
	// this node's own presence stood in.
	PresenceErrors uint64
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	h.mu.Unlock()
	st := Stats{Rooms: len(rooms), Delivered: h.delivered.Load(), Refused: h.refused.Load(),
		Unshared: h.unshared.Load(), Missed: h.missed.Load(), PresenceErrors: h.presenceErrors.Load()}
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

// arriveLocked counts a connection of u here; true if u had none. r.mu
// is held.
func (r *room) arriveLocked(u User) bool {
	i := slices.IndexFunc(r.online, func(p presence) bool { return p.user.ID == u.ID })
	if i >= 0 {
		r.online[i].conns++
		return false
	}
	r.online = append(r.online, presence{user: u, conns: 1})
	return true
}

// departLocked counts a connection of user uid less here; true if it was
// the last. r.mu is held.
func (r *room) departLocked(uid int64) bool {
	i := slices.IndexFunc(r.online, func(p presence) bool { return p.user.ID == uid })
	if i < 0 {
		return false
	}
	if r.online[i].conns--; r.online[i].conns > 0 {
		return false
	}
	r.online = slices.Delete(r.online, i, i+1)
	return true
}

// queueLocked queues an encoded event for the room's next batch. r.mu is
// held.
func (r *room) queueLocked(enc []byte) {
	if len(r.members) == 0 {
		return
	}
	r.pos++
	r.pending = append(r.pending, pending{r.pos, enc})
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
// everyone who joined at that point. A member still joining gets none.
// r.mu is held.
func (r *room) flushLocked() {
	r.scheduled = false
	if len(r.pending) == 0 {
		return
	}
	suffixes := map[int][]byte{}
	for m, ms := range r.members {
		start, _ := slices.BinarySearchFunc(r.pending, ms.seen+1, func(p pending, pos uint64) int {
			return cmp.Compare(p.pos, pos)
		})
		if start == len(r.pending) {
			continue
		}
		msg, ok := suffixes[start]
		if !ok {
			msg = r.batch(r.pending[start:])
			suffixes[start] = msg
		}
		if ms.joining != nil {
			ms.backlog = append(ms.backlog, batchOf{msg, len(r.pending) - start})
			r.members[m] = ms
			continue
		}
		r.deliverLocked(m, msg, len(r.pending)-start)
	}
	r.pending = r.pending[:0]
	r.last = time.Now()
}

// deliverLocked hands a message of n events to a member, counting it.
// r.mu is held.
func (r *room) deliverLocked(m Member, msg []byte, n int) {
	if m.Deliver(msg) {
		r.hub.delivered.Add(uint64(n))
	} else {
		r.hub.refused.Add(1)
	}
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

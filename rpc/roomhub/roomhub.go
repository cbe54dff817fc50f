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
// Events are encoded once, when published, into the room's log. A room
// hands them out in sweeps over its members on this node: each member is
// given, in one message, every event it has not had yet, as the log holds
// them when its turn comes; members at the same point share the message's
// bytes. A sweep starts at once after a quiet spell, and the next one no
// sooner than the hub's interval after it began, so a member gets about
// one message per interval at most; in a room so large that a sweep takes longer
// than that, sweeps follow each other, and an event waits for at most
// one sweep (not for the end of one, then for its place in the next). A
// member that cannot take a message at once is not waited for: Deliver
// tells it to go.
package roomhub

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"runtime"
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

	// users caches users decoded from the cluster's presence, by their
	// encoding: every join is told everyone online, mostly the same
	// users as the join before.
	usersMu sync.Mutex
	users   map[string]User

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
	return &Hub{interval: interval, bus: bus, rooms: map[int64]*room{}, users: map[string]User{}}
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

	mu      sync.Mutex
	closed  bool // the last member left: the room is out of the hub
	members map[Member]*membership
	// order is the members in the order sweeps visit them, which stays
	// the same from sweep to sweep: so a member waits for one sweep at
	// most between two messages, not for the time of two.
	order    []*membership
	online   []presence // this node's users, in order of arrival
	log      []pending  // events, by pos, from the oldest a member has not had (until the next trim)
	pos      uint64     // events queued in the room so far
	seq      uint64     // the room's seq of the last event from the cluster
	sweeping bool       // a sweep runs or is on its way
	swept    time.Time  // when the last sweep began

	// visit is the members of the sweep running, kept for the next. Only
	// the one sweeper (see sweeping) touches it, under mu or not.
	visit []*membership
}

// membership is a member of a room: its user and where it is in the
// room's events.
type membership struct {
	m    Member
	user User
	// seq is the room's seq when the member came, for its "online"
	// event.
	seq uint64
	// joining is closed once Join is done with the member (nil then).
	// Until then sweeps pass it by: it gets its "online" event first.
	joining chan struct{}
	at      int // where it is in the room's order

	// sent is the pos of the last event handed to the member (or passed
	// it by, if it left or refused): it gets those after. Sweeps move it
	// on.
	sent atomic.Uint64
	// mu is held while the member is handed a message, so that after
	// Leave it is handed none.
	mu   sync.Mutex
	left bool
}

// pending is an encoded event in a room's log.
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
			r = &room{id: id, hub: h, ready: make(chan struct{}), members: map[Member]*membership{}}
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
	ms := &membership{m: m, user: u, seq: r.seq, joining: joining}
	ms.sent.Store(r.pos)
	r.members[m] = ms
	ms.at = len(r.order)
	r.order = append(r.order, ms)
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

	snapshot := Event{Seq: ms.seq, Type: "online", Time: time.Now().UnixMilli(), Online: users, Viewers: len(users)}
	msg, _ := json.Marshal(snapshot)
	// Outside r.mu: sweeps pass the member by until joining is nil, and
	// Leave waits for it.
	r.deliverTo(m, r.batch([]pending{{enc: msg}}), 1)
	r.mu.Lock()
	ms.joining = nil
	if ms.sent.Load() < r.pos {
		r.sweepLocked() // what came while it joined
	}
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
	end := len(r.order) - 1
	r.order[ms.at] = r.order[end] // the last moves up: it waits less
	r.order[ms.at].at = ms.at
	r.order[end] = nil
	r.order = r.order[:end]
	ms.mu.Lock()
	ms.left = true // a sweep on its way hands it nothing more
	ms.mu.Unlock()
	lastHere := r.departLocked(ms.user.ID)
	empty := len(r.members) == 0
	if empty {
		r.closed = true
		r.log = nil
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
	known := make([]bool, len(ps))
	misses := 0
	h.usersMu.Lock()
	for i, p := range ps {
		out[i], known[i] = h.users[string(p.User)]
		if !known[i] {
			misses++
		}
	}
	h.usersMu.Unlock()
	if misses > 0 {
		for i, p := range ps { // decoded outside the lock
			if !known[i] {
				out[i] = decodeUser(p)
			}
		}
		h.usersMu.Lock()
		for i, p := range ps {
			if known[i] {
				continue
			}
			if len(h.users) >= maxDecodedUsers {
				// Full: a tenth goes, whichever the map gives first.
				n := 0
				for k := range h.users {
					delete(h.users, k)
					if n++; n >= maxDecodedUsers/10 {
						break
					}
				}
			}
			h.users[string(p.User)] = out[i]
		}
		h.usersMu.Unlock()
	}
	for i, p := range ps {
		out[i].ID = p.ID
	}
	return out
}

// maxDecodedUsers bounds the hub's cache of decoded users.
const maxDecodedUsers = 50000

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

// queueLocked adds an encoded event to the room's log and sees that a
// sweep hands it out. r.mu is held.
func (r *room) queueLocked(enc []byte) {
	if len(r.members) == 0 {
		return
	}
	r.pos++
	r.log = append(r.log, pending{r.pos, enc})
	r.sweepLocked()
}

// sweepLocked starts a sweep, unless one runs or is on its way: at once
// after a quiet spell, else the hub's interval after the last began.
// r.mu is held.
func (r *room) sweepLocked() {
	if r.sweeping {
		return
	}
	r.sweeping = true
	wait := time.Until(r.swept.Add(r.hub.interval))
	if wait <= 0 {
		// On another goroutine, so that the publisher does not pay for
		// the fan-out.
		go r.sweep()
		return
	}
	time.AfterFunc(wait, r.sweep)
}

// sweep hands out the room's events until every member has had them,
// one sweep over the members at a time, the next no sooner than the
// hub's interval after the last began. A large room is swept by several
// goroutines at once, one per processor, each over its share.
func (r *room) sweep() {
	for {
		r.mu.Lock()
		visit := r.visit[:0]
		if !r.closed {
			for _, ms := range r.order {
				if ms.joining == nil && ms.sent.Load() < r.pos {
					visit = append(visit, ms)
				}
			}
		}
		r.trimLocked()
		if len(visit) == 0 {
			r.sweeping = false
			r.visit = visit
			r.mu.Unlock()
			return
		}
		began := time.Now()
		r.swept = began
		r.mu.Unlock()

		if parts := min(runtime.GOMAXPROCS(0), len(visit)/fanoutShare); parts > 1 {
			var wg sync.WaitGroup
			for part := range slices.Chunk(visit, (len(visit)+parts-1)/parts) {
				wg.Go(func() { r.visitAll(part) })
			}
			wg.Wait()
		} else {
			r.visitAll(visit)
		}
		clear(visit)
		if cap(visit) > 4*len(visit)+64 { // the room shrank: let the rest go
			visit = nil
		}
		r.visit = visit

		if wait := time.Until(began.Add(r.hub.interval)); wait > 0 {
			r.mu.Lock()
			idle := r.caughtUpLocked()
			if idle {
				r.trimLocked()
				r.sweeping = false
			}
			r.mu.Unlock()
			if idle {
				return
			}
			time.Sleep(wait)
		}
	}
}

// fanoutShare is the fewest members a goroutine of a sweep visits: below
// twice as many, one goroutine does it all.
const fanoutShare = 1024

// refreshEvery is how many members a sweep visits between two looks at
// the room's log: events that came meanwhile go to the members after.
const refreshEvery = 64

// visitAll hands each member what it has not had of the room's events.
func (r *room) visitAll(visit []*membership) {
	var log []pending // the log as last seen
	var head uint64   // its last pos
	// The message from a member's sent up to head, for members who are
	// at the same point: most of a sweep's members are at one of a few.
	msgs := map[uint64][]byte{}
	for i, ms := range visit {
		if i%refreshEvery == 0 {
			r.mu.Lock()
			if r.pos != head {
				clear(msgs)
			}
			log, head = r.log, r.pos
			r.mu.Unlock()
		}
		from := ms.sent.Load()
		if from >= head {
			continue
		}
		start, _ := slices.BinarySearchFunc(log, from+1, func(p pending, pos uint64) int {
			return cmp.Compare(p.pos, pos)
		})
		msg, ok := msgs[from]
		if !ok {
			msg = r.batch(log[start:])
			msgs[from] = msg
		}
		ms.mu.Lock()
		if !ms.left {
			r.deliverTo(ms.m, msg, len(log)-start)
		}
		ms.sent.Store(head)
		ms.mu.Unlock()
	}
}

// caughtUpLocked tells whether every member that is not joining has had
// every event. r.mu is held.
func (r *room) caughtUpLocked() bool {
	for _, ms := range r.members {
		if ms.joining == nil && ms.sent.Load() < r.pos {
			return false
		}
	}
	return true
}

// trimLocked drops from the log the events every member has had. The log
// is cut from its front, never written over, so that a sweep's look at
// it stays whole. r.mu is held.
func (r *room) trimLocked() {
	low := r.pos
	for _, ms := range r.members {
		low = min(low, ms.sent.Load())
	}
	i := 0
	for i < len(r.log) && r.log[i].pos <= low {
		i++
	}
	r.log = r.log[i:]
	if len(r.log) == 0 {
		r.log = nil
	}
}

// deliverTo hands a message of n events to a member, counting it.
func (r *room) deliverTo(m Member, msg []byte, n int) {
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

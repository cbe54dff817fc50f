package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Local is the cluster of a node that runs alone: everything is kept in
// the process. It is also the reference for what the other
// implementations do.
type Local struct {
	self Node

	mu       sync.Mutex
	claims   map[string]*localClaim
	fences   map[string]int64
	report   Report
	handler  func(Command)
	commands chan Command
	closed   bool
	done     chan struct{}
}

// NewLocal returns the cluster of a single node.
func NewLocal(self Node) *Local {
	if self.Started.IsZero() {
		self.Started = time.Now()
	}
	l := &Local{
		self:     self,
		claims:   map[string]*localClaim{},
		fences:   map[string]int64{},
		commands: make(chan Command, 256),
		done:     make(chan struct{}),
	}
	go l.runCommands()
	return l
}

// Self is this node.
func (l *Local) Self() Node { return l.self }

// Err is always nil: there is nothing to reach.
func (l *Local) Err() error { return nil }

// Nodes lists this node alone.
func (l *Local) Nodes() []Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.self
	n.LastSeen = time.Now()
	n.Streams = len(l.claims)
	n.Clients = l.report.Clients
	return []Node{n}
}

// Claim makes this node the publisher of a stream; see Cluster.Claim.
func (l *Local) Claim(ctx context.Context, stream string, p Publisher) (Claim, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrUnavailable
	}
	if old := l.claims[stream]; old != nil {
		if !old.grace {
			return nil, ErrClaimed
		}
		old.loseLocked(ErrLost)
	}
	l.fences[stream]++
	c := &localClaim{l: l, stream: stream, fence: l.fences[stream], pub: p, since: time.Now(), lost: make(chan struct{})}
	l.claims[stream] = c
	return c, nil
}

// Streams lists the claimed streams by name.
func (l *Local) Streams() []Stream {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Stream, 0, len(l.claims))
	for _, c := range l.claims {
		out = append(out, l.streamLocked(c))
	}
	slices.SortFunc(out, func(a, b Stream) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Stream reports one claimed stream.
func (l *Local) Stream(name string) (Stream, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.claims[name]
	if c == nil {
		return Stream{}, false
	}
	return l.streamLocked(c), true
}

func (l *Local) streamLocked(c *localClaim) Stream {
	return Stream{Name: c.stream, Node: l.self.ID, NodeURL: l.self.URL, Fence: c.fence, Publisher: c.pub,
		Grace: c.grace, Since: c.since, Clients: l.report.Viewers[c.stream]}
}

// Report replaces this node's report.
func (l *Local) Report(r Report) {
	l.mu.Lock()
	l.report = r
	l.mu.Unlock()
}

// ClientLists returns this node's client list.
func (l *Local) ClientLists() map[string]json.RawMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return map[string]json.RawMessage{l.self.ID: l.report.ClientList}
}

// Send runs a command for this node (or every node) in the command
// goroutine; a command for another node goes nowhere.
func (l *Local) Send(ctx context.Context, c Command) error {
	if c.Node != "" && c.Node != l.self.ID {
		return nil
	}
	select {
	case l.commands <- c:
		return nil
	case <-l.done:
		return ErrUnavailable
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HandleCommands sets the function that runs commands.
func (l *Local) HandleCommands(fn func(Command)) {
	l.mu.Lock()
	l.handler = fn
	l.mu.Unlock()
}

func (l *Local) runCommands() {
	for {
		select {
		case c := <-l.commands:
			l.mu.Lock()
			fn := l.handler
			l.mu.Unlock()
			if fn != nil {
				fn(c)
			}
		case <-l.done:
			return
		}
	}
}

// Close drops every claim and stops the command goroutine.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for _, c := range l.claims {
		c.loseLocked(ErrLost)
	}
	close(l.done)
	return nil
}

// localClaim is a Claim of Local.
type localClaim struct {
	l      *Local
	stream string
	fence  int64
	since  time.Time
	lost   chan struct{}

	// guarded by l.mu
	pub   Publisher
	grace bool
	err   error
}

func (c *localClaim) Fence() int64 { return c.fence }

func (c *localClaim) SetGrace(_ context.Context, grace bool) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.grace = grace
	return nil
}

func (c *localClaim) SetPublisher(_ context.Context, p Publisher) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.pub = p
	return nil
}

func (c *localClaim) Lost() <-chan struct{} { return c.lost }

func (c *localClaim) Err() error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	return c.err
}

func (c *localClaim) Release(context.Context) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.err != nil {
		return nil
	}
	c.loseLocked(ErrLost)
	return nil
}

// loseLocked ends the claim; l.mu is held.
func (c *localClaim) loseLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	close(c.lost)
	if c.l.claims[c.stream] == c {
		delete(c.l.claims, c.stream)
	}
}

// LocalRooms is the Rooms of a node that runs alone.
type LocalRooms struct {
	mu       sync.Mutex
	rooms    map[int64]*localRoom
	vanished func(int64, []PresentUser)
}

type localRoom struct {
	mu   sync.Mutex // orders deliveries
	seq  uint64
	subs map[*localSub]struct{}
	// guarded by LocalRooms.mu
	present map[int64]*localPresence
	arrival uint64
}

type localSub struct{ fn func(Delivery) }

type localPresence struct {
	u       PresentUser
	conns   int
	arrival uint64
}

// NewLocalRooms returns the Rooms of a single node.
func NewLocalRooms() *LocalRooms {
	return &LocalRooms{rooms: map[int64]*localRoom{}}
}

func (r *LocalRooms) room(id int64) *localRoom {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm := r.rooms[id]
	if rm == nil {
		rm = &localRoom{subs: map[*localSub]struct{}{}, present: map[int64]*localPresence{}}
		r.rooms[id] = rm
	}
	return rm
}

// Publish numbers the event and hands it to the room's subscribers
// before it returns (never two at once for a room).
func (r *LocalRooms) Publish(_ context.Context, room int64, payload []byte) (uint64, error) {
	rm := r.room(room)
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.seq++
	d := Delivery{Room: room, Seq: rm.seq, Payload: payload}
	for s := range rm.subs {
		s.fn(d)
	}
	return rm.seq, nil
}

// Subscribe delivers the room's next events to fn.
func (r *LocalRooms) Subscribe(room int64, fn func(Delivery)) func() {
	rm := r.room(room)
	s := &localSub{fn: fn}
	rm.mu.Lock()
	rm.subs[s] = struct{}{}
	rm.mu.Unlock()
	return func() {
		rm.mu.Lock()
		delete(rm.subs, s)
		rm.mu.Unlock()
	}
}

// Enter records one more connection of u in a room.
func (r *LocalRooms) Enter(_ context.Context, room int64, u PresentUser) (bool, error) {
	rm := r.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	p := rm.present[u.ID]
	if p != nil {
		p.conns++
		return false, nil
	}
	if u.Since.IsZero() {
		u.Since = time.Now()
	}
	rm.arrival++
	rm.present[u.ID] = &localPresence{u: u, conns: 1, arrival: rm.arrival}
	return true, nil
}

// Exit records one connection of a user less in a room.
func (r *LocalRooms) Exit(_ context.Context, room int64, userID int64) (bool, error) {
	rm := r.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	p := rm.present[userID]
	if p == nil {
		return false, nil
	}
	if p.conns--; p.conns > 0 {
		return false, nil
	}
	delete(rm.present, userID)
	return true, nil
}

// Online lists a room's users in order of arrival.
func (r *LocalRooms) Online(_ context.Context, room int64) ([]PresentUser, error) {
	rm := r.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := make([]*localPresence, 0, len(rm.present))
	for _, p := range rm.present {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *localPresence) int { return cmp.Compare(a.arrival, b.arrival) })
	out := make([]PresentUser, len(ps))
	for i, p := range ps {
		out[i] = p.u
	}
	return out, nil
}

// HandleVanished sets the function told of vanished users; a single
// node's users never vanish.
func (r *LocalRooms) HandleVanished(fn func(int64, []PresentUser)) {
	r.mu.Lock()
	r.vanished = fn
	r.mu.Unlock()
}

// LocalLimiter is the Limiter of a node that runs alone: token buckets
// of golang.org/x/time/rate, in the process.
type LocalLimiter struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets map[string]*rate.Limiter
}

// maxLocalBuckets bounds LocalLimiter; full buckets are dropped past it.
const maxLocalBuckets = 100_000

// NewLocalLimiter returns an empty LocalLimiter.
func NewLocalLimiter() *LocalLimiter {
	return &LocalLimiter{now: time.Now, buckets: map[string]*rate.Limiter{}}
}

// Allow takes a token from key's bucket. A key is used with one rate.
func (l *LocalLimiter) Allow(_ context.Context, key string, every time.Duration, burst int) (bool, error) {
	if burst <= 0 {
		return true, nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxLocalBuckets {
			l.sweepLocked(now)
		}
		lim := rate.Limit(0)
		if every > 0 {
			lim = rate.Every(every)
		}
		b = rate.NewLimiter(lim, burst)
		l.buckets[key] = b
	}
	return b.AllowN(now, 1), nil
}

// sweepLocked drops buckets that have refilled; if none has, it starts
// over rather than grow.
func (l *LocalLimiter) sweepLocked(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(b.Burst()) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxLocalBuckets {
		clear(l.buckets)
	}
}

var (
	_ Cluster = (*Local)(nil)
	_ Rooms   = (*LocalRooms)(nil)
	_ Limiter = (*LocalLimiter)(nil)
)

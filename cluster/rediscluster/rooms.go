package rediscluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
)

// What Rooms keeps in Redis, under RoomsConfig.Prefix (the braces are a
// hash tag: every key of a room lives in one slot of a Redis Cluster, so
// that one script may touch them all):
//
//	room:{ID}:meta        hash: epoch (when the room's sequence began), seq
//	                      (its last event), arrival (a counter ordering who
//	                      came first); lapses a day after the last event
//	room:{ID}:log         stream: the room's last History events, entry ID
//	                      "<seq>-0", field p the payload; lapses with meta
//	room:{ID}             channel: each event as "<epoch>:<seq>:<payload>"
//	room:{ID}:users:NODE  hash: user ID → "<arrival> <since ms> <user JSON>",
//	                      the users NODE has in the room; lapses presenceTTL
//	                      after NODE's last refresh
//	noderooms:NODE        set: the rooms NODE has users in; lapses with them

// Defaults and timings of Rooms.
const (
	// DefaultHistory is how many events a room keeps for catching up.
	DefaultHistory = 500
	// roomsTimeout bounds each Redis operation of Rooms.
	roomsTimeout = 2 * time.Second
	// roomKeyTTL is how long a room's sequence and history outlive its
	// last event.
	roomKeyTTL = 24 * time.Hour
	// presenceTTL is how long a node's presence keys outlive its last
	// refresh: longer than a node's lease, so that when a node dies the
	// others still find who it had (see HandleVanished).
	presenceTTL = 15 * time.Second
	// presenceEvery is how often a node refreshes its presence keys and
	// looks for nodes that died.
	presenceEvery = time.Second
	// probeEvery is how often Rooms asks whether Redis is back after an
	// operation failed; until it is, operations fail at once.
	probeEvery = 250 * time.Millisecond
	// pingAfter is how long the subscription connection may be silent
	// before it is pinged; a ping unanswered for as long again means the
	// connection is dead, and it is replaced.
	pingAfter = time.Second
	// feedInbox is how many published events a room's subscription
	// holds before it drops them and catches up from the history.
	feedInbox = 256
	// historyBatch is how many history entries are read at once.
	historyBatch = 1000
	// catchUpFor is how long a subscription tries to read the history
	// it missed before it counts the events as lost.
	catchUpFor = 10 * time.Second
)

// publishScript appends an event to a room: the next seq, the history
// entry and the message on the room's channel, in one step, so that the
// sequence is the order every node receives. A room without an epoch
// (new, or its keys lapsed or were lost) starts a new sequence from 1.
//
// KEYS[1] meta, KEYS[2] log; ARGV[1] payload, ARGV[2] history length,
// ARGV[3] key lifetime (ms), ARGV[4] channel. Returns the seq.
var publishScript = redis.NewScript(`
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  local t = redis.call('TIME')
  epoch = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('DEL', KEYS[2])
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'p', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], epoch .. ':' .. seq .. ':' .. ARGV[1])
return seq
`)

// arriveScript records a user's first connection to a room on this node.
// A user some other live node has keeps the place it arrived at there;
// otherwise it gets the room's next arrival number and is first.
//
// KEYS[1] meta, KEYS[2] this node's users, KEYS[3...] the other live
// nodes' users; ARGV[1] user ID, ARGV[2] since (Unix ms), ARGV[3] user
// JSON, ARGV[4] presence lifetime (ms), ARGV[5] meta lifetime (ms).
// Returns {first (1 or 0), the stored entry}.
var arriveScript = redis.NewScript(`
local info = false
for i = 3, #KEYS do
  info = redis.call('HGET', KEYS[i], ARGV[1])
  if info then break end
end
local first = 0
if not info then
  first = 1
  local a = redis.call('HINCRBY', KEYS[1], 'arrival', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  info = a .. ' ' .. ARGV[2] .. ' ' .. ARGV[3]
end
redis.call('HSET', KEYS[2], ARGV[1], info)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {first, info}
`)

// departScript records a user's last connection to a room on this node
// going away.
//
// KEYS[1] this node's users, KEYS[2...] the other live nodes' users;
// ARGV[1] user ID. Returns 1 when no live node has the user any more.
var departScript = redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
for i = 2, #KEYS do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1 then return 0 end
end
return 1
`)

// vanishScript forgets what a dead node had in a room and returns the
// users no live node has: {id, entry, id, entry, ...}. The first caller
// gets them; the others, finding nothing, get none.
//
// KEYS[1] the dead node's users, KEYS[2...] the live nodes' users.
var vanishScript = redis.NewScript(`
local all = redis.call('HGETALL', KEYS[1])
if #all == 0 then return {} end
redis.call('DEL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local elsewhere = false
  for k = 2, #KEYS do
    if redis.call('HEXISTS', KEYS[k], all[i]) == 1 then elsewhere = true break end
  end
  if not elsewhere then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
`)

// RoomsConfig configures Rooms.
type RoomsConfig struct {
	// Prefix starts every key and channel, such as "mofang:".
	Prefix string
	// Node is this node's ID.
	Node string
	// Nodes lists the live nodes, this one included (the Cluster's
	// view). Nil means this node alone.
	Nodes func() []cluster.Node
	// History is how many events each room keeps for subscribers that
	// missed some [DefaultHistory].
	History int
	Logger  *slog.Logger
}

// Rooms is a cluster.Rooms kept in Redis: each room's events get their
// sequence numbers from one Lua script that also appends them to the
// room's history (a Redis stream) and publishes them on the room's
// channel, and every node subscribes, over one connection, to the rooms
// its members are in. A node that misses events (its connection broke,
// it could not keep up) fills them in from the history.
//
// Presence is kept per node and room: each node writes the users it has
// and refreshes the keys while it lives; Online reads those of the live
// nodes only, so a dead node's users drop out as soon as the cluster's
// view loses it, and one surviving node tells HandleVanished's function
// of them.
//
// When Redis cannot be reached, Publish, Enter, Exit and Online fail
// with an error wrapping cluster.ErrUnavailable (at once, after the first
// failure, until Redis answers a ping again); the subscriptions catch up
// from the history when it is back, and the node writes its presence
// again.
type Rooms struct {
	rdb  redis.UniversalClient
	cfg  RoomsConfig
	log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	// downSince is when an operation last failed for want of Redis
	// (Unix ns), 0 while Redis answers.
	downSince atomic.Int64

	mu     sync.Mutex
	feeds  map[int64]*feed
	closed bool
	wake   chan struct{} // the subscriptions changed

	psMu  sync.Mutex
	ps    *redis.PubSub
	psGen uint64 // grows each time ps is replaced

	pmu      sync.Mutex
	present  map[int64]*roomPresence
	vanished func(room int64, users []cluster.PresentUser)

	cleanOnce sync.Once
	cleaned   chan struct{} // closed once this node's leftovers are cleared

	// owned by housekeep
	live    map[string]bool      // the live nodes at the last look
	pending map[string]time.Time // dead nodes not yet cleared, since when

	unavailable atomic.Uint64
	missed      atomic.Uint64
	filled      atomic.Uint64
}

// NewRooms returns the Rooms of node cfg.Node. It starts its background
// work at once; Close stops it.
func NewRooms(rdb redis.UniversalClient, cfg RoomsConfig) *Rooms {
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &Rooms{
		rdb: rdb, cfg: cfg, log: cfg.Logger, ctx: ctx, stop: stop,
		feeds:   map[int64]*feed{},
		wake:    make(chan struct{}, 1),
		ps:      rdb.Subscribe(ctx),
		present: map[int64]*roomPresence{},
		cleaned: make(chan struct{}),
		pending: map[string]time.Time{},
	}
	r.wg.Add(3)
	go r.receive()
	go r.manage()
	go r.housekeep()
	return r
}

// Close stops the background work and the subscriptions. It leaves the
// node's presence keys to lapse: the node's users are told as vanished
// by another node, unless they left before.
func (r *Rooms) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for _, f := range r.feeds {
		close(f.done)
	}
	r.feeds = map[int64]*feed{}
	r.mu.Unlock()
	r.stop()
	r.psMu.Lock()
	err := r.ps.Close()
	r.psMu.Unlock()
	r.wg.Wait()
	if err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("rediscluster: close the subscriptions: %w", err)
	}
	return nil
}

// Err is nil while Redis answers, else why it did not.
func (r *Rooms) Err() error {
	if since := r.downSince.Load(); since != 0 {
		return fmt.Errorf("rediscluster: rooms: %w since %s", cluster.ErrUnavailable, time.Unix(0, since).Format(time.RFC3339))
	}
	return nil
}

// RoomsStats are the counters of Rooms.
type RoomsStats struct {
	Subscribed  int    // rooms subscribed to
	Unavailable uint64 // operations that failed for want of Redis
	Filled      uint64 // events delivered from the history
	Missed      uint64 // events lost: no longer in the history
}

// Stats returns the counters.
func (r *Rooms) Stats() RoomsStats {
	r.mu.Lock()
	n := len(r.feeds)
	r.mu.Unlock()
	return RoomsStats{Subscribed: n, Unavailable: r.unavailable.Load(), Filled: r.filled.Load(), Missed: r.missed.Load()}
}

func (r *Rooms) roomTag(room int64) string {
	return r.cfg.Prefix + "room:{" + strconv.FormatInt(room, 10) + "}"
}

func (r *Rooms) metaKey(room int64) string               { return r.roomTag(room) + ":meta" }
func (r *Rooms) logKey(room int64) string                { return r.roomTag(room) + ":log" }
func (r *Rooms) channel(room int64) string               { return r.roomTag(room) }
func (r *Rooms) usersKey(room int64, node string) string { return r.roomTag(room) + ":users:" + node }
func (r *Rooms) nodeRoomsKey(node string) string         { return r.cfg.Prefix + "noderooms:" + node }

// roomOf returns the room of a channel name.
func (r *Rooms) roomOf(channel string) (int64, bool) {
	s, ok := strings.CutPrefix(channel, r.cfg.Prefix+"room:{")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "}")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

// unreachable reports whether Redis failed a moment ago and has not
// answered since: operations then fail at once.
func (r *Rooms) unreachable() bool { return r.downSince.Load() != 0 }

// fail records that an operation failed and returns its error, which
// wraps cluster.ErrUnavailable unless the caller gave up.
func (r *Rooms) fail(ctx context.Context, what string, room int64, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("rediscluster: %s (room %d): %w", what, room, ctx.Err())
	}
	r.unavailable.Add(1)
	if r.downSince.CompareAndSwap(0, time.Now().UnixNano()) {
		r.log.Warn("redis unreachable: rooms go on locally", "error", err)
	}
	return fmt.Errorf("rediscluster: %s (room %d): %w: %w", what, room, cluster.ErrUnavailable, err)
}

// refuse is the error of an operation not tried because Redis failed a
// moment ago.
func (r *Rooms) refuse(what string, room int64) error {
	r.unavailable.Add(1)
	return fmt.Errorf("rediscluster: %s (room %d): %w", what, room, cluster.ErrUnavailable)
}

// Publish appends an event to a room's sequence, its history and its
// channel, and returns its number.
func (r *Rooms) Publish(ctx context.Context, room int64, payload []byte) (uint64, error) {
	if r.unreachable() {
		return 0, r.refuse("publish", room)
	}
	rctx, cancel := context.WithTimeout(ctx, roomsTimeout)
	defer cancel()
	seq, err := publishScript.Run(rctx, r.rdb, []string{r.metaKey(room), r.logKey(room)},
		payload, r.cfg.History, roomKeyTTL.Milliseconds(), r.channel(room)).Uint64()
	if err != nil {
		return 0, r.fail(ctx, "publish", room, err)
	}
	return seq, nil
}

// Subscribe delivers the room's events published from now on to fn, in
// order and once each; see cluster.Rooms. fn must not cancel its own
// subscription.
func (r *Rooms) Subscribe(room int64, fn func(cluster.Delivery)) func() {
	s := &feedSub{fn: fn}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return func() {}
	}
	f := r.feeds[room]
	created := f == nil
	if created {
		f = &feed{
			r: r, room: room, channel: r.channel(room),
			inbox:  make(chan feedMsg, feedInbox),
			resync: make(chan struct{}, 1),
			done:   make(chan struct{}),
			ready:  make(chan struct{}),
		}
		r.feeds[room] = f
		r.wg.Add(1)
	}
	f.mu.Lock()
	f.subs = append(slices.Clip(f.subs), s)
	f.mu.Unlock()
	r.mu.Unlock()
	if created {
		r.poke()
		f.start()
		close(f.ready)
		go f.run()
	} else {
		<-f.ready
	}
	var once sync.Once
	return func() { once.Do(func() { r.unsubscribe(f, s) }) }
}

func (r *Rooms) unsubscribe(f *feed, s *feedSub) {
	r.mu.Lock()
	f.mu.Lock()
	f.subs = slices.DeleteFunc(slices.Clone(f.subs), func(x *feedSub) bool { return x == s })
	empty := len(f.subs) == 0
	f.mu.Unlock()
	if empty && r.feeds[f.room] == f {
		delete(r.feeds, f.room)
		close(f.done)
	}
	r.mu.Unlock()
	if empty {
		r.poke()
	}
}

// poke tells manage that the subscriptions changed.
func (r *Rooms) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// manage keeps the subscription connection subscribed to the rooms that
// have subscribers here, and to those only. go-redis remembers the
// channels and subscribes them again whenever it reconnects.
func (r *Rooms) manage() {
	defer r.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var gen uint64
	subscribed := map[string]bool{}
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
		case <-tick.C:
		}
		r.mu.Lock()
		want := make(map[string]bool, len(r.feeds))
		for _, f := range r.feeds {
			want[f.channel] = true
		}
		r.mu.Unlock()
		r.psMu.Lock()
		ps, g := r.ps, r.psGen
		r.psMu.Unlock()
		if g != gen {
			gen = g
			clear(subscribed)
		}
		var add, drop []string
		for c := range want {
			if !subscribed[c] {
				add = append(add, c)
				subscribed[c] = true
			}
		}
		for c := range subscribed {
			if !want[c] {
				drop = append(drop, c)
				delete(subscribed, c)
			}
		}
		ctx, cancel := context.WithTimeout(r.ctx, roomsTimeout)
		// Errors are not retried: the channels are recorded either way,
		// and a connection that failed is dialled again, subscribed to
		// them all, by receive.
		if len(add) > 0 {
			_ = ps.Subscribe(ctx, add...)
		}
		if len(drop) > 0 {
			_ = ps.Unsubscribe(ctx, drop...)
		}
		cancel()
	}
}

// receive reads the subscription connection and hands each event to its
// room's feed. A subscription confirmed (after a reconnection too) makes
// the room catch up from its history; a connection silent past a ping is
// replaced.
func (r *Rooms) receive() {
	defer r.wg.Done()
	pinged := false
	backoff := 100 * time.Millisecond
	for r.ctx.Err() == nil {
		r.psMu.Lock()
		ps := r.ps
		r.psMu.Unlock()
		msg, err := ps.ReceiveTimeout(r.ctx, pingAfter)
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				if pinged {
					r.log.Warn("redis subscription connection silent: replacing it")
					r.replacePubSub()
					pinged = false
					continue
				}
				ctx, cancel := context.WithTimeout(r.ctx, pingAfter)
				_ = ps.Ping(ctx)
				cancel()
				pinged = true
				continue
			}
			// The connection broke or could not be made: the next
			// Receive dials again (and subscribes again).
			pinged = false
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		pinged = false
		backoff = 100 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if f := r.feedOf(m.Channel); f != nil {
					f.catchUp()
				}
			}
		case *redis.Message:
			if f := r.feedOf(m.Channel); f != nil {
				f.push(m.Payload)
			}
		}
	}
}

func (r *Rooms) feedOf(channel string) *feed {
	room, ok := r.roomOf(channel)
	if !ok {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.feeds[room]
}

// replacePubSub closes the subscription connection and starts another,
// which manage subscribes to every room again.
func (r *Rooms) replacePubSub() {
	r.psMu.Lock()
	old := r.ps
	r.ps = r.rdb.Subscribe(r.ctx)
	r.psGen++
	r.psMu.Unlock()
	_ = old.Close()
	r.poke()
}

// readMeta returns a room's sequence: its epoch ("" when it has none
// yet) and last seq.
func (r *Rooms) readMeta(ctx context.Context, room int64) (string, uint64, error) {
	vals, err := r.rdb.HMGet(ctx, r.metaKey(room), "epoch", "seq").Result()
	if err != nil {
		return "", 0, err
	}
	epoch, _ := vals[0].(string)
	seqStr, _ := vals[1].(string)
	var seq uint64
	if seqStr != "" {
		if seq, err = strconv.ParseUint(seqStr, 10, 64); err != nil {
			return "", 0, fmt.Errorf("room %d: bad seq %q", room, seqStr)
		}
	}
	return epoch, seq, nil
}

// historyEntry is one event read back from a room's history.
type historyEntry struct {
	seq     uint64
	payload []byte
}

// history reads a room's events from..to from its history, with the
// epoch of the sequence they belong to.
func (r *Rooms) history(ctx context.Context, room int64, from, to uint64) (string, []historyEntry, error) {
	var epochCmd *redis.StringCmd
	var rangeCmd *redis.XMessageSliceCmd
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		epochCmd = p.HGet(ctx, r.metaKey(room), "epoch")
		rangeCmd = p.XRangeN(ctx, r.logKey(room), strconv.FormatUint(from, 10)+"-0", strconv.FormatUint(to, 10)+"-0", historyBatch)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", nil, err
	}
	epoch := epochCmd.Val()
	msgs := rangeCmd.Val()
	out := make([]historyEntry, 0, len(msgs))
	for _, m := range msgs {
		id, _, _ := strings.Cut(m.ID, "-")
		seq, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			continue
		}
		p, _ := m.Values["p"].(string)
		out = append(out, historyEntry{seq: seq, payload: []byte(p)})
	}
	return epoch, out, nil
}

// feed is the subscription of this node to one room: events come from
// the channel (push) in order, gaps are filled from the history, and
// each event goes to every local subscriber once.
type feed struct {
	r       *Rooms
	room    int64
	channel string
	inbox   chan feedMsg
	resync  chan struct{} // catch up from the history
	done    chan struct{} // the last subscriber left, or Rooms closed
	ready   chan struct{} // the starting point is known (or could not be)

	mu   sync.Mutex // held while delivering: no delivery after a cancel
	subs []*feedSub // copied on write

	// owned by start, then run
	known  bool   // epoch and next are known
	epoch  string // the sequence's epoch
	next   uint64 // the seq to deliver next
	missed uint64 // events lost since the last delivery
}

type feedSub struct{ fn func(cluster.Delivery) }

// feedMsg is an event as published: "<epoch>:<seq>:<payload>".
type feedMsg struct {
	epoch   string
	seq     uint64
	payload []byte
}

// start reads where the room's sequence is, so that every event
// published after Subscribe returns is delivered, whether it comes on the
// channel or (before the subscription is confirmed) from the history.
func (f *feed) start() {
	if f.r.unreachable() {
		return
	}
	ctx, cancel := context.WithTimeout(f.r.ctx, roomsTimeout)
	defer cancel()
	epoch, seq, err := f.r.readMeta(ctx, f.room)
	if err != nil {
		f.r.fail(ctx, "subscribe", f.room, err)
		return
	}
	f.known, f.epoch, f.next = true, epoch, seq+1
}

// push hands a published event to the feed without blocking: a feed
// that cannot keep up drops it and catches up from the history.
func (f *feed) push(wire string) {
	m, ok := parseWire(wire)
	if !ok {
		f.r.log.Debug("room event not understood", "room", f.room)
		return
	}
	select {
	case f.inbox <- m:
	default:
		f.catchUp()
	}
}

// catchUp asks the feed to fill in from the history what it may have
// missed.
func (f *feed) catchUp() {
	select {
	case f.resync <- struct{}{}:
	default:
	}
}

func parseWire(s string) (feedMsg, bool) {
	epoch, rest, ok := strings.Cut(s, ":")
	if !ok {
		return feedMsg{}, false
	}
	seqStr, payload, ok := strings.Cut(rest, ":")
	if !ok {
		return feedMsg{}, false
	}
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if err != nil || seq == 0 {
		return feedMsg{}, false
	}
	return feedMsg{epoch: epoch, seq: seq, payload: []byte(payload)}, true
}

func (f *feed) run() {
	defer f.r.wg.Done()
	for {
		select {
		case <-f.done:
			return
		case <-f.resync:
			f.sync()
		case m := <-f.inbox:
			f.handle(m)
		}
	}
}

// handle delivers a published event, after the events before it that
// did not come.
func (f *feed) handle(m feedMsg) {
	if !f.known {
		// Subscribe could not read the sequence: start here.
		f.known, f.epoch, f.next = true, m.epoch, m.seq
	}
	if m.epoch != f.epoch {
		// The room's sequence started over (its keys lapsed or Redis
		// lost them): follow the new one from its beginning.
		f.r.log.Info("room sequence started over", "room", f.room, "epoch", m.epoch)
		f.epoch, f.next = m.epoch, 1
	}
	if m.seq > f.next {
		f.fill(m.seq - 1)
	}
	if m.seq < f.next {
		return // delivered already (from the history)
	}
	f.deliver(m.seq, m.payload)
}

// sync compares the feed with the room's sequence in Redis and fills
// in what it missed.
func (f *feed) sync() {
	var epoch string
	var seq uint64
	if !f.retry("read the room's sequence", func(ctx context.Context) (err error) {
		epoch, seq, err = f.r.readMeta(ctx, f.room)
		return err
	}) {
		return // the next confirmation or event tries again
	}
	switch {
	case !f.known:
		f.known, f.epoch, f.next = true, epoch, seq+1
		return
	case epoch != f.epoch:
		f.r.log.Info("room sequence started over", "room", f.room, "epoch", epoch)
		f.epoch, f.next = epoch, 1
	case seq+1 < f.next:
		// Redis went back to an older copy of the room: follow it
		// from where it is.
		f.r.log.Warn("room sequence went back", "room", f.room, "seq", seq, "delivered", f.next-1)
		f.next = seq + 1
		return
	}
	if seq >= f.next {
		f.fill(seq)
	}
}

// fill delivers the events from f.next to to from the history; those it
// no longer has are counted as missed on the next delivery.
func (f *feed) fill(to uint64) {
	for f.next <= to {
		var epoch string
		var entries []historyEntry
		if !f.retry("read the room's history", func(ctx context.Context) (err error) {
			epoch, entries, err = f.r.history(ctx, f.room, f.next, to)
			return err
		}) {
			break
		}
		if epoch != f.epoch || len(entries) == 0 {
			break
		}
		for _, e := range entries {
			if e.seq < f.next || e.seq > to {
				continue
			}
			f.missed += e.seq - f.next
			f.r.filled.Add(1)
			f.deliver(e.seq, e.payload)
		}
		if len(entries) < historyBatch {
			break
		}
	}
	if f.next <= to {
		f.missed += to - f.next + 1
		f.next = to + 1
	}
}

// retry runs op until it succeeds, waiting longer each time, for up to
// catchUpFor; false if it never did (or the feed ended).
func (f *feed) retry(what string, op func(context.Context) error) bool {
	deadline := time.Now().Add(catchUpFor)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		ctx, cancel := context.WithTimeout(f.r.ctx, roomsTimeout)
		err := op(ctx)
		cancel()
		if err == nil {
			return true
		}
		if time.Now().Add(wait).After(deadline) {
			f.r.log.Warn("room subscription could not "+what, "room", f.room, "error", err)
			return false
		}
		select {
		case <-f.done:
			return false
		case <-time.After(wait):
		}
	}
}

func (f *feed) deliver(seq uint64, payload []byte) {
	d := cluster.Delivery{Room: f.room, Seq: seq, Payload: payload, Missed: f.missed}
	if f.missed > 0 {
		f.r.missed.Add(f.missed)
		f.r.log.Warn("room events lost: older than the history", "room", f.room, "missed", f.missed, "seq", seq)
	}
	f.missed = 0
	f.next = seq + 1
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.subs {
		s.fn(d)
	}
}

// roomPresence is this node's users in a room, the truth its keys in
// Redis mirror.
type roomPresence struct {
	mu    sync.Mutex // orders the room's Enter, Exit and rewrite
	users map[int64]*localUser
	dirty bool // Redis may differ from users: write them again
	gone  bool // dropped from Rooms.present
}

type localUser struct {
	conns int
	u     cluster.PresentUser
	entry string // as stored in Redis; "" until stored
}

// presenceOf returns a room's presence, locked; nil if none and not
// create.
func (r *Rooms) presenceOf(room int64, create bool) *roomPresence {
	for {
		r.pmu.Lock()
		rp := r.present[room]
		if rp == nil {
			if !create {
				r.pmu.Unlock()
				return nil
			}
			rp = &roomPresence{users: map[int64]*localUser{}}
			r.present[room] = rp
		}
		r.pmu.Unlock()
		rp.mu.Lock()
		if !rp.gone {
			return rp
		}
		rp.mu.Unlock()
	}
}

// dropPresenceLocked forgets an empty room's presence. rp.mu is held.
func (r *Rooms) dropPresenceLocked(room int64, rp *roomPresence) {
	rp.gone = true
	r.pmu.Lock()
	if r.present[room] == rp {
		delete(r.present, room)
	}
	r.pmu.Unlock()
}

// liveNodes lists the IDs of the live nodes, this one always among them.
func (r *Rooms) liveNodes() []string {
	ids := []string{r.cfg.Node}
	if r.cfg.Nodes != nil {
		for _, n := range r.cfg.Nodes() {
			if n.ID != r.cfg.Node {
				ids = append(ids, n.ID)
			}
		}
	}
	return ids
}

// otherUsersKeys are the presence keys of a room on the live nodes
// other than this one.
func (r *Rooms) otherUsersKeys(room int64) []string {
	ids := r.liveNodes()[1:]
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.usersKey(room, id)
	}
	return keys
}

// Enter records one more connection of u in a room on this node. When
// Redis cannot be reached, the connection is still counted here (and
// written to Redis when it is back) and the error wraps
// cluster.ErrUnavailable.
func (r *Rooms) Enter(ctx context.Context, room int64, u cluster.PresentUser) (bool, error) {
	r.clearLeftovers()
	select {
	case <-r.cleaned:
	case <-ctx.Done():
		return false, fmt.Errorf("rediscluster: enter room %d: %w", room, ctx.Err())
	}
	rp := r.presenceOf(room, true)
	defer rp.mu.Unlock()
	if lu := rp.users[u.ID]; lu != nil {
		lu.conns++
		return false, nil
	}
	if u.Since.IsZero() {
		u.Since = time.Now()
	}
	lu := &localUser{conns: 1, u: u}
	rp.users[u.ID] = lu
	if r.unreachable() {
		rp.dirty = true
		return true, r.refuse("enter", room)
	}
	rctx, cancel := context.WithTimeout(ctx, roomsTimeout)
	defer cancel()
	if len(rp.users) == 1 {
		pipe := r.rdb.Pipeline()
		pipe.SAdd(rctx, r.nodeRoomsKey(r.cfg.Node), room)
		pipe.PExpire(rctx, r.nodeRoomsKey(r.cfg.Node), presenceTTL)
		if _, err := pipe.Exec(rctx); err != nil {
			rp.dirty = true
			return true, r.fail(ctx, "enter", room, err)
		}
	}
	first, entry, err := r.arrive(rctx, room, u)
	if err != nil {
		rp.dirty = true
		return true, r.fail(ctx, "enter", room, err)
	}
	lu.entry = entry
	return first, nil
}

// arrive runs arriveScript for u and returns whether u is new to the
// room and the entry stored.
func (r *Rooms) arrive(ctx context.Context, room int64, u cluster.PresentUser) (bool, string, error) {
	keys := append([]string{r.metaKey(room), r.usersKey(room, r.cfg.Node)}, r.otherUsersKeys(room)...)
	user := u.User
	if len(user) == 0 {
		user = []byte("null")
	}
	res, err := arriveScript.Run(ctx, r.rdb, keys, u.ID, u.Since.UnixMilli(), []byte(user),
		presenceTTL.Milliseconds(), roomKeyTTL.Milliseconds()).Slice()
	if err != nil {
		return false, "", err
	}
	if len(res) != 2 {
		return false, "", fmt.Errorf("arrive: unexpected reply %v", res)
	}
	first, _ := res[0].(int64)
	entry, _ := res[1].(string)
	return first == 1, entry, nil
}

// Exit records one connection of a user less in a room on this node.
func (r *Rooms) Exit(ctx context.Context, room int64, userID int64) (bool, error) {
	rp := r.presenceOf(room, false)
	if rp == nil {
		return false, nil
	}
	defer rp.mu.Unlock()
	lu := rp.users[userID]
	if lu == nil {
		return false, nil
	}
	if lu.conns--; lu.conns > 0 {
		return false, nil
	}
	delete(rp.users, userID)
	if r.unreachable() {
		rp.dirty = true
		return true, r.refuse("exit", room)
	}
	rctx, cancel := context.WithTimeout(ctx, roomsTimeout)
	defer cancel()
	keys := append([]string{r.usersKey(room, r.cfg.Node)}, r.otherUsersKeys(room)...)
	last, err := departScript.Run(rctx, r.rdb, keys, userID).Int()
	if err != nil {
		rp.dirty = true
		return true, r.fail(ctx, "exit", room, err)
	}
	if len(rp.users) == 0 && !rp.dirty {
		r.dropPresenceLocked(room, rp)
		r.rdb.SRem(rctx, r.nodeRoomsKey(r.cfg.Node), room) // a leftover lapses or is cleared as vanished
	}
	return last == 1, nil
}

// Online lists the users in a room on the live nodes, in order of
// arrival.
func (r *Rooms) Online(ctx context.Context, room int64) ([]cluster.PresentUser, error) {
	if r.unreachable() {
		return nil, r.refuse("online", room)
	}
	rctx, cancel := context.WithTimeout(ctx, roomsTimeout)
	defer cancel()
	nodes := r.liveNodes()
	cmds := make([]*redis.MapStringStringCmd, len(nodes))
	_, err := r.rdb.Pipelined(rctx, func(p redis.Pipeliner) error {
		for i, id := range nodes {
			cmds[i] = p.HGetAll(rctx, r.usersKey(room, id))
		}
		return nil
	})
	if err != nil {
		return nil, r.fail(ctx, "online", room, err)
	}
	type arrived struct {
		n uint64
		u cluster.PresentUser
	}
	byID := map[int64]arrived{}
	for _, c := range cmds {
		for id, entry := range c.Val() {
			n, u, ok := parseEntry(id, entry)
			if !ok {
				continue
			}
			if a, dup := byID[u.ID]; !dup || n < a.n {
				byID[u.ID] = arrived{n, u}
			}
		}
	}
	all := make([]arrived, 0, len(byID))
	for _, a := range byID {
		all = append(all, a)
	}
	slices.SortFunc(all, func(a, b arrived) int {
		return cmp.Or(cmp.Compare(a.n, b.n), cmp.Compare(a.u.ID, b.u.ID))
	})
	out := make([]cluster.PresentUser, len(all))
	for i, a := range all {
		out[i] = a.u
	}
	return out, nil
}

// parseEntry reads a presence entry, "<arrival> <since ms> <user JSON>".
func parseEntry(id, entry string) (uint64, cluster.PresentUser, bool) {
	uid, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return 0, cluster.PresentUser{}, false
	}
	a, rest, ok1 := strings.Cut(entry, " ")
	since, user, ok2 := strings.Cut(rest, " ")
	n, err1 := strconv.ParseUint(a, 10, 64)
	ms, err2 := strconv.ParseInt(since, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return 0, cluster.PresentUser{}, false
	}
	return n, cluster.PresentUser{ID: uid, User: []byte(user), Since: time.UnixMilli(ms)}, true
}

// HandleVanished sets the function told of users who left rooms because
// their node died, on one node of the cluster only. Setting it also
// clears what an earlier run of this node left in Redis, telling fn of
// those users.
func (r *Rooms) HandleVanished(fn func(room int64, users []cluster.PresentUser)) {
	r.pmu.Lock()
	r.vanished = fn
	r.pmu.Unlock()
	r.clearLeftovers()
}

// clearLeftovers clears, once and in the background, the presence an
// earlier run of this node (same ID) left: its users are told as
// vanished. Enter waits for it.
func (r *Rooms) clearLeftovers() {
	r.cleanOnce.Do(func() {
		r.mu.Lock()
		closed := r.closed
		if !closed {
			r.wg.Add(1)
		}
		r.mu.Unlock()
		if closed {
			close(r.cleaned)
			return
		}
		go func() {
			defer r.wg.Done()
			defer close(r.cleaned)
			if err := r.vanish(r.cfg.Node, r.liveNodes()[1:]); err != nil {
				r.log.Warn("could not clear this node's earlier presence", "error", err)
			}
		}()
	})
}

// housekeep refreshes this node's presence keys, writes again those
// Redis lost or missed, tells of the users of nodes that died, and asks
// whether Redis is back after a failure.
func (r *Rooms) housekeep() {
	defer r.wg.Done()
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		if r.unreachable() {
			ctx, cancel := context.WithTimeout(r.ctx, probeEvery)
			err := r.rdb.Ping(ctx).Err()
			cancel()
			if err != nil {
				continue
			}
			r.downSince.Store(0)
			r.log.Info("redis reachable again")
		} else if time.Since(last) < presenceEvery {
			continue
		}
		last = time.Now()
		r.refresh()
		r.watchNodes()
	}
}

// refresh extends the life of this node's presence keys and writes
// again the rooms whose keys are gone or out of step.
func (r *Rooms) refresh() {
	r.pmu.Lock()
	rooms := make(map[int64]*roomPresence, len(r.present))
	for id, rp := range r.present {
		rooms[id] = rp
	}
	r.pmu.Unlock()
	if len(rooms) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, roomsTimeout)
	defer cancel()
	ids := make([]int64, 0, len(rooms))
	cmds := make([]*redis.BoolCmd, 0, len(rooms))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.PExpire(ctx, r.nodeRoomsKey(r.cfg.Node), presenceTTL)
		for id := range rooms {
			ids = append(ids, id)
			cmds = append(cmds, p.PExpire(ctx, r.usersKey(id, r.cfg.Node), presenceTTL))
		}
		return nil
	})
	if err != nil {
		r.fail(ctx, "refresh presence", 0, err)
		return
	}
	for i, id := range ids {
		rp := rooms[id]
		rp.mu.Lock()
		stale := rp.dirty || (!cmds[i].Val() && len(rp.users) > 0)
		rp.mu.Unlock()
		if stale {
			if err := r.rewrite(ctx, id, rp); err != nil {
				r.fail(ctx, "write presence", id, err)
				return
			}
		}
	}
}

// rewrite makes this node's presence key of a room hold its users.
func (r *Rooms) rewrite(ctx context.Context, room int64, rp *roomPresence) error {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.gone {
		return nil
	}
	key := r.usersKey(room, r.cfg.Node)
	stored, err := r.rdb.HKeys(ctx, key).Result()
	if err != nil {
		return err
	}
	for _, lu := range rp.users {
		if lu.entry == "" { // Enter could not store it
			if _, lu.entry, err = r.arrive(ctx, room, lu.u); err != nil {
				return err
			}
		}
	}
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range stored {
			if uid, err := strconv.ParseInt(id, 10, 64); err != nil || rp.users[uid] == nil {
				p.HDel(ctx, key, id)
			}
		}
		for id, lu := range rp.users {
			p.HSet(ctx, key, strconv.FormatInt(id, 10), lu.entry)
		}
		p.PExpire(ctx, key, presenceTTL)
		if len(rp.users) > 0 {
			p.SAdd(ctx, r.nodeRoomsKey(r.cfg.Node), room)
		} else {
			p.SRem(ctx, r.nodeRoomsKey(r.cfg.Node), room)
		}
		p.PExpire(ctx, r.nodeRoomsKey(r.cfg.Node), presenceTTL)
		return nil
	})
	if err != nil {
		return err
	}
	rp.dirty = false
	if len(rp.users) == 0 {
		r.dropPresenceLocked(room, rp)
	}
	return nil
}

// watchNodes finds the nodes that left the cluster's view since the last
// look and clears what they had.
func (r *Rooms) watchNodes() {
	if r.cfg.Nodes == nil {
		return
	}
	live := map[string]bool{}
	for _, n := range r.cfg.Nodes() {
		live[n.ID] = true
	}
	if !live[r.cfg.Node] {
		return // this node's own view is not whole: judge nobody
	}
	for id := range r.live {
		if !live[id] {
			if _, ok := r.pending[id]; !ok {
				r.pending[id] = time.Now()
			}
		}
	}
	r.live = live
	others := r.liveNodes()
	for id, since := range r.pending {
		if live[id] {
			delete(r.pending, id)
			continue
		}
		if time.Since(since) < presenceEvery/2 {
			continue // gone at one look only: wait for the next
		}
		err := r.vanish(id, others)
		if err == nil || time.Since(since) > presenceTTL {
			delete(r.pending, id)
		}
		if err != nil {
			r.log.Warn("could not clear a dead node's presence", "node", id, "error", err)
		}
	}
}

// vanish clears what node dead had in every room and tells the vanished
// function of the users no node in live has.
func (r *Rooms) vanish(dead string, live []string) error {
	if r.unreachable() {
		return cluster.ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(r.ctx, 4*roomsTimeout)
	defer cancel()
	rooms, err := r.rdb.SMembers(ctx, r.nodeRoomsKey(dead)).Result()
	if err != nil {
		return err
	}
	r.pmu.Lock()
	fn := r.vanished
	r.pmu.Unlock()
	for _, s := range rooms {
		room, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			continue
		}
		keys := []string{r.usersKey(room, dead)}
		for _, id := range live {
			if id != dead {
				keys = append(keys, r.usersKey(room, id))
			}
		}
		res, err := vanishScript.Run(ctx, r.rdb, keys).StringSlice()
		if err != nil {
			return err
		}
		type arrived struct {
			n uint64
			u cluster.PresentUser
		}
		var all []arrived
		for i := 0; i+1 < len(res); i += 2 {
			if n, u, ok := parseEntry(res[i], res[i+1]); ok {
				all = append(all, arrived{n, u})
			}
		}
		slices.SortFunc(all, func(a, b arrived) int { return cmp.Compare(a.n, b.n) })
		users := make([]cluster.PresentUser, len(all))
		for i, a := range all {
			users[i] = a.u
		}
		if len(users) > 0 {
			r.log.Info("users of a dead node left a room", "node", dead, "room", room, "users", len(users))
			if fn != nil {
				fn(room, users)
			}
		}
	}
	return r.rdb.Del(ctx, r.nodeRoomsKey(dead)).Err()
}

var _ cluster.Rooms = (*Rooms)(nil)

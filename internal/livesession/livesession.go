// Package livesession records every live of a room as a session in the
// store: from the publish start to its end (a publisher back within the
// media engine's grace is the same live, since the engine reports the end
// only after the grace), with its viewers over every protocol: the plays
// started (the total), the most at once (the peak) and a sample of the
// viewers every few seconds while live.
//
// A Tracker is the media engine's EventSink: it hears of publishes and
// plays (on the goroutine of the engine's events, in order) and passes
// every event on to the next EventSink. The node that publishes a stream
// owns its session (opens, samples and ends it); every node counts its
// own viewers of the stream and adds them to the session.
package livesession

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/store"
)

// DefaultEvery is the default interval of the viewer samples.
const DefaultEvery = 5 * time.Second

// storeTimeout bounds each write to the store.
const storeTimeout = 5 * time.Second

// Store is what the tracker needs of the store (*store.Store).
type Store interface {
	RoomByName(ctx context.Context, name string) (store.Room, error)
	StartSession(ctx context.Context, roomID int64) (int64, bool, error)
	EndSession(ctx context.Context, roomID, viewers int64) error
	AddViewers(ctx context.Context, roomID, sessionID, n int64) error
	AddSample(ctx context.Context, sessionID, viewers, peak int64) error
	RaisePeak(ctx context.Context, sessionID, peak int64) error
}

// Config configures a Tracker.
type Config struct {
	Store Store
	// Next hears of every event after the tracker (nil: nobody).
	Next media.EventSink
	// Every is the interval of the viewer samples [DefaultEvery].
	Every time.Duration
	// Skip tells the streams that are no room's (calls', co-hosts'),
	// which have no sessions. Nil: none.
	Skip func(stream string) bool
	// Source names the stream a played stream is part of: a rendition
	// of the quality ladder is its source's live. Nil: itself.
	Source func(stream string) string
	// Elsewhere reports whether another node publishes the stream now
	// (a stream that stopped here but goes on there keeps its session).
	// Nil: never.
	Elsewhere func(stream string) bool
	Logger    *slog.Logger
}

// Tracker records the lives of rooms; see the package doc. Make one
// with New.
type Tracker struct {
	cfg  Config
	log  *slog.Logger
	next media.PlayEventSink // Next's, if it hears of viewers

	mu      sync.Mutex
	streams map[string]*stream
}

// stream is what the tracker knows of a stream on this node.
type stream struct {
	roomID  int64 // 0: not looked up yet
	session int64 // the session this node owns; 0: none (relayed here)
	pending int64 // plays started, not yet added to the session
	playing int   // viewers now, on this node
	peak    int   // most viewers at once on this node since the last sample
}

// New returns a tracker; call Run for its samples.
func New(cfg Config) *Tracker {
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t := &Tracker{cfg: cfg, log: cfg.Logger, streams: map[string]*stream{}}
	t.next, _ = cfg.Next.(media.PlayEventSink)
	return t
}

func (t *Tracker) skip(name string) bool { return t.cfg.Skip != nil && t.cfg.Skip(name) }

// source is the stream whose live a play of name is part of.
func (t *Tracker) source(name string) string {
	if t.cfg.Source == nil {
		return name
	}
	return t.cfg.Source(name)
}

func storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
}

// PublishStarted opens (or, after a takeover, resumes) the room's session
// and takes its first sample.
func (t *Tracker) PublishStarted(ctx context.Context, s media.StreamInfo) {
	if t.cfg.Next != nil {
		t.cfg.Next.PublishStarted(ctx, s)
	}
	if t.skip(s.Name) {
		return
	}
	ctx, cancel := storeCtx(ctx)
	defer cancel()
	room, err := t.cfg.Store.RoomByName(ctx, s.Name)
	if err != nil {
		t.log.Warn("live session: room of a stream not found", "stream", s.Name, "err", err)
		return
	}
	id, resumed, err := t.cfg.Store.StartSession(ctx, room.ID)
	if err != nil {
		t.log.Error("live session: starting", "room", room.ID, "err", err)
		return
	}
	t.mu.Lock()
	st := t.stream(s.Name)
	st.roomID, st.session = room.ID, id
	viewers := st.playing
	t.mu.Unlock()
	if err := t.cfg.Store.AddSample(ctx, id, int64(viewers), int64(viewers)); err != nil {
		t.log.Warn("live session: sampling", "session", id, "err", err)
	}
	t.log.Info("live session started", "room", room.ID, "session", id, "resumed", resumed)
}

// PublishStopped ends the room's session, with the plays not yet added
// and the peak since the last sample.
func (t *Tracker) PublishStopped(ctx context.Context, s media.StreamInfo) {
	if t.cfg.Next != nil {
		t.cfg.Next.PublishStopped(ctx, s)
	}
	if t.skip(s.Name) {
		return
	}
	t.mu.Lock()
	st, ok := t.streams[s.Name]
	if !ok || st.session == 0 {
		t.mu.Unlock()
		return
	}
	delete(t.streams, s.Name)
	t.mu.Unlock()
	ctx, cancel := storeCtx(ctx)
	defer cancel()
	if err := t.cfg.Store.RaisePeak(ctx, st.session, int64(st.peak)); err != nil {
		t.log.Warn("live session: peak", "session", st.session, "err", err)
	}
	if t.cfg.Elsewhere != nil && t.cfg.Elsewhere(s.Name) {
		// Another node took the stream over: its session goes on there.
		if err := t.cfg.Store.AddViewers(ctx, st.roomID, st.session, st.pending); err != nil {
			t.log.Warn("live session: adding viewers", "room", st.roomID, "err", err)
		}
		return
	}
	if err := t.cfg.Store.EndSession(ctx, st.roomID, st.pending); err != nil {
		t.log.Error("live session: ending", "room", st.roomID, "err", err)
		return
	}
	t.log.Info("live session ended", "room", st.roomID, "session", st.session)
}

// PlayStarted counts a viewer, of any protocol.
func (t *Tracker) PlayStarted(ctx context.Context, p media.PlayInfo) {
	if t.next != nil {
		t.next.PlayStarted(ctx, p)
	}
	name := t.source(p.Stream)
	if t.skip(name) {
		return
	}
	t.mu.Lock()
	st := t.stream(name)
	st.pending++
	st.playing++
	st.peak = max(st.peak, st.playing)
	t.mu.Unlock()
}

// PlayStopped notes that a viewer left.
func (t *Tracker) PlayStopped(ctx context.Context, p media.PlayInfo) {
	if t.next != nil {
		t.next.PlayStopped(ctx, p)
	}
	name := t.source(p.Stream)
	if t.skip(name) {
		return
	}
	t.mu.Lock()
	if st, ok := t.streams[name]; ok && st.playing > 0 {
		st.playing--
	}
	t.mu.Unlock()
}

// stream returns the state of a stream, made if new; t.mu is held.
func (t *Tracker) stream(name string) *stream {
	st, ok := t.streams[name]
	if !ok {
		st = &stream{}
		t.streams[name] = st
	}
	return st
}

// Run samples the viewers of the sessions this node owns, and adds the
// plays counted here to their sessions, every Every until ctx ends.
// viewers tells a stream's viewers now (its renditions' included), on
// every node.
func (t *Tracker) Run(ctx context.Context, viewers func(stream string) int) {
	tick := time.NewTicker(t.cfg.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t.sample(ctx, viewers)
	}
}

// work is one stream's share of a tick.
type work struct {
	name    string
	roomID  int64
	session int64
	pending int64
	peak    int
}

// sample is one tick of Run.
func (t *Tracker) sample(ctx context.Context, viewers func(string) int) {
	t.mu.Lock()
	var todo []work
	for name, st := range t.streams {
		w := work{name: name, roomID: st.roomID, session: st.session, pending: st.pending, peak: st.peak}
		st.pending, st.peak = 0, st.playing
		if st.session == 0 && st.playing == 0 {
			delete(t.streams, name) // relayed here, nobody watching: nothing to keep
		}
		if w.session != 0 || w.pending != 0 {
			todo = append(todo, w)
		}
	}
	t.mu.Unlock()
	for _, w := range todo {
		sctx, cancel := storeCtx(ctx)
		if w.roomID == 0 {
			room, err := t.cfg.Store.RoomByName(sctx, w.name)
			if err != nil {
				cancel()
				continue // a stream of no room, or the store is down: these plays are lost
			}
			w.roomID = room.ID
			t.mu.Lock()
			if st, ok := t.streams[w.name]; ok && st.roomID == 0 {
				st.roomID = room.ID
			}
			t.mu.Unlock()
		}
		if err := t.cfg.Store.AddViewers(sctx, w.roomID, w.session, w.pending); err != nil {
			t.log.Warn("live session: adding viewers", "room", w.roomID, "err", err)
			t.giveBack(w.name, w.pending)
		}
		if w.session != 0 {
			n := viewers(w.name)
			if err := t.cfg.Store.AddSample(sctx, w.session, int64(n), int64(max(n, w.peak))); err != nil {
				t.log.Warn("live session: sampling", "session", w.session, "err", err)
			}
		}
		cancel()
	}
}

// giveBack returns plays that could not be added, for the next tick.
func (t *Tracker) giveBack(name string, n int64) {
	t.mu.Lock()
	t.stream(name).pending += n
	t.mu.Unlock()
}

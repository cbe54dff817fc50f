package livesession

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/store"
)

// fakeStore records the tracker's writes.
type fakeStore struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeStore) log(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	return nil
}

func (f *fakeStore) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	slices.Sort(c)
	return c
}

func (f *fakeStore) RoomByName(_ context.Context, name string) (store.Room, error) {
	switch name {
	case "room_a":
		return store.Room{ID: 1, Name: name}, nil
	case "room_b":
		return store.Room{ID: 2, Name: name}, nil
	}
	return store.Room{}, store.ErrNotFound
}

func (f *fakeStore) StartSession(_ context.Context, roomID int64) (int64, bool, error) {
	return roomID * 10, false, f.log("start room %d", roomID)
}

func (f *fakeStore) EndSession(_ context.Context, roomID, viewers int64) error {
	return f.log("end room %d +%d", roomID, viewers)
}

func (f *fakeStore) AddViewers(_ context.Context, roomID, sessionID, n int64) error {
	if n == 0 {
		return nil
	}
	return f.log("viewers room %d session %d +%d", roomID, sessionID, n)
}

func (f *fakeStore) AddSample(_ context.Context, sessionID, viewers, peak int64) error {
	return f.log("sample session %d viewers %d peak %d", sessionID, viewers, peak)
}

func (f *fakeStore) RaisePeak(_ context.Context, sessionID, peak int64) error {
	return f.log("peak session %d %d", sessionID, peak)
}

// nextSink counts the events passed on.
type nextSink struct{ starts, stops, plays, unplays int }

func (n *nextSink) PublishStarted(context.Context, media.StreamInfo) { n.starts++ }
func (n *nextSink) PublishStopped(context.Context, media.StreamInfo) { n.stops++ }
func (n *nextSink) PlayStarted(context.Context, media.PlayInfo)      { n.plays++ }
func (n *nextSink) PlayStopped(context.Context, media.PlayInfo)      { n.unplays++ }

// TestTracker: a stream published here is a session, sampled with the
// viewers now and the peak between samples; its plays are added each tick
// and at its end; a stream relayed here (no session) adds its plays to
// the room's latest session; a private stream and a stream published on
// another node now are left alone; every event reaches the next sink.
func TestTracker(t *testing.T) {
	ctx := context.Background()
	fs := &fakeStore{}
	next := &nextSink{}
	elsewhere := false
	tr := New(Config{Store: fs, Next: next,
		Skip:      func(s string) bool { return s == "call-1-2" },
		Source:    func(s string) string { return strings.TrimSuffix(s, "_480p") },
		Elsewhere: func(string) bool { return elsewhere }})
	viewers := map[string]int{"room_a": 7}
	count := func(s string) int { return viewers[s] }
	play := func(stream string, n int) {
		for range n {
			tr.PlayStarted(ctx, media.PlayInfo{Stream: stream})
		}
	}
	stop := func(stream string, n int) {
		for range n {
			tr.PlayStopped(ctx, media.PlayInfo{Stream: stream})
		}
	}
	want := func(what string, w ...string) {
		t.Helper()
		slices.Sort(w)
		if got := fs.take(); !slices.Equal(got, w) {
			t.Fatalf("%s: store got %q, want %q", what, got, w)
		}
	}

	tr.PublishStarted(ctx, media.StreamInfo{Name: "room_a"})
	tr.PublishStarted(ctx, media.StreamInfo{Name: "call-1-2"})
	want("start", "start room 1", "sample session 10 viewers 0 peak 0")

	play("room_a", 2)
	play("room_a_480p", 1) // a rendition's viewer watches room_a's live
	stop("room_a", 2)
	play("room_b", 2) // relayed here
	play("call-1-2", 1)
	tr.sample(ctx, count)
	want("first tick",
		"viewers room 1 session 10 +3", "sample session 10 viewers 7 peak 7",
		"viewers room 2 session 0 +2")
	viewers["room_a"] = 1
	tr.sample(ctx, count)
	want("a quiet tick", "sample session 10 viewers 1 peak 1")

	play("room_a", 4) // 5 playing here now
	stop("room_a", 5)
	tr.sample(ctx, count)
	want("a burst between ticks", "viewers room 1 session 10 +4", "sample session 10 viewers 1 peak 5")

	play("room_a", 1)
	stop("room_a", 1)
	tr.PublishStopped(ctx, media.StreamInfo{Name: "room_a"})
	tr.PublishStopped(ctx, media.StreamInfo{Name: "call-1-2"})
	want("end", "peak session 10 1", "end room 1 +1")

	// Taken over by another node: its session goes on there.
	tr.PublishStarted(ctx, media.StreamInfo{Name: "room_a"})
	want("second live", "start room 1", "sample session 10 viewers 0 peak 0")
	play("room_a", 2)
	elsewhere = true
	stop("room_a", 2)
	tr.PublishStopped(ctx, media.StreamInfo{Name: "room_a"})
	want("taken over", "peak session 10 2", "viewers room 1 session 10 +2")

	if next.starts != 3 || next.stops != 3 || next.plays != 13 || next.unplays != 10 {
		t.Fatalf("next sink got %+v", *next)
	}
}

// failingStore fails AddViewers.
type failingStore struct{ fakeStore }

func (f *failingStore) AddViewers(context.Context, int64, int64, int64) error {
	return errors.New("database down")
}

// TestTrackerKeepsPlaysWhenTheStoreFails: plays the store refused are
// added at the next tick.
func TestTrackerKeepsPlaysWhenTheStoreFails(t *testing.T) {
	ctx := context.Background()
	fs := &failingStore{}
	tr := New(Config{Store: fs})
	tr.PublishStarted(ctx, media.StreamInfo{Name: "room_a"})
	tr.PlayStarted(ctx, media.PlayInfo{Stream: "room_a"})
	tr.sample(ctx, func(string) int { return 1 })
	tr.mu.Lock()
	pending := tr.streams["room_a"].pending
	tr.mu.Unlock()
	if pending != 1 {
		t.Fatalf("pending after a failed add: %d, want 1", pending)
	}
}

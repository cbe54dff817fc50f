package roomhub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/cluster"
)

// TestHubsShareRooms: two hubs on one cluster.Rooms are two nodes: each
// member sees every event of the room, in one order, and presence is the
// cluster's (a user on both nodes joins and leaves once).
func TestHubsShareRooms(t *testing.T) {
	bus := cluster.NewLocalRooms()
	a, b := New(5*time.Millisecond, bus), New(5*time.Millisecond, bus)
	ma, mb, mb2 := &member{}, &member{}, &member{}
	a.Join(7, ma, User{ID: 1, Nickname: "one"})
	if on := b.Join(7, mb, User{ID: 2, Nickname: "two"}); len(on) != 2 || on[0].ID != 1 || on[0].Nickname != "one" {
		t.Fatalf("online on b: %+v", on)
	}
	b.Join(7, mb2, User{ID: 1, Nickname: "one"}) // user 1's second connection, on b
	for i := range 20 {
		h := a
		if i%2 == 1 {
			h = b
		}
		h.Publish(7, Event{Type: "comment", User: &User{ID: 1}, Content: fmt.Sprint(i)})
	}
	b.Leave(7, mb2) // user 1 is still on a: no leave
	a.Leave(7, ma)  // now user 1 leaves
	waitFor(t, func() bool {
		evs := mb.events(t)
		return len(evs) > 0 && evs[len(evs)-1].Type == "leave"
	})
	var got []string
	var last uint64
	for _, ev := range mb.events(t) {
		if ev.Type != "online" && ev.Seq != last+1 && last != 0 {
			t.Fatalf("seq %d after %d", ev.Seq, last)
		}
		if ev.Type != "online" {
			last = ev.Seq
		}
		s := ev.Type
		if ev.Type == "comment" {
			s += " " + ev.Content
		}
		if ev.User != nil {
			s += fmt.Sprintf(" by %d", ev.User.ID)
		}
		got = append(got, s)
	}
	want := []string{"online", "join by 2"}
	for i := range 20 {
		want = append(want, fmt.Sprintf("comment %d by 1", i))
	}
	want = append(want, "leave by 1")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("b's member got\n%v\nwant\n%v", got, want)
	}
}

// failingRooms is a cluster.Rooms whose shared state is out of reach.
type failingRooms struct{ *cluster.LocalRooms }

func (failingRooms) Publish(context.Context, int64, []byte) (uint64, error) {
	return 0, fmt.Errorf("publish: %w", cluster.ErrUnavailable)
}

func (failingRooms) Enter(context.Context, int64, cluster.PresentUser) (bool, error) {
	return false, cluster.ErrUnavailable
}

func (failingRooms) Exit(context.Context, int64, int64) (bool, error) {
	return false, cluster.ErrUnavailable
}

func (failingRooms) Online(context.Context, int64) ([]cluster.PresentUser, error) {
	return nil, cluster.ErrUnavailable
}

// TestHubWithoutCluster: when the cluster cannot be reached, the room
// goes on for this node's members: events (with seq 0) and presence from
// what the node knows; the failures are counted.
func TestHubWithoutCluster(t *testing.T) {
	h := New(0, failingRooms{cluster.NewLocalRooms()})
	watcher, m := &member{}, &member{}
	h.Join(7, watcher, User{ID: 1})
	if on := h.Join(7, m, User{ID: 2}); len(on) != 2 {
		t.Fatalf("online %+v, want both local users", on)
	}
	h.Publish(7, Event{Type: "comment", User: &User{ID: 2}, Content: "hi"})
	h.Leave(7, m)
	waitFor(t, func() bool {
		evs := watcher.events(t)
		return len(evs) > 0 && evs[len(evs)-1].Type == "leave"
	})
	var types []string
	for _, ev := range watcher.events(t) {
		if ev.Type != "online" && ev.Seq != 0 {
			t.Fatalf("event %+v has a seq without the cluster", ev)
		}
		types = append(types, ev.Type)
	}
	if fmt.Sprint(types) != "[online join join comment leave]" {
		t.Fatalf("watcher got %v", types)
	}
	if st := h.Stats(); st.Unshared != 4 || st.PresenceErrors == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// slowOnline is a LocalRooms whose Online waits for the test once.
type slowOnline struct {
	*cluster.LocalRooms
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func (s *slowOnline) Online(ctx context.Context, room int64) ([]cluster.PresentUser, error) {
	s.once.Do(func() {
		close(s.reached)
		<-s.release
	})
	return s.LocalRooms.Online(ctx, room)
}

// TestJoinGetsOnlineFirstAndMissesNothing: events published while a
// member is joining reach it after its online list, none lost.
func TestJoinGetsOnlineFirstAndMissesNothing(t *testing.T) {
	bus := &slowOnline{LocalRooms: cluster.NewLocalRooms(), reached: make(chan struct{}), release: make(chan struct{})}
	h := New(0, bus)
	old := &member{}
	// The first Online is the old member's.
	go func() { <-bus.reached; close(bus.release) }()
	h.Join(7, old, User{ID: 1})
	bus.once = sync.Once{}
	bus.reached, bus.release = make(chan struct{}), make(chan struct{})
	m := &member{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Join(7, m, User{ID: 2})
	}()
	<-bus.reached // m is joining, waiting for the online list
	h.Publish(7, Event{Type: "comment", Content: "during"})
	waitFor(t, func() bool {
		evs := old.events(t)
		return len(evs) > 0 && evs[len(evs)-1].Content == "during"
	})
	if n := len(m.events(t)); n != 0 {
		t.Fatalf("a joining member got %d events before its online list", n)
	}
	close(bus.release)
	<-done
	h.Publish(7, Event{Type: "comment", Content: "after"})
	waitFor(t, func() bool {
		evs := m.events(t)
		return len(evs) > 0 && evs[len(evs)-1].Content == "after"
	})
	var got []string
	for _, ev := range m.events(t) {
		got = append(got, ev.Type+":"+ev.Content)
	}
	if fmt.Sprint(got) != "[online: comment:during join: comment:after]" {
		t.Fatalf("joining member got %v", got)
	}
}

// TestVanished: users whose node died get a "leave" each, with the
// viewers left.
func TestVanished(t *testing.T) {
	h := New(0, nil)
	m := &member{}
	h.Join(7, m, User{ID: 1})
	h.Vanished(7, []cluster.PresentUser{{ID: 5, User: []byte(`{"id":5,"nickname":"five","avatar":""}`)}, {ID: 6, User: []byte(`not json`)}})
	waitFor(t, func() bool { return len(m.events(t)) == 4 })
	evs := m.events(t)
	if evs[2].Type != "leave" || evs[2].User.Nickname != "five" || evs[3].User.ID != 6 || evs[3].Viewers != 1 {
		t.Fatalf("events %+v", evs)
	}
}

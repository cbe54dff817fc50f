package roomhub

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// member records what it is given; a full one refuses.
type member struct {
	mu   sync.Mutex
	msgs [][]byte
	cap  int
	cost time.Duration    // what a Deliver takes, as a socket's write would
	hold func(msg []byte) // called first by Deliver, if set
}

func (m *member) Deliver(msg []byte) bool {
	if m.hold != nil {
		m.hold(msg)
	}
	if m.cost > 0 {
		for t0 := time.Now(); time.Since(t0) < m.cost; {
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cap > 0 && len(m.msgs) >= m.cap {
		return false
	}
	m.msgs = append(m.msgs, msg)
	return true
}

// events decodes every event m got, in order.
func (m *member) events(t *testing.T) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	for _, b := range m.msgs {
		var n struct {
			Method string `json:"method"`
			Params struct {
				RoomID int64   `json:"room_id"`
				Events []Event `json:"events"`
			} `json:"params"`
		}
		if err := json.Unmarshal(b, &n); err != nil || n.Method != Method || n.Params.RoomID != 7 {
			t.Fatalf("message %s: %v", b, err)
		}
		out = append(out, n.Params.Events...)
	}
	return out
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOrderAndSharedBytes(t *testing.T) {
	h := New(20*time.Millisecond, nil)
	a, b := &member{}, &member{}
	h.Join(7, a, User{ID: 1, Nickname: "a"})
	h.Join(7, b, User{ID: 2, Nickname: "b"})
	waitFor(t, func() bool { return len(b.events(t)) == 2 }) // online, own join
	for i := range 100 {
		h.Publish(7, Event{Type: "comment", User: &User{ID: 1}, Content: string(rune('a' + i%26))})
	}
	waitFor(t, func() bool { return len(b.events(t)) == 1+1+100 }) // online, own join, comments
	evs := b.events(t)
	if evs[0].Type != "online" || len(evs[0].Online) != 2 {
		t.Fatalf("b's first event: %+v", evs[0])
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq {
			t.Fatalf("events out of order: %d after %d", evs[i].Seq, evs[i-1].Seq)
		}
	}
	// A's messages after b joined are the very same bytes as b's.
	a.mu.Lock()
	b.mu.Lock()
	last := a.msgs[len(a.msgs)-1]
	shared := &last[0] == &b.msgs[len(b.msgs)-1][0]
	batches := len(b.msgs) - 1
	a.mu.Unlock()
	b.mu.Unlock()
	if !shared {
		t.Fatal("members got copies of a batch, not the same bytes")
	}
	if batches >= 100 {
		t.Fatalf("100 events in %d messages: not batched", batches)
	}
	if st := h.Stats(); st.Members != 2 || st.Delivered < 200 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPresence(t *testing.T) {
	h := New(0, nil)
	watcher, s1, s2 := &member{}, &member{}, &member{}
	h.Join(7, watcher, User{ID: 1})
	h.Join(7, s1, User{ID: 2})
	h.Join(7, s2, User{ID: 2}) // the same user's second socket
	if on := h.Online(7); len(on) != 2 {
		t.Fatalf("online %+v, want 2 users", on)
	}
	h.Leave(7, s1)
	if on := h.Online(7); len(on) != 2 {
		t.Fatalf("one of two sockets left: online %+v", on)
	}
	h.Leave(7, s2)
	waitFor(t, func() bool {
		evs := watcher.events(t)
		return len(evs) > 0 && evs[len(evs)-1].Type == "leave"
	})
	var joins, leaves int
	for _, ev := range watcher.events(t) {
		switch ev.Type {
		case "join":
			joins++
		case "leave":
			leaves++
		}
	}
	if joins != 2 || leaves != 1 { // its own join and user 2's; user 2 once
		t.Fatalf("joins %d leaves %d", joins, leaves)
	}
	h.Leave(7, watcher)
	if st := h.Stats(); st.Rooms != 0 {
		t.Fatalf("empty room kept: %+v", st)
	}
}

// TestSlowMemberIsRefusedNotWaitedFor: a member that cannot take a
// message is counted and skipped; the others get everything.
func TestSlowMemberIsRefusedNotWaitedFor(t *testing.T) {
	h := New(0, nil)
	slow, fast := &member{cap: 1}, &member{}
	h.Join(7, slow, User{ID: 1})
	h.Join(7, fast, User{ID: 2})
	for range 50 {
		h.Publish(7, Event{Type: "like"})
		time.Sleep(time.Millisecond)
	}
	waitFor(t, func() bool {
		n := 0
		for _, ev := range fast.events(t) {
			if ev.Type == "like" {
				n++
			}
		}
		return n == 50
	})
	if h.Stats().Refused == 0 {
		t.Fatal("the full member's refusals were not counted")
	}
}

// TestBigRoomOrder: in a room of a thousand members whose fan-out
// outlasts the hub's interval, every member still gets every event once,
// in order.
func TestBigRoomOrder(t *testing.T) {
	h := New(time.Millisecond, nil)
	// one user's connections: no join events, one name online.
	members := make([]*member, 1025)
	for i := range members {
		members[i] = &member{cost: 5 * time.Microsecond} // a flush outlasts the interval
		h.Join(7, members[i], User{ID: 1})
	}
	last := members[len(members)-1]
	waitFor(t, func() bool { return len(last.events(t)) >= 1 }) // online
	for i := range 100 {
		h.Publish(7, Event{Type: "comment", User: &User{ID: 1}, Content: "c" + string(rune('a'+i%26))})
		if i%10 == 0 {
			time.Sleep(2 * time.Millisecond) // several batches
		}
	}
	comments := func(m *member) int {
		m.mu.Lock()
		defer m.mu.Unlock()
		n := 0
		for _, b := range m.msgs {
			n += bytes.Count(b, []byte(`"type":"comment"`))
		}
		return n
	}
	waitFor(t, func() bool {
		for _, m := range members {
			if comments(m) < 100 {
				return false
			}
		}
		return true
	})
	for i, m := range members {
		var seqs []uint64
		for _, ev := range m.events(t) {
			if ev.Type == "comment" {
				seqs = append(seqs, ev.Seq)
			}
		}
		if len(seqs) != 100 {
			t.Fatalf("member %d got %d comments", i, len(seqs))
		}
		for j := 1; j < len(seqs); j++ {
			if seqs[j] <= seqs[j-1] {
				t.Fatalf("member %d: comment seq %d after %d", i, seqs[j], seqs[j-1])
			}
		}
	}
}

// TestSweepTakesWhatCameMeanwhile: an event published while a sweep is
// on its way reaches the members that sweep has not visited yet in that
// same sweep, with the events before it in one message, instead of
// waiting for the next sweep: in a large room an event waits for at most
// one sweep.
func TestSweepTakesWhatCameMeanwhile(t *testing.T) {
	h := New(300*time.Millisecond, nil)
	first := &member{}
	gate := make(chan struct{})
	reached := make(chan struct{})
	first.hold = func(msg []byte) {
		if bytes.Contains(msg, []byte(`"content":"e1"`)) {
			close(reached)
			<-gate
		}
	}
	members := []*member{first}
	for range 3 * refreshEvery {
		members = append(members, &member{})
	}
	for _, m := range members { // one user: one join event, no more
		h.Join(7, m, User{ID: 1})
	}
	last := members[len(members)-1]
	waitFor(t, func() bool { return len(first.events(t)) == 2 }) // online, the join
	time.Sleep(350 * time.Millisecond)                           // quiet: the next sweep starts at once
	before := len(last.events(t))                                // online (it came after the join)
	h.Publish(7, Event{Type: "comment", User: &User{ID: 1}, Content: "e1"})
	<-reached // the sweep is at the first member
	h.Publish(7, Event{Type: "comment", User: &User{ID: 1}, Content: "e2"})
	close(gate)
	waitFor(t, func() bool { return len(last.events(t)) > before })
	last.mu.Lock()
	msg := last.msgs[len(last.msgs)-1]
	last.mu.Unlock()
	if !bytes.Contains(msg, []byte(`"content":"e1"`)) || !bytes.Contains(msg, []byte(`"content":"e2"`)) {
		t.Fatalf("the last member's message after the join: %s; want e1 and e2 in it, from one sweep", msg)
	}
	// Every member gets both, once each, in order.
	comments := func(m *member) []string {
		var out []string
		for _, ev := range m.events(t) {
			if ev.Type == "comment" {
				out = append(out, ev.Content)
			}
		}
		return out
	}
	for i, m := range members {
		waitFor(t, func() bool { return len(comments(m)) >= 2 })
		if got := comments(m); len(got) != 2 || got[0] != "e1" || got[1] != "e2" {
			t.Fatalf("member %d got the comments %q", i, got)
		}
	}
}

// TestLeftMemberGetsNothing: a member is handed nothing after Leave
// returns, even by a sweep that was on its way.
func TestLeftMemberGetsNothing(t *testing.T) {
	h := New(time.Millisecond, nil)
	var members []*member
	for range 2 * refreshEvery {
		m := &member{cost: 20 * time.Microsecond}
		members = append(members, m)
		h.Join(7, m, User{ID: 1})
	}
	leaver := members[len(members)-1]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			h.Publish(7, Event{Type: "like"})
		}
	}()
	time.Sleep(2 * time.Millisecond)
	h.Leave(7, leaver)
	leaver.mu.Lock()
	n := len(leaver.msgs)
	leaver.mu.Unlock()
	<-done
	time.Sleep(50 * time.Millisecond)
	leaver.mu.Lock()
	after := len(leaver.msgs) - n
	leaver.mu.Unlock()
	if after != 0 {
		t.Fatalf("the member got %d messages after it left (%d before)", after, n)
	}
}

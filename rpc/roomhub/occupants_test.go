package roomhub

import (
	"testing"
	"time"
)

// TestOccupantsAndNotice: a room lists its members with their users, and
// a notice is one Live.room.events message outside the room's sequence.
func TestOccupantsAndNotice(t *testing.T) {
	h := New(10*time.Millisecond, nil)
	a, b := &member{}, &member{}
	h.Join(7, a, User{ID: 1})
	h.Join(7, b, User{ID: 2})
	got := map[Member]int64{}
	for _, o := range h.Occupants(7) {
		got[o.Member] = o.UserID
	}
	if len(got) != 2 || got[a] != 1 || got[b] != 2 {
		t.Fatalf("occupants %v", got)
	}
	if len(h.Occupants(8)) != 0 {
		t.Fatal("an empty room has occupants")
	}
	n := &member{}
	n.Deliver(Notice(7, Event{Type: "reenter", Reason: "password", Seq: 99}))
	evs := n.events(t)
	if len(evs) != 1 || evs[0].Type != "reenter" || evs[0].Reason != "password" || evs[0].Seq != 0 || evs[0].Time == 0 {
		t.Fatalf("notice events %+v", evs)
	}
}

package hub

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// playSink records publish and play events in the order they come.
type playSink struct {
	mu     sync.Mutex
	events []string
	infos  []PlayInfo
	stops  []StreamInfo
}

func (p *playSink) add(s string) {
	p.mu.Lock()
	p.events = append(p.events, s)
	p.mu.Unlock()
}

func (p *playSink) PublishStarted(_ context.Context, s StreamInfo) { p.add("publish.start " + s.Name) }
func (p *playSink) PublishStopped(_ context.Context, s StreamInfo) {
	p.mu.Lock()
	p.stops = append(p.stops, s)
	p.mu.Unlock()
	p.add("publish.stop " + s.Name + " " + s.Reason)
}

func (p *playSink) PlayStarted(_ context.Context, i PlayInfo) {
	p.add("play.start " + i.ClientID + " " + i.Stream)
}

func (p *playSink) PlayStopped(_ context.Context, i PlayInfo) {
	p.mu.Lock()
	p.infos = append(p.infos, i)
	p.mu.Unlock()
	p.add("play.stop " + i.ClientID + " " + i.Reason)
}

func (p *playSink) got() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

func awaitPlayEvents(t *testing.T, p *playSink, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(p.got()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("events: %q, want %d", p.got(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return p.got()
}

// TestPlayEvents: viewers' starts and stops (relays to other nodes are
// none) are reported once each, after
// their stream's start and before its end, also when the stream ends under
// them; a stream's end says why and how much it received; play events
// cost nothing to a sink that does not want them.
func TestPlayEvents(t *testing.T) {
	sink := &playSink{}
	h := newSilentHub(t, Config{Events: sink, PublisherGrace: -1})
	s, pub := newSynthStream(t, h, "s1")
	feed(s, 0, 30)
	v1 := newClient(h, ProtocolHTTPFLV, "127.0.0.1:2")
	v2 := newClient(h, ProtocolRTMP, "127.0.0.1:3")
	for _, v := range []*Client{v1, v2} {
		if !s.AddReader(v) {
			t.Fatal("AddReader failed")
		}
	}
	relay := h.NewClient(ClientInfo{Protocol: ProtocolHTTPFLV, Relay: true, Node: "n2"})
	s.AddReader(relay) // another node pulling: not a viewer
	s.AddReader(v1)    // again: no second start
	v1.AddBytesOut(1234)
	s.RemoveReader(v1)
	h.RemoveClient(v1)  // after RemoveReader: no second stop
	h.Unpublish(s, pub) // no grace: the stream ends with v2 on it
	h.RemoveClient(v2)
	want := []string{
		"publish.start s1",
		"play.start " + v1.ID() + " s1",
		"play.start " + v2.ID() + " s1",
		"play.stop " + v1.ID() + " left",
		"play.stop " + v2.ID() + " stream ended",
		"publish.stop s1 publisher left",
	}
	if got := awaitPlayEvents(t, sink, len(want)); !slices.Equal(got, want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
	time.Sleep(20 * time.Millisecond)
	if got := sink.got(); len(got) != len(want) {
		t.Fatalf("events after the end: %q", got[len(want):])
	}
	sink.mu.Lock()
	i := sink.infos[0]
	stop := sink.stops[0]
	sink.mu.Unlock()
	if i.BytesOut != 1234 || i.Protocol != ProtocolHTTPFLV || i.Remote.String() != "127.0.0.1:2" ||
		i.StartedAt.IsZero() || i.StoppedAt.Before(i.StartedAt) {
		t.Fatalf("play.stop info: %+v", i)
	}
	if stop.BytesIn == 0 || stop.StoppedAt.IsZero() || stop.PublisherID != pub.ID() {
		t.Fatalf("publish.stop info: %+v", stop)
	}
}

// TestPlayEventsRace: viewers coming and going while their stream ends
// never report a stop before their start, nor anything after the end.
func TestPlayEventsRace(t *testing.T) {
	for round := range 20 {
		sink := &playSink{}
		h := newSilentHub(t, Config{Events: sink, PublisherGrace: -1})
		s, pub := newSynthStream(t, h, "race")
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := newClient(h, ProtocolRTMP, "127.0.0.1:9")
				if s.AddReader(c) && i%2 == 0 {
					s.RemoveReader(c)
				}
				h.RemoveClient(c)
			}()
		}
		h.Unpublish(s, pub)
		wg.Wait()
		h.Close()
		events := sink.got()
		if events[len(events)-1] != "publish.stop race publisher left" {
			t.Fatalf("round %d: the last event is %q", round, events[len(events)-1])
		}
		started := map[string]bool{}
		for _, ev := range events[1 : len(events)-1] {
			var what, id string
			fmt.Sscan(ev, &what, &id)
			switch what {
			case "play.start":
				if started[id] {
					t.Fatalf("round %d: %s started twice", round, id)
				}
				started[id] = true
			case "play.stop":
				if !started[id] {
					t.Fatalf("round %d: %s stopped before it started: %q", round, id, events)
				}
				delete(started, id)
			default:
				t.Fatalf("round %d: unexpected %q", round, ev)
			}
		}
		if len(started) != 0 {
			t.Fatalf("round %d: viewers never stopped: %v", round, started)
		}
	}
}

// TestPlayEventsKeepPublishEvents: a stream ending under more viewers
// than the event queue holds still reports its end (play events are
// dropped first).
func TestPlayEventsKeepPublishEvents(t *testing.T) {
	sink := &slowSink{release: make(chan struct{})}
	h := newSilentHub(t, Config{Events: sink, PublisherGrace: -1, eventQueue: publishEventReserve + 100})
	s, pub := newSynthStream(t, h, "big")
	n := publishEventReserve + 200 // more than the whole queue
	for i := range n {
		c := h.NewClient(ClientInfo{Protocol: ProtocolHLS, ID: fmt.Sprint("v", i)})
		s.AddReader(c)
	}
	h.Unpublish(s, pub)
	close(sink.release)
	deadline := time.Now().Add(10 * time.Second)
	for !sink.ended() {
		if time.Now().After(deadline) {
			t.Fatal("the end of the stream was dropped")
		}
		time.Sleep(time.Millisecond)
	}
	if d := h.playEventsDropped.Load(); d == 0 {
		t.Fatalf("no play event dropped of %d starts and %d stops", n, n)
	}
}

// slowSink blocks its first event until release is closed.
type slowSink struct {
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	stopped bool
}

func (s *slowSink) wait() { s.once.Do(func() { <-s.release }) }

func (s *slowSink) PublishStarted(context.Context, StreamInfo) { s.wait() }
func (s *slowSink) PublishStopped(context.Context, StreamInfo) {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}
func (s *slowSink) PlayStarted(context.Context, PlayInfo) {}
func (s *slowSink) PlayStopped(context.Context, PlayInfo) {}

func (s *slowSink) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

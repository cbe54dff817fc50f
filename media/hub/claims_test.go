package hub

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

// recClaims is a Claims that records its calls and refuses stream
// "taken" as another node's.
type recClaims struct {
	mu    sync.Mutex
	calls []string
	// ended, if set, is called by Ended.
	ended func(*Stream)
}

func (r *recClaims) add(s string) {
	r.mu.Lock()
	r.calls = append(r.calls, s)
	r.mu.Unlock()
}

func (r *recClaims) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.calls, ",")
}

func (r *recClaims) Claim(name string, c *Client) (func(*Stream), error) {
	if name == "taken" {
		r.add("refuse " + name)
		return nil, fmt.Errorf("%w (on another node)", ErrAlreadyPublishing)
	}
	r.add("claim " + name + " " + c.ID())
	return func(s *Stream) { r.add(fmt.Sprintf("done %s %v", name, s != nil)) }, nil
}

func (r *recClaims) Unpublished(s *Stream, c *Client) {
	r.add("unpublished " + s.Name() + " " + c.ID())
}

func (r *recClaims) Ended(s *Stream) {
	r.add("ended " + s.Name())
	if r.ended != nil {
		r.ended(s)
	}
}

// recEvents records EventSink calls.
type recEvents struct {
	mu  sync.Mutex
	log []string
}

func (e *recEvents) PublishStarted(_ context.Context, s StreamInfo) {
	e.mu.Lock()
	e.log = append(e.log, "start "+s.Name)
	e.mu.Unlock()
}

func (e *recEvents) PublishStopped(_ context.Context, s StreamInfo) {
	e.mu.Lock()
	e.log = append(e.log, "stop "+s.Name)
	e.mu.Unlock()
}

func (e *recEvents) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.log, ",")
}

// waitEvents waits for the event worker to deliver want.
func waitEvents(t *testing.T, ev *recEvents, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for ev.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("events %q, want %q", ev.String(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClaimsHooks: Claims admits publishers, hears them leave and come
// back, and streams end; a refusal of the claim refuses the publisher
// and makes no stream.
func TestClaimsHooks(t *testing.T) {
	cl := &recClaims{}
	h := newSilentHub(t, Config{Claims: cl, PublisherGrace: time.Hour})
	p1 := newClient(h, ProtocolRTMP, "127.0.0.1:1")
	s, err := h.Publish("a", p1)
	if err != nil {
		t.Fatal(err)
	}
	// a second local publisher is refused before any claim
	if _, err := h.Publish("a", newClient(h, ProtocolRTMP, "127.0.0.1:2")); !errors.Is(err, ErrAlreadyPublishing) {
		t.Fatalf("second publisher: %v", err)
	}
	h.Unpublish(s, p1)
	p3 := newClient(h, ProtocolRTMP, "127.0.0.1:3")
	if s2, err := h.Publish("a", p3); err != nil || s2 != s {
		t.Fatalf("takeover: %v", err)
	}
	h.KickStream("a")
	if _, err := h.Publish("taken", newClient(h, ProtocolRTMP, "127.0.0.1:4")); !errors.Is(err, ErrAlreadyPublishing) {
		t.Fatalf("claim refused: %v", err)
	}
	if h.Stream("taken") != nil {
		t.Error("a refused claim made a stream")
	}
	want := "claim a " + p1.ID() + ",done a true,unpublished a " + p1.ID() + ",claim a " + p3.ID() + ",done a true,ended a,refuse taken"
	if got := cl.String(); got != want {
		t.Errorf("calls\n%s\nwant\n%s", got, want)
	}
}

// TestRelayPublisher: a relay publisher makes a stream that is not owned
// (no events, no claim); a publisher of this node replaces it (the
// relay's connection is closed) and owns the stream from then on; relay
// readers are not counted as viewers; a disowned stream's end is not
// reported.
func TestRelayPublisher(t *testing.T) {
	cl := &recClaims{}
	ev := &recEvents{}
	h := newSilentHub(t, Config{Claims: cl, Events: ev, PublisherGrace: time.Hour})
	closed := make(chan struct{})
	var once sync.Once
	relay := h.NewClient(ClientInfo{Protocol: ProtocolHTTPFLV, Remote: netip.MustParseAddrPort("10.0.0.1:80"),
		Relay: true, Node: "A", Close: func() { once.Do(func() { close(closed) }) }})
	s, err := h.Publish("r", relay)
	if err != nil {
		t.Fatal(err)
	}
	s.WritePacket(flv.TagVideo, 0, synthVideoSeq)
	if !s.WritePacketFrom(relay, flv.TagVideo, 0, synthFrame(true, 100)) {
		t.Fatal("the relay could not write")
	}
	st := s.Stats()
	if st.Owned || !st.Relay || st.Origin != "A" || !st.Publishing {
		t.Errorf("relayed stream: owned %v relay %v origin %q publishing %v", st.Owned, st.Relay, st.Origin, st.Publishing)
	}
	viewer := newClient(h, ProtocolRTMP, "127.0.0.1:5")
	other := h.NewClient(ClientInfo{Protocol: ProtocolHTTPFLV, Relay: true, Node: "C"})
	s.AddReader(viewer)
	s.AddReader(other)
	if st := s.Stats(); st.ReaderCount != 1 || st.Relays != 1 || s.ReaderCount() != 1 {
		t.Errorf("readers %d (%d), relays %d: want the viewer only, and one relay", st.ReaderCount, s.ReaderCount(), st.Relays)
	}
	if cs := h.Clients(); len(cs) != 3 || !cs[0].Relay || cs[0].Node != "A" {
		t.Errorf("clients %+v: the relay publisher first, marked", cs)
	}
	// a second relay cannot replace the relay
	if _, err := h.Publish("r", h.NewClient(ClientInfo{Protocol: ProtocolHTTPFLV, Relay: true})); !errors.Is(err, ErrAlreadyPublishing) {
		t.Errorf("second relay: %v", err)
	}

	local := newClient(h, ProtocolRTMP, "127.0.0.1:6")
	if s2, err := h.Publish("r", local); err != nil || s2 != s {
		t.Fatalf("local publisher over the relay: %v", err)
	}
	select {
	case <-closed:
	case <-time.After(time.Second):
		t.Fatal("the replaced relay was not closed")
	}
	if s.WritePacketFrom(relay, flv.TagVideo, 33, synthFrame(false, 100)) {
		t.Error("the replaced relay still writes")
	}
	h.Unpublish(s, relay) // the relay's session ends afterwards: nothing happens
	if st := s.Stats(); !st.Owned || st.Relay || !st.Publishing {
		t.Errorf("after the takeover: owned %v relay %v publishing %v", st.Owned, st.Relay, st.Publishing)
	}
	waitEvents(t, ev, "start r")
	if got := cl.String(); got != "claim r "+local.ID()+",done r true" {
		t.Errorf("claims %q: the relay is not claimed, the local publisher is", got)
	}
	h.KickStream("r")
	waitEvents(t, ev, "start r,stop r")

	// disowned: its end is not reported
	s, _ = h.Publish("d", newClient(h, ProtocolRTMP, "127.0.0.1:7"))
	s.Disown()
	h.KickStream("d")
	waitEvents(t, ev, "start r,stop r,start d")
	time.Sleep(20 * time.Millisecond)
	if got := ev.String(); got != "start r,stop r,start d" {
		t.Errorf("events %q: a disowned stream's end was reported", got)
	}

	// Claims.Ended may disown the stream before the report
	cl.ended = func(s *Stream) { s.Disown() }
	s, _ = h.Publish("e", newClient(h, ProtocolRTMP, "127.0.0.1:8"))
	h.KickStream("e")
	waitEvents(t, ev, "start r,stop r,start d,start e")
	time.Sleep(20 * time.Millisecond)
	if got := ev.String(); got != "start r,stop r,start d,start e" {
		t.Errorf("events %q: Ended's disown came too late", got)
	}
}

// TestUnpublishNowAndDrop: UnpublishNow ends a stream without grace;
// DropPublisher disconnects the publisher and keeps the stream in grace.
func TestUnpublishNowAndDrop(t *testing.T) {
	h := newSilentHub(t, Config{PublisherGrace: time.Hour})
	s, pub := newSynthStream(t, h, "now")
	h.UnpublishNow(s, newClient(h, ProtocolRTMP, "127.0.0.1:9")) // not its publisher
	if h.Stream("now") == nil {
		t.Fatal("UnpublishNow of another client ended the stream")
	}
	h.UnpublishNow(s, pub)
	if h.Stream("now") != nil {
		t.Fatal("UnpublishNow left the stream")
	}

	closed := make(chan struct{})
	var once sync.Once
	c := h.NewClient(ClientInfo{Protocol: ProtocolRTMP, Close: func() { once.Do(func() { close(closed) }) }})
	s, _ = h.Publish("drop", c)
	if !h.DropPublisher(s) {
		t.Fatal("DropPublisher found no publisher")
	}
	<-closed
	if st := s.Stats(); st.Publishing || h.Stream("drop") != s {
		t.Errorf("after DropPublisher: publishing %v, stream kept %v", st.Publishing, h.Stream("drop") == s)
	}
	if h.DropPublisher(s) {
		t.Error("a second DropPublisher found a publisher")
	}
}

// TestPlayStream: a reader's stream that is here is returned at once; a
// missing one is waited for while OnMissingStream says it is coming,
// until it has a key frame, or up to MissingStreamWait.
func TestPlayStream(t *testing.T) {
	var asked sync.Map
	coming := func(name string) bool {
		asked.Store(name, true)
		return name != "never"
	}
	h := newSilentHub(t, Config{OnMissingStream: coming, MissingStreamWait: 300 * time.Millisecond})
	ctx := context.Background()
	if s := h.PlayStream(ctx, "never"); s != nil {
		t.Fatal("a stream that is not coming")
	}
	start := time.Now()
	if s := h.PlayStream(ctx, "late"); s != nil || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("a stream that did not come: %v after %v", s, time.Since(start))
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		s, _ := newSynthStream(t, h, "soon")
		time.Sleep(50 * time.Millisecond)
		feed(s, 0, 1) // the key frame
	}()
	start = time.Now()
	s := h.PlayStream(ctx, "soon")
	if s == nil || s.LastKey() == nil {
		t.Fatalf("the stream that came: %v", s)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("returned after %v, before the key frame", d)
	}
	asked.Delete("soon")
	if h.PlayStream(ctx, "soon") != s {
		t.Error("a stream that is here")
	}
	if _, ok := asked.Load("soon"); ok {
		t.Error("OnMissingStream asked for a stream that is here")
	}
}

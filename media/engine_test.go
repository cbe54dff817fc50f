package media

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/hub"
)

func TestStartErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	e, err := New(Config{RTMPAddress: ln.Addr().String(), DisableRTSP: true, DisableWebRTC: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err == nil {
		t.Fatal("Start on a used port succeeded")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := e.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}

	e2 := newTestEngine(t, Config{})
	if e2.RTMPAddr() == nil || e2.RTSPAddr() == nil {
		t.Fatalf("addresses %v %v", e2.RTMPAddr(), e2.RTSPAddr())
	}
	if err := e2.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
}

func TestStartContextCloses(t *testing.T) {
	e, err := New(Config{RTMPAddress: "127.0.0.1:0", DisableRTSP: true, DisableWebRTC: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := e.RTMPAddr().String()
	cancel()
	waitFor(t, 2e9, "listener closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
}

func TestCloseReportsStoppedStreams(t *testing.T) {
	ev := &events{}
	e, err := New(Config{Events: ev, DisableRTMP: true, DisableRTSP: true, DisableWebRTC: true})
	if err != nil {
		t.Fatal(err)
	}
	newSynthStream(t, e, "shut")
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := ev.String(); got != "start shut,stop shut" {
		t.Errorf("events %q", got)
	}
	if len(e.Streams()) != 0 {
		t.Error("streams left after Close")
	}
}

func TestKickStream(t *testing.T) {
	ev := &events{}
	e := newSilentEngine(t, Config{Events: ev, DisableRTMP: true, DisableRTSP: true})
	closed := make(chan struct{})
	var once sync.Once
	pub := e.hub.NewClient(hub.ClientInfo{Protocol: ProtocolRTMP, Remote: netip.MustParseAddrPort("127.0.0.1:9"),
		Close: func() { once.Do(func() { close(closed) }) }})
	s, err := e.hub.Publish("kick", pub)
	if err != nil {
		t.Fatal(err)
	}
	if !e.KickStream("kick") || e.KickStream("nosuch") {
		t.Fatal("KickStream")
	}
	select {
	case <-closed:
	case <-time.After(time.Second):
		t.Fatal("publisher connection not closed")
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("stream not ended at once")
	}
	if _, ok := e.Stream("kick"); ok {
		t.Error("kicked stream still listed")
	}
	e.hub.Unpublish(s, pub) // the publisher's session ends afterwards
	waitFor(t, time.Second, "events", func() bool { return ev.String() == "start kick,stop kick" })
}

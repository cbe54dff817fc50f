package cluster

import (
	"context"
	"errors"
	"testing"
)

func TestLocalClaim(t *testing.T) {
	ctx := context.Background()
	l := NewLocal(Node{ID: "a", URL: "http://127.0.0.1:1"})
	defer l.Close()
	c, err := l.Claim(ctx, "s1", Publisher{IP: "192.0.2.1", Protocol: "rtmp"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim(ctx, "s1", Publisher{}); !errors.Is(err, ErrClaimed) {
		t.Fatalf("second claim: %v, want ErrClaimed", err)
	}
	l.Report(Report{Viewers: map[string]int{"s1": 3}, Clients: 4})
	s, ok := l.Stream("s1")
	if !ok || s.Clients != 3 || s.Publisher.IP != "192.0.2.1" || s.Node != "a" || s.Fence != 1 {
		t.Fatalf("stream = %+v, %v", s, ok)
	}
	if err := c.SetGrace(ctx, true); err != nil {
		t.Fatal(err)
	}
	c2, err := l.Claim(ctx, "s1", Publisher{IP: "192.0.2.2"})
	if err != nil {
		t.Fatalf("claim of a stream in grace: %v", err)
	}
	select {
	case <-c.Lost():
	default:
		t.Fatal("the old claim is not lost after a takeover")
	}
	if c2.Fence() <= c.Fence() {
		t.Fatalf("fence %d after %d", c2.Fence(), c.Fence())
	}
	if err := c.SetPublisher(ctx, Publisher{}); !errors.Is(err, ErrLost) {
		t.Fatalf("a lost claim's write: %v", err)
	}
	if err := c2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if len(l.Streams()) != 0 {
		t.Fatalf("streams after release: %v", l.Streams())
	}
}

func TestLocalCommands(t *testing.T) {
	l := NewLocal(Node{ID: "a"})
	defer l.Close()
	got := make(chan Command, 2)
	l.HandleCommands(func(c Command) { got <- c })
	ctx := context.Background()
	if err := l.Send(ctx, Command{Node: "b", Kind: "kick-client", Arg: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, Command{Kind: "kick-stream", Arg: "s"}); err != nil {
		t.Fatal(err)
	}
	if c := <-got; c.Kind != "kick-stream" {
		t.Fatalf("got %+v; a command for node b ran here", c)
	}
}

func TestLocalRooms(t *testing.T) {
	ctx := context.Background()
	r := NewLocalRooms()
	var seqs []uint64
	cancel := r.Subscribe(7, func(d Delivery) { seqs = append(seqs, d.Seq) })
	for range 3 {
		if _, err := r.Publish(ctx, 7, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	r.Publish(ctx, 7, []byte(`{}`))
	if len(seqs) != 3 || seqs[0] != 1 || seqs[2] != 3 {
		t.Fatalf("seqs = %v", seqs)
	}
	if first, _ := r.Enter(ctx, 7, PresentUser{ID: 1}); !first {
		t.Fatal("first connection not first")
	}
	if first, _ := r.Enter(ctx, 7, PresentUser{ID: 1}); first {
		t.Fatal("second connection first")
	}
	r.Enter(ctx, 7, PresentUser{ID: 2})
	if on, _ := r.Online(ctx, 7); len(on) != 2 || on[0].ID != 1 {
		t.Fatalf("online = %v", on)
	}
	if last, _ := r.Exit(ctx, 7, 1); last {
		t.Fatal("last after one of two connections")
	}
	if last, _ := r.Exit(ctx, 7, 1); !last {
		t.Fatal("not last after both")
	}
}

func TestLocalLimiter(t *testing.T) {
	l := NewLocalLimiter()
	ctx := context.Background()
	for i := range 3 {
		ok, _ := l.Allow(ctx, "k", 0, 2)
		if want := i < 2; ok != want {
			t.Fatalf("allow #%d = %v", i, ok)
		}
	}
}

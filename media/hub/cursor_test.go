package hub

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCursor reads a stream with cursors: from the first packet, from the
// cached GOP, across a skip when the cursor fell a whole ring behind, to
// the end of the stream.
func TestCursor(t *testing.T) {
	h := newSilentHub(t, Config{RingSize: 64})
	s, pub := newSynthStream(t, h, "cursor")
	first := s.NewCursor(FromFirst)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	feed(s, 0, 10) // 2 headers, then frame 0 (key) to 9
	for i := range 2 + 2*10 {
		p, skipped, err := first.Next(ctx)
		if err != nil || skipped != 0 || p.seq != uint64(i) {
			t.Fatalf("packet %d: %+v, skipped %d, %v", i, p, skipped, err)
		}
	}
	fromKey := s.NewCursor(FromKey)
	if p := fromKey.Peek(); p == nil || !p.key || p.ts != 0 {
		t.Fatalf("FromKey starts at %+v", p)
	}

	// a cursor waits for the next packet.
	got := make(chan *Packet, 1)
	go func() {
		p, _, err := first.Next(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- p
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case p := <-got:
		t.Fatalf("Next returned %+v before a packet was written", p)
	default:
	}
	feed(s, 10, 1)
	if p := <-got; p.ts != 10*33 {
		t.Errorf("waited for %+v", p)
	}
	if p, _, _ := first.Next(ctx); p.typ != 8 { // the audio of frame 10
		t.Errorf("audio of frame 10: %+v", p)
	}

	// fromKey falls more than a ring behind: it skips to the newest key
	// frame (frame 60).
	feed(s, 11, 60)
	p, skipped, err := fromKey.Next(ctx)
	if err != nil || p != nil || skipped == 0 {
		t.Fatalf("after falling behind: %+v, skipped %d, %v", p, skipped, err)
	}
	if p, _, _ := fromKey.Next(ctx); p == nil || !p.key || p.ts != 60*33 {
		t.Errorf("after the skip: %+v", p)
	}

	// the stream ends: what was written is still read, then ErrStreamEnded.
	h.Unpublish(s, pub)
	h.KickStream("cursor")
	n := 0
	for {
		p, _, err := first.Next(ctx)
		if errors.Is(err, ErrStreamEnded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p != nil {
			n++
		}
	}
	if n == 0 {
		t.Error("no packet read after the end")
	}
}

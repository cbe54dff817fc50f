package media

import (
	"context"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/forward"
)

// TestClusterForwardOwnerOnly: in a cluster only the node that publishes
// a stream pushes it to its destinations; a node relaying it for its own
// viewers pushes nothing (the destination would otherwise get a second
// publisher, or the stream twice).
func TestClusterForwardOwnerOnly(t *testing.T) {
	needFFmpeg(t)
	dest := newTestEngine(t, Config{})
	targets := func(_ context.Context, stream string) ([]forward.Target, error) {
		if stream != "room" {
			return nil, nil
		}
		return []forward.Target{{ID: 1, URL: rtmpURL(dest, "/live"), Key: "mirror"}}, nil
	}
	fc := forward.Config{Targets: targets, Poll: 100 * time.Millisecond, AllowPrivate: true}
	dir := newFakeDir()
	a, _ := newNode(t, dir, "A", Config{Forward: fc})
	b, srvB := newNode(t, dir, "B", Config{Forward: fc, RelayLinger: time.Second})
	publishClip(t, rtmpURL(a, "/live/room"))
	waitLive(t, a, "room")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	viewerB := startFLVCounter(t, ctx, srvB.URL+"/live/room.flv")
	waitFor(t, 20*time.Second, "the destination fed by A, B relaying", func() bool {
		st, ok := dest.Stream("mirror")
		_, onB := b.Stream("room")
		return ok && st.Publishing && st.BytesIn > 100_000 && onB && viewerB.Bytes() > 100_000 &&
			a.Forwards().Status("room")[1].State == forward.StateLive
	})
	// B relays the stream for its viewer over many of its polls: it never
	// pushes.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if all := b.Forwards().All(); len(all) != 0 {
			t.Fatalf("B, relaying the stream, pushes it: %+v", all)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := a.Forwards().Status("room")[1]; st.State != forward.StateLive || st.Connects != 1 {
		t.Fatalf("A's push: %+v", st)
	}
}

package media

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// rtmpPlayer plays a stream with gortmplib's client until ctx ends.
// playerResult is what an RTMP player saw.
type playerResult struct {
	videos      int
	unpublished bool // got NetStream.Play.UnpublishNotify
}

func rtmpPlayer(t testing.TB, ctx context.Context, rawURL string) (*gortmplib.Client, <-chan playerResult) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &gortmplib.Client{URL: u, Publish: false}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Initialize(ictx); err != nil {
		t.Fatal(err)
	}
	videos := make(chan playerResult, 1)
	go func() {
		defer close(videos)
		var res playerResult
		for {
			c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			msg, err := c.Read()
			if err != nil {
				videos <- res
				return
			}
			switch m := msg.(type) {
			case *message.Video:
				res.videos++
			case *message.CommandAMF0:
				if m.Name == "onStatus" && len(m.Arguments) > 1 {
					if o, ok := m.Arguments[1].(amf0.Object); ok {
						if code, _ := o.GetString("code"); code == "NetStream.Play.UnpublishNotify" {
							res.unpublished = true
						}
					}
				}
			}
		}
	}()
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	return c, videos
}

func TestStatsFollowClients(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{PublisherGrace: 300 * time.Millisecond})
	srv := newFLVServer(t, e)
	pub := publishClip(t, rtmpURL(e, "/live/stats"))
	waitLive(t, e, "stats")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const nRTMP, nFLV = 3, 4
	var results []<-chan playerResult
	for range nRTMP {
		_, res := rtmpPlayer(t, ctx, rtmpURL(e, "/live/stats"))
		results = append(results, res)
	}
	flvCtx, flvCancel := context.WithCancel(ctx)
	var counters []*mediatest.FLVCounter
	for range nFLV {
		counters = append(counters, startFLVCounter(t, flvCtx, srv.URL+"/live/stats.flv"))
	}

	waitFor(t, 5*time.Second, "all readers counted", func() bool {
		st, _ := e.Stream("stats")
		return st.ReaderCount == nRTMP+nFLV && st.Readers[ProtocolRTMP] == nRTMP && st.Readers[ProtocolHTTPFLV] == nFLV
	})
	var pubs, plays int
	for _, c := range e.Clients() {
		switch c.Role {
		case RolePublish:
			pubs++
			if c.Path != "/live/stats" || !c.IP.IsLoopback() || c.BytesIn == 0 {
				t.Errorf("publisher %+v", c)
			}
		case RolePlay:
			plays++
		}
	}
	if pubs != 1 || plays != nRTMP+nFLV {
		t.Errorf("clients: %d publishers, %d players", pubs, plays)
	}
	st, _ := e.Stream("stats")
	if st.BitrateIn < 200000 || st.BitrateIn > 2000000 || st.FPS != 30 || st.PublisherIP.String() != "127.0.0.1" ||
		st.PublisherSince.IsZero() {
		t.Errorf("stream stats %+v", st)
	}
	waitFor(t, 5*time.Second, "bytes out counted", func() bool {
		st, _ := e.Stream("stats")
		var playerBitrates bool
		for _, c := range e.Clients() {
			if c.Role == RolePlay && c.Bitrate > 0 {
				playerBitrates = true
			}
		}
		return st.BytesOut > 100000 && playerBitrates && e.Counters().BytesOut >= st.BytesOut
	})
	for _, c := range e.Clients() {
		if c.Role == RolePublish && (c.Bitrate < 200000 || c.Bitrate > 2000000) {
			t.Errorf("publisher bitrate %d", c.Bitrate)
		}
	}

	// an admin kicks one RTMP player.
	var kickID string
	for _, c := range e.Clients() {
		if c.Role == RolePlay && c.Protocol == ProtocolRTMP {
			kickID = c.ID
		}
	}
	if !e.KickClient(kickID) || e.KickClient("nosuch") {
		t.Fatal("KickClient")
	}
	waitFor(t, 2*time.Second, "kicked player gone", func() bool {
		st, _ := e.Stream("stats")
		return st.Readers[ProtocolRTMP] == nRTMP-1
	})

	waitFor(t, 5*time.Second, "HTTP-FLV readers receiving", func() bool {
		for _, c := range counters {
			if c.Bytes() == 0 {
				return false
			}
		}
		return true
	})

	// viewers leave: gone from the stats well within 2 s.
	flvCancel()
	left := time.Now()
	waitFor(t, 2*time.Second, "viewers gone", func() bool {
		st, _ := e.Stream("stats")
		return st.ReaderCount == nRTMP-1 && len(e.Clients()) == nRTMP
	})
	t.Logf("viewers gone from stats after %v", time.Since(left))

	// the publisher stops: not live at once, ended after the grace period,
	// the remaining players are disconnected.
	pub.Kill()
	waitFor(t, 2*time.Second, "stream not live", func() bool {
		st, ok := e.Stream("stats")
		return !ok || !st.Live
	})
	waitFor(t, 3*time.Second, "stream ended", func() bool {
		_, ok := e.Stream("stats")
		return !ok && len(e.Streams()) == 0
	})
	unpublished := 0
	for i, res := range results {
		select {
		case r := <-res:
			if r.unpublished { // the kicked player may have been reset before reading
				unpublished++
				if r.videos < 10 {
					t.Errorf("RTMP player %d: %+v", i, r)
				}
			}
		case <-time.After(3 * time.Second):
			t.Errorf("RTMP player %d not disconnected", i)
		}
	}
	if unpublished != nRTMP-1 {
		t.Errorf("%d players got UnpublishNotify, want %d", unpublished, nRTMP-1)
	}
	waitFor(t, 2*time.Second, "no clients", func() bool { return len(e.Clients()) == 0 })
}

package media

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
	"github.com/mofang-live/mofang/media/record"
	"github.com/mofang-live/mofang/media/webrtc/client"
)

// The engines of these tests are the nodes of one cluster (a fakeDir):
// a stream published on one node plays on the others through relays.

// newNode starts an engine that is node id of dir, with its HTTP server
// (the node's URL).
func newNode(t testing.TB, dir *fakeDir, id string, cfg Config) (*Engine, *httptest.Server) {
	t.Helper()
	n := dir.node(id)
	cfg.Cluster = n
	e := newTestEngine(t, cfg)
	srv := newFLVServer(t, e)
	n.setURL(srv.URL)
	return e, srv
}

// relayClients returns the clients of e that are relays of stream, by role.
func relayClients(e *Engine, stream string, role Role) []ClientStats {
	var out []ClientStats
	for _, c := range e.Clients() {
		if c.Relay && c.Stream == stream && c.Role == role {
			out = append(out, c)
		}
	}
	return out
}

// firstPlay gets an HTTP-FLV URL and returns the time until its first
// video key frame (the headers come before it).
func firstPlay(t testing.TB, u string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %s %s", u, res.Status, b)
	}
	fr := &flv.Reader{R: res.Body}
	var headers bool
	for {
		tag, err := fr.ReadTag()
		if err != nil {
			t.Fatalf("reading %s: %v", u, err)
		}
		if tag.Type != flv.TagVideo {
			continue
		}
		v, err := flv.ParseVideoTag(tag.Body)
		if err != nil {
			t.Fatal(err)
		}
		if v.IsSequenceHeader() {
			headers = true
			continue
		}
		if v.IsKeyFrame() {
			if !headers {
				t.Fatal("a key frame before the video sequence header")
			}
			return time.Since(start)
		}
	}
}

// getStatus returns the status and body start of a GET.
func getStatus(t testing.TB, u string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b := make([]byte, 200)
	n, _ := io.ReadFull(res.Body, b)
	return res.StatusCode, string(b[:n])
}

// TestClusterPlayAnywhere: a stream published on node A plays on node B
// over HTTP-FLV, RTMP, RTSP, HLS and SRT, through one relay from A whatever
// B's viewers; each node counts its own viewers only; a second
// publisher on B is refused (RTMP and WHIP) as on one node; B reports no
// event (A does); the relay ends a while after B's last viewer left.
func TestClusterPlayAnywhere(t *testing.T) {
	needFFmpeg(t)
	dir := newFakeDir()
	evA, evB := &events{}, &events{}
	a, srvA := newNode(t, dir, "A", Config{Events: evA})
	b, srvB := newNode(t, dir, "B", Config{Events: evB, RelayLinger: time.Second})
	publishClip(t, rtmpURL(a, "/live/room"))
	waitLive(t, a, "room")
	if cs, ok := dir.node("probe").Stream("room"); !ok || cs.Node != "A" || cs.Publisher.Protocol != "rtmp" || cs.Publisher.IP != "127.0.0.1" {
		t.Fatalf("directory: %+v %v, want the stream claimed by A's RTMP publisher", cs, ok)
	}

	// the clip has B-frames: the directory is told (WHEP players on any
	// node are refused from it)
	waitFor(t, 5*time.Second, "the directory showing B-frames", func() bool {
		cs, _ := dir.node("probe").Stream("room")
		st, _ := a.Stream("room")
		return st.BFrames && cs.Publisher.BFrames
	})

	d := firstPlay(t, srvB.URL+"/live/room.flv")
	t.Logf("first play on B (HTTP-FLV, relay started by the request): %v", d)
	if d > 3*time.Second {
		t.Errorf("first play on B took %v", d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctxB, cancelB := context.WithCancel(ctx)
	defer cancelB()
	flvB1 := startFLVCounter(t, ctxB, srvB.URL+"/live/room.flv")
	flvB2 := startFLVCounter(t, ctxB, srvB.URL+"/live/room.flv")
	flvA := startFLVCounter(t, ctx, srvA.URL+"/live/room.flv")

	var wg sync.WaitGroup
	for _, u := range []string{rtmpURL(b, "/live/room"), rtspURL(b, "/live/room"), srvB.URL + "/live/room/index.m3u8", srtURL(b, "read:room")} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss, err := ffprobe(t, u, "-analyzeduration", "1000000")
			if err != nil {
				t.Errorf("ffprobe on B: %v", err)
				return
			}
			checkClipStreams(t, ss)
		}()
	}
	waitFor(t, 10*time.Second, "B's HTTP-FLV viewers receiving", func() bool {
		return flvB1.Bytes() > 100000 && flvB2.Bytes() > 100000 && flvA.Bytes() > 100000
	})
	// while B has several viewers of several protocols: A has one relay
	if rs := relayClients(a, "room", RolePlay); len(rs) != 1 || rs[0].Node != "B" || rs[0].Protocol != ProtocolHTTPFLV {
		t.Errorf("A's relay clients: %+v, want one HTTP-FLV relay to B", rs)
	}
	wg.Wait()

	stA, _ := a.Stream("room")
	if stA.ReaderCount != 1 || stA.Relays != 1 || stA.Readers[ProtocolHTTPFLV] != 1 || stA.Relay || !stA.Owned {
		t.Errorf("A's stream: readers %d %v, relays %d, relay %v, owned %v; want A's one viewer, one relay, owned",
			stA.ReaderCount, stA.Readers, stA.Relays, stA.Relay, stA.Owned)
	}
	waitFor(t, 10*time.Second, "B's count of its own viewers", func() bool {
		st, _ := b.Stream("room")
		return st.ReaderCount == 2 // the probes' HLS session may linger: waited out
	})
	stB, _ := b.Stream("room")
	if !stB.Relay || stB.Origin != "A" || stB.Owned || !stB.Live || stB.Relays != 0 {
		t.Errorf("B's stream: relay %v origin %q owned %v live %v relays %d; want live, a relay from A, not owned",
			stB.Relay, stB.Origin, stB.Owned, stB.Live, stB.Relays)
	}
	if ps := relayClients(b, "room", RolePublish); len(ps) != 1 || ps[0].Node != "A" {
		t.Errorf("B's relay publisher: %+v, want one from A", ps)
	}

	// a second publisher on B: refused as on one node
	p := startFFmpeg(t, "-re", "-i", testClip(t), "-c", "copy", "-f", "flv", rtmpURL(b, "/live/room"))
	if out := p.WaitExit(t, 10*time.Second); p.Err == nil || !strings.Contains(out, "already being published") {
		t.Errorf("second publisher on B: %v %q, want refused as already published", p.Err, out)
	}
	if _, err := client.Publish(ctx, client.PublisherConfig{URL: srvB.URL + "/live/room/whip"}); !isStatus(err, http.StatusConflict) {
		t.Errorf("WHIP on B of a stream published on A: %v, want 409", err)
	}
	if st, _ := b.Stream("room"); !st.Relay {
		t.Error("the refused publisher replaced B's relay")
	}

	// B's viewers leave: the relay ends after the linger (and the HLS
	// session's timeout)
	cancelB()
	waitFor(t, 15*time.Second, "B's relay gone", func() bool {
		_, ok := b.Stream("room")
		return !ok && len(relayClients(a, "room", RolePlay)) == 0 && len(b.relays.Running()) == 0
	})
	if flvA.IsDone() || flvA.Err() != nil {
		t.Errorf("A's viewer: done %v, err %v", flvA.IsDone(), flvA.Err())
	}
	if got := evA.String(); got != "start room" {
		t.Errorf("A's events %q, want its start only", got)
	}
	if got := evB.String(); got != "" {
		t.Errorf("B's events %q, want none: B does not publish the stream", got)
	}
	if err := flvB1.Err(); err != nil {
		t.Errorf("B's viewer: %v", err)
	}
}

// TestClusterPublisherMoves: the publisher leaves node A and publishes
// to node B within the grace period: B takes the stream over (A's claim
// is lost, A reports no stop), the viewers of both nodes keep playing
// with timestamps going forward, A's through a relay from B. Then B
// dies (it leaves the directory): A's relay stops, its stream waits in
// its grace period, and the publisher back on A brings its viewer back.
// The recording follows the stream: A's ends when B takes it over, B's
// starts then (not while B relays), A's starts again when A has it back.
func TestClusterPublisherMoves(t *testing.T) {
	needFFmpeg(t)
	dir := newFakeDir()
	evA, evB := &events{}, &events{}
	recA, recB := &recSink{}, &recSink{}
	a, srvA := newNode(t, dir, "A", Config{Events: evA, PublisherGrace: 8 * time.Second, RecordDir: t.TempDir(), Recordings: recA})
	b, srvB := newNode(t, dir, "B", Config{Events: evB, PublisherGrace: 8 * time.Second, RecordDir: t.TempDir(), Recordings: recB})
	probe := dir.node("probe")
	recording := func(e *Engine) bool { _, _, ok := e.Recorder().Progress(1); return ok }
	ended := func(r *recSink) []record.Info {
		r.mu.Lock()
		defer r.mu.Unlock()
		return append([]record.Info(nil), r.ended...)
	}
	pubA := publishClip(t, rtmpURL(a, "/live/move"))
	waitLive(t, a, "move")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	viewerA := startFLVCounter(t, ctx, srvA.URL+"/live/move.flv")
	viewerB := startFLVCounter(t, ctx, srvB.URL+"/live/move.flv")
	waitFor(t, 10*time.Second, "viewers receiving", func() bool { return viewerA.Bytes() > 100000 && viewerB.Bytes() > 100000 })
	cs, _ := probe.Stream("move")
	fenceA := cs.Fence
	waitFor(t, 5*time.Second, "A recording", func() bool { return recording(a) })
	if recording(b) {
		t.Error("B records a stream it relays")
	}

	pubA.Kill()
	waitFor(t, 5*time.Second, "A's claim in grace", func() bool {
		cs, ok := probe.Stream("move")
		return ok && cs.Node == "A" && cs.Grace
	})
	pubB := publishClip(t, rtmpURL(b, "/live/move"))
	waitFor(t, 10*time.Second, "B owning the stream", func() bool {
		cs, ok := probe.Stream("move")
		return ok && cs.Node == "B" && !cs.Grace && cs.Fence > fenceA
	})
	waitFor(t, 10*time.Second, "A relaying from B", func() bool {
		st, ok := a.Stream("move")
		return ok && st.Relay && st.Origin == "B" && st.Publishing && !st.Owned
	})
	beforeA, beforeB := viewerA.Bytes(), viewerB.Bytes()
	waitFor(t, 15*time.Second, "both viewers receiving from B", func() bool {
		return viewerA.Bytes() > beforeA+200000 && viewerB.Bytes() > beforeB+200000
	})
	stB, _ := b.Stream("move")
	if stB.Relay || !stB.Owned || stB.ReaderCount != 1 || stB.Relays != 1 {
		t.Errorf("B's stream: relay %v owned %v readers %d relays %d; want B's own, one viewer, one relay",
			stB.Relay, stB.Owned, stB.ReaderCount, stB.Relays)
	}
	if rs := relayClients(b, "move", RolePlay); len(rs) != 1 || rs[0].Node != "A" {
		t.Errorf("B's relay readers %+v, want one from A", rs)
	}
	for name, v := range map[string]*mediatest.FLVCounter{"A": viewerA, "B": viewerB} {
		if v.IsDone() || v.Err() != nil || v.NonMonotonic() {
			t.Errorf("viewer on %s: done %v, err %v, timestamps backwards %v", name, v.IsDone(), v.Err(), v.NonMonotonic())
		}
	}
	waitFor(t, 2*time.Second, "B's start", func() bool { return evB.String() == "start move" })
	// the recording moved with the stream
	waitFor(t, 10*time.Second, "A's recording ended, B's started", func() bool {
		return len(ended(recA)) == 1 && !recording(a) && recording(b)
	})
	if r := ended(recA)[0]; r.Duration < time.Second || r.Error != "" {
		t.Errorf("A's recording: %+v", r)
	}
	if got := evA.String(); got != "start move" {
		t.Errorf("A's events %q: A must not report the stream stopped", got)
	}

	// B dies: A's relay stops, A's stream waits for its publisher
	dir.kill("B")
	pubB.Kill()
	waitFor(t, 5*time.Second, "A's stream in grace", func() bool {
		st, ok := a.Stream("move")
		return ok && !st.Publishing && st.ReaderCount == 1
	})
	before := viewerA.Bytes()
	publishClip(t, rtmpURL(a, "/live/move"))
	waitFor(t, 15*time.Second, "A's viewer receiving from A again", func() bool {
		st, _ := a.Stream("move")
		return viewerA.Bytes() > before+200000 && st.Owned && !st.Relay
	})
	if viewerA.IsDone() || viewerA.Err() != nil || viewerA.NonMonotonic() {
		t.Errorf("viewer on A: done %v, err %v, timestamps backwards %v", viewerA.IsDone(), viewerA.Err(), viewerA.NonMonotonic())
	}
	if cs, ok := probe.Stream("move"); !ok || cs.Node != "A" {
		t.Errorf("directory: %+v, want A's again", cs)
	}
	waitFor(t, 2*time.Second, "A's start again", func() bool { return evA.String() == "start move,start move" })
	waitFor(t, 10*time.Second, "A recording again", func() bool { return recording(a) })
}

// relayAuth admits any viewer, and a relay with the node credential
// node=secret only.
type relayAuth struct{}

func (relayAuth) AuthorizePublish(context.Context, AuthRequest) error { return nil }
func (relayAuth) AuthorizePlay(_ context.Context, req AuthRequest) error {
	if req.Relay != "" && req.Query.Get("node") != "secret" {
		return Refusal("relay refused: wrong node credential")
	}
	return nil
}

// TestClusterRelayCredential: a relay's request needs the node
// credential of the owner's Authorizer (403 without it or with a wrong
// one), and a node whose credential is wrong plays nothing of another
// node (404 after its wait). A node whose cluster is unavailable
// refuses publishers as unavailable.
func TestClusterRelayCredential(t *testing.T) {
	needFFmpeg(t)
	dir := newFakeDir()
	a, srvA := newNode(t, dir, "A", Config{Authorizer: relayAuth{}, DisableRTSP: true, HLS: "off"})
	_, srvB := newNode(t, dir, "B", Config{DisableRTSP: true, HLS: "off",
		RelayQuery: func(string) url.Values { return url.Values{"node": {"secret"}} }})
	_, srvC := newNode(t, dir, "C", Config{DisableRTSP: true, HLS: "off", RelayWait: 500 * time.Millisecond,
		RelayQuery: func(string) url.Values { return url.Values{"node": {"guess"}} }})
	mediatest.PublishClip(t, a.hub, "cred")
	mediatest.WaitMedia(t, a.hub, "cred")

	for _, q := range []string{"relay=B", "relay=B&node=guess"} {
		if code, body := getStatus(t, srvA.URL+"/live/cred.flv?"+q); code != http.StatusForbidden || !strings.Contains(body, "wrong node credential") {
			t.Errorf("relay request ?%s: %d %q, want 403", q, code, body)
		}
	}
	if code, _ := getStatus(t, srvC.URL+"/live/cred.flv"); code != http.StatusNotFound {
		t.Errorf("viewer on C (wrong credential): %d, want 404", code)
	}
	if rs := relayClients(a, "cred", RolePlay); len(rs) != 0 {
		t.Errorf("relays on A: %+v", rs)
	}
	if d := firstPlay(t, srvB.URL+"/live/cred.flv"); d > 3*time.Second {
		t.Errorf("viewer on B: first play after %v", d)
	}

	// the cluster unreachable: a publisher is refused as unavailable
	dn := dir.node("D")
	dir.mu.Lock()
	dn.unavailable = true
	dir.mu.Unlock()
	e := newTestEngine(t, Config{Cluster: dn, DisableRTSP: true, HLS: "off"})
	p := startFFmpeg(t, "-re", "-i", testClip(t), "-c", "copy", "-f", "flv", rtmpURL(e, "/live/other"))
	if out := p.WaitExit(t, 10*time.Second); p.Err == nil || !strings.Contains(out, reasonUnavailable) {
		t.Errorf("publisher with the cluster unavailable: %v %q, want refused as unavailable", p.Err, out)
	}
	c := e.hub.NewClient(hub.ClientInfo{Protocol: ProtocolRTMP})
	_, err := e.hub.Publish("other", c)
	if !errors.Is(err, hub.ErrUnavailable) || hub.HTTPStatus(err) != http.StatusServiceUnavailable {
		t.Errorf("Publish with the cluster unavailable: %v, want ErrUnavailable (503)", err)
	}
	e.hub.RemoveClient(c)
}

// BenchmarkRelayFirstPlay measures the time for a viewer of node B to
// get the headers and a key frame of a stream published on node A, the
// relay starting with the request (each iteration waits for the last
// relay to end first).
//
//	go test -run XXX -bench BenchmarkRelayFirstPlay -benchtime 20x ./media/
func BenchmarkRelayFirstPlay(b *testing.B) {
	needFFmpeg(b)
	dir := newFakeDir()
	a, _ := newNode(b, dir, "A", Config{DisableRTSP: true, HLS: "off"})
	nb, srvB := newNode(b, dir, "B", Config{DisableRTSP: true, HLS: "off", RelayLinger: 10 * time.Millisecond})
	publishClip(b, rtmpURL(a, "/live/bench"))
	waitLive(b, a, "bench")
	var ds []time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		waitFor(b, 10*time.Second, "no relay on B", func() bool {
			_, ok := nb.Stream("bench")
			return !ok && len(nb.relays.Running()) == 0
		})
		b.StartTimer()
		ds = append(ds, firstPlay(b, srvB.URL+"/live/bench.flv"))
	}
	b.StopTimer()
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds())/1000, "p99-ms")
}

package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media"
)

const testWebhookSecret = "webhook-secret-0123456789abcdef"

// hookEvent is one delivery a receiver took.
type hookEvent struct {
	ID     string         `json:"id"`
	Type   string         `json:"type"`
	Time   int64          `json:"time"`
	Stream string         `json:"stream"`
	Data   map[string]any `json:"data"`
}

// hookReceiver is an operator's webhook receiver. It checks each
// request's signature as a receiver would (the HMAC-SHA256 of
// "<t>.<body>" recomputed here with the shared secret, t within a minute
// of its clock) and records the events it takes. hold, if set, keeps
// every request waiting until it is closed (a receiver that hangs);
// fail answers 500 to everything.
type hookReceiver struct {
	t     *testing.T
	hold  chan struct{}
	fail  bool
	hits  atomic.Int64
	mu    sync.Mutex
	got   []hookEvent
	wrong []string
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	if why := checkSignature(r.Header.Get("MoFang-Signature"), body, time.Now()); why != "" {
		rc.mu.Lock()
		rc.wrong = append(rc.wrong, why)
		rc.mu.Unlock()
		http.Error(w, why, http.StatusUnauthorized)
		return
	}
	if rc.hold != nil {
		select {
		case <-rc.hold:
		case <-r.Context().Done():
			return
		}
	}
	if rc.fail {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return
	}
	var ev hookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.mu.Lock()
		rc.wrong = append(rc.wrong, "body: "+err.Error())
		rc.mu.Unlock()
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Header.Get("MoFang-Event") != ev.Type || r.Header.Get("MoFang-Delivery") != ev.ID || r.Header.Get("Content-Type") != "application/json" {
		rc.wrong = append(rc.wrong, fmt.Sprintf("headers %v for %s %s", r.Header, ev.Type, ev.ID))
	}
	rc.got = append(rc.got, ev)
}

// checkSignature says what is wrong with a MoFang-Signature header of
// body at now ("" for nothing).
func checkSignature(header string, body []byte, now time.Time) string {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return "malformed signature " + header
	}
	m := hmac.New(sha256.New, []byte(testWebhookSecret))
	m.Write([]byte(ts + "." + string(body)))
	if !hmac.Equal([]byte(sig), []byte(hex.EncodeToString(m.Sum(nil)))) {
		return "wrong signature " + header
	}
	if d := now.Sub(time.Unix(sec, 0)); d > time.Minute || d < -time.Minute {
		return "stale signature " + header
	}
	return ""
}

// events returns the events taken so far.
func (rc *hookReceiver) events() []hookEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookEvent(nil), rc.got...)
}

// await waits for an event of type typ matching match, and returns it.
func (rc *hookReceiver) await(typ string, match func(hookEvent) bool) hookEvent {
	rc.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, ev := range rc.events() {
			if ev.Type == typ && (match == nil || match(ev)) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			rc.t.Fatalf("no %s event within 20 s; got %+v", typ, rc.events())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (rc *hookReceiver) serve() string {
	srv := httptest.NewServer(rc)
	rc.t.Cleanup(srv.Close)
	return srv.URL
}

// TestWebhooks: a publish, viewers over RTMP, HTTP-FLV, RTSP and HLS, a
// comment and a like reach the operator's receiver as signed events, in
// order for the stream (publish.start, each viewer's play.start then
// play.stop, publish.stop), with their contents, and the recording's
// record.done with replay URLs that play. A receiver that hangs and one
// that answers 500 change nothing for viewers: they play while both are
// failing, and the good receiver still gets everything.
func TestWebhooks(t *testing.T) {
	needFFmpeg(t)
	good := &hookReceiver{t: t}
	hung := &hookReceiver{t: t, hold: make(chan struct{})}
	failing := &hookReceiver{t: t, fail: true}
	goodURL, hungURL, failingURL := good.serve(), hung.serve(), failing.serve()
	t.Cleanup(func() { close(hung.hold) })

	rtmpPort, rtspPort := freePort(t), freePort(t)
	base, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--rtsp", fmt.Sprintf("127.0.0.1:%d", rtspPort),
		"--public-host", "127.0.0.1", "--publisher-grace", "1s",
		"--webhook-url", hungURL+","+failingURL+","+goodURL, "--webhook-secret", testWebhookSecret,
		"--webhook-events", "publish.*,play.*,record.done,room.comment,room.like")
	defer stop()

	reg := rpcCall(t, base, "", "User.register", map[string]any{"username": "streamer", "password": "streamer-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, base, tok, "Live.stream", map[string]any{"room_name": "hooked"})["data"].(map[string]any)
	stream, roomID := room["stream_name"].(string), room["room_id"].(string)
	publisher := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", room["publish"].(map[string]any)["url"].(string))

	start := good.await("publish.start", nil)
	if start.Stream != stream || start.Data["room_id"] != roomID || start.Data["protocol"] != "rtmp" || start.Data["ip"] != "127.0.0.1" ||
		start.Data["client_id"] == "" || start.Data["started_at"].(float64) <= 0 || start.Time == 0 || start.ID == "" {
		t.Fatalf("publish.start: %+v", start)
	}

	// Viewers of every protocol while both bad receivers fail.
	play := rpcCall(t, base, tok, "Live.stream.read", map[string]any{"room_id": roomID})["data"].(map[string]any)["play"].(map[string]any)
	for _, v := range []struct{ proto, url string }{
		{"http-flv", play["flv"].(string)}, {"rtmp", play["rtmp"].(string)}, {"rtsp", play["rtsp"].(string)}, {"hls", play["hls"].(string)},
	} {
		var extra []string
		if v.proto == "rtsp" {
			extra = []string{"-rtsp_transport", "tcp"}
		}
		began := time.Now()
		if got := probe(t, v.url, extra...); got != "h264 640x360, aac" {
			t.Fatalf("ffprobe over %s sees %q", v.proto, got)
		}
		t.Logf("ffprobe over %s took %v with a hung and a failing receiver", v.proto, time.Since(began).Round(time.Millisecond))
		ps := good.await("play.start", func(ev hookEvent) bool { return ev.Data["protocol"] == v.proto })
		if ps.Stream != stream || ps.Data["room_id"] != roomID || ps.Data["ip"] != "127.0.0.1" || ps.Data["client_id"] == "" {
			t.Fatalf("play.start over %s: %+v", v.proto, ps)
		}
		stopEv := good.await("play.stop", func(ev hookEvent) bool { return ev.Data["client_id"] == ps.Data["client_id"] })
		if stopEv.Data["protocol"] != v.proto || stopEv.Data["ip"] != "127.0.0.1" || stopEv.Data["reason"] != "left" ||
			stopEv.Data["bytes"].(float64) <= 0 || stopEv.Data["duration"].(float64) <= 0 || stopEv.Data["stopped_at"].(float64) < ps.Data["started_at"].(float64) {
			t.Fatalf("play.stop over %s: %+v", v.proto, stopEv)
		}
	}

	// Room events: the selected ones only (no room.join).
	peer := dialPeer(t, base, tok)
	peer.call("Live.room.join", map[string]any{"room_id": roomID})
	peer.call("Live.comment", map[string]any{"room_id": roomID, "content": "hello hooks"})
	peer.call("Live.like", map[string]any{"room_id": roomID})
	comment := good.await("room.comment", nil)
	if comment.Stream != stream || comment.Data["room_id"] != roomID || comment.Data["content"] != "hello hooks" ||
		comment.Data["user"].(map[string]any)["nickname"] != "streamer" {
		t.Fatalf("room.comment: %+v", comment)
	}
	if like := good.await("room.like", nil); like.Data["likes"] != float64(1) || like.Data["seq"].(float64) <= comment.Data["seq"].(float64) {
		t.Fatalf("room.like: %+v", like)
	}

	publisher.Process.Kill()
	publisher.Wait()
	end := good.await("publish.stop", nil)
	if end.Stream != stream || end.Data["reason"] != "publisher did not come back" || end.Data["bytes"].(float64) <= 0 ||
		end.Data["duration"].(float64) <= 0 || end.Data["client_id"] != start.Data["client_id"] {
		t.Fatalf("publish.stop: %+v", end)
	}
	rec := good.await("record.done", nil)
	if rec.Stream != stream || rec.Data["status"] != "complete" || rec.Data["room_id"] != roomID ||
		!strings.HasPrefix(rec.Data["mp4"].(string), "http://127.0.0.1:") {
		t.Fatalf("record.done: %+v", rec)
	}
	if d := probeDuration(t, rec.Data["mp4"].(string)); d < 1 {
		t.Fatalf("the replay of record.done lasts %v s", d)
	}

	// The stream's events came in order; nothing else was sent.
	var order []string
	open := map[string]bool{}
	for _, ev := range good.events() {
		switch ev.Type {
		case "room.comment", "room.like", "record.done":
			continue
		case "publish.start", "publish.stop", "play.start", "play.stop":
		default:
			t.Fatalf("an event not selected: %+v", ev)
		}
		order = append(order, ev.Type)
		id, _ := ev.Data["client_id"].(string)
		switch {
		case len(order) == 1 && ev.Type != "publish.start":
			t.Fatalf("the first event is %s", ev.Type)
		case ev.Type == "play.start":
			open[id] = true
		case ev.Type == "play.stop":
			if !open[id] {
				t.Fatalf("play.stop of %s before its play.start", id)
			}
			delete(open, id)
		case ev.Type == "publish.stop" && len(open) != 0:
			t.Fatalf("publish.stop before the play.stop of %v", open)
		}
	}
	// A play per viewer; ffprobe over HLS opens two HLS sessions (the
	// engine's player counting), each reported.
	if len(order) < 2+2*4 || order[len(order)-1] != "publish.stop" || len(open) != 0 {
		t.Fatalf("events %v, want a start and a stop for each of 4 viewers, ending with publish.stop", order)
	}
	for _, rc := range []*hookReceiver{good, hung, failing} {
		rc.mu.Lock()
		if len(rc.wrong) > 0 {
			t.Errorf("a receiver saw %v", rc.wrong)
		}
		rc.mu.Unlock()
	}
	if hung.hits.Load() == 0 || failing.hits.Load() < 2 {
		t.Fatalf("the hung receiver was asked %d times, the failing one %d (retries)", hung.hits.Load(), failing.hits.Load())
	}
	if len(failing.events())+len(hung.events()) != 0 {
		t.Fatal("a failing receiver took events")
	}
	metric := func(result string) float64 {
		var v float64
		for _, line := range strings.Split(get(t, base+"metrics"), "\n") {
			if rest, ok := strings.CutPrefix(line, `mofang_webhook_events_total{result="`+result+`"} `); ok {
				v, _ = strconv.ParseFloat(rest, 64)
			}
		}
		return v
	}
	// a receiver has an event before the dispatcher counts it delivered.
	eventually(t, 5*time.Second, "the deliveries counted", func() bool {
		return metric("delivered") >= float64(len(good.events())) && metric("failed") >= 2
	})
	if d, f := metric("delivered"), metric("failed"); d < float64(len(good.events())) || f < 2 {
		t.Fatalf("webhook metrics: delivered %v (the good receiver took %d), failed %v", d, len(good.events()), f)
	}
}

// gateHook is an operator's synchronous hook: it refuses the clients whose
// URL says who=bad, admits the others, and records what it was asked.
type gateHook struct {
	mu    sync.Mutex
	asked []map[string]any
	wrong []string
}

func (g *gateHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req map[string]any
	json.Unmarshal(body, &req)
	g.mu.Lock()
	if why := checkSignature(r.Header.Get("MoFang-Signature"), body, time.Now()); why != "" {
		g.wrong = append(g.wrong, why)
	}
	g.asked = append(g.asked, req)
	g.mu.Unlock()
	params, _ := req["params"].(map[string]any)
	if params["who"] == "bad" {
		fmt.Fprintf(w, `{"allow": false, "reason": "banned %s"}`, req["action"])
		return
	}
	fmt.Fprint(w, `{"allow": true}`)
}

// last returns the last request asked about action.
func (g *gateHook) last(action string) map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := len(g.asked) - 1; i >= 0; i-- {
		if g.asked[i]["action"] == action {
			return g.asked[i]
		}
	}
	return nil
}

// TestHookGate: the synchronous hook refuses a publisher and a viewer
// (the viewer learns the hook's reason: HTTP 403 over HTTP-FLV, a
// refusal over RTMP), admits the others, never sees the sign, and is not
// asked about clients our own rules refuse; with the hook down,
// hook-default deny refuses new viewers while the live goes on.
func TestHookGate(t *testing.T) {
	needFFmpeg(t)
	gate := &gateHook{}
	gateSrv := httptest.NewServer(gate)
	defer gateSrv.Close()
	rtmpPort := freePort(t)
	base, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1",
		"--hook-url", gateSrv.URL, "--webhook-secret", testWebhookSecret, "--hook-timeout", "5s", "--hook-default", "deny")
	defer stop()

	reg := rpcCall(t, base, "", "User.register", map[string]any{"username": "streamer", "password": "streamer-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, base, tok, "Live.stream", map[string]any{"room_name": "gated"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	publishURL := room["publish"].(map[string]any)["url"].(string)

	publishRefused(t, publishURL+"&who=bad")
	asked := gate.last("publish")
	if asked == nil || asked["stream"] != stream || asked["protocol"] != "rtmp" || asked["ip"] != "127.0.0.1" {
		t.Fatalf("the hook was asked %+v", asked)
	}
	if p := asked["params"].(map[string]any); p["who"] != "bad" || p["sign"] != nil {
		t.Fatalf("the hook got params %v: want who, never the sign", p)
	}
	gate.mu.Lock()
	n := len(gate.asked)
	gate.mu.Unlock()
	publishRefused(t, strings.Replace(publishURL, "sign=", "sign=1", 1)) // a wrong sign: refused by us
	gate.mu.Lock()
	if len(gate.asked) != n {
		t.Fatalf("the hook was asked about a publisher with a wrong sign: %+v", gate.asked[n:])
	}
	gate.mu.Unlock()

	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", publishURL)
	eventually(t, 15*time.Second, "room live", func() bool { return roomState(t, base, tok, stream).Status })

	play := rpcCall(t, base, tok, "Live.stream.read", map[string]any{"room_id": room["room_id"]})["data"].(map[string]any)["play"].(map[string]any)
	flv, rtmp := play["flv"].(string), play["rtmp"].(string)
	if code, body := getStatus(t, flv+"&who=bad"); code != http.StatusForbidden || !strings.Contains(body, "banned play") {
		t.Fatalf("HTTP-FLV viewer refused by the hook: HTTP %d %q, want 403 with the hook's reason", code, body)
	}
	probeRefused(t, rtmp+"&who=bad")
	if got := probe(t, flv); got != "h264 640x360, aac" {
		t.Fatalf("an admitted viewer sees %q", got)
	}
	if got := probe(t, rtmp+"&who=good"); got != "h264 640x360, aac" {
		t.Fatalf("an admitted RTMP viewer sees %q", got)
	}
	if p := gate.last("play"); p["protocol"] != "rtmp" || p["params"].(map[string]any)["who"] != "good" {
		t.Fatalf("the hook was last asked %+v", p)
	}

	// The hook goes down: hook-default deny.
	gateSrv.Close()
	if code, body := getStatus(t, flv); code != http.StatusForbidden || !strings.Contains(body, "the hook did not answer") {
		t.Fatalf("a viewer with the hook down: HTTP %d %q, want 403", code, body)
	}
	if !roomState(t, base, tok, stream).Status {
		t.Fatal("the live ended when the hook went down")
	}
	gate.mu.Lock()
	defer gate.mu.Unlock()
	if len(gate.wrong) > 0 {
		t.Fatalf("the hook saw %v", gate.wrong)
	}
}

// getStatus returns the status and the start of the body of GET u.
func getStatus(t *testing.T, u string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(b)
}

// TestHookSettings: the hook settings are checked at start, and the
// secret is never printed.
func TestHookSettings(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook-url", "http://127.0.0.1:9/h"}, "webhook-secret"},
		{[]string{"--hook-url", "http://127.0.0.1:9/h", "--webhook-secret", "short"}, "webhook-secret"},
		{[]string{"--webhook-url", "ftp://x/h", "--webhook-secret", testWebhookSecret}, "not an http(s) URL"},
		{[]string{"--hook-url", "/relative", "--webhook-secret", testWebhookSecret}, "not an http(s) URL"},
		{[]string{"--webhook-events", "publish.strat"}, "unknown event"},
		{[]string{"--hook-default", "maybe"}, "allow or deny"},
		{[]string{"--hook-timeout", "0s"}, "hook-timeout"},
	} {
		cfg, _, err := loadConfig("test", c.args, io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.hookSettings(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %q", c.args, err, c.want)
		}
	}
	cfg, _, err := loadConfig("test", []string{"--webhook-url", " http://a.example/h , https://user:pw@b.example/h ",
		"--webhook-secret", testWebhookSecret, "--webhook-events", "room.*,publish.start", "--hook-default", "allow"}, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := cfg.hookSettings()
	if err != nil || len(hs.urls) != 2 || hs.urls[1] != "https://user:pw@b.example/h" || len(hs.events) != 2 || !hs.allow || hs.timeout != 2*time.Second {
		t.Fatalf("settings %+v, %v", hs, err)
	}
	var out strings.Builder
	cfg.print(&out)
	if strings.Contains(out.String(), testWebhookSecret) || strings.Contains(out.String(), "pw@") ||
		!strings.Contains(out.String(), "# webhook-secret: set (not shown)") {
		t.Fatalf("config print:\n%s", out.String())
	}
	def, _, _ := loadConfig("test", nil, io.Discard, nil)
	if !strings.Contains(printed(def), "# webhook-secret: not set") {
		t.Fatalf("config print without a secret:\n%s", printed(def))
	}
	hs, _ = def.hookSettings()
	if hs.allow || len(hs.events) != 5 {
		t.Fatalf("defaults: %+v", hs)
	}
}

// allowAll admits everyone: our own rules, in the gate's unit test.
type allowAll struct{}

func (allowAll) AuthorizePublish(context.Context, media.AuthRequest) error { return nil }
func (allowAll) AuthorizePlay(context.Context, media.AuthRequest) error    { return nil }

// TestGateDefault: a hook that is down, slow or answers nonsense admits
// the client with hook-default allow and refuses it with deny; a refusal
// carries the hook's reason to the client; relays are not gated.
func TestGateDefault(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	nonsense := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") }))
	defer nonsense.Close()
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"allow": false, "reason": "not on the list"}`)
	}))
	defer refuse.Close()
	req := media.AuthRequest{Stream: "room_1", Query: url.Values{"sign": {"x"}}, Protocol: media.ProtocolHTTPFLV}
	for _, c := range []struct {
		name, url string
		allow     bool
		reason    string // "" admitted
	}{
		{"down, allow", down.URL, true, ""},
		{"down, deny", down.URL, false, "the hook did not answer"},
		{"slow, allow", slow.URL, true, ""},
		{"slow, deny", slow.URL, false, "the hook did not answer"},
		{"nonsense, deny", nonsense.URL, false, "the hook did not answer"},
		{"refusal, allow", refuse.URL, true, "not on the list"},
	} {
		hs := hookSettings{gateURL: c.url, secret: []byte(testWebhookSecret), timeout: 200 * time.Millisecond, allow: c.allow}
		gate, err := newGate(hs, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		a := gatedAuth{next: allowAll{}, gate: gate}
		for action, check := range map[string]func(context.Context, media.AuthRequest) error{"publish": a.AuthorizePublish, "play": a.AuthorizePlay} {
			err := check(context.Background(), req)
			var ref *media.RefusalError
			switch {
			case c.reason == "" && err != nil:
				t.Errorf("%s, %s: %v, want admitted", c.name, action, err)
			case c.reason != "" && (!errors.As(err, &ref) || !strings.Contains(ref.Reason, c.reason)):
				t.Errorf("%s, %s: %v, want a refusal naming %q", c.name, action, err, c.reason)
			}
		}
		// A relay between nodes is never asked about: its node credential
		// is checked by next, the viewers were asked about on their node.
		relay := req
		relay.Relay = "node-2"
		if err := a.AuthorizePlay(context.Background(), relay); err != nil {
			t.Errorf("%s: a relay: %v, want admitted without the hook", c.name, err)
		}
	}
}

func printed(c *config) string {
	var out strings.Builder
	c.print(&out)
	return out.String()
}

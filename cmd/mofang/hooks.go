package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/media/record"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/roomhub"
	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/webhook"
)

// The operator's hooks: signed webhooks of the media, recording and room
// events (webhook.Dispatcher), and the synchronous publish/play hook
// (webhook.Gate), which admits or refuses a client after our own checks.

// defaultWebhookEvents are the events webhooks get unless webhook-events
// says otherwise: the media ones.
const defaultWebhookEvents = "publish.start,publish.stop,play.start,play.stop,record.done"

// webhookEvents are the event types the service sends.
var webhookEvents = []string{
	webhook.PublishStart, webhook.PublishStop, webhook.PlayStart, webhook.PlayStop, webhook.RecordDone,
	"room.comment", "room.gift", "room.like", "room.join", "room.leave", "room.cohost",
}

// hookSettings are the hook settings, parsed.
type hookSettings struct {
	urls    []string // webhook-url
	secret  []byte
	events  []string // webhook-events
	gateURL string   // hook-url
	timeout time.Duration
	allow   bool // hook-default allow
}

// hookSettings parses and checks the hook settings.
func (c *config) hookSettings() (hookSettings, error) {
	hs := hookSettings{gateURL: strings.TrimSpace(c.HookURL), timeout: c.HookTimeout}
	for _, u := range splitList(c.WebhookURLs) {
		if err := checkHookURL(u); err != nil {
			return hs, fmt.Errorf("webhook-url: %w", err)
		}
		hs.urls = append(hs.urls, u)
	}
	if hs.gateURL != "" {
		if err := checkHookURL(hs.gateURL); err != nil {
			return hs, fmt.Errorf("hook-url: %w", err)
		}
	}
	for _, e := range splitList(c.WebhookEvents) {
		known := e == "*" || slices.Contains(webhookEvents, e) ||
			(strings.HasSuffix(e, ".*") && slices.ContainsFunc(webhookEvents, func(k string) bool { return strings.HasPrefix(k, e[:len(e)-1]) }))
		if !known {
			return hs, fmt.Errorf("webhook-events: unknown event %q (want %s, a prefix with .*, or *)", e, strings.Join(webhookEvents, ", "))
		}
		hs.events = append(hs.events, e)
	}
	switch c.HookDefault {
	case "allow":
		hs.allow = true
	case "deny":
	default:
		return hs, fmt.Errorf("hook-default %q: want allow or deny", c.HookDefault)
	}
	if c.HookTimeout <= 0 {
		return hs, fmt.Errorf("hook-timeout %v: want a positive duration", c.HookTimeout)
	}
	if len(hs.urls) > 0 || hs.gateURL != "" {
		if len(c.WebhookSecret) < 16 {
			return hs, errors.New("webhook-secret: webhook-url and hook-url need a secret of at least 16 bytes")
		}
		hs.secret = []byte(c.WebhookSecret)
	}
	return hs, nil
}

// checkHookURL accepts an absolute http(s) URL with a host.
func checkHookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", redactURLs(raw))
	}
	return nil
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// redactURLs hides the passwords of comma-separated URLs.
func redactURLs(v string) string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// newGate returns the synchronous hook of hs, or nil without hook-url.
func newGate(hs hookSettings, log *slog.Logger) (*webhook.Gate, error) {
	if hs.gateURL == "" {
		return nil, nil
	}
	return webhook.NewGate(webhook.GateConfig{URL: hs.gateURL, Secret: hs.secret, Timeout: hs.timeout, AllowOnError: hs.allow, Logger: log})
}

// gatedAuth asks the operator's hook about every publisher and viewer
// that next (our own rules) admitted: its refusal reaches the client
// with the hook's reason, and a hook that fails counts as hook-default.
type gatedAuth struct {
	next media.Authorizer
	gate *webhook.Gate
}

func (g gatedAuth) AuthorizePublish(ctx context.Context, req media.AuthRequest) error {
	if err := g.next.AuthorizePublish(ctx, req); err != nil {
		return err
	}
	return g.ask(ctx, "publish", req)
}

// AuthorizePlay does not ask about relays between the nodes of a
// cluster: the node of the viewers asked about them.
func (g gatedAuth) AuthorizePlay(ctx context.Context, req media.AuthRequest) error {
	if err := g.next.AuthorizePlay(ctx, req); err != nil || req.Relay != "" {
		return err
	}
	return g.ask(ctx, "play", req)
}

// ask asks the hook; the sign stays ours.
func (g gatedAuth) ask(ctx context.Context, action string, req media.AuthRequest) error {
	var params map[string]string
	for k, v := range req.Query {
		if k == "sign" || len(v) == 0 {
			continue
		}
		if params == nil {
			params = map[string]string{}
		}
		params[k] = v[0]
	}
	err := g.gate.Check(ctx, webhook.GateRequest{Action: action, Stream: req.Stream, Protocol: string(req.Protocol), IP: ipString(req.RemoteIP), Params: params})
	if err != nil {
		return &media.RefusalError{Reason: err.Error()}
	}
	return nil
}

// hooks sends the service's events to the operator's webhooks. A nil
// *hooks sends nothing.
type hooks struct {
	d     *webhook.Dispatcher
	store *store.Store
	log   *slog.Logger
	// api gives record.done the replay URLs; set once the API exists.
	api   atomic.Pointer[rpc.Server]
	rooms roomNames
	// roomQ holds the room events waiting for their room's stream name
	// (run); full, an event is dropped and counted.
	roomQ       chan roomEventOf
	roomDropped atomic.Uint64
}

// roomEventOf is a room event and its room.
type roomEventOf struct {
	room int64
	ev   roomhub.Event
}

// roomQueue bounds the room events waiting in hooks.roomQ.
const roomQueue = 4096

// newHooks returns the webhooks of hs, or nil when there are no URLs.
func newHooks(hs hookSettings, st *store.Store, log *slog.Logger) (*hooks, error) {
	if len(hs.urls) == 0 {
		return nil, nil
	}
	d, err := webhook.New(webhook.Config{URLs: hs.urls, Secret: hs.secret, Events: hs.events, Logger: log})
	if err != nil {
		return nil, err
	}
	return &hooks{d: d, store: st, log: log, roomQ: make(chan roomEventOf, roomQueue)}, nil
}

// selected reports whether events of type typ are sent.
func (h *hooks) selected(typ string) bool { return h != nil && h.d.Selected(typ) }

// roomsSelected reports whether any room event is sent.
func (h *hooks) roomsSelected() bool {
	if h == nil {
		return false
	}
	for _, e := range webhookEvents {
		if strings.HasPrefix(e, "room.") && h.d.Selected(e) {
			return true
		}
	}
	return false
}

// events wraps next, the engine's EventSink, to send the media events
// too; it hears of viewers only when play events are sent.
func (h *hooks) events(next media.EventSink) media.EventSink {
	if h == nil {
		return next
	}
	e := hookedEvents{next: next, h: h}
	if h.selected(webhook.PlayStart) || h.selected(webhook.PlayStop) {
		return hookedPlays{e}
	}
	return e
}

// hookedEvents is the engine's EventSink that also sends publish events.
type hookedEvents struct {
	next media.EventSink
	h    *hooks
}

func (e hookedEvents) PublishStarted(ctx context.Context, s media.StreamInfo) {
	e.next.PublishStarted(ctx, s)
	e.h.publishStarted(ctx, s)
}

func (e hookedEvents) PublishStopped(ctx context.Context, s media.StreamInfo) {
	e.next.PublishStopped(ctx, s)
	e.h.publishStopped(ctx, s)
}

// hookedPlays is hookedEvents that also sends play events.
type hookedPlays struct{ hookedEvents }

func (e hookedPlays) PlayStarted(_ context.Context, p media.PlayInfo) { e.h.playStarted(p) }
func (e hookedPlays) PlayStopped(_ context.Context, p media.PlayInfo) { e.h.playStopped(p) }

// startData is the data of publish.start and play.start.
type startData struct {
	RoomID    string `json:"room_id,omitempty"` // "%04d", as the API shows it; none for calls' and co-hosts' streams
	ClientID  string `json:"client_id"`         // as Admin.client.list shows it
	Protocol  string `json:"protocol"`
	IP        string `json:"ip"`
	StartedAt int64  `json:"started_at"` // ms since 1970
}

// stopData is the data of publish.stop and play.stop.
type stopData struct {
	startData
	StoppedAt int64   `json:"stopped_at"` // ms since 1970
	Duration  float64 `json:"duration"`   // seconds
	// Bytes are the bytes received from the publishers (publish.stop) or
	// sent to the viewer (play.stop).
	Bytes  uint64 `json:"bytes"`
	Reason string `json:"reason"`
}

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

func formatRoom(id int64, ok bool) string {
	if !ok {
		return ""
	}
	return fmt.Sprintf("%04d", id)
}

func (h *hooks) publishStarted(ctx context.Context, s media.StreamInfo) {
	if !h.selected(webhook.PublishStart) {
		return
	}
	id, ok := h.roomOf(ctx, s.Name)
	h.d.Send(webhook.Event{Type: webhook.PublishStart, Time: s.StartedAt.UnixMilli(), Stream: s.Name, Data: startData{
		RoomID: formatRoom(id, ok), ClientID: s.PublisherID, Protocol: string(s.Protocol), IP: ipString(s.PublisherIP),
		StartedAt: s.StartedAt.UnixMilli(),
	}})
}

func (h *hooks) publishStopped(ctx context.Context, s media.StreamInfo) {
	if !h.selected(webhook.PublishStop) {
		return
	}
	id, ok := h.roomOf(ctx, s.Name)
	h.d.Send(webhook.Event{Type: webhook.PublishStop, Time: s.StoppedAt.UnixMilli(), Stream: s.Name, Data: stopData{
		startData: startData{RoomID: formatRoom(id, ok), ClientID: s.PublisherID, Protocol: string(s.Protocol),
			IP: ipString(s.PublisherIP), StartedAt: s.StartedAt.UnixMilli()},
		StoppedAt: s.StoppedAt.UnixMilli(), Duration: seconds(s.StoppedAt.Sub(s.StartedAt)), Bytes: s.BytesIn, Reason: s.Reason,
	}})
}

// playStarted and playStopped name the room only when it is known
// already (its stream's publish.start looked it up): a viewer costs no
// query.
func (h *hooks) playStarted(p media.PlayInfo) {
	if !h.selected(webhook.PlayStart) {
		return
	}
	id, ok := h.rooms.id(p.Stream)
	h.d.Send(webhook.Event{Type: webhook.PlayStart, Time: p.StartedAt.UnixMilli(), Stream: p.Stream, Data: startData{
		RoomID: formatRoom(id, ok), ClientID: p.ClientID, Protocol: string(p.Protocol), IP: ipString(p.Remote.Addr()),
		StartedAt: p.StartedAt.UnixMilli(),
	}})
}

func (h *hooks) playStopped(p media.PlayInfo) {
	if !h.selected(webhook.PlayStop) {
		return
	}
	id, ok := h.rooms.id(p.Stream)
	h.d.Send(webhook.Event{Type: webhook.PlayStop, Time: p.StoppedAt.UnixMilli(), Stream: p.Stream, Data: stopData{
		startData: startData{RoomID: formatRoom(id, ok), ClientID: p.ClientID, Protocol: string(p.Protocol),
			IP: ipString(p.Remote.Addr()), StartedAt: p.StartedAt.UnixMilli()},
		StoppedAt: p.StoppedAt.UnixMilli(), Duration: seconds(p.StoppedAt.Sub(p.StartedAt)), Bytes: p.BytesOut, Reason: p.Reason,
	}})
}

// recordDone sends record.done for a recording whose row is finished:
// the recording as Live.record.read shows it, replay URLs included.
func (h *hooks) recordDone(ctx context.Context, id int64, info record.Info) {
	if !h.selected(webhook.RecordDone) {
		return
	}
	status := store.RecordComplete
	if info.Status == record.StatusFailed {
		status = store.RecordFailed
	}
	data := rpc.RecordData{ID: id, Status: status, Error: info.Error, Duration: seconds(info.Duration), Size: info.Size}
	if api := h.api.Load(); api != nil {
		d, err := api.Recording(ctx, id)
		if err != nil {
			h.log.Warn("webhook: reading a finished recording", "record", id, "err", err)
		} else {
			data = d
		}
	}
	h.d.Send(webhook.Event{Type: webhook.RecordDone, Stream: info.Stream, Data: data})
}

// roomEventData is the data of room.* events: the room event as the
// room's members get it (a co-host's play URLs left out).
type roomEventData struct {
	RoomID  string             `json:"room_id"`
	Seq     uint64             `json:"seq"`
	User    *roomhub.User      `json:"user,omitempty"`
	Content string             `json:"content,omitempty"`
	Gift    *roomhub.GiftEvent `json:"gift,omitempty"`
	Count   int64              `json:"count,omitempty"`
	Coin    int64              `json:"coin,omitempty"`
	Likes   int64              `json:"likes,omitempty"`
	Viewers int                `json:"viewers,omitempty"`
	State   string             `json:"state,omitempty"`
	Reason  string             `json:"reason,omitempty"`
}

// roomEvent is rpc.Config.OnRoomEvent: it queues the event for run,
// which finds the room's stream name, and never waits.
func (h *hooks) roomEvent(roomID int64, ev roomhub.Event) {
	if !h.selected("room." + ev.Type) {
		return
	}
	select {
	case h.roomQ <- roomEventOf{roomID, ev}:
	default:
		if n := h.roomDropped.Add(1); n == 1 || n%1000 == 0 {
			h.log.Warn("webhook: room events queue full, dropping events", "dropped", n)
		}
	}
}

// run sends the queued room events, in order, each in its stream's
// order (webhook.Event.Stream), until ctx ends.
func (h *hooks) run(ctx context.Context) {
	if h == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-h.roomQ:
			stream, _ := h.streamOf(ctx, q.room)
			ev := q.ev
			h.d.Send(webhook.Event{Type: "room." + ev.Type, Time: ev.Time, Stream: stream, Data: roomEventData{
				RoomID: fmt.Sprintf("%04d", q.room), Seq: ev.Seq, User: ev.User, Content: ev.Content, Gift: ev.Gift,
				Count: ev.Count, Coin: ev.Coin, Likes: ev.Likes, Viewers: ev.Viewers, State: ev.State, Reason: ev.Reason,
			}})
		}
	}
}

// close delivers what is queued, for at most wait: receivers that fail
// keep the rest.
func (h *hooks) close(wait time.Duration) {
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := h.d.Close(ctx); err != nil {
		h.log.Warn("webhooks at shutdown", "err", err)
	}
}

// roomOf returns the room of a stream, from the cache or the store.
func (h *hooks) roomOf(ctx context.Context, stream string) (int64, bool) {
	if id, ok := h.rooms.id(stream); ok {
		return id, true
	}
	if rpc.IsPrivateStream(stream) {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := h.store.RoomByName(ctx, stream)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			h.log.Warn("webhook: the room of a stream", "stream", stream, "err", err)
		}
		return 0, false
	}
	h.rooms.put(r.ID, r.Name)
	return r.ID, true
}

// streamOf returns the stream name of a room, from the cache or the
// store.
func (h *hooks) streamOf(ctx context.Context, roomID int64) (string, bool) {
	if name, ok := h.rooms.name(roomID); ok {
		return name, true
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r, err := h.store.RoomByID(ctx, roomID)
	if err != nil {
		h.log.Warn("webhook: the stream of a room", "room", roomID, "err", err)
		return "", false
	}
	h.rooms.put(r.ID, r.Name)
	return r.Name, true
}

// roomNames caches rooms' stream names, which never change.
type roomNames struct {
	mu     sync.Mutex
	byID   map[int64]string
	byName map[string]int64
}

// maxRoomNames bounds the cache: past it, it starts again.
const maxRoomNames = 100_000

func (r *roomNames) put(id int64, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil || len(r.byID) >= maxRoomNames {
		r.byID, r.byName = map[int64]string{}, map[string]int64{}
	}
	r.byID[id], r.byName[name] = name, id
}

func (r *roomNames) name(id int64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.byID[id]
	return n, ok
}

func (r *roomNames) id(name string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.byName[name]
	return id, ok
}

// hooksCollector reads the webhooks' counters at scrape time.
type hooksCollector struct{ h *hooks }

var descWebhooks = prometheus.NewDesc("mofang_webhook_events_total",
	"Webhook deliveries: delivered (2xx), failed attempts (retried), given up after every retry, dropped (a queue was full).", []string{"result"}, nil)

func (c hooksCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descWebhooks }

func (c hooksCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.d.Stats()
	for _, v := range []struct {
		result string
		n      uint64
	}{{"delivered", st.Delivered}, {"failed", st.Failed}, {"given_up", st.GivenUp}, {"dropped", st.Dropped + c.h.roomDropped.Load()}} {
		ch <- prometheus.MustNewConstMetric(descWebhooks, prometheus.CounterValue, float64(v.n), v.result)
	}
}

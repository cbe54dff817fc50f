// Package webhook tells an operator's systems what happens in the service:
// it POSTs signed JSON events (a publish started, a recording is done, a
// comment was made) to configured URLs, in order per stream, retrying with
// backoff, and never makes its caller wait.
//
// Every request carries the headers
//
//	MoFang-Event: publish.start
//	MoFang-Delivery: <event id, the same on every retry>
//	MoFang-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">
//
// A receiver recomputes the HMAC with the shared secret and refuses a
// signature whose time is too far from its clock (Verify does both), so a
// recorded request cannot be replayed later.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Event types sent by the service.
const (
	PublishStart = "publish.start"
	PublishStop  = "publish.stop"
	PlayStart    = "play.start"
	PlayStop     = "play.stop"
	RecordDone   = "record.done"
)

// Headers of a delivery.
const (
	HeaderEvent     = "MoFang-Event"
	HeaderDelivery  = "MoFang-Delivery"
	HeaderSignature = "MoFang-Signature"
)

// Event is one thing that happened. It is sent as JSON:
// {"id": ..., "type": ..., "time": <ms since 1970>, "stream": ..., "data": {...}}.
type Event struct {
	// ID identifies the event; receivers use it to drop a retried
	// delivery they already took. Set by Send when empty.
	ID string `json:"id"`
	// Type is the event's type: one of the constants, or "room.<type>"
	// for room events.
	Type string `json:"type"`
	// Time is when it happened, in milliseconds since 1970 (set by Send
	// when zero).
	Time int64 `json:"time"`
	// Stream is the stream (or room) the event belongs to; events of one
	// stream are delivered to each URL in the order they were sent.
	Stream string `json:"stream,omitempty"`
	// Data holds the event's details.
	Data any `json:"data,omitempty"`
}

// Config configures a Dispatcher. Zero values take the documented defaults.
type Config struct {
	// URLs receive every selected event.
	URLs []string
	// Secret signs every request; it must be at least 16 bytes.
	Secret []byte
	// Events selects the event types sent; empty sends the media events
	// (publish, play and record), "*" sends everything, and "room.*" every
	// room event.
	Events []string
	// Client sends the requests (default: a client with Timeout).
	Client *http.Client
	// Timeout bounds one attempt (default 5 s).
	Timeout time.Duration
	// MaxAttempts is how often an event is tried before it is given up
	// (default 8).
	MaxAttempts int
	// Backoff is the wait after the first failure, doubled after each
	// further one up to MaxBackoff (defaults 1 s and 1 min).
	Backoff, MaxBackoff time.Duration
	// QueueSize bounds the events waiting per URL and stream; when full,
	// the oldest waiting event is dropped and counted (default 256).
	QueueSize int
	// Logger receives delivery failures (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Minute
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 256
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Stats counts deliveries since New.
type Stats struct {
	// Delivered counts events a receiver accepted (2xx).
	Delivered uint64
	// Failed counts attempts that failed (and were retried or given up).
	Failed uint64
	// GivenUp counts events dropped after MaxAttempts.
	GivenUp uint64
	// Dropped counts events dropped because their queue was full.
	Dropped uint64
}

// Dispatcher delivers events. Create it with New; it is safe for
// concurrent use.
type Dispatcher struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	queues map[queueKey]*queue
	closed bool

	delivered, failed, givenUp, dropped atomic.Uint64
}

// queueKey orders events per receiver and stream.
type queueKey struct{ url, stream string }

// queue holds one key's waiting events; a goroutine delivers them in
// order while it has any, and exits when it runs dry.
type queue struct {
	events  []delivery
	running bool
}

// delivery is an event encoded once for every URL.
type delivery struct {
	id, typ string
	body    []byte
}

// New returns a Dispatcher for cfg.
func New(cfg Config) (*Dispatcher, error) {
	cfg.setDefaults()
	if len(cfg.Secret) < 16 {
		return nil, errors.New("webhook: the secret must be at least 16 bytes")
	}
	for _, u := range cfg.URLs {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("webhook: %q is not an http(s) URL", u)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{cfg: cfg, ctx: ctx, cancel: cancel, queues: map[queueKey]*queue{}}, nil
}

// Selected reports whether events of type typ are sent.
func (d *Dispatcher) Selected(typ string) bool {
	if d == nil || len(d.cfg.URLs) == 0 {
		return false
	}
	if len(d.cfg.Events) == 0 {
		return !strings.HasPrefix(typ, "room.")
	}
	for _, e := range d.cfg.Events {
		if e == "*" || e == typ || (strings.HasSuffix(e, ".*") && strings.HasPrefix(typ, e[:len(e)-1])) {
			return true
		}
	}
	return false
}

// Send queues ev for every URL, if its type is selected. It never blocks
// on a receiver: a slow or failing one only fills its own queue.
func (d *Dispatcher) Send(ev Event) {
	if !d.Selected(ev.Type) {
		return
	}
	if ev.ID == "" {
		ev.ID = newID()
	}
	if ev.Time == 0 {
		ev.Time = d.cfg.Now().UnixMilli()
	}
	body, err := json.Marshal(ev)
	if err != nil {
		d.cfg.Logger.Error("webhook: encoding an event", "type", ev.Type, "err", err)
		return
	}
	dv := delivery{id: ev.ID, typ: ev.Type, body: body}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	for _, u := range d.cfg.URLs {
		k := queueKey{u, ev.Stream}
		q := d.queues[k]
		if q == nil {
			q = &queue{}
			d.queues[k] = q
		}
		if len(q.events) >= d.cfg.QueueSize {
			q.events = q.events[1:]
			d.dropped.Add(1)
			d.cfg.Logger.Warn("webhook: queue full, dropping the oldest event", "url", u, "stream", ev.Stream)
		}
		q.events = append(q.events, dv)
		if !q.running {
			q.running = true
			d.wg.Add(1)
			go d.run(k, q)
		}
	}
}

// run delivers q's events in order until it is empty.
func (d *Dispatcher) run(k queueKey, q *queue) {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		if len(q.events) == 0 || d.ctx.Err() != nil {
			q.running = false
			if len(q.events) == 0 {
				delete(d.queues, k)
			}
			d.mu.Unlock()
			return
		}
		dv := q.events[0]
		q.events = q.events[1:]
		d.mu.Unlock()
		d.deliver(k.url, dv)
	}
}

// deliver tries dv until a receiver accepts it, MaxAttempts are spent or
// the dispatcher closes.
func (d *Dispatcher) deliver(url string, dv delivery) {
	wait := d.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err := d.post(url, dv)
		if err == nil {
			d.delivered.Add(1)
			return
		}
		d.failed.Add(1)
		if attempt >= d.cfg.MaxAttempts {
			d.givenUp.Add(1)
			d.cfg.Logger.Warn("webhook: giving up an event", "url", url, "type", dv.typ, "id", dv.id, "attempts", attempt, "err", err)
			return
		}
		d.cfg.Logger.Info("webhook: delivery failed, retrying", "url", url, "type", dv.typ, "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
			return
		}
		wait = min(2*wait, d.cfg.MaxBackoff)
	}
}

// post makes one attempt.
func (d *Dispatcher) post(url string, dv delivery) error {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(dv.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "MoFang-Webhook/1")
	req.Header.Set(HeaderEvent, dv.typ)
	req.Header.Set(HeaderDelivery, dv.id)
	req.Header.Set(HeaderSignature, Sign(d.cfg.Secret, d.cfg.Now(), dv.body))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// Stats returns the delivery counters.
func (d *Dispatcher) Stats() Stats {
	return Stats{
		Delivered: d.delivered.Load(),
		Failed:    d.failed.Load(),
		GivenUp:   d.givenUp.Load(),
		Dropped:   d.dropped.Load(),
	}
}

// Close stops taking events and waits until the queued ones are
// delivered or ctx ends; what is left then is dropped.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		<-done
		return fmt.Errorf("webhook: events left undelivered: %w", ctx.Err())
	}
}

// Sign returns the signature header value of body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook: bad signature")
	ErrStale        = errors.New("webhook: signature too old or from the future")
)

// Verify checks a signature header against body: the HMAC must match and
// its time must be within tolerance of now, so that a captured request
// cannot be replayed later.
func Verify(secret []byte, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return ErrBadSignature
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}

// newID returns a random event ID.
func newID() string {
	var b [12]byte
	rand.Read(b[:]) //nolint:errcheck // never fails
	return hex.EncodeToString(b[:])
}

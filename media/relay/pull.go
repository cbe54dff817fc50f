package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
)

// dialer connects to other nodes.
var dialer = net.Dialer{Timeout: 3 * time.Second, KeepAlive: 15 * time.Second}

// Backoff of a relay whose pull failed.
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// relay is the relay of one stream: run follows the stream's owner and
// its local viewers, and runs one pull at a time.
type relay struct {
	m    *Manager
	name string
	log  *slog.Logger
}

// pull is one HTTP-FLV request to the stream's owner, published into the
// local stream.
type pull struct {
	src    Source
	cancel context.CancelFunc
	done   chan struct{}

	err     error        // why it ended; set before done is closed
	refused atomic.Bool  // the hub refused it: a local publisher has the stream
	packets atomic.Int64 // packets written
	last    atomic.Int64 // unix nanoseconds of the newest packet (or of the start)
	// now ends the local stream at once when the pull stops (nobody
	// watches it), rather than leave it to its grace period.
	now atomic.Bool
}

func (p *pull) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// run follows the stream until nobody watches it, a publisher of this
// node has it, or ctx ends.
func (r *relay) run(ctx context.Context) {
	cfg := &r.m.cfg
	h := cfg.Hub
	var p *pull
	stop := func(now bool) {
		if p == nil {
			return
		}
		p.now.Store(now)
		p.cancel()
		<-p.done
		p = nil
	}
	defer func() { stop(false) }()

	backoff := time.Duration(0)
	var retryAt time.Time
	idleSince := time.Now() // since when no viewer was seen; zero while watched
	t := time.NewTicker(cfg.Poll)
	defer t.Stop()
	r.log.Info("relay starting")
	for {
		now := time.Now()
		s := h.Stream(r.name)
		watched := false
		if s != nil {
			if pub := s.Publisher(); pub != nil && !pub.Relay() {
				r.log.Info("relay done: a publisher of this node has the stream")
				return
			}
			watched = s.ReaderCount() > 0
		}
		switch {
		case watched:
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = now // the last viewer left since the last look
		}
		if !idleSince.IsZero() && now.Sub(idleSince) >= cfg.Linger {
			r.log.Info("relay done: no viewer left", "linger", cfg.Linger)
			stop(true)
			return
		}
		if p != nil && p.finished() {
			if p.refused.Load() {
				r.log.Info("relay done: refused by the hub", "err", p.err)
				p = nil
				return
			}
			if p.packets.Load() > 0 {
				backoff = 0
			}
			if backoff == 0 {
				backoff = minBackoff
			} else {
				backoff = min(2*backoff, maxBackoff)
			}
			retryAt = now.Add(backoff)
			r.log.Info("relay pull ended", "node", p.src.Node, "err", p.err, "retry", backoff)
			p = nil
		}

		src, ok := cfg.Lookup(r.name)
		switch {
		case !ok:
			if p != nil {
				r.log.Info("relay stopped: the stream's owner left the directory", "node", p.src.Node)
				stop(false) // the local stream waits in its grace period
			}
			if s == nil {
				r.log.Info("relay done: no stream to relay")
				return
			}
		case p != nil && (src.Node != p.src.Node || src.Fence != p.src.Fence || src.URL != p.src.URL):
			r.log.Info("relay moving to the stream's new owner", "from", p.src.Node, "to", src.Node, "fence", src.Fence)
			stop(false)
			p = r.startPull(ctx, src)
		case p != nil && !src.Grace && now.Sub(time.Unix(0, p.last.Load())) > cfg.IdleTimeout:
			r.log.Warn("relay pull brought nothing, reconnecting", "node", src.Node, "idle", cfg.IdleTimeout)
			stop(false)
			p = r.startPull(ctx, src)
		case p == nil && !now.Before(retryAt):
			p = r.startPull(ctx, src)
		}

		var pdone <-chan struct{}
		if p != nil {
			pdone = p.done
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-pdone:
		}
	}
}

// startPull starts pulling the stream from src.
func (r *relay) startPull(ctx context.Context, src Source) *pull {
	ctx, cancel := context.WithCancel(ctx)
	p := &pull{src: src, cancel: cancel, done: make(chan struct{})}
	p.last.Store(time.Now().UnixNano())
	go func() {
		defer close(p.done)
		defer cancel()
		p.err = r.pull(ctx, p)
	}()
	return p
}

// streamURL is the HTTP-FLV URL of stream on the node at base, with the
// relay's query.
func streamURL(base, stream string, q url.Values) string {
	return strings.TrimSuffix(base, "/") + "/" + hub.AppName + "/" + url.PathEscape(stream) + ".flv?" + q.Encode()
}

// pull reads the stream from p.src and publishes it until the request
// ends.
func (r *relay) pull(ctx context.Context, p *pull) error {
	cfg := &r.m.cfg
	h := cfg.Hub
	q := url.Values{}
	if cfg.Query != nil {
		for k, v := range cfg.Query(r.name) {
			q[k] = v
		}
	}
	q.Set(hub.RelayParam, cfg.Self)
	var remote atomic.Value // net.Addr
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { remote.Store(info.Conn.RemoteAddr()) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, streamURL(p.src.URL, r.name, q), nil)
	if err != nil {
		return fmt.Errorf("relay request to %s: %w", p.src.Node, err)
	}
	res, err := cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("relay request to %s: %w", p.src.Node, redact(err))
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 200))
		return fmt.Errorf("relay request to %s: %s: %s", p.src.Node, res.Status, strings.TrimSpace(string(b)))
	}
	fr := &flv.Reader{R: res.Body}
	if err := fr.ReadHeader(); err != nil {
		return fmt.Errorf("relay from %s: %w", p.src.Node, err)
	}

	addr, _ := remote.Load().(net.Addr)
	c := h.NewClient(hub.ClientInfo{Protocol: hub.ProtocolHTTPFLV, Remote: hub.AddrPortOf(addr), Close: p.cancel,
		Relay: true, Node: p.src.Node})
	defer h.RemoveClient(c)
	s, err := h.Publish(r.name, c)
	if err != nil {
		p.refused.Store(true)
		return fmt.Errorf("relay from %s: %w", p.src.Node, err)
	}
	c.SetRole(hub.RolePublish, r.name)
	defer func() {
		if p.now.Load() {
			h.UnpublishNow(s, c)
		} else {
			h.Unpublish(s, c)
		}
	}()
	r.log.Info("relay pulling", "node", p.src.Node, "fence", p.src.Fence, "client", c.ID())
	for {
		tag, err := fr.ReadTag()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("relay from %s: the stream ended there", p.src.Node)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("relay from %s: %w", p.src.Node, err)
		}
		c.AddBytesIn(flv.TagHeaderSize + len(tag.Body) + flv.PrevTagSizeSize)
		if len(tag.Body) == 0 && tag.Type != flv.TagScript {
			continue
		}
		if !s.WritePacketFrom(c, tag.Type, tag.Timestamp, tag.Body) {
			return fmt.Errorf("relay from %s: replaced by a publisher of this node", p.src.Node)
		}
		p.packets.Add(1)
		p.last.Store(time.Now().UnixNano())
	}
}

// redact removes the query (the node credential) from a request error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

package hub

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Role says what a client does.
type Role string

// Roles.
const (
	RoleNone    Role = ""
	RolePublish Role = "publish"
	RolePlay    Role = "play"
)

// Client is one connection (or session) of any protocol, as seen by stats
// and kicks. Create it with Hub.NewClient, release it with
// Hub.RemoveClient.
type Client struct {
	id          string
	remote      netip.AddrPort
	protocol    Protocol
	connectedAt time.Time
	closer      func() // closes the connection
	log         *slog.Logger
	// byteCounts, if set, replaces bytesIn/bytesOut (RTSP: gortsplib counts).
	byteCounts func() (in, out uint64)
	// relay marks a relay between nodes; node is the other node's ID.
	relay bool
	node  string

	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64

	mu     sync.Mutex
	stream string
	role   Role
	meter  meter // bytes sent (readers), for the 10 s bitrate
	// playing is true from the report of the client's play start to
	// that of its stop (see Hub.playStarted); playSince is when it began,
	// playStream of which stream.
	playing    bool
	playSince  time.Time
	playStream string
}

// ClientInfo describes a client to register with Hub.NewClient.
type ClientInfo struct {
	// Protocol is the client's protocol.
	Protocol Protocol
	// Remote is the client's address.
	Remote netip.AddrPort
	// Close, if set, closes the client's connection: it is called by
	// kicks and by Hub.Close. A client without it cannot be kicked.
	Close func()
	// ID, if set, replaces the ID the hub gives ("<protocol>-<n>").
	ID string
	// ConnectedAt, if set, replaces the time of registration.
	ConnectedAt time.Time
	// ByteCounts, if set, gives the bytes received from and sent to the
	// client, replacing the hub's counters, for protocols whose library
	// counts them (RTSP, HLS).
	ByteCounts func() (in, out uint64)
	// Relay marks a relay between the nodes of a cluster: a relay source
	// publishing a stream pulled from the node that owns it, or a reader
	// of another node pulling a stream from this one (admitted by the
	// node credential, see AuthRequest.Relay). A relay reader is not
	// counted among the stream's viewers (StreamStats.ReaderCount); a
	// relay publisher is not a publisher of this node (no claim, no
	// events, see Claims).
	Relay bool
	// Node is the ID of the other node of a relay.
	Node string
}

// ID returns the client's ID ("rtmp-12", "http-flv-40").
func (c *Client) ID() string { return c.id }

// Protocol returns the client's protocol.
func (c *Client) Protocol() Protocol { return c.protocol }

// Relay reports whether the client is a relay between nodes (see
// ClientInfo.Relay).
func (c *Client) Relay() bool { return c.relay }

// Node returns the ID of the other node of a relay, "" for other clients.
func (c *Client) Node() string { return c.node }

// addOut counts bytes sent to the client.
func (c *Client) addOut(n int) {
	c.bytesOut.Add(uint64(n))
	c.mu.Lock()
	c.meter.add(time.Now(), n)
	c.mu.Unlock()
}

// AddBytesIn counts n bytes received from the client on a connection
// the hub does not wrap (a relay's pull).
func (c *Client) AddBytesIn(n int) { c.bytesIn.Add(uint64(n)) }

// AddBytesOut counts n bytes sent to the client outside its Reader
// (protocol messages), in its and the hub's byte counters.
func (c *Client) AddBytesOut(n int) { c.bytesOut.Add(uint64(n)) }

// IP returns the client's IP address.
func (c *Client) IP() netip.Addr { return c.remote.Addr() }

// SetRole records what the client does, on which stream (logged for
// players: "play started").
func (c *Client) SetRole(role Role, stream string) {
	c.mu.Lock()
	c.role, c.stream = role, stream
	c.mu.Unlock()
	if role == RolePlay {
		c.log.Info("play started", "client", c.id, "ip", c.IP(), "protocol", c.protocol, "path", "/"+AppName+"/"+stream)
	}
}

// playStarted reports that c started playing stream, once, if the
// EventSink hears of viewers and c is no relay to another node (whose
// viewers that node reports). It is called with the stream's lock held,
// so that it comes before the stream's end.
func (h *Hub) playStarted(c *Client, stream string) {
	if h.plays == nil || c.relay {
		return
	}
	c.mu.Lock()
	if c.playing {
		c.mu.Unlock()
		return
	}
	c.playing, c.playSince = true, time.Now()
	p := PlayInfo{ClientID: c.id, Stream: stream, Protocol: c.protocol, Remote: c.remote, StartedAt: c.playSince}
	c.playStream = stream
	// Queued before c.mu is let go: a stop (RemoveClient's too, which
	// holds no stream lock) is queued after it.
	h.emitPlay(func() { h.plays.PlayStarted(context.WithoutCancel(h.ctx), p) })
	c.mu.Unlock()
}

// playStopped reports the end of c's play, once, if its start was
// reported. RemoveReader and the end of a stream call it with the
// stream's lock held, so that a viewer's stop comes before its stream's.
func (h *Hub) playStopped(c *Client, reason string) {
	if h.plays == nil {
		return
	}
	c.mu.Lock()
	if !c.playing {
		c.mu.Unlock()
		return
	}
	c.playing = false
	p := PlayInfo{ClientID: c.id, Stream: c.playStream, Protocol: c.protocol, Remote: c.remote, StartedAt: c.playSince,
		StoppedAt: time.Now(), Reason: reason}
	// The bytes are counted on the event goroutine: a library's counter
	// (RTSP's) may take locks of its own, and the caller may hold the
	// stream's. Queued before c.mu is let go: the end of the stream,
	// which finds c stopped already, is queued after this stop
	// (RemoveClient reports it without the stream's lock).
	h.emitPlay(func() {
		_, p.BytesOut = c.bytes()
		h.plays.PlayStopped(context.WithoutCancel(h.ctx), p)
	})
	c.mu.Unlock()
}

// bytes returns the bytes received from and sent to c.
func (c *Client) bytes() (in, out uint64) {
	if c.byteCounts != nil {
		return c.byteCounts()
	}
	return c.bytesIn.Load(), c.bytesOut.Load()
}

// AddrPortOf returns the address of a net.Addr (TCP/UDP) or of a
// "host:port" string.
func AddrPortOf(a net.Addr) netip.AddrPort {
	switch t := a.(type) {
	case *net.TCPAddr:
		return t.AddrPort()
	case *net.UDPAddr:
		return t.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// NewClient registers a client for stats and kicks; release it with
// RemoveClient.
func (h *Hub) NewClient(info ClientInfo) *Client {
	c := &Client{
		id:          h.newClientID(info.Protocol),
		remote:      netip.AddrPortFrom(info.Remote.Addr().Unmap(), info.Remote.Port()),
		protocol:    info.Protocol,
		connectedAt: time.Now(),
		closer:      info.Close,
		log:         h.log,
		byteCounts:  info.ByteCounts,
		relay:       info.Relay,
		node:        info.Node,
	}
	if info.ID != "" {
		c.id = info.ID
	}
	if !info.ConnectedAt.IsZero() {
		c.connectedAt = info.ConnectedAt
	}
	h.clientsMu.Lock()
	h.clients[c] = struct{}{}
	h.clientsMu.Unlock()
	return c
}

// RemoveClient releases a client and logs its session: one line per
// publish or play with its duration and bytes (never its URL query,
// which holds the sign).
func (h *Hub) RemoveClient(c *Client) {
	h.playStopped(c, "left")
	in, out := c.bytes()
	h.clientsMu.Lock()
	_, ok := h.clients[c]
	if ok {
		delete(h.clients, c)
		h.goneBytesIn += in
		h.goneBytesOut += out
	}
	h.clientsMu.Unlock()
	if !ok {
		return
	}
	c.mu.Lock()
	role, stream := c.role, c.stream
	c.mu.Unlock()
	if role == RoleNone {
		return
	}
	what := "play stopped"
	if role == RolePublish {
		what = "publish stopped"
	}
	h.log.Info(what, "client", c.id, "ip", c.IP(), "protocol", c.protocol, "path", "/"+AppName+"/"+stream,
		"duration", time.Since(c.connectedAt).Round(time.Millisecond), "bytes_in", in, "bytes_out", out)
}

// clientByID returns the connected client with that ID, or nil.
func (h *Hub) clientByID(id string) *Client {
	h.clientsMu.Lock()
	defer h.clientsMu.Unlock()
	for c := range h.clients {
		if c.id == id {
			return c
		}
	}
	return nil
}

// CountingConn counts the bytes of a connection into its client and
// serializes writes with the reader fan-out, which writes to the
// connection directly (under the same lock, see ConnSink).
type CountingConn struct {
	net.Conn
	c   *Client
	wmu *sync.Mutex
}

// NewCountingConn returns nc counting into c, its writes under wmu.
func NewCountingConn(nc net.Conn, c *Client, wmu *sync.Mutex) *CountingConn {
	return &CountingConn{Conn: nc, c: c, wmu: wmu}
}

// Read reads from the connection and counts the bytes received.
func (cc *CountingConn) Read(b []byte) (int, error) {
	n, err := cc.Conn.Read(b)
	cc.c.bytesIn.Add(uint64(n))
	return n, err
}

// Write writes to the connection under the write lock and counts the
// bytes sent.
func (cc *CountingConn) Write(b []byte) (int, error) {
	cc.wmu.Lock()
	n, err := cc.Conn.Write(b)
	cc.wmu.Unlock()
	cc.c.bytesOut.Add(uint64(n))
	return n, err
}

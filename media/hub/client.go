package media

import (
	"log/slog"
	"net"
	"net/netip"
	"strconv"
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

// client is one connection of any protocol, as seen by stats.
type client struct {
	id          string
	remote      netip.AddrPort
	protocol    Protocol
	connectedAt time.Time
	closer      func() // closes the connection
	log         *slog.Logger
	// byteCounts, if set, replaces bytesIn/bytesOut (RTSP: gortsplib counts).
	byteCounts func() (in, out uint64)

	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64

	mu     sync.Mutex
	stream string
	role   Role
	meter  meter // bytes sent (readers), for the 10 s bitrate
}

// addOut counts bytes sent to the client.
func (c *client) addOut(n int) {
	c.bytesOut.Add(uint64(n))
	c.mu.Lock()
	c.meter.add(time.Now(), n)
	c.mu.Unlock()
}

func (c *client) ip() netip.Addr { return c.remote.Addr() }

func (c *client) setRole(role Role, stream string) {
	c.mu.Lock()
	c.role, c.stream = role, stream
	c.mu.Unlock()
	if role == RolePlay {
		c.log.Info("play started", "client", c.id, "ip", c.ip(), "protocol", c.protocol, "path", "/"+appName+"/"+stream)
	}
}

// addrPortOf returns the address of a net.Addr (TCP/UDP) or of a
// "host:port" string.
func addrPortOf(a net.Addr) netip.AddrPort {
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

// newClient registers a client; release it with removeClient.
func (e *Engine) newClient(proto Protocol, remote netip.AddrPort, closer func()) *client {
	c := e.makeClient(proto, remote, closer)
	e.addClient(c)
	return c
}

// makeClient builds a client without registering it, for callers that
// set more of it first (stats read its fields without a lock).
func (e *Engine) makeClient(proto Protocol, remote netip.AddrPort, closer func()) *client {
	return &client{
		id:          string(proto) + "-" + strconv.FormatUint(e.nextID.Add(1), 10),
		remote:      netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port()),
		protocol:    proto,
		connectedAt: time.Now(),
		closer:      closer,
		log:         e.log,
	}
}

// addClient registers a client for stats.
func (e *Engine) addClient(c *client) {
	e.clientsMu.Lock()
	e.clients[c] = struct{}{}
	e.clientsMu.Unlock()
}

// removeClient releases a client and logs its session: one line per
// publish or play with its duration and bytes (never its URL query,
// which holds the sign).
func (e *Engine) removeClient(c *client) {
	in, out := c.bytesIn.Load(), c.bytesOut.Load()
	if c.byteCounts != nil {
		in, out = c.byteCounts()
	}
	e.clientsMu.Lock()
	_, ok := e.clients[c]
	if ok {
		delete(e.clients, c)
		e.goneBytesIn += in
		e.goneBytesOut += out
	}
	e.clientsMu.Unlock()
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
	e.log.Info(what, "client", c.id, "ip", c.ip(), "protocol", c.protocol, "path", "/"+appName+"/"+stream,
		"duration", time.Since(c.connectedAt).Round(time.Millisecond), "bytes_in", in, "bytes_out", out)
}

// clientByID returns the connected client with that ID, or nil.
func (e *Engine) clientByID(id string) *client {
	e.clientsMu.Lock()
	defer e.clientsMu.Unlock()
	for c := range e.clients {
		if c.id == id {
			return c
		}
	}
	return nil
}

// countingConn counts the bytes of a connection into its client and
// serializes writes with the reader fan-out, which writes to Conn directly.
type countingConn struct {
	net.Conn
	c   *client
	wmu *sync.Mutex
}

func (cc *countingConn) Read(b []byte) (int, error) {
	n, err := cc.Conn.Read(b)
	cc.c.bytesIn.Add(uint64(n))
	return n, err
}

func (cc *countingConn) Write(b []byte) (int, error) {
	cc.wmu.Lock()
	n, err := cc.Conn.Write(b)
	cc.wmu.Unlock()
	cc.c.bytesOut.Add(uint64(n))
	return n, err
}

// Package connlimit caps how many connections one IP address holds at once.
//
// A Limiter counts connections per address. Servers take a slot when a
// connection arrives and give it back when the connection closes (or, for a
// cap on unauthenticated connections, as soon as the client has proved who
// it is). Loopback addresses are counted like any other.
package connlimit

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
)

// Limiter caps concurrent connections per IP address. The zero value is not
// usable; create one with New. A Limiter is safe for concurrent use.
type Limiter struct {
	perIP int

	mu    sync.Mutex
	count map[netip.Addr]int
}

// New returns a Limiter that allows perIP connections per address at once.
// perIP <= 0 means no limit.
func New(perIP int) *Limiter {
	return &Limiter{perIP: perIP, count: map[netip.Addr]int{}}
}

// Acquire takes a slot for ip. It reports false, and takes nothing, when ip
// already holds its limit. Otherwise the returned release gives the slot
// back; calling it more than once is safe and gives it back once.
func (l *Limiter) Acquire(ip netip.Addr) (release func(), ok bool) {
	if l == nil || l.perIP <= 0 {
		return func() {}, true
	}
	ip = ip.Unmap()
	l.mu.Lock()
	if l.count[ip] >= l.perIP {
		l.mu.Unlock()
		return nil, false
	}
	l.count[ip]++
	l.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { l.release(ip) }) }, true
}

func (l *Limiter) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.count[ip] - 1; n > 0 {
		l.count[ip] = n
	} else {
		delete(l.count, ip)
	}
}

// Count returns how many slots ip holds now.
func (l *Limiter) Count(ip netip.Addr) int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[ip.Unmap()]
}

// AddrIP returns the IP address of a network address such as
// net.Conn.RemoteAddr(), or the zero Addr when it has none.
func AddrIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// Listener wraps ln so that each address holds at most l's limit of
// accepted connections at once: a connection over the limit is closed as
// soon as it is accepted, and refused is called (if not nil) with its
// address. A connection's slot is given back when it is closed.
func (l *Limiter) Listener(ln net.Listener, refused func(ip netip.Addr)) net.Listener {
	return &listener{Listener: ln, l: l, refused: refused}
}

// ListenerExcept is Listener whose connections from the addresses exempt
// reports are not counted (a trusted reverse proxy's: it carries many
// clients).
func (l *Limiter) ListenerExcept(ln net.Listener, refused func(ip netip.Addr), exempt func(ip netip.Addr) bool) net.Listener {
	return &listener{Listener: ln, l: l, refused: refused, exempt: exempt}
}

type listener struct {
	net.Listener
	l       *Limiter
	refused func(netip.Addr)
	exempt  func(netip.Addr) bool
}

func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := AddrIP(c.RemoteAddr())
		if ln.exempt != nil && ln.exempt(ip) {
			return c, nil
		}
		release, ok := ln.l.Acquire(ip)
		if !ok {
			c.Close()
			if ln.refused != nil {
				ln.refused(ip)
			}
			continue
		}
		return &conn{Conn: c, release: release}, nil
	}
}

// conn gives its slot back on Close.
type conn struct {
	net.Conn
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// Unwrap returns the underlying connection, for code that needs the
// *net.TCPConn (socket options, writev).
func (c *conn) Unwrap() net.Conn { return c.Conn }

// SyscallConn returns the underlying connection's descriptor, for code
// that waits on it (the wrapper buffers nothing): it implements
// syscall.Conn when the underlying connection does.
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("connlimit: %T has no descriptor", c.Conn)
	}
	return sc.SyscallConn()
}

package connlimit

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

func TestAcquireRelease(t *testing.T) {
	l := New(2)
	ip := netip.MustParseAddr("127.0.0.1")
	r1, ok1 := l.Acquire(ip)
	r2, ok2 := l.Acquire(ip)
	_, ok3 := l.Acquire(ip)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("acquire = %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := l.Acquire(netip.MustParseAddr("127.0.0.2")); !ok {
		t.Fatal("another address is limited by the first one's slots")
	}
	r1()
	r1() // a second release gives nothing back
	if got := l.Count(ip); got != 1 {
		t.Fatalf("count after release = %d, want 1", got)
	}
	if _, ok := l.Acquire(ip); !ok {
		t.Fatal("a released slot cannot be taken again")
	}
	if _, ok := l.Acquire(netip.MustParseAddr("::ffff:127.0.0.1")); ok {
		t.Fatal("an IPv4-mapped address is counted apart from its IPv4 form")
	}
	r2()
}

func TestUnlimited(t *testing.T) {
	l := New(0)
	for range 1000 {
		if _, ok := l.Acquire(netip.MustParseAddr("127.0.0.1")); !ok {
			t.Fatal("New(0) limited")
		}
	}
}

func TestListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan netip.Addr, 10)
	ln := New(1).Listener(inner, func(ip netip.Addr) { refused <- ip })
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	c1, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	s1 := <-accepted
	// what waits on the socket (an idle websocket) reaches it through the
	// wrapper
	if sc, ok := s1.(syscall.Conn); !ok {
		t.Error("an accepted connection has no SyscallConn")
	} else if raw, err := sc.SyscallConn(); err != nil || raw == nil {
		t.Errorf("SyscallConn: %v, %v", raw, err)
	}
	c2, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	select {
	case ip := <-refused:
		if ip != netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("refused %v", ip)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a second connection from the same address was not refused")
	}
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("the refused connection was not closed")
	}
	s1.Close()
	c3, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	select {
	case s3 := <-accepted:
		s3.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the slot of a closed connection was not given back")
	}
}

// TestListenerExcept: an exempt address (a trusted proxy) holds more
// connections than the cap; others are still capped.
func TestListenerExcept(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	exempt := netip.MustParseAddr("127.0.0.1")
	ln := New(1).ListenerExcept(raw, nil, func(ip netip.Addr) bool { return ip == exempt })
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dialFrom := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for i := 0; i < 3; i++ {
		dialFrom("127.0.0.1")
		select {
		case c := <-accepted:
			defer c.Close()
		case <-time.After(2 * time.Second):
			t.Fatalf("exempt connection %d not accepted", i+1)
		}
	}
	dialFrom("127.0.0.2")
	c := <-accepted
	defer c.Close()
	dialFrom("127.0.0.2")
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("second connection of a capped address accepted")
	case <-time.After(300 * time.Millisecond):
	}
}

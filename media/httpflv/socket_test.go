package httpflv

import (
	"net"
	"testing"

	"github.com/mofang-live/mofang/internal/connlimit"
)

// HTTP-FLV writes to the TCP socket under a per-address cap's wrapper, so
// that each batch stays one writev.
func TestSocketOfUnwrapsListenerWrappers(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := connlimit.New(4).Listener(inner, nil)
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 1)) //nolint:errcheck
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); ok {
		t.Fatal("the cap's listener returned a bare *net.TCPConn: the test checks nothing")
	}
	if _, ok := socketOf(c).(*net.TCPConn); !ok {
		t.Fatalf("socketOf(%T) is not a *net.TCPConn", c)
	}
}

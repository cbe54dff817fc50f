package proxyhdr

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// roundTrip dials ln from src, writes a PROXY v2 header (if header) and
// "hello", and returns the accepted connection's RemoteAddr and data.
func roundTrip(t *testing.T, ln net.Listener, src string, header bool) (string, string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if header {
		h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 5000}, c.RemoteAddr())
		if _, err := h.WriteTo(c); err != nil {
			t.Fatal(err)
		}
	}
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(2 * time.Second))
	ap, _ := netip.ParseAddrPort(s.RemoteAddr().String())
	b, _ := io.ReadAll(s)
	return ap.Addr().String(), string(b)
}

func TestListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listener(raw, []netip.Prefix{netip.MustParsePrefix("127.0.0.7/32")})
	defer ln.Close()
	if ip, data := roundTrip(t, ln, "127.0.0.7", true); ip != "198.51.100.1" || data != "hello" {
		t.Fatalf("trusted with header: %s %q", ip, data)
	}
	if ip, data := roundTrip(t, ln, "127.0.0.7", false); ip != "127.0.0.7" || data != "hello" {
		t.Fatalf("trusted without header: %s %q", ip, data)
	}
	// Untrusted: the header is not read, it stays in the data.
	if ip, data := roundTrip(t, ln, "127.0.0.8", true); ip != "127.0.0.8" || len(data) <= 5 {
		t.Fatalf("untrusted with header: %s %q", ip, data)
	}
	if Listener(raw, nil) != raw {
		t.Fatal("no trusted peers: the listener must be left as it is")
	}
}

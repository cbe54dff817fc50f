// Package proxyhdr accepts the PROXY protocol (v1 and v2, as HAProxy and
// L4 load balancers send it) on a listener, from trusted peers only:
// their connections' RemoteAddr is the header's source address. Anyone
// else's connection is left as it is: a PROXY header it sends is not
// read, so it reaches the protocol (RTMP, RTSP) as garbage and is
// refused there.
package proxyhdr

import (
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// HeaderTimeout bounds how long a trusted peer's connection may take to
// send its header (or its first bytes when it sends none).
const HeaderTimeout = 5 * time.Second

// Listener wraps ln: connections from an address in from may start with a
// PROXY header (optional), others are plain. With no from it returns ln.
func Listener(ln net.Listener, from []netip.Prefix) net.Listener {
	if len(from) == 0 {
		return ln
	}
	return &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: HeaderTimeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if trusted(from, o.Upstream) {
				return proxyproto.USE, nil
			}
			return proxyproto.SKIP, nil
		},
	}
}

func trusted(from []netip.Prefix, a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range from {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

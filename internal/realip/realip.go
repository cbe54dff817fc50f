// Package realip finds the client address of an HTTP request that came
// through trusted reverse proxies (nginx and the like): only a request
// whose peer is a trusted proxy has its X-Forwarded-For or X-Real-IP
// header believed; anyone else's headers are ignored.
package realip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParsePrefixes parses a comma-separated list of CIDRs or single
// addresses ("10.0.0.0/8, 127.0.0.1"). An empty list gives nil.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q: not an address or CIDR", f)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q: not an address or CIDR", f)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Contains reports whether a is in one of prefixes.
func Contains(prefixes []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolver finds client addresses behind the trusted proxies. The zero
// Resolver (or nil) trusts no one: every request's address is its peer's.
type Resolver struct {
	// Trusted are the proxies whose forwarding headers are believed.
	Trusted []netip.Prefix
}

// Client returns the address of the client of r: its peer's, unless the
// peer is trusted; then the rightmost address of X-Forwarded-For that is
// not a trusted proxy (the last hop no trusted proxy vouches for; the
// addresses left of it may be forged by the client), or, without
// X-Forwarded-For, X-Real-IP. Malformed headers are ignored.
func (res *Resolver) Client(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if res == nil || len(res.Trusted) == 0 || !Contains(res.Trusted, peer) {
		return peer
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		client := peer
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseHop(hops[i])
			if !ok {
				// A hop we cannot read: trust nothing left of it.
				return client
			}
			client = a
			if !Contains(res.Trusted, a) {
				return a
			}
		}
		return client
	}
	if a, ok := parseHop(r.Header.Get("X-Real-IP")); ok {
		return a
	}
	return peer
}

// Handler sets the RemoteAddr of every request to its client's address
// (Client, with port 0 when it came from a header), so that what runs
// behind it (per-address limits, logs, publisher addresses) sees the
// client rather than the proxy. With no trusted proxy it returns next.
func (res *Resolver) Handler(next http.Handler) http.Handler {
	if res == nil || len(res.Trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := res.Client(r)
		if client.IsValid() && client != peerAddr(r.RemoteAddr) {
			r2 := *r
			r2.RemoteAddr = netip.AddrPortFrom(client, 0).String()
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}

// peerAddr parses a RemoteAddr (host:port, or a bare host).
func peerAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}

// parseHop parses one X-Forwarded-For entry: an address, maybe with a
// port or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

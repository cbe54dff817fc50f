package realip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClient(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8, 127.0.0.1 ,::1")
	if err != nil {
		t.Fatal(err)
	}
	res := &Resolver{Trusted: trusted}
	for _, c := range []struct {
		name, peer, xff, xri, want string
	}{
		{"untrusted peer: headers ignored", "203.0.113.5:4000", "198.51.100.1", "198.51.100.2", "203.0.113.5"},
		{"trusted, no header", "127.0.0.1:4000", "", "", "127.0.0.1"},
		{"trusted, one hop", "127.0.0.1:4000", "198.51.100.1", "", "198.51.100.1"},
		{"trusted, forged left part ignored", "127.0.0.1:4000", "1.2.3.4, 198.51.100.1", "", "198.51.100.1"},
		{"trusted chain of proxies", "127.0.0.1:4000", "198.51.100.1, 10.1.1.1", "", "198.51.100.1"},
		{"all trusted: leftmost", "127.0.0.1:4000", "10.2.2.2, 10.1.1.1", "", "10.2.2.2"},
		{"X-Real-IP", "[::1]:4000", "", "198.51.100.9", "198.51.100.9"},
		{"garbage in XFF stops at the last good hop", "127.0.0.1:4000", "198.51.100.1, nonsense", "", "127.0.0.1"},
		{"garbage X-Real-IP", "127.0.0.1:4000", "", "<script>", "127.0.0.1"},
		{"hop with port", "127.0.0.1:4000", "198.51.100.1:555", "", "198.51.100.1"},
		{"v6 hop", "127.0.0.1:4000", "[2001:db8::1]", "", "2001:db8::1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if c.xri != "" {
			r.Header.Set("X-Real-IP", c.xri)
		}
		if got := res.Client(r); got.String() != c.want {
			t.Errorf("%s: Client = %v, want %s", c.name, got, c.want)
		}
	}
}

func TestHandler(t *testing.T) {
	trusted, _ := ParsePrefixes("127.0.0.0/8")
	var got string
	h := (&Resolver{Trusted: trusted}).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:9"
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got != "198.51.100.7:0" {
		t.Fatalf("RemoteAddr behind trusted proxy = %q", got)
	}
	r.RemoteAddr = "192.0.2.1:9"
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got != "192.0.2.1:9" {
		t.Fatalf("RemoteAddr of untrusted sender = %q", got)
	}
	var none *Resolver
	if none.Client(r) != netip.MustParseAddr("192.0.2.1") {
		t.Fatal("nil Resolver")
	}
}

func TestParsePrefixes(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "nope", "1.2.3.4/x"} {
		if _, err := ParsePrefixes(bad); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", bad)
		}
	}
	p, err := ParsePrefixes("::ffff:10.0.0.0/104")
	if err != nil || !Contains(p, netip.MustParseAddr("10.9.9.9")) {
		t.Fatalf("mapped prefix: %v %v", p, err)
	}
}

func FuzzClient(f *testing.F) {
	f.Add("1.2.3.4, [::1]:5, x", "1.1.1.1")
	trusted, _ := ParsePrefixes("127.0.0.1")
	res := &Resolver{Trusted: trusted}
	f.Fuzz(func(t *testing.T, xff, xri string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("X-Forwarded-For", xff)
		r.Header.Set("X-Real-IP", xri)
		if !res.Client(r).IsValid() {
			t.Fatal("no address")
		}
	})
}

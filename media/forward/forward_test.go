package forward_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/forward"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
	"github.com/mofang-live/mofang/media/rtmp"
)

// destination is a hub with an RTMP (or RTMPS) server: another service's
// ingest.
type destination struct {
	hub *hub.Hub
	srv *rtmp.Server
}

func newDestination(t *testing.T, tlsCfg *tls.Config) *destination {
	t.Helper()
	log := mediatest.Logger(t)
	h, err := hub.New(hub.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s, err := rtmp.New(h, rtmp.Config{Address: "127.0.0.1:0", TLS: tlsCfg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		s.Close() //nolint:errcheck
		h.Close()
		<-done
	})
	return &destination{hub: h, srv: s}
}

// received is what the destination got of stream name.
func (d *destination) received(name string) (uint64, bool) {
	s := d.hub.Stream(name)
	if s == nil {
		return 0, false
	}
	st := s.Stats()
	return st.BytesIn, st.VideoCodec == "h264" && st.AudioCodec == "aac"
}

// selfSigned returns a server certificate for 127.0.0.1 and a client
// configuration that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "forward test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

// targets is a destination list the test changes.
type targets struct {
	mu sync.Mutex
	ts []forward.Target
}

func (tg *targets) set(ts ...forward.Target) {
	tg.mu.Lock()
	tg.ts = ts
	tg.mu.Unlock()
}

func (tg *targets) get(context.Context, string) ([]forward.Target, error) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]forward.Target(nil), tg.ts...), nil
}

// TestPushes: one live stream pushed at once to an RTMP destination, an
// RTMPS one (a self-signed certificate the client trusts) and one that
// accepts TCP but never answers the handshake. The first two receive
// H.264 and AAC and show live with bytes; the silent one shows error
// with its reason and retries, holding up neither the others nor the
// publisher; the pushes are no viewers of the source; a private address
// is refused unless allowed; a destination removed stops being pushed,
// and the end of the stream ends the rest.
func TestPushes(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	src, err := hub.New(hub.Config{Logger: mediatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	plain := newDestination(t, nil)
	srvTLS, cliTLS := selfSigned(t)
	secure := newDestination(t, srvTLS)
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn // accepted, never read
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()

	tg := &targets{}
	tg.set(
		forward.Target{ID: 1, URL: "rtmp://" + plain.srv.Addr().String() + "/live", Key: "mirror"},
		forward.Target{ID: 2, URL: "rtmps://" + secure.srv.Addr().String() + "/live", Key: "secure"},
		forward.Target{ID: 3, URL: "rtmp://" + silent.Addr().String() + "/live", Key: "silent"},
	)
	m := forward.New(forward.Config{Hub: src, Framer: rtmp.Framer(), Targets: tg.get, Poll: 200 * time.Millisecond,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, ConnectTimeout: time.Second,
		TLS: cliTLS, AllowPrivate: true, Logger: mediatest.Logger(t)})
	defer m.Close()
	pub := mediatest.PublishClip(t, src, "src")
	defer pub.Kill()
	mediatest.WaitFor(t, 10*time.Second, "the source stream", func() bool { return src.Stream("src") != nil })
	m.Start(src.Stream("src"))

	status := func(id int64) forward.Status { return m.Status("src")[id] }
	mediatest.WaitFor(t, 30*time.Second, "RTMP and RTMPS destinations fed", func() bool {
		n1, ok1 := plain.received("mirror")
		n2, ok2 := secure.received("secure")
		return ok1 && ok2 && n1 > 100_000 && n2 > 100_000
	})
	for _, id := range []int64{1, 2} {
		if st := status(id); st.State != forward.StateLive || st.BytesSent < 100_000 || st.Connects != 1 || st.Since.IsZero() {
			t.Fatalf("destination %d: %+v", id, st)
		}
	}
	mediatest.WaitFor(t, 10*time.Second, "the silent destination in error", func() bool {
		st := status(3)
		return st.State == forward.StateError && st.Reason != ""
	})
	if st := status(3); st.BytesSent != 0 || st.Connects != 0 {
		t.Fatalf("silent destination: %+v", st)
	}
	if n := src.Stream("src").ReaderCount(); n != 0 {
		t.Fatalf("the source counts %d readers", n)
	}
	if st := src.Stream("src").Stats(); !st.Publishing {
		t.Fatalf("the source: %+v", st)
	}
	if got := len(m.All()); got != 3 {
		t.Fatalf("All: %d pushes", got)
	}

	// Removed: its stream ends at the destination (its grace, 10 s by
	// default, runs; the publisher is gone), the others go on.
	before, _ := secure.received("secure")
	tg.set(forward.Target{ID: 2, URL: "rtmps://" + secure.srv.Addr().String() + "/live", Key: "secure"})
	m.Refresh("src")
	mediatest.WaitFor(t, 10*time.Second, "the removed destination's publisher gone", func() bool {
		s := plain.hub.Stream("mirror")
		return s == nil || s.Publisher() == nil
	})
	if _, ok := m.Status("src")[1]; ok {
		t.Fatal("a removed destination is still reported")
	}
	mediatest.WaitFor(t, 10*time.Second, "the remaining destination still fed", func() bool {
		n, _ := secure.received("secure")
		return n > before+50_000
	})

	// The end of the stream ends the pushes.
	pub.Kill()
	mediatest.WaitFor(t, 30*time.Second, "no push after the stream ended", func() bool { return len(m.All()) == 0 })
}

// TestPrivateRefused: by default a destination on a loopback address is
// not dialed.
func TestPrivateRefused(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	src, err := hub.New(hub.Config{Logger: mediatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := newDestination(t, nil)
	tg := &targets{}
	tg.set(forward.Target{ID: 7, URL: "rtmp://" + dst.srv.Addr().String() + "/live", Key: "k"})
	m := forward.New(forward.Config{Hub: src, Framer: rtmp.Framer(), Targets: tg.get, Logger: mediatest.Logger(t)})
	defer m.Close()
	pub := mediatest.PublishClip(t, src, "src")
	defer pub.Kill()
	mediatest.WaitFor(t, 10*time.Second, "the source stream", func() bool { return src.Stream("src") != nil })
	m.Start(src.Stream("src"))
	mediatest.WaitFor(t, 20*time.Second, "the loopback destination refused", func() bool {
		st := m.Status("src")[7]
		return st.State == forward.StateError && st.Reason != ""
	})
	if r := m.Status("src")[7].Reason; !strings.Contains(r, "private or local") {
		t.Fatalf("reason: %q", r)
	}
	if dst.hub.Stream("k") != nil {
		t.Fatal("the loopback destination got the stream")
	}
}

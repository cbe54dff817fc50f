package forward_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"os"
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

// stallProxy passes TCP to target until stalled, from when it reads
// nothing more from its clients (their sends back up) and answers no new
// connection: a destination that stops taking the stream.
type stallProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	stalled bool
	conns   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetReadBuffer(4096) //nolint:errcheck
			p.mu.Lock()
			p.conns = append(p.conns, c)
			stalled := p.stalled
			p.mu.Unlock()
			if stalled {
				continue // held, never read
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, up)
			p.mu.Unlock()
			go func() { // destination → client
				buf := make([]byte, 32<<10)
				for {
					n, err := up.Read(buf)
					if err != nil {
						c.Close()
						return
					}
					c.Write(buf[:n]) //nolint:errcheck
				}
			}()
			go func() { // client → destination, until stalled
				buf := make([]byte, 4096)
				for {
					p.mu.Lock()
					stalled := p.stalled
					p.mu.Unlock()
					if stalled {
						time.Sleep(50 * time.Millisecond)
						continue
					}
					c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)) //nolint:errcheck
					n, err := c.Read(buf)
					if n > 0 {
						up.Write(buf[:n]) //nolint:errcheck
					}
					if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						up.Close()
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *stallProxy) stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

// TestSlowDestination: a destination that stops reading is dropped (its
// writes time out) and retried, while the publisher and another
// destination of the same stream go on unhurt.
func TestSlowDestination(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	src, err := hub.New(hub.Config{Logger: mediatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	good := newDestination(t, nil)
	slowDst := newDestination(t, nil)
	proxy := newStallProxy(t, slowDst.srv.Addr().String())
	tg := &targets{}
	tg.set(
		forward.Target{ID: 1, URL: "rtmp://" + good.srv.Addr().String() + "/live", Key: "good"},
		forward.Target{ID: 2, URL: "rtmp://" + proxy.ln.Addr().String() + "/live", Key: "slow-key-123"},
	)
	m := forward.New(forward.Config{Hub: src, Framer: rtmp.Framer(), Targets: tg.get, Poll: 200 * time.Millisecond,
		MinBackoff: 200 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, ConnectTimeout: time.Second,
		WriteTimeout: time.Second, SocketSendBuffer: 16 << 10, AllowPrivate: true, Logger: mediatest.Logger(t)})
	defer m.Close()
	pub := mediatest.PublishClip(t, src, "src")
	defer pub.Kill()
	mediatest.WaitFor(t, 10*time.Second, "the source stream", func() bool { return src.Stream("src") != nil })
	m.Start(src.Stream("src"))
	mediatest.WaitFor(t, 30*time.Second, "both destinations live", func() bool {
		st := m.Status("src")
		return st[1].State == forward.StateLive && st[2].State == forward.StateLive && st[2].BytesSent > 50_000
	})

	proxy.stall()
	mediatest.WaitFor(t, 30*time.Second, "the stalled destination dropped", func() bool {
		return m.Status("src")[2].State == forward.StateError
	})
	// dropped by its write timeout (the destination, behind the proxy,
	// sees nothing wrong), then retried: the proxy answers no more.
	if st := m.Status("src")[2]; !strings.Contains(st.Reason, "timeout") && !strings.Contains(st.Reason, "too slow") && !strings.Contains(st.Reason, "no answer") {
		t.Fatalf("stalled destination: %+v", st)
	}
	in0 := src.Stream("src").Stats().BytesIn
	good0, _ := good.received("good")
	mediatest.WaitFor(t, 10*time.Second, "the publisher and the other destination going on", func() bool {
		g, _ := good.received("good")
		return src.Stream("src").Stats().BytesIn > in0+50_000 && g > good0+50_000
	})
	if st := m.Status("src")[1]; st.State != forward.StateLive || st.Connects != 1 {
		t.Fatalf("the other destination: %+v", st)
	}
}

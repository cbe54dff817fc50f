package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/acme/autocert"
)

// writeCert writes a self-signed certificate for 127.0.0.1 with serial
// to certFile and keyFile, and returns it.
func writeCert(t *testing.T, certFile, keyFile string, serial int64) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "mofang test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// callRPC is rpcCall with a client of its own.
func callRPC(t *testing.T, client *http.Client, url, tok, method string, params any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "jwt "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Result map[string]any `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Result == nil {
		t.Fatalf("%s: %v", method, err)
	}
	return r.Result
}

// servedSerial returns the serial of the certificate served at addr.
func servedSerial(t *testing.T, addr string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// wsCall opens a websocket at wsURL with client and makes one call.
func wsCall(t *testing.T, client *http.Client, wsURL, method string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatalf("websocket %s: %v", wsURL, err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":7,"method":"`+method+`","params":{}}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("websocket read: %v", err)
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Result map[string]any  `json:"result"`
		}
		json.Unmarshal(data, &msg)
		if string(msg.ID) == "7" {
			return msg.Result
		}
	}
}

// TestTLS runs the service with a self-signed certificate: ffmpeg
// publishes over RTMPS, ffprobe plays over RTMPS, HTTPS-FLV and HTTPS
// HLS, the API answers over a WSS websocket, and SIGHUP serves a new
// certificate (a broken one is refused and the old one kept).
func TestTLS(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certFile, keyFile, 1001)
	rtmpsPort := freePort(t)
	logs := &syncBuffer{}
	base, stop := startServeLogs(t, t.TempDir(), logs, "--tls-cert", certFile, "--tls-key", keyFile,
		"--rtmps-addr", fmt.Sprintf("127.0.0.1:%d", rtmpsPort), "--public-host", "127.0.0.1")
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	addr := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/")
	url := "https://" + addr + "/"
	pool := x509.NewCertPool()
	pool.AddCert(first)
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	// Plain HTTP on the TLS port gets no API.
	if resp, err := http.Get(base + "healthz"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("plain HTTP answered on the HTTPS port: %s", b)
		}
	}
	resp, err := client.Get(url + "readyz")
	if err != nil {
		t.Fatalf("HTTPS with the self-signed root: %v", err)
	}
	resp.Body.Close()

	reg := callRPC(t, client, url, "", "User.register", map[string]any{"username": "tlsuser", "password": "tls-pass-1"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := callRPC(t, client, url, tok, "Live.stream", map[string]any{"room_name": "tls"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	sign := room["publish"].(map[string]any)["sign"].(string)
	// The URLs the API hands out on the HTTP port say https.
	if whip := room["publish"].(map[string]any)["whip"].(string); !strings.HasPrefix(whip, "https://") {
		t.Fatalf("WHIP URL under TLS: %s", whip)
	}
	rtmps := fmt.Sprintf("rtmps://127.0.0.1:%d/live/%s", rtmpsPort, stream)
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", rtmps+"?sign="+sign)
	eventually(t, 15*time.Second, "live over RTMPS", func() bool {
		r := callRPC(t, client, url, tok, "Live.stream.list", map[string]any{})
		b, _ := json.Marshal(r["stream_list"])
		return bytes.Contains(b, []byte(`"status":true`))
	})

	// ffprobe does not verify certificates unless told (-tls_verify 1
	// with -ca_file): say it explicitly.
	for what, u := range map[string]string{
		"RTMPS":      rtmps,
		"HTTPS-FLV":  url + "live/" + stream + ".flv",
		"HTTPS HLS":  url + "live/" + stream + "/index.m3u8",
		"verify FLV": url + "live/" + stream + ".flv",
	} {
		extra := []string{"-tls_verify", "0"}
		if what == "verify FLV" {
			extra = []string{"-tls_verify", "1", "-ca_file", certFile}
		}
		if got := probe(t, u, extra...); got != "h264 640x360, aac" {
			t.Fatalf("ffprobe over %s sees %q", what, got)
		}
	}

	// The websocket over WSS.
	r := wsCall(t, client, "wss://"+addr+"/?token="+tok, "Live.stream.list")
	if _, ok := r["stream_list"]; !ok {
		t.Fatalf("Live.stream.list over WSS: %v", r)
	}

	// SIGHUP: the new certificate is served.
	if got := servedSerial(t, addr); got != "1001" {
		t.Fatalf("served serial %s", got)
	}
	writeCert(t, certFile, keyFile, 2002)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	eventually(t, 5*time.Second, "new certificate served", func() bool { return servedSerial(t, addr) == "2002" })
	// A broken file: logged, the certificate in use stays.
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	eventually(t, 5*time.Second, "reload failure logged", func() bool { return strings.Contains(logs.String(), "TLS certificate not reloaded") })
	if got := servedSerial(t, addr); got != "2002" {
		t.Fatalf("after a bad reload the served serial is %s", got)
	}
	stopped = true
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestTLSConfig checks the TLS settings' combinations, ACME's included
// (which cannot reach a CA here).
func TestTLSConfig(t *testing.T) {
	for _, c := range []struct {
		cfg config
		ok  bool
	}{
		{config{}, true},
		{config{TLSCert: "a"}, false},
		{config{TLSCert: "a", TLSKey: "b", ACMEDomain: "x.example"}, false},
		{config{RTMPSAddr: ":1936"}, false},
		{config{ACMEEmail: "a@b"}, false},
		{config{ACMEDomain: "live.example.com, www.example.com", ACMEEmail: "ops@example.com", DataDir: "d"}, true},
		{config{ACMEDomain: "https://live.example.com"}, false},
		{config{ACMEDomain: " , "}, false},
	} {
		s, err := c.cfg.tlsSetup()
		if (err == nil) != c.ok {
			t.Errorf("%+v: err %v", c.cfg, err)
		}
		if err != nil || c.cfg.ACMEDomain == "" {
			continue
		}
		if dc, _ := s.acme.Cache.(autocert.DirCache); s.acme.Email != "ops@example.com" || string(dc) != filepath.Join("d", "acme") {
			t.Errorf("ACME manager: email %q cache %v", s.acme.Email, s.acme.Cache)
		}
		if err := s.acme.HostPolicy(context.Background(), "live.example.com"); err != nil {
			t.Errorf("ACME host policy refuses its domain: %v", err)
		}
		if err := s.acme.HostPolicy(context.Background(), "evil.example.com"); err == nil {
			t.Error("ACME host policy accepts another domain")
		}
		if !strings.Contains(strings.Join(s.config.NextProtos, ","), "acme-tls/1") {
			t.Errorf("ACME TLS config cannot answer TLS-ALPN-01: %v", s.config.NextProtos)
		}
	}
	if _, err := (&config{TrustedProxies: "10.0.0.0/8,nope"}).trustedProxies(); err == nil {
		t.Error("a bad trusted-proxies accepted")
	}
	if p, err := (&config{ProxyProtocolFrom: "127.0.0.1, 10.0.0.0/8"}).proxyProtocolFrom(); err != nil || len(p) != 2 || !p[1].Contains(netip.MustParseAddr("10.1.2.3")) {
		t.Errorf("proxy-protocol-from: %v %v", p, err)
	}
}

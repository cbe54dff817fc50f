package certreload

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func write(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	cf, kf := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if _, err := Load(cf, kf); err == nil {
		t.Fatal("missing files loaded")
	}
	write(t, cf, kf, 1)
	c, err := Load(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	write(t, cf, kf, 2)
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	got, _ := c.GetCertificate(nil)
	if got.Leaf.SerialNumber.Int64() != 2 || c.Leaf().SerialNumber.Int64() != 2 {
		t.Fatalf("serial after reload: %v", got.Leaf.SerialNumber)
	}
	// A key that does not match: refused, the old pair stays.
	key := filepath.Join(dir, "k2.pem")
	write(t, filepath.Join(dir, "c2.pem"), key, 3)
	b, _ := os.ReadFile(key)
	os.WriteFile(kf, b, 0o600)
	if err := c.Reload(); err == nil {
		t.Fatal("mismatched key accepted")
	}
	if c.Leaf().SerialNumber.Int64() != 2 {
		t.Fatal("a failed reload replaced the certificate")
	}
}

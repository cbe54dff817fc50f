package seal

import (
	"bytes"
	"errors"
	"testing"
)

// TestSeal: a sealed value opens with the same secret, purpose and
// associated data only; it does not contain the plain text; two seals of
// one value differ (random nonce).
func TestSeal(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	s, err := New(secret, "forward key")
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("live_123456789_secretkey")
	a, b := s.Seal(plain, []byte("room 1")), s.Seal(plain, []byte("room 1"))
	if bytes.Equal(a, b) || bytes.Contains(a, plain) || bytes.Contains(a, []byte("secretkey")) {
		t.Fatalf("sealed values: %x %x", a, b)
	}
	got, err := s.Open(a, []byte("room 1"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q, %v", got, err)
	}
	other, _ := New(secret, "another purpose")
	otherSecret, _ := New([]byte("fedcba9876543210fedcba9876543210"), "forward key")
	flipped := bytes.Clone(a)
	flipped[len(flipped)-1] ^= 1
	for name, f := range map[string]func() ([]byte, error){
		"another room":    func() ([]byte, error) { return s.Open(a, []byte("room 2")) },
		"another purpose": func() ([]byte, error) { return other.Open(a, []byte("room 1")) },
		"another secret":  func() ([]byte, error) { return otherSecret.Open(a, []byte("room 1")) },
		"altered":         func() ([]byte, error) { return s.Open(flipped, []byte("room 1")) },
		"short":           func() ([]byte, error) { return s.Open(a[:10], []byte("room 1")) },
	} {
		if _, err := f(); !errors.Is(err, ErrOpen) {
			t.Errorf("%s: %v, want ErrOpen", name, err)
		}
	}
	if _, err := New([]byte("short"), "x"); err == nil {
		t.Fatal("a short secret was taken")
	}
}

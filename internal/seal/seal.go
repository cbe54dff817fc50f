// Package seal encrypts small secrets kept in the database (the stream
// keys of restreaming destinations) with AES-256-GCM, under a key derived
// with HKDF-SHA256 from one of the service's secrets and a purpose, so
// that each purpose has a key of its own.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// version is the first byte of a sealed value: the scheme, for a later
// change of cipher or key.
const version = 1

// ErrOpen means a sealed value could not be opened: it was made under
// another secret or purpose, for other associated data, or was altered.
var ErrOpen = errors.New("seal: cannot open (another secret, or altered)")

// Sealer seals and opens values. It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer whose key is derived from secret for purpose.
func New(secret []byte, purpose string) (*Sealer, error) {
	if len(secret) < 16 {
		return nil, errors.New("seal: the secret is shorter than 16 bytes")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "mofang seal: "+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("seal: deriving the key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain bound to ad (which Open must be given again; such
// as the row's owner, so a sealed value cannot be moved to another row):
// version, random nonce, ciphertext and tag.
func (s *Sealer) Seal(plain, ad []byte) []byte {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+s.aead.Overhead())
	out[0] = version
	rand.Read(out[1 : 1+ns])
	return s.aead.Seal(out, out[1:1+ns], plain, ad)
}

// Open decrypts what Seal made for ad; ErrOpen otherwise.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	plain, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

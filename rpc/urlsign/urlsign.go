// Package urlsign makes and checks the signed media URLs of MoFang Live, in
// Node-Media-Server's format (seed 001):
//
//	sign=<expires>-<md5("/live/<stream>-<expires>-<secret>")>
//
// where expires is a Unix time in seconds. Publishing and playing use two
// secrets derived from one master secret, so a viewer's play sign can never
// be used to publish.
package urlsign

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Action is what a sign allows.
type Action string

// The actions.
const (
	Publish Action = "publish"
	Play    Action = "play"
)

// Errors of Check; test with errors.Is.
var (
	ErrMissing   = errors.New("urlsign: no sign")
	ErrMalformed = errors.New("urlsign: malformed sign")
	ErrExpired   = errors.New("urlsign: sign expired")
	ErrMismatch  = errors.New("urlsign: wrong sign")
)

// Signer makes and checks signs.
type Signer struct {
	publish string
	play    string
	now     func() time.Time
}

// New returns a Signer with secrets derived from master, which must be at
// least 16 bytes.
func New(master []byte) (*Signer, error) {
	if len(master) < 16 {
		return nil, fmt.Errorf("urlsign: secret of %d bytes is too short, want at least 16", len(master))
	}
	derive := func(a Action) string {
		m := hmac.New(sha256.New, master)
		m.Write([]byte("mofang media sign: " + a))
		return hex.EncodeToString(m.Sum(nil))
	}
	return &Signer{publish: derive(Publish), play: derive(Play), now: time.Now}, nil
}

func (s *Signer) secret(a Action) string {
	if a == Publish {
		return s.publish
	}
	return s.play
}

// Sign returns the sign that allows action on stream for ttl.
func (s *Signer) Sign(a Action, stream string, ttl time.Duration) (sign string, expires time.Time) {
	expires = s.now().Add(ttl).Truncate(time.Second)
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "-" + digest(stream, exp, s.secret(a)), expires
}

// Check verifies that sign allows action on stream now.
func (s *Signer) Check(a Action, stream, sign string) error {
	if sign == "" {
		return ErrMissing
	}
	exp, hash, ok := strings.Cut(sign, "-")
	if !ok || len(hash) != 2*md5.Size || len(exp) == 0 || len(exp) > 12 {
		return ErrMalformed
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sec <= 0 {
		return ErrMalformed
	}
	want := digest(stream, exp, s.secret(a))
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(hash)), []byte(want)) != 1 {
		return ErrMismatch
	}
	if !s.now().Before(time.Unix(sec, 0)) {
		return ErrExpired
	}
	return nil
}

func digest(stream, exp, secret string) string {
	sum := md5.Sum([]byte("/live/" + stream + "-" + exp + "-" + secret))
	return hex.EncodeToString(sum[:])
}

// Package urlsign makes and checks the signed media URLs of MoFang Live, in
// Node-Media-Server's format (seed 001):
//
//	sign=<expires>-<md5("/live/<stream>-<expires>-<secret>")>
//
// where expires is a Unix time in seconds. Publishing and playing use two
// secrets derived from one master secret, so a viewer's play sign can never
// be used to publish; the nodes of a cluster sign their relays' requests
// with a third one (Relay).
//
// A sign may also be made for a generation of the stream's access (a
// room's password generation, see SignGen): generation g > 0 signs with
// a secret derived from the action's secret and g, so that starting a new
// generation revokes every sign of the earlier ones while the format stays
// Node-Media-Server's. Generation 0 signs as Node-Media-Server does.
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
	// Relay is the node credential of a cluster's nodes: it lets one
	// node pull a stream from another (a relay, not a viewer). Only the
	// nodes, which share the master secret, make it.
	Relay Action = "relay"
)

// Errors of Check; test with errors.Is.
var (
	ErrMissing   = errors.New("urlsign: no sign")
	ErrMalformed = errors.New("urlsign: malformed sign")
	ErrExpired   = errors.New("urlsign: sign expired")
	ErrMismatch  = errors.New("urlsign: wrong sign")
)

// lastingExpiry is the expiry of a lasting sign, in Unix seconds:
// 9999-12-31 23:59:59 UTC.
const lastingExpiry = 253402300799

// Signer makes and checks signs.
type Signer struct {
	publish string
	play    string
	relay   string
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
	return &Signer{publish: derive(Publish), play: derive(Play), relay: derive(Relay), now: time.Now}, nil
}

// WithClock returns a Signer with the same secrets whose clock is now:
// the time signs are made and checked at (tests move it).
func (s *Signer) WithClock(now func() time.Time) *Signer {
	c := *s
	c.now = now
	return &c
}

func (s *Signer) secret(a Action) string {
	switch a {
	case Publish:
		return s.publish
	case Relay:
		return s.relay
	}
	return s.play
}

// secretGen is the secret of action a for generation gen of a stream's
// access.
func (s *Signer) secretGen(a Action, gen int64) string {
	if gen == 0 {
		return s.secret(a)
	}
	m := hmac.New(sha256.New, []byte(s.secret(a)))
	m.Write([]byte("generation " + strconv.FormatInt(gen, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// Sign returns the sign that allows action on stream for ttl: SignGen of
// generation 0.
func (s *Signer) Sign(a Action, stream string, ttl time.Duration) (sign string, expires time.Time) {
	return s.SignGen(a, stream, 0, ttl)
}

// SignGen returns the sign that allows action on stream for ttl while the
// stream's access is at generation gen: CheckGen refuses it for any other.
func (s *Signer) SignGen(a Action, stream string, gen int64, ttl time.Duration) (sign string, expires time.Time) {
	expires = s.now().Add(ttl).Truncate(time.Second)
	exp := strconv.FormatInt(expires.Unix(), 10)
	return exp + "-" + digest(stream, exp, s.secretGen(a, gen)), expires
}

// Lasting returns the sign that allows action on stream, whatever the
// time, while the stream's access is at generation gen: a stream key that
// lasts until a new generation revokes it. It is the same for the same
// stream and generation, and cannot be made without the secret. CheckGen
// accepts it like any other sign of gen.
func (s *Signer) Lasting(a Action, stream string, gen int64) string {
	exp := strconv.FormatInt(lastingExpiry, 10)
	return exp + "-" + digest(stream, exp, s.secretGen(a, gen))
}

// Check verifies that sign allows action on stream now: CheckGen of
// generation 0.
func (s *Signer) Check(a Action, stream, sign string) error {
	return s.CheckGen(a, stream, 0, sign)
}

// CheckGen verifies that sign allows action on stream now, the stream's
// access being at generation gen. A sign of another generation gives
// ErrMismatch.
func (s *Signer) CheckGen(a Action, stream string, gen int64, sign string) error {
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
	want := digest(stream, exp, s.secretGen(a, gen))
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

// Package token issues and verifies the access tokens of MoFang Live: JWTs
// signed with HS256, carrying the user id as subject and an expiry.
//
// Verification accepts HS256 only: a token signed with another algorithm,
// or with "none", is refused, as is an expired one.
package token

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// ErrInvalid means a token is malformed, forged, of a wrong algorithm or
// expired. The wrapped detail is for logs, not for clients.
var ErrInvalid = errors.New("token: invalid")

// Issuer signs and checks access tokens with one secret.
type Issuer struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time

	// verified remembers tokens that passed verification, so that a
	// client's every call does not parse and check the same JWT again:
	// that was 40% of the cost of Live.stream.list. An entry is the
	// token's exact bytes, which only the secret's holder can make, and
	// still expires with the token.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	userID  int64
	expires time.Time
}

// maxVerified bounds the verified-token cache; when full it starts over.
const maxVerified = 50_000

// Issuer name written into and required from every token.
const issuerName = "mofang"

// NewIssuer returns an Issuer whose tokens live for ttl. The secret must be
// at least 32 bytes.
func NewIssuer(secret []byte, ttl time.Duration) (*Issuer, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("token: secret of %d bytes is too short, want at least 32", len(secret))
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("token: lifetime must be positive")
	}
	return &Issuer{secret: secret, ttl: ttl, now: time.Now, verified: map[string]verifiedToken{}}, nil
}

// TTL tells how long issued tokens live.
func (is *Issuer) TTL() time.Duration { return is.ttl }

// Issue returns a signed token for a user and when it expires.
func (is *Issuer) Issue(userID int64) (string, time.Time, error) {
	now := is.now()
	exp := now.Add(is.ttl)
	t, err := jwt.NewBuilder().
		Issuer(issuerName).
		Subject(strconv.FormatInt(userID, 10)).
		IssuedAt(now).
		Expiration(exp).
		Build()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: building: %w", err)
	}
	signed, err := jwt.Sign(t, jwt.WithKey(jwa.HS256(), is.secret))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: signing: %w", err)
	}
	return string(signed), exp, nil
}

// Verify checks a token and returns its user id.
func (is *Issuer) Verify(s string) (int64, error) {
	now := is.now()
	is.mu.Lock()
	v, seen := is.verified[s]
	is.mu.Unlock()
	if seen {
		if now.Before(v.expires) {
			return v.userID, nil
		}
		return 0, fmt.Errorf("%w: expired", ErrInvalid)
	}
	id, exp, err := is.verify(s)
	if err != nil {
		return 0, err
	}
	is.mu.Lock()
	if len(is.verified) >= maxVerified {
		clear(is.verified)
	}
	is.verified[s] = verifiedToken{userID: id, expires: exp}
	is.mu.Unlock()
	return id, nil
}

// verify parses and checks a token.
func (is *Issuer) verify(s string) (int64, time.Time, error) {
	t, err := jwt.ParseString(s,
		jwt.WithKey(jwa.HS256(), is.secret),
		jwt.WithValidate(true),
		jwt.WithIssuer(issuerName),
		jwt.WithRequiredClaim("exp"),
		jwt.WithClock(jwt.ClockFunc(is.now)),
	)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	sub, ok := t.Subject()
	if !ok {
		return 0, time.Time{}, fmt.Errorf("%w: no subject", ErrInvalid)
	}
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id <= 0 {
		return 0, time.Time{}, fmt.Errorf("%w: bad subject", ErrInvalid)
	}
	exp, _ := t.Expiration() // required by the parse options
	return id, exp, nil
}

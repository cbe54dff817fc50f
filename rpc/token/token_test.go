package token

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestIssueVerify(t *testing.T) {
	is, err := NewIssuer(secret, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, exp, err := is.Issue(42)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("expires in %v", d)
	}
	id, err := is.Verify(s)
	if err != nil || id != 42 {
		t.Fatalf("Verify = %d, %v", id, err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	is, _ := NewIssuer(secret, time.Hour)
	good, _, _ := is.Issue(7)
	other, _ := NewIssuer([]byte("ffffffffffffffffffffffffffffffff"), time.Hour)
	forged, _, _ := other.Issue(7)

	past, _ := NewIssuer(secret, time.Minute)
	past.now = func() time.Time { return time.Now().Add(-2 * time.Minute) }
	expired, _, _ := past.Issue(7)

	hs512 := func() string {
		tok, _ := jwt.NewBuilder().Issuer(issuerName).Subject("7").Expiration(time.Now().Add(time.Hour)).Build()
		b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS512(), secret))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}()
	enc := base64.RawURLEncoding.EncodeToString
	payload := strings.Split(good, ".")[1]
	none := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + payload + "."
	noneSigned := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + payload + "." + strings.Split(good, ".")[2]
	tampered := strings.Split(good, ".")[0] + "." + enc([]byte(`{"iss":"mofang","sub":"1","exp":9999999999}`)) + "." + strings.Split(good, ".")[2]
	noExp := func() string {
		tok, _ := jwt.NewBuilder().Issuer(issuerName).Subject("7").Build()
		b, _ := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), secret))
		return string(b)
	}()

	for name, s := range map[string]string{
		"empty": "", "garbage": "abc", "forged": forged, "expired": expired, "hs512": hs512,
		"none": none, "none with signature": noneSigned, "tampered payload": tampered, "no exp": noExp,
	} {
		t.Run(name, func(t *testing.T) {
			if id, err := is.Verify(s); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %d, %v; want ErrInvalid", id, err)
			}
		})
	}
}

// TestVerifiedTokenStillExpires checks that a token verified once is
// refused after its expiry, although the second check comes from memory.
func TestVerifiedTokenStillExpires(t *testing.T) {
	is, _ := NewIssuer(secret, time.Minute)
	now := time.Now()
	is.now = func() time.Time { return now }
	s, _, _ := is.Issue(9)
	if id, err := is.Verify(s); err != nil || id != 9 {
		t.Fatalf("Verify = %d, %v", id, err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := is.Verify(s); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an expired token verified from memory: %v", err)
	}
}

func TestShortSecret(t *testing.T) {
	if _, err := NewIssuer([]byte("short"), time.Hour); err == nil {
		t.Fatal("a 5-byte secret was accepted")
	}
}

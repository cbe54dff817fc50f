package urlsign

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestSignCheck(t *testing.T) {
	s, err := New([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	sign, exp := s.Sign(Publish, "room_1", time.Hour)
	if time.Until(exp) < 59*time.Minute {
		t.Fatalf("expires %v", exp)
	}
	// Node-Media-Server's formula with the publish secret.
	sum := md5.Sum([]byte(fmt.Sprintf("/live/room_1-%d-%s", exp.Unix(), s.publish)))
	if want := fmt.Sprintf("%d-%s", exp.Unix(), hex.EncodeToString(sum[:])); sign != want {
		t.Fatalf("sign %q, want %q", sign, want)
	}
	if err := s.Check(Publish, "room_1", sign); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, c := range []struct {
		name   string
		a      Action
		stream string
		sign   string
		want   error
	}{
		{"play sign cannot publish", Publish, "room_1", mustSign(s, Play, "room_1", time.Hour), ErrMismatch},
		{"other stream", Publish, "room_2", sign, ErrMismatch},
		{"missing", Publish, "room_1", "", ErrMissing},
		{"no dash", Publish, "room_1", "123", ErrMalformed},
		{"short hash", Publish, "room_1", "123-abc", ErrMalformed},
		{"bad expiry", Publish, "room_1", "x-0123456789abcdef0123456789abcdef", ErrMalformed},
		{"expired", Publish, "room_1", mustSign(s, Publish, "room_1", -time.Minute), ErrExpired},
		{"altered expiry", Publish, "room_1", fmt.Sprint(exp.Unix()+100) + sign[len(fmt.Sprint(exp.Unix())):], ErrMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := s.Check(c.a, c.stream, c.sign); !errors.Is(err, c.want) {
				t.Fatalf("Check = %v, want %v", err, c.want)
			}
		})
	}
}

func mustSign(s *Signer, a Action, stream string, ttl time.Duration) string {
	sign, _ := s.Sign(a, stream, ttl)
	return sign
}

func FuzzCheck(f *testing.F) {
	s, _ := New([]byte("0123456789abcdef"))
	f.Add("room_1", mustSign(s, Play, "room_1", time.Hour))
	f.Add("room_1", "1-")
	f.Add("", "99999999999999999999-00000000000000000000000000000000")
	f.Fuzz(func(t *testing.T, stream, sign string) {
		_ = s.Check(Play, stream, sign) // must not panic
	})
}

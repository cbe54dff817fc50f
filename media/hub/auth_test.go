package hub

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPublicReason(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{Refusal("unknown stream"), "unknown stream"},
		{fmt.Errorf("publish refused: %w", &RefusalError{Reason: "wrong sign", Err: errors.New("mac 1234")}), "wrong sign"},
		{&RefusalError{Reason: reasonUnavailable, Err: errors.New("dial tcp 10.1.2.3:3306")}, reasonUnavailable},
		{fmt.Errorf("%w: x", ErrStreamNotFound), "stream not found: x"},
		{Refusal("bad ?sign=secret"), "bad "},
		{Refusal("line\nbreak"), "line"},
		{Refusal(strings.Repeat("é", 100)), strings.Repeat("é", 60)},
	} {
		if got := PublicReason(c.err); got != c.want {
			t.Errorf("PublicReason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

package mediatest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/mofang-live/mofang/media/hub"
)

// SignAuth is a hub.Authorizer that accepts the query sign=good only, as
// a refusal ("missing sign" or "wrong or expired sign") otherwise, and
// records the requests it is given.
type SignAuth struct {
	mu   sync.Mutex
	reqs []hub.AuthRequest
}

func (a *SignAuth) check(req hub.AuthRequest) error {
	a.mu.Lock()
	a.reqs = append(a.reqs, req)
	a.mu.Unlock()
	switch req.Query.Get("sign") {
	case "good":
		return nil
	case "":
		return hub.Refusal("missing sign")
	}
	return fmt.Errorf("checking the sign: %w", &hub.RefusalError{Reason: "wrong or expired sign", Err: errors.New("mac mismatch")})
}

// AuthorizePublish checks the sign of a publish request.
func (a *SignAuth) AuthorizePublish(_ context.Context, req hub.AuthRequest) error {
	return a.check(req)
}

// AuthorizePlay checks the sign of a play request.
func (a *SignAuth) AuthorizePlay(_ context.Context, req hub.AuthRequest) error {
	return a.check(req)
}

// Last returns the last request checked; there must have been one.
func (a *SignAuth) Last() hub.AuthRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reqs[len(a.reqs)-1]
}

package webrtc

import "sync"

// lifecycle is what a WHEP Session and a WHIP Input share: an id, and an
// end that happens once, with its reason.
type lifecycle struct {
	id        string
	done      chan struct{}
	closeOnce sync.Once
	err       error // set before done is closed
}

func newLifecycle() lifecycle {
	return lifecycle{id: newID(), done: make(chan struct{})}
}

// ID returns the session id (32 hex digits, unguessable), the last element
// of the session's WHIP or WHEP resource URL.
func (l *lifecycle) ID() string { return l.id }

// Done is closed when the session has ended.
func (l *lifecycle) Done() <-chan struct{} { return l.done }

// Err returns why the session ended (nil after Close, or while it runs).
func (l *lifecycle) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

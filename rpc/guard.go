package rpc

import (
	"sync"
	"time"
)

// attemptGuard counts failed attempts per key (a user name at login, a
// user and a room for room passwords) and refuses a key that failed too
// often within a window, so passwords cannot be guessed at speed.
type attemptGuard struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	failures map[string][]time.Time
}

func newAttemptGuard(max int, window time.Duration) *attemptGuard {
	return &attemptGuard{max: max, window: window, now: time.Now, failures: map[string][]time.Time{}}
}

// allowed reports whether key may try again now.
func (g *attemptGuard) allowed(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.recent(key)) < g.max
}

// failed records a failed attempt of key.
func (g *attemptGuard) failed(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures[key] = append(g.recent(key), g.now())
	if len(g.failures) > 100_000 {
		g.sweep()
	}
}

// succeeded forgets the failures of key.
func (g *attemptGuard) succeeded(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.failures, key)
}

// recent returns the failures of key within the window. g.mu is held.
func (g *attemptGuard) recent(key string) []time.Time {
	ts := g.failures[key]
	cut := g.now().Add(-g.window)
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	if i == len(ts) {
		delete(g.failures, key)
		return nil
	}
	return ts[i:]
}

// sweep drops keys with no recent failures, bounding the map. g.mu is held.
func (g *attemptGuard) sweep() {
	for k := range g.failures {
		g.recent(k)
	}
}

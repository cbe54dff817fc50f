package rpc

import (
	"fmt"
	"testing"
	"time"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeGuard() (*attemptGuard, *fakeClock) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := newAttemptGuard(5, time.Minute)
	g.now = c.now
	return g, c
}

// TestBackoff: the Free-th failure locks for Base, each further failure
// for twice as long up to Max, and a quiet key is forgotten.
func TestBackoff(t *testing.T) {
	g, clock := newFakeGuard()
	rule := Backoff{Free: 3, Base: time.Second, Max: 8 * time.Second, Forget: time.Minute}
	try := func() bool {
		_, ok, _ := g.begin([]check{{key: "k", rule: rule, refuse: true}})
		return ok
	}
	for i := range 3 {
		if !try() {
			t.Fatalf("failure %d refused within the free budget", i+1)
		}
	}
	// Locked for 1 s, then 2, 4, 8, 8: the lockouts grow.
	for _, lock := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if try() {
			t.Fatalf("an attempt right after a failure passed, want it locked for %v", lock)
		}
		clock.add(lock - time.Millisecond)
		if try() {
			t.Fatalf("an attempt %v into a lockout of %v passed", lock-time.Millisecond, lock)
		}
		clock.add(time.Millisecond)
		if !try() {
			t.Fatalf("an attempt at the end of a lockout of %v was refused", lock)
		}
	}
	// A minute after the last lockout ended, the key starts over.
	clock.add(8*time.Second + time.Minute + time.Millisecond)
	for i := range 3 {
		if !try() {
			t.Fatalf("after forgetting: failure %d refused", i+1)
		}
	}
	if try() {
		t.Fatal("after forgetting: the free budget did not lock again")
	}
}

// TestAttemptSucceeded: a success takes its own count back, or all of a
// resetting key's.
func TestAttemptSucceeded(t *testing.T) {
	g, _ := newFakeGuard()
	rule := Backoff{Free: 2, Base: time.Minute, Max: time.Hour, Forget: time.Hour}
	checks := []check{{key: "pair", rule: rule, refuse: true, reset: true}, {key: "room", rule: rule, refuse: true}}
	a, _, _ := g.begin(checks)
	b, ok, _ := g.begin(checks) // the second failure locks both keys...
	if !ok {
		t.Fatal("second attempt refused")
	}
	b.succeeded() // ...unless it turns out right.
	if g.count("pair") != 0 || g.count("room") != 1 {
		t.Fatalf("counts pair %d room %d, want 0 (reset by the success) and 1 (its own taken back)", g.count("pair"), g.count("room"))
	}
	if _, ok, _ := g.begin(checks); !ok {
		t.Fatal("a success did not lift the lockout it had set")
	}
	a.succeeded()
}

// TestGuardIsBounded: a flood of keys does not grow the guard's maps past
// their bound, and keys locked now survive the sweep.
func TestGuardIsBounded(t *testing.T) {
	g, clock := newFakeGuard()
	locking := Backoff{Free: 1, Base: time.Hour, Max: time.Hour, Forget: time.Hour}
	if _, ok, _ := g.begin([]check{{key: "attacker", rule: locking, refuse: true}}); !ok {
		t.Fatal(ok)
	}
	quiet := Backoff{Free: 5, Base: time.Second, Max: time.Second, Forget: time.Hour}
	for i := range maxGuardKeys + 1000 {
		g.begin([]check{{key: fmt.Sprint("flood", i), rule: quiet}})
		g.remember(fmt.Sprint("known", i), time.Hour)
		g.cacheAccount(accountState{id: int64(i)})
	}
	clock.add(time.Second)
	if n := len(g.failures); n > maxGuardKeys {
		t.Fatalf("%d failure counters, want at most %d", n, maxGuardKeys)
	}
	if len(g.known) > maxGuardKeys || len(g.users) > maxGuardKeys {
		t.Fatalf("%d known, %d cached accounts, want at most %d", len(g.known), len(g.users), maxGuardKeys)
	}
	if _, ok, _ := g.begin([]check{{key: "attacker", rule: locking, refuse: true}}); ok {
		t.Fatal("a flood of other keys unlocked a locked one")
	}
}

// TestAddressKey: IPv6 clients count per /64.
func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":          "203.0.113.7",
		"::ffff:203.0.113.7":   "203.0.113.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::9":      "2001:db8:1:2::/64",
		"":                     "",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"203.0.113.7":        "203.0.113.x",
		"::ffff:203.0.113.7": "203.0.113.x",
		"2001:db8:1:2::9":    "2001:db8:1::/48",
		"fe80::1%eth0":       "fe80::/48",
		"":                   "",
		"not an ip":          "",
	} {
		if got := maskIP(in); got != want {
			t.Errorf("maskIP(%q) = %q, want %q", in, got, want)
		}
	}
}

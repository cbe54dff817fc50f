package rpc

import (
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/mofang-live/mofang/store"
)

// AuthLimits tune the defences against password guessing and stale
// credentials. Zero fields take the defaults in brackets. An "address" is
// an IPv4 address or an IPv6 /64, the least an attacker holds.
type AuthLimits struct {
	// Register limits the accounts made from one address [burst 10,
	// then 1 every 6 minutes].
	Register Rate
	// Login counts wrong passwords of one account from one address: past
	// Free the pair is refused (errno 1003) without a check, unless the
	// account logged in from that address before [5; 1 min doubling to
	// 15 min; forgotten after 30 min].
	Login Backoff
	// LoginAccount counts wrong passwords of one account from every
	// address. It never refuses: past Free, a login from an address the
	// account never logged in from (or from a known one whose pair is
	// locked) waits Base, doubling with each failure up to Max, before its
	// password is checked, so a stranger's failures cannot lock the owner
	// out [20; 1 s doubling to 8 s; forgotten after 15 min].
	LoginAccount Backoff
	// RoomUser counts wrong room passwords of one user for one room [5;
	// 1 min doubling to 15 min; forgotten after 30 min].
	RoomUser Backoff
	// Room counts wrong passwords of one room, from every user and
	// address. Users who entered the room under its current password are
	// not refused by it [20; 1 s doubling to 5 min; forgotten after 30 min].
	Room Backoff
	// RoomAddress counts wrong room passwords from one address, for every
	// room and account [10; 1 s doubling to 5 min; forgotten after 30 min].
	RoomAddress Backoff
	// UserCache is how long the state of a token's account (deleted,
	// admin) is trusted before the store is asked again [5 s].
	UserCache time.Duration
}

// Backoff is a budget of failures with growing lockouts: the Free-th
// failure locks its key for Base, each further one for twice as long as
// the one before, up to Max. A key with no failure for Forget starts over.
// A negative Free means no limit.
type Backoff struct {
	Free   int
	Base   time.Duration
	Max    time.Duration
	Forget time.Duration
}

// lockout is how long the n-th failure (n >= Free) locks its key.
func (b Backoff) lockout(n int) time.Duration {
	d := b.Base
	for i := b.Free; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

func (b *Backoff) setDefaults(def Backoff) {
	if *b == (Backoff{}) {
		*b = def
	}
}

// Lifetimes of what the guard remembers.
const (
	knownLoginTTL   = 30 * 24 * time.Hour // an address an account logged in from
	knownEntrantTTL = 24 * time.Hour      // a user who entered a room under its current password
	// maxGuardKeys bounds each of the guard's maps; past it the guard
	// forgets what matters least (see sweep).
	maxGuardKeys = 100_000
)

// attemptGuard is the server's defence against password guessing and
// stale credentials: failure counters with growing lockouts (logins, room
// passwords), what it learnt from successes (the addresses an account
// logged in from, the users who entered a room), and a short cache of
// account states so that a deleted account's token stops working at once.
// Its maps are bounded.
type attemptGuard struct {
	// pairMax and pairLockout are the defaults of the per-pair budgets
	// (AuthLimits.Login and RoomUser): failures before the first lockout
	// and its length.
	pairMax     int
	pairLockout time.Duration
	now         func() time.Time

	once   sync.Once
	limits AuthLimits

	mu       sync.Mutex
	failures map[string]*failures
	known    map[string]time.Time // until when
	users    map[int64]accountEntry
}

// failures are the counted failures of one key.
type failures struct {
	n      int
	last   time.Time // the latest failure
	until  time.Time // locked until
	forget time.Time // forgotten after
}

// accountEntry is a cached account state.
type accountEntry struct {
	state accountState
	at    time.Time
}

// newAttemptGuard returns a guard whose per-pair budgets default to max
// failures, then a first lockout of lockout.
func newAttemptGuard(max int, lockout time.Duration) *attemptGuard {
	return &attemptGuard{
		pairMax: max, pairLockout: lockout, now: time.Now,
		failures: map[string]*failures{}, known: map[string]time.Time{}, users: map[int64]accountEntry{},
	}
}

// limitsOf returns cfg with its defaults, fixed at the first call.
func (g *attemptGuard) limitsOf(cfg AuthLimits) *AuthLimits {
	g.once.Do(func() {
		pair := Backoff{Free: g.pairMax, Base: g.pairLockout, Max: 15 * time.Minute, Forget: 30 * time.Minute}
		setDefault(&cfg.Register, Rate{Every: 6 * time.Minute, Burst: 10})
		cfg.Login.setDefaults(pair)
		cfg.LoginAccount.setDefaults(Backoff{Free: 20, Base: time.Second, Max: 8 * time.Second, Forget: 15 * time.Minute})
		cfg.RoomUser.setDefaults(pair)
		cfg.Room.setDefaults(Backoff{Free: 20, Base: time.Second, Max: 5 * time.Minute, Forget: 30 * time.Minute})
		cfg.RoomAddress.setDefaults(Backoff{Free: 10, Base: time.Second, Max: 5 * time.Minute, Forget: 30 * time.Minute})
		setDefault(&cfg.UserCache, 5*time.Second)
		g.limits = cfg
	})
	return &g.limits
}

// authLimits returns the server's AuthLimits with their defaults.
func (s *Server) authLimits() *AuthLimits { return s.guard.limitsOf(s.cfg.Auth) }

// check is one key an attempt is counted under.
type check struct {
	key  string
	rule Backoff
	// refuse: a locked key refuses the attempt. Keys that do not refuse
	// are still counted.
	refuse bool
	// reset: a success forgets the key's failures; otherwise it takes
	// back only its own.
	reset bool
}

// attempt is a password check in flight. Its failure is counted before
// the password is checked, so that concurrent guesses (a batch, parallel
// requests) cannot all pass a budget that has room for one more; a
// success takes it back.
type attempt struct {
	g      *attemptGuard
	checks []check
}

// begin counts an attempt under every key of checks, or refuses it (false)
// when a refusing key is locked. locked tells which keys were locked
// (indexes into checks), whether they refused or not.
func (g *attemptGuard) begin(checks []check) (a *attempt, ok bool, locked []bool) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	locked = make([]bool, len(checks))
	for i, c := range checks {
		if c.rule.Free < 0 {
			continue
		}
		if f := g.get(c.key, now); f != nil && now.Before(f.until) {
			locked[i] = true
			if c.refuse {
				return nil, false, locked
			}
		}
	}
	for _, c := range checks {
		if c.rule.Free < 0 {
			continue
		}
		f := g.get(c.key, now)
		if f == nil {
			if len(g.failures) >= maxGuardKeys {
				g.sweep(now)
			}
			f = &failures{}
			g.failures[c.key] = f
		}
		f.n++
		f.last = now
		if f.n >= c.rule.Free {
			f.until = now.Add(c.rule.lockout(f.n))
		}
		f.forget = maxTime(f.until, now).Add(c.rule.Forget)
	}
	return &attempt{g: g, checks: checks}, true, locked
}

// count returns how many failures key has now (the attempt in flight
// included).
func (g *attemptGuard) count(key string) int {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if f := g.get(key, now); f != nil {
		return f.n
	}
	return 0
}

// succeeded takes back the attempt's failure: keys with reset forget all
// their failures, the others this one.
func (a *attempt) succeeded() {
	g := a.g
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range a.checks {
		f := g.failures[c.key]
		if f == nil {
			continue
		}
		if c.reset || f.n <= 1 {
			delete(g.failures, c.key)
			continue
		}
		f.n--
		if f.n >= c.rule.Free {
			f.until = f.last.Add(c.rule.lockout(f.n))
		} else {
			f.until = time.Time{}
		}
	}
}

// get returns key's failures unless forgotten. g.mu is held.
func (g *attemptGuard) get(key string, now time.Time) *failures {
	f := g.failures[key]
	if f != nil && now.After(f.forget) {
		delete(g.failures, key)
		return nil
	}
	return f
}

// sweep bounds the failure counters: it drops the forgotten ones, then, if
// still full, the ones not locking now, then any. g.mu is held.
func (g *attemptGuard) sweep(now time.Time) {
	for k, f := range g.failures {
		if now.After(f.forget) {
			delete(g.failures, k)
		}
	}
	for k, f := range g.failures {
		if len(g.failures) < maxGuardKeys*9/10 {
			return
		}
		if !now.Before(f.until) {
			delete(g.failures, k)
		}
	}
	for k := range g.failures {
		if len(g.failures) < maxGuardKeys*9/10 {
			return
		}
		delete(g.failures, k)
	}
}

// remember notes a success worth knowing for ttl (an address an account
// logged in from, a user who entered a room).
func (g *attemptGuard) remember(key string, ttl time.Duration) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.known) >= maxGuardKeys {
		// Drop the expired, then (an attacker making accounts and
		// addresses by the thousand) any, down to 90%.
		for k, until := range g.known {
			if now.After(until) {
				delete(g.known, k)
			}
		}
		for k := range g.known {
			if len(g.known) < maxGuardKeys*9/10 {
				break
			}
			delete(g.known, k)
		}
	}
	g.known[key] = now.Add(ttl)
}

// isKnown reports whether key was remembered and has not expired.
func (g *attemptGuard) isKnown(key string) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.known[key]
	if ok && now.After(until) {
		delete(g.known, key)
		return false
	}
	return ok
}

// cachedAccount returns the state of an account if it was cached within
// ttl.
func (g *attemptGuard) cachedAccount(id int64, ttl time.Duration) (accountState, bool) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.users[id]
	if !ok || now.Sub(e.at) >= ttl {
		return accountState{}, false
	}
	return e.state, true
}

// cacheAccount caches the state of an account.
func (g *attemptGuard) cacheAccount(st accountState) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.users) >= maxGuardKeys {
		clear(g.users)
	}
	g.users[st.id] = accountEntry{state: st, at: now}
}

// addressKey is the part of an IP address that counts as one client: an
// IPv4 address, an IPv6 /64.
func addressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// roomGuess counts a guess of a room's password (see AuthLimits): per
// user and room, per room, per address. Users who entered the room under
// its current password are counted only per user and room.
func (s *Server) roomGuess(userID, roomID, gen int64, ip string) (*attempt, bool) {
	lim := s.authLimits()
	uid, rid := strconv.FormatInt(userID, 10), strconv.FormatInt(roomID, 10)
	checks := []check{{key: "room:" + uid + ":" + rid, rule: lim.RoomUser, refuse: true, reset: true}}
	if !s.guard.isKnown(entrantKey(userID, roomID, gen)) {
		checks = append(checks,
			check{key: "room:" + rid, rule: lim.Room, refuse: true},
			check{key: "roomaddr:" + addressKey(ip), rule: lim.RoomAddress, refuse: true})
	}
	a, ok, _ := s.guard.begin(checks)
	return a, ok
}

// entrantKey names a user who entered a room at a password generation.
func entrantKey(userID, roomID, gen int64) string {
	return "entered:" + strconv.FormatInt(userID, 10) + ":" + strconv.FormatInt(roomID, 10) + ":" + strconv.FormatInt(gen, 10)
}

// loginGuess counts a login of the account named name (see AuthLimits)
// and tells how long it must wait before its password is checked. known
// is whether the account logged in from this address before.
func (s *Server) loginGuess(name string, known bool, ip string) (a *attempt, wait time.Duration, ok bool) {
	lim := s.authLimits()
	account := "login:" + store.FoldName(name)
	checks := []check{
		{key: account + "|" + addressKey(ip), rule: lim.Login, refuse: !known, reset: true},
		{key: account, rule: lim.LoginAccount},
	}
	before := s.guard.count(account)
	a, ok, locked := s.guard.begin(checks)
	if !ok {
		return nil, 0, false
	}
	pairLocked := locked[0]
	if r := lim.LoginAccount; r.Free >= 0 && before >= r.Free && (!known || pairLocked) {
		wait = r.lockout(before)
	}
	if pairLocked {
		wait = max(wait, lim.LoginAccount.Base)
	}
	return a, wait, true
}

// knownLoginKey names an address an account logged in from.
func knownLoginKey(userID int64, ip string) string {
	return "login:" + strconv.FormatInt(userID, 10) + "|" + addressKey(ip)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

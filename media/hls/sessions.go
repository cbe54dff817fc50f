package hls

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"
)

// Session is one HLS player, counted as a viewer while it keeps fetching.
// A player is identified by the session parameter (SessionParam) that the
// muxer adds to the URLs of the playlists it serves, or, for a player that
// did not start from index.m3u8, by its IP address and User-Agent.
type Session struct {
	// ID is random, unique per muxer.
	ID string
	// RemoteAddr is the address of the first request (host:port).
	RemoteAddr string
	// UserAgent is the User-Agent of the first request.
	UserAgent string
	// Created is the time of the first request.
	Created time.Time

	key       sessionKey
	bytesSent atomic.Uint64
	requests  atomic.Uint64
	lastSeen  time.Time // guarded by sessions.mu
	inflight  int       // guarded by sessions.mu
}

// BytesSent returns the bytes of response bodies sent to the player.
func (s *Session) BytesSent() uint64 { return s.bytesSent.Load() }

// Requests returns the number of requests made by the player.
func (s *Session) Requests() uint64 { return s.requests.Load() }

// SessionParam is the query parameter carrying the session ID in the URLs
// of the media playlists, segments and parts.
const SessionParam = "hls_sid"

// sessionKey identifies a player: its session ID, or (anon) its IP
// address and User-Agent.
type sessionKey struct {
	anon bool
	k    string
}

// sessions tracks players by key; a janitor closes idle ones.
type sessions struct {
	timeout time.Duration
	onOpen  func(*Session)
	onClose func(*Session)

	mu      sync.Mutex
	byKey   map[sessionKey]*Session
	closed  bool
	janitor bool
	stop    chan struct{}
}

func newSessions(timeout time.Duration, onOpen, onClose func(*Session)) *sessions {
	return &sessions{
		timeout: timeout,
		onOpen:  onOpen,
		onClose: onClose,
		byKey:   make(map[sessionKey]*Session),
		stop:    make(chan struct{}),
	}
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// begin returns the session of a request, creating it if needed, and marks
// a request in flight. id is the session parameter ("" if none: the player
// is keyed by IP and User-Agent); an unknown id creates a session with that
// id. It returns nil once closed.
func (ss *sessions) begin(id, remoteAddr, userAgent string) *Session {
	key := sessionKey{k: id}
	if id == "" {
		key = sessionKey{anon: true, k: hostOf(remoteAddr) + "\x00" + userAgent}
	}
	now := time.Now()
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return nil
	}
	s := ss.byKey[key]
	opened := false
	if s == nil {
		if id == "" {
			id = newSessionID()
		}
		s = &Session{ID: id, RemoteAddr: remoteAddr, UserAgent: userAgent, Created: now, key: key}
		ss.byKey[key] = s
		opened = true
		if !ss.janitor {
			ss.janitor = true
			go ss.run()
		}
	}
	s.inflight++
	s.lastSeen = now
	ss.mu.Unlock()
	s.requests.Add(1)
	if opened && ss.onOpen != nil {
		ss.onOpen(s)
	}
	return s
}

// end marks the end of a request of s.
func (ss *sessions) end(s *Session, bytes int64) {
	s.bytesSent.Add(uint64(bytes))
	ss.mu.Lock()
	s.inflight--
	s.lastSeen = time.Now()
	ss.mu.Unlock()
}

// run closes idle sessions until the muxer closes or none is left.
func (ss *sessions) run() {
	t := time.NewTicker(min(ss.timeout/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ss.stop:
			return
		case now := <-t.C:
			var idle []*Session
			ss.mu.Lock()
			for k, s := range ss.byKey {
				if s.inflight == 0 && now.Sub(s.lastSeen) > ss.timeout {
					delete(ss.byKey, k)
					idle = append(idle, s)
				}
			}
			last := len(ss.byKey) == 0
			if last {
				ss.janitor = false
			}
			ss.mu.Unlock()
			if ss.onClose != nil {
				for _, s := range idle {
					ss.onClose(s)
				}
			}
			if last {
				return
			}
		}
	}
}

func (ss *sessions) close() {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.closed = true
	all := make([]*Session, 0, len(ss.byKey))
	for _, s := range ss.byKey {
		all = append(all, s)
	}
	clear(ss.byKey)
	close(ss.stop)
	ss.mu.Unlock()
	if ss.onClose != nil {
		for _, s := range all {
			ss.onClose(s)
		}
	}
}

func (ss *sessions) list() []*Session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]*Session, 0, len(ss.byKey))
	for _, s := range ss.byKey {
		out = append(out, s)
	}
	return out
}

func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byKey)
}

// hostOf returns the host part of host:port.
func hostOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i]
		}
		if addr[i] == ']' {
			break
		}
	}
	return addr
}

// Sessions returns the players currently counted as viewers.
func (m *Muxer) Sessions() []*Session { return m.sessions.list() }

// Viewers returns the number of players currently counted as viewers.
func (m *Muxer) Viewers() int { return m.sessions.count() }

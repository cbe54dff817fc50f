package rpc

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mofang-live/mofang/store"
)

// Limits of a restreaming destination.
const (
	maxForwardURL     = 512
	maxForwardKey     = 256
	defaultMaxForward = 5
)

// KeySealer encrypts the stream keys of restreaming destinations for the
// store (internal/seal).
type KeySealer interface {
	Seal(plain, ad []byte) []byte
	Open(sealed, ad []byte) ([]byte, error)
}

// ForwardState is a destination's push as the media engine reports it.
type ForwardState struct {
	State     string // connecting, live or error
	Reason    string
	BytesSent uint64
	Since     time.Time
}

// Forwarder is the media engine's restreaming, as the API needs it.
type Forwarder interface {
	// ForwardStates returns the pushes of stream on this node, by
	// destination ID (none: the stream is not live here).
	ForwardStates(stream string) map[int64]ForwardState
	// RefreshForwards makes the pushes of stream read its destinations
	// again now.
	RefreshForwards(stream string)
}

// ForwardConfig configures Live.forward.*: without a Sealer they answer
// errno 1006 (restreaming is off).
type ForwardConfig struct {
	Sealer KeySealer
	// Max is the number of destinations a room may have (default 5).
	Max int
	// Media reports and refreshes the pushes; nil: every destination is
	// idle.
	Media Forwarder
}

// ForwardKeyAD is the associated data a destination's key is sealed
// with: its room, so that a sealed key moved to another room's row does
// not open.
func ForwardKeyAD(roomID int64) []byte {
	return []byte("forward key of room " + strconv.FormatInt(roomID, 10))
}

// ForwardData is a destination as Live.forward.* show it: never its key.
type ForwardData struct {
	ID      int64  `json:"id"`
	RoomID  string `json:"room_id"`
	URL     string `json:"url"`
	Key     string `json:"key"` // masked: "****" and the last 4 characters
	Enabled bool   `json:"enabled"`
	// State is idle (the room is not live), connecting, live or error.
	State     string `json:"state"`
	Reason    string `json:"reason,omitempty"`
	BytesSent uint64 `json:"bytes_sent"`
	Since     int64  `json:"since,omitempty"` // ms since 1970 of the state's start
	Created   int64  `json:"created_time"`
}

// ForwardAddParams are the params of Live.forward.add.
type ForwardAddParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	URL    string `json:"url" rpc:"required"`
	Key    string `json:"key" rpc:"required"`
}

// ForwardRemoveParams are the params of Live.forward.remove.
type ForwardRemoveParams struct {
	RoomID    RoomID `json:"room_id" rpc:"required"`
	ForwardID int64  `json:"forward_id" rpc:"required"`
}

// ForwardListParams are the params of Live.forward.list.
type ForwardListParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
}

// ForwardListData is the data of Live.forward.list.
type ForwardListData struct {
	Forwards []ForwardData `json:"forwards"`
	Max      int           `json:"max"`
}

// checkForwardURL returns why raw is not an acceptable destination
// server, or "".
func checkForwardURL(raw string) string {
	if raw == "" || len(raw) > maxForwardURL {
		return "the URL must have 1 to 512 characters"
	}
	if strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "the URL must not contain spaces or control characters"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "the URL is not valid"
	}
	if u.Scheme != "rtmp" && u.Scheme != "rtmps" {
		return "only rtmp:// and rtmps:// URLs are accepted"
	}
	if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return "the URL has no host"
	}
	if u.User != nil {
		return "the URL must not carry a user or password: put secrets in the key"
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(raw, "#") {
		return "the URL must not have a query or fragment: put them in the key"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "the URL's port is not valid"
		}
	}
	if strings.Trim(u.Path, "/") == "" {
		return "the URL needs the application path, as rtmp://host/live"
	}
	return ""
}

// checkForwardKey returns why key is not an acceptable stream key, or "".
func checkForwardKey(key string) string {
	if key == "" || len(key) > maxForwardKey {
		return "the key must have 1 to 256 characters"
	}
	if strings.IndexFunc(key, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return "the key must not contain spaces or control characters"
	}
	return ""
}

// maskKey shows a key's last 4 characters only, and those only when the
// key is long enough that they give little away.
func maskKey(hint string) string { return "****" + hint }

// keyHint is what is kept in clear of a key to show it masked.
func keyHint(key string) string {
	r := []rune(key)
	if len(r) < 12 {
		return ""
	}
	return string(r[len(r)-4:])
}

// forwardRoom checks the caller may manage the room's destinations: its
// owner, or an admin.
func (s *Server) forwardRoom(ctx context.Context, id RoomID) (store.RoomWithOwner, Status, error) {
	if s.cfg.Forwards.Sealer == nil {
		return store.RoomWithOwner{}, failf(ErrnoForbidden, "restreaming is off on this server"), nil
	}
	u, st, err := s.currentUser(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return store.RoomWithOwner{}, st, err
	}
	room, err := s.cfg.Store.RoomByID(ctx, int64(id))
	if errors.Is(err, store.ErrNotFound) {
		return room, fail(ErrnoNoRoom), nil
	}
	if err != nil {
		return room, Status{}, err
	}
	if room.UserID != u.ID && !u.IsAdmin {
		return room, fail(ErrnoForbidden), nil
	}
	return room, ok(), nil
}

func (s *Server) forwardData(f store.Forward, states map[int64]ForwardState) ForwardData {
	d := ForwardData{ID: f.ID, RoomID: formatRoomID(f.RoomID), URL: f.URL, Key: maskKey(f.KeyHint), Enabled: f.Enabled,
		State: "idle", Created: f.Created.UnixMilli()}
	if st, ok := states[f.ID]; ok {
		d.State, d.Reason, d.BytesSent = st.State, st.Reason, st.BytesSent
		if !st.Since.IsZero() {
			d.Since = st.Since.UnixMilli()
		}
	}
	return d
}

func (s *Server) forwardStates(stream string) map[int64]ForwardState {
	if s.cfg.Forwards.Media == nil {
		return nil
	}
	return s.cfg.Forwards.Media.ForwardStates(stream)
}

func (s *Server) maxForwards() int {
	if s.cfg.Forwards.Max > 0 {
		return s.cfg.Forwards.Max
	}
	return defaultMaxForward
}

// ForwardAdd adds a restreaming destination to a room: an rtmp:// or
// rtmps:// server URL and its stream key, which is stored encrypted and
// never shown whole again. A live room starts pushing to it at once.
// The room's owner or an admin only.
func (a *liveAPI) ForwardAdd(ctx context.Context, p ForwardAddParams) (*Reply[ForwardData], error) {
	if msg := checkForwardURL(p.URL); msg != "" {
		return &Reply[ForwardData]{Status: failf(ErrnoForwardURL, msg)}, nil
	}
	if msg := checkForwardKey(p.Key); msg != "" {
		return &Reply[ForwardData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	room, st, err := a.s.forwardRoom(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[ForwardData]{Status: st}, err
	}
	if room.Status == store.RoomStopped {
		return &Reply[ForwardData]{Status: fail(ErrnoRoomStopped)}, nil
	}
	sealed := a.s.cfg.Forwards.Sealer.Seal([]byte(p.Key), ForwardKeyAD(room.ID))
	f, err := a.s.cfg.Store.AddForward(ctx, store.NewForward{RoomID: room.ID, URL: p.URL, KeySealed: sealed, KeyHint: keyHint(p.Key)}, a.s.maxForwards())
	if errors.Is(err, store.ErrTooManyForwards) {
		return &Reply[ForwardData]{Status: failf(ErrnoForwardCap, "a room may have at most "+strconv.Itoa(a.s.maxForwards())+" destinations")}, nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[ForwardData]{Status: fail(ErrnoNoRoom)}, nil
	}
	if err != nil {
		return nil, err
	}
	a.s.log.Info("forward added", "room", room.ID, "forward", f.ID, "server", f.URL)
	if m := a.s.cfg.Forwards.Media; m != nil {
		m.RefreshForwards(room.Name)
	}
	d := a.s.forwardData(f, nil)
	return &Reply[ForwardData]{Status: ok(), Data: &d}, nil
}

// ForwardRemove removes a room's destination; a push to it stops. The
// room's owner or an admin only.
func (a *liveAPI) ForwardRemove(ctx context.Context, p ForwardRemoveParams) (*Reply[struct{}], error) {
	room, st, err := a.s.forwardRoom(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, err
	}
	err = a.s.cfg.Store.RemoveForward(ctx, room.ID, p.ForwardID)
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[struct{}]{Status: fail(ErrnoNoForward)}, nil
	}
	if err != nil {
		return nil, err
	}
	a.s.log.Info("forward removed", "room", room.ID, "forward", p.ForwardID)
	if m := a.s.cfg.Forwards.Media; m != nil {
		m.RefreshForwards(room.Name)
	}
	return &Reply[struct{}]{Status: ok(), Data: &struct{}{}}, nil
}

// ForwardList lists a room's destinations with the state of their push:
// idle while the room is not live (or is pushed by another node of a
// cluster), connecting, live, or error with a reason; bytes sent during
// this live. The room's owner or an admin only.
func (a *liveAPI) ForwardList(ctx context.Context, p ForwardListParams) (*Reply[ForwardListData], error) {
	room, st, err := a.s.forwardRoom(ctx, p.RoomID)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[ForwardListData]{Status: st}, err
	}
	fs, err := a.s.cfg.Store.Forwards(ctx, room.ID)
	if err != nil {
		return nil, err
	}
	states := a.s.forwardStates(room.Name)
	d := &ForwardListData{Forwards: make([]ForwardData, len(fs)), Max: a.s.maxForwards()}
	for i, f := range fs {
		d.Forwards[i] = a.s.forwardData(f, states)
	}
	return &Reply[ForwardListData]{Status: ok(), Data: d}, nil
}

package rpc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/mofang-live/mofang/store"
)

// userAPI is the User namespace: accounts and logins.
type userAPI struct{ s *Server }

// Limits of account fields.
const (
	minNameLen     = 3
	maxNameLen     = 32
	minPasswordLen = 6
	maxPasswordLen = 72 // bcrypt reads no further
	maxNicknameLen = 32
	maxURLLen      = 512
)

// UserData is the public view of a user.
type UserData struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
	Coin     int64  `json:"coin"`
}

func userData(u store.User) *UserData {
	return &UserData{ID: u.ID, Username: u.Name, Nickname: u.Nickname, Avatar: u.Avatar, Coin: u.Coin}
}

// LoginData is what a login (or a registration, or a refresh) returns.
type LoginData struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"` // "jwt": send "Authorization: jwt <access_token>"
	ExpiresIn    int64     `json:"expires_in"` // seconds
	RefreshToken string    `json:"refresh_token"`
	User         *UserData `json:"user"`
}

// RegisterParams are the params of User.register.
type RegisterParams struct {
	Username string `json:"username" rpc:"required"`
	Password string `json:"password" rpc:"required"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
}

// Register creates an account and logs it in.
func (a *userAPI) Register(ctx context.Context, p RegisterParams) (*Reply[LoginData], error) {
	if msg := checkUsername(p.Username); msg != "" {
		return &Reply[LoginData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	if n := len(p.Password); n < minPasswordLen || n > maxPasswordLen {
		return &Reply[LoginData]{Status: failf(ErrnoInvalid, fmt.Sprintf("password must be %d to %d bytes", minPasswordLen, maxPasswordLen))}, nil
	}
	if p.Nickname == "" {
		p.Nickname = p.Username
	}
	if msg := checkText("nickname", p.Nickname, maxNicknameLen); msg != "" {
		return &Reply[LoginData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	if msg := checkText("avatar", p.Avatar, maxURLLen); msg != "" {
		return &Reply[LoginData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	// Every well-formed registration counts, taken names included: each
	// costs a bcrypt hash, and accounts must not be made in bulk.
	ip := callerOf(ctx).ip
	if !a.s.limiter.allow("register:"+addressKey(ip), a.s.authLimits().Register) {
		return &Reply[LoginData]{Status: fail(ErrnoTooMany)}, nil
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(p.Password), a.s.cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("hashing password: %w", err)
	}
	u, err := a.s.cfg.Store.CreateUser(ctx, store.NewUser{
		Name: p.Username, PasswordHash: string(hash), Nickname: p.Nickname, Avatar: p.Avatar, IPAddress: ip,
	})
	if errors.Is(err, store.ErrDuplicate) {
		return &Reply[LoginData]{Status: fail(ErrnoUserExists)}, nil
	}
	if err != nil {
		return nil, err
	}
	a.s.guard.remember(knownLoginKey(u.ID, ip), knownLoginTTL)
	return a.s.login(ctx, u)
}

// LoginParams are the params of User.login.
type LoginParams struct {
	Username string `json:"username" rpc:"required"`
	Password string `json:"password" rpc:"required"`
}

// dummyHash is compared against when the user does not exist, so that a
// login takes as long whether or not the name is taken.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("mofang-dummy-password"), bcrypt.DefaultCost)

// Login checks a user name (in any case of its ASCII letters) and
// password and returns an access token (a JWT) and a refresh token.
//
// Wrong passwords are counted per account and address, and per account
// (see AuthLimits): a pair that failed too often is refused with errno
// 1003 unless the account logged in from that address before, and an
// account under attack answers logins from other addresses slowly. The
// password is always checked when the call is not refused, so the owner's
// right password from another address always logs in.
func (a *userAPI) Login(ctx context.Context, p LoginParams) (*Reply[LoginData], error) {
	ip := callerOf(ctx).ip
	u, err := a.s.cfg.Store.UserByName(ctx, p.Username)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	exists := err == nil
	known := exists && (a.s.guard.isKnown(knownLoginKey(u.ID, ip)) || (u.IPAddress != "" && addressKey(u.IPAddress) == addressKey(ip)))
	guess, wait, allowed := a.s.loginGuess(p.Username, known, ip)
	if !allowed {
		return &Reply[LoginData]{Status: fail(ErrnoTooMany)}, nil
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return &Reply[LoginData]{Status: fail(ErrnoTooMany)}, nil
		case <-t.C:
		}
	}
	hash := dummyHash
	if exists {
		hash = []byte(u.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(p.Password)) != nil || !exists {
		return &Reply[LoginData]{Status: fail(ErrnoBadLogin)}, nil
	}
	guess.succeeded()
	a.s.guard.remember(knownLoginKey(u.ID, ip), knownLoginTTL)
	if ip != "" && ip != u.IPAddress {
		if err := a.s.cfg.Store.SetUserIP(ctx, u.ID, ip); err != nil {
			return nil, err
		}
	}
	return a.s.login(ctx, u)
}

// RefreshParams are the params of User.refresh.
type RefreshParams struct {
	RefreshToken string `json:"refresh_token" rpc:"required"`
}

// Refresh trades a refresh token for a new access token and a new refresh
// token. Each refresh token works once.
func (a *userAPI) Refresh(ctx context.Context, p RefreshParams) (*Reply[LoginData], error) {
	if p.RefreshToken == "" || len(p.RefreshToken) > 128 {
		return &Reply[LoginData]{Status: fail(ErrnoLogin)}, nil
	}
	id, err := a.s.cfg.Store.TakeRefreshToken(ctx, hashRefresh(p.RefreshToken))
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[LoginData]{Status: fail(ErrnoLogin)}, nil
	}
	if err != nil {
		return nil, err
	}
	u, err := a.s.cfg.Store.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[LoginData]{Status: fail(ErrnoLogin)}, nil
	}
	if err != nil {
		return nil, err
	}
	a.s.guard.remember(knownLoginKey(u.ID, callerOf(ctx).ip), knownLoginTTL)
	return a.s.login(ctx, u)
}

// InfoParams are the params of User.info: none.
type InfoParams struct{}

// Info returns the logged-in user, with their follow counts.
func (a *userAPI) Info(ctx context.Context, p InfoParams) (*Reply[InfoData], error) {
	u, st, err := a.s.currentUser(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[InfoData]{Status: st}, err
	}
	return a.s.userInfo(ctx, u)
}

// login issues an access token and a refresh token for u.
func (s *Server) login(ctx context.Context, u store.User) (*Reply[LoginData], error) {
	access, _, err := s.cfg.Tokens.Issue(u.ID)
	if err != nil {
		return nil, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("making refresh token: %w", err)
	}
	refresh := base64.RawURLEncoding.EncodeToString(b[:])
	if err := s.cfg.Store.AddRefreshToken(ctx, u.ID, hashRefresh(refresh), time.Now().Add(s.cfg.RefreshTTL)); err != nil {
		return nil, err
	}
	return &Reply[LoginData]{Status: ok(), Data: &LoginData{
		AccessToken:  access,
		TokenType:    "jwt",
		ExpiresIn:    int64(s.cfg.Tokens.TTL().Seconds()),
		RefreshToken: refresh,
		User:         userData(u),
	}}, nil
}

// currentUser loads the logged-in caller. A status other than ok means the
// call must answer with it (log in again, user gone).
func (s *Server) currentUser(ctx context.Context) (store.User, Status, error) {
	id, err := s.userID(ctx)
	if err != nil {
		return store.User{}, fail(ErrnoLogin), nil
	}
	u, err := s.cfg.Store.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		s.guard.cacheAccount(accountState{id: id, gone: true})
		return store.User{}, fail(ErrnoLogin), nil
	}
	if err != nil {
		return store.User{}, Status{}, err
	}
	s.guard.cacheAccount(accountState{id: id, admin: u.IsAdmin})
	return u, ok(), nil
}

// accountState is what the methods that take only a user id need to know
// of the caller's account.
type accountState struct {
	id    int64
	admin bool
	gone  bool // deleted, or never existed
}

// account returns the state of the logged-in caller's account, from a
// cache of AuthLimits.UserCache: a deleted account's token is refused
// (errno 1005) within that time. A status other than ok means the call
// must answer with it.
func (s *Server) account(ctx context.Context) (accountState, Status, error) {
	id, err := s.userID(ctx)
	if err != nil {
		return accountState{}, fail(ErrnoLogin), nil
	}
	st, cached := s.guard.cachedAccount(id, s.authLimits().UserCache)
	if !cached {
		u, err := s.cfg.Store.UserByID(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			st = accountState{id: id, gone: true}
		case err != nil:
			return accountState{}, Status{}, err
		default:
			st = accountState{id: id, admin: u.IsAdmin}
		}
		s.guard.cacheAccount(st)
	}
	if st.gone {
		return accountState{}, fail(ErrnoLogin), nil
	}
	return st, ok(), nil
}

// loginID returns the id of the logged-in caller, whose account exists
// (see account).
func (s *Server) loginID(ctx context.Context) (int64, Status, error) {
	st, status, err := s.account(ctx)
	return st.id, status, err
}

// hashRefresh is what the store keeps of a refresh token.
func hashRefresh(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// checkUsername returns why a user name is not acceptable, or "".
func checkUsername(name string) string {
	n := utf8.RuneCountInString(name)
	if n < minNameLen || n > maxNameLen {
		return fmt.Sprintf("username must be %d to %d characters", minNameLen, maxNameLen)
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_.-@", r)) {
			return "username may hold letters, digits and _ . - @ only"
		}
	}
	return ""
}

// checkText returns why a free-text field is not acceptable, or "".
func checkText(field, s string, max int) string {
	if !utf8.ValidString(s) {
		return field + " must be valid UTF-8"
	}
	if utf8.RuneCountInString(s) > max {
		return fmt.Sprintf("%s must be at most %d characters", field, max)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return field + " must not hold control characters"
		}
	}
	return ""
}

package rpc

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/mofang-live/mofang/store"
)

// followAPI is the User namespace's follows: User.follow, User.unfollow,
// User.followers and User.following.
type followAPI struct{ s *Server }

// maxFollowing is how many users one user may follow.
const maxFollowing = 5000

// followRate limits follows and unfollows per user.
var followRate = Rate{Every: time.Second, Burst: 20}

// InfoData is the data of User.info: the user and their follow counts.
type InfoData struct {
	UserData
	Followers int64 `json:"followers"` // users following them
	Following int64 `json:"following"` // users they follow
}

func (s *Server) userInfo(ctx context.Context, u store.User) (*Reply[InfoData], error) {
	followers, following, err := s.cfg.Store.FollowCounts(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &Reply[InfoData]{Status: ok(), Data: &InfoData{UserData: *userData(u), Followers: followers, Following: following}}, nil
}

// FollowParams are the params of User.follow and User.unfollow.
type FollowParams struct {
	UserID int64 `json:"user_id" rpc:"required"` // the user (host) to follow
}

// FollowData is the data of User.follow and User.unfollow: whether the
// caller follows the user now, and the user's followers.
type FollowData struct {
	UserID    int64 `json:"user_id"`
	Following bool  `json:"following"`
	Followers int64 `json:"followers"`
}

// Follow makes the caller follow a user, who then tells them when going
// live (a "live" Live.notify on their websockets). Following someone
// already followed changes nothing.
func (a *followAPI) Follow(ctx context.Context, p FollowParams) (*Reply[FollowData], error) {
	return a.s.setFollow(ctx, p.UserID, true)
}

// Unfollow ends the caller's follow of a user; a user not followed
// changes nothing.
func (a *followAPI) Unfollow(ctx context.Context, p FollowParams) (*Reply[FollowData], error) {
	return a.s.setFollow(ctx, p.UserID, false)
}

func (s *Server) setFollow(ctx context.Context, target int64, follow bool) (*Reply[FollowData], error) {
	uid, st, err := s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[FollowData]{Status: st}, err
	}
	if target <= 0 {
		return &Reply[FollowData]{Status: failf(ErrnoInvalid, "user_id must be a positive integer")}, nil
	}
	if target == uid {
		return &Reply[FollowData]{Status: fail(ErrnoFollowSelf)}, nil
	}
	if !s.allowShared(ctx, "follow:"+strconv.FormatInt(uid, 10), followRate) {
		return &Reply[FollowData]{Status: fail(ErrnoTooMany)}, nil
	}
	if follow {
		_, following, err := s.cfg.Store.FollowCounts(ctx, uid)
		if err != nil {
			return nil, err
		}
		if following >= maxFollowing {
			if ok, err := s.cfg.Store.IsFollower(ctx, uid, target); err != nil || !ok {
				return &Reply[FollowData]{Status: fail(ErrnoFollowingLimit)}, err
			}
		}
		if _, err := s.cfg.Store.Follow(ctx, uid, target); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return &Reply[FollowData]{Status: fail(ErrnoNoUser)}, nil
			}
			return nil, err
		}
	} else {
		if _, err := s.cfg.Store.UserByID(ctx, target); errors.Is(err, store.ErrNotFound) {
			return &Reply[FollowData]{Status: fail(ErrnoNoUser)}, nil
		} else if err != nil {
			return nil, err
		}
		if _, err := s.cfg.Store.Unfollow(ctx, uid, target); err != nil {
			return nil, err
		}
	}
	followers, _, err := s.cfg.Store.FollowCounts(ctx, target)
	if err != nil {
		return nil, err
	}
	return &Reply[FollowData]{Status: ok(), Data: &FollowData{UserID: target, Following: follow, Followers: followers}}, nil
}

// FollowStatus tells whether the caller follows a user, and the user's
// followers: for a Follow button.
func (a *followAPI) FollowStatus(ctx context.Context, p FollowParams) (*Reply[FollowData], error) {
	s := a.s
	uid, st, err := s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[FollowData]{Status: st}, err
	}
	if _, err := s.cfg.Store.UserByID(ctx, p.UserID); errors.Is(err, store.ErrNotFound) {
		return &Reply[FollowData]{Status: fail(ErrnoNoUser)}, nil
	} else if err != nil {
		return nil, err
	}
	following, err := s.cfg.Store.IsFollower(ctx, uid, p.UserID)
	if err != nil {
		return nil, err
	}
	followers, _, err := s.cfg.Store.FollowCounts(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	return &Reply[FollowData]{Status: ok(), Data: &FollowData{UserID: p.UserID, Following: following, Followers: followers}}, nil
}

// FollowListParams are the params of User.followers and User.following.
type FollowListParams struct {
	UserID int64 `json:"user_id"` // whose; absent: the caller's
	Page   int   `json:"page"`    // from 1 (default 1)
	Size   int   `json:"size"`    // default 20, at most 100
}

// FollowListData is a page of followers or followed users.
type FollowListData struct {
	Users []FollowUserData `json:"users"`
	Total int64            `json:"total"`
	Page  int              `json:"page"`
	Size  int              `json:"size"`
}

// FollowUserData is a user in a follow list.
type FollowUserData struct {
	ID       int64  `json:"id"`
	Nickname string `json:"nickname"`
	Avatar   string `json:"avatar"`
	Since    int64  `json:"since"` // when the follow was made, ms since 1970
}

// Followers lists the users who follow a user, the latest first.
func (a *followAPI) Followers(ctx context.Context, p FollowListParams) (*Reply[FollowListData], error) {
	return a.s.followList(ctx, p, a.s.cfg.Store.Followers)
}

// Following lists the users a user follows, the latest first.
func (a *followAPI) Following(ctx context.Context, p FollowListParams) (*Reply[FollowListData], error) {
	return a.s.followList(ctx, p, a.s.cfg.Store.Following)
}

func (s *Server) followList(ctx context.Context, p FollowListParams,
	list func(context.Context, int64, int, int) ([]store.FollowUser, int64, error)) (*Reply[FollowListData], error) {
	uid, st, err := s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[FollowListData]{Status: st}, err
	}
	if p.Page < 0 || p.Page > maxPage || p.Size < 0 || p.Size > maxPageSize || p.UserID < 0 {
		return &Reply[FollowListData]{Status: failf(ErrnoInvalid, pageRangeMsg)}, nil
	}
	if p.Page == 0 {
		p.Page = 1
	}
	if p.Size == 0 {
		p.Size = defaultPageSize
	}
	if p.UserID == 0 {
		p.UserID = uid
	} else if _, err := s.cfg.Store.UserByID(ctx, p.UserID); errors.Is(err, store.ErrNotFound) {
		return &Reply[FollowListData]{Status: fail(ErrnoNoUser)}, nil
	} else if err != nil {
		return nil, err
	}
	users, total, err := list(ctx, p.UserID, (p.Page-1)*p.Size, p.Size)
	if err != nil {
		return nil, err
	}
	out := make([]FollowUserData, len(users))
	for i, u := range users {
		out[i] = FollowUserData{ID: u.ID, Nickname: u.Nickname, Avatar: u.Avatar, Since: u.Since.UnixMilli()}
	}
	return &Reply[FollowListData]{Status: ok(), Data: &FollowListData{Users: out, Total: total, Page: p.Page, Size: p.Size}}, nil
}

package store

import (
	"context"
	"fmt"
)

// SetRoomCover sets the cover picture (its URL) of a room.
func (s *Store) SetRoomCover(ctx context.Context, id int64, url string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE mf_live_stream SET cover = ?, updated_time = ? WHERE id = ?`, url, s.now().UTC(), id); err != nil {
		return fmt.Errorf("store: setting cover of room %d: %w", id, err)
	}
	s.lists.invalidate()
	return nil
}

// SetUserAvatar sets the avatar picture (its URL) of a user.
func (s *Store) SetUserAvatar(ctx context.Context, id int64, url string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE mf_user SET avatar = ?, updated_time = ? WHERE id = ?`, url, s.now().UTC(), id); err != nil {
		return fmt.Errorf("store: setting avatar of user %d: %w", id, err)
	}
	s.lists.invalidate()
	return nil
}

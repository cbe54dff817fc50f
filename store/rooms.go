package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// RoomStatus is the state of a room as its owner (and the media engine) set
// it: seed MoFang's 0 not started, 1 live, 2 paused, 3 stopped.
type RoomStatus int

// The room states.
const (
	RoomIdle    RoomStatus = 0
	RoomLive    RoomStatus = 1
	RoomPaused  RoomStatus = 2
	RoomStopped RoomStatus = 3
)

// Room is a row of mf_live_stream: a user's live stream and its room.
type Room struct {
	ID           int64      `db:"id"`
	Name         string     `db:"name"` // the stream name, unique
	RoomName     string     `db:"room_name"`
	PasswordHash string     `db:"room_password"` // empty: no password
	UserID       int64      `db:"user_id"`
	Title        string     `db:"title"`
	Cover        string     `db:"cover"`
	LookCount    int64      `db:"look_count"`
	LikeCount    int64      `db:"like_count"`
	Coin         int64      `db:"coin"` // coins received in gifts
	Status       RoomStatus `db:"status"`
	IsBanned     bool       `db:"is_banned"` // by an admin: no publishing
	Record       bool       `db:"record"`    // record its lives
	IsDeleted    bool       `db:"is_deleted"`
	Created      time.Time  `db:"created_time"`
	Updated      time.Time  `db:"updated_time"`
	PasswordGen  int64      `db:"password_gen"` // counts password changes and bans: signs are for one generation
	KeyGen       int64      `db:"key_gen"`      // counts stream key resets: the publish key is for one generation
}

// HasPassword reports whether entering the room needs a password.
func (r Room) HasPassword() bool { return r.PasswordHash != "" }

// Owner is the public part of a room owner's user row.
type Owner struct {
	ID        int64  `db:"id"`
	Nickname  string `db:"nickname"`
	Avatar    string `db:"avatar"`
	IPAddress string `db:"ip_address"`
}

// RoomWithOwner is a room and its owner.
type RoomWithOwner struct {
	Room
	Owner Owner `db:"owner"`
}

const roomColumns = `s.id, s.name, s.room_name, s.room_password, s.password_gen, s.key_gen, s.user_id, s.title, s.cover, s.look_count, s.like_count, s.coin, s.status, s.is_banned, s.record, s.is_deleted, s.created_time, s.updated_time`
const ownerColumns = "u.id AS `owner.id`, u.nickname AS `owner.nickname`, u.avatar AS `owner.avatar`, u.ip_address AS `owner.ip_address`"

// NewRoom is what CreateRoom needs.
type NewRoom struct {
	Name         string
	RoomName     string
	PasswordHash string
	UserID       int64
}

// CreateRoom inserts a stream and the owner's room membership (mf_live_room)
// in one transaction. A taken stream name gives ErrDuplicate.
func (s *Store) CreateRoom(ctx context.Context, r NewRoom) (Room, error) {
	now := s.now().UTC()
	var id int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO mf_live_stream (name, room_name, room_password, user_id, title, created_time, updated_time)
			 VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.Name, r.RoomName, r.PasswordHash, r.UserID, r.RoomName, now, now)
		if err != nil {
			if isDuplicate(err) {
				return fmt.Errorf("store: stream %q: %w", r.Name, ErrDuplicate)
			}
			return fmt.Errorf("store: creating stream: %w", err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("store: creating stream: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO mf_live_room (stream_id, user_id, created_time) VALUES (?, ?, ?)`, id, r.UserID, now); err != nil {
			return fmt.Errorf("store: creating room: %w", err)
		}
		return nil
	})
	if err != nil {
		return Room{}, err
	}
	s.lists.invalidate()
	return s.roomWhere(ctx, "s.id = ?", id)
}

// OpenRoomOfUser returns the user's newest room that is neither deleted nor
// stopped: the room Live.stream updates. None gives ErrNotFound.
func (s *Store) OpenRoomOfUser(ctx context.Context, userID int64) (Room, error) {
	var r Room
	err := s.db.GetContext(ctx, &r, `SELECT `+roomColumns+` FROM mf_live_stream s
		WHERE s.user_id = ? AND s.is_deleted = 0 AND s.status <> 3 ORDER BY s.id DESC LIMIT 1`, userID)
	return r, notFound(err, "room")
}

// RoomByID returns a room that is not deleted, with its owner.
func (s *Store) RoomByID(ctx context.Context, id int64) (RoomWithOwner, error) {
	var r RoomWithOwner
	err := s.db.GetContext(ctx, &r, `SELECT `+roomColumns+`, `+ownerColumns+`
		FROM mf_live_stream s JOIN mf_user u ON u.id = s.user_id
		WHERE s.id = ? AND s.is_deleted = 0`, id)
	return r, notFound(err, "room")
}

// RoomByNameWithOwner returns the room of a stream name, if not deleted,
// with its owner.
func (s *Store) RoomByNameWithOwner(ctx context.Context, name string) (RoomWithOwner, error) {
	var r RoomWithOwner
	err := s.db.GetContext(ctx, &r, `SELECT `+roomColumns+`, `+ownerColumns+`
		FROM mf_live_stream s JOIN mf_user u ON u.id = s.user_id
		WHERE s.name = ? AND s.is_deleted = 0`, name)
	return r, notFound(err, "room")
}

// SetRoomRecord turns the recording of a room's lives on or off.
func (s *Store) SetRoomRecord(ctx context.Context, id int64, record bool) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE mf_live_stream SET record = ?, updated_time = ? WHERE id = ?`, record, s.now().UTC(), id); err != nil {
		return fmt.Errorf("store: setting recording of room %d: %w", id, err)
	}
	s.lists.invalidate()
	return nil
}

// SetRoomBanned bans a room from publishing, or lifts the ban. A ban
// starts a new password generation, revoking the play and replay signs
// handed out before it.
func (s *Store) SetRoomBanned(ctx context.Context, id int64, banned bool) error {
	defer s.lists.invalidate()
	bump := 0
	if banned {
		bump = 1
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE mf_live_stream SET password_gen = password_gen + ?, is_banned = ?, updated_time = ? WHERE id = ?`,
		bump, banned, s.now().UTC(), id); err != nil {
		return fmt.Errorf("store: banning room %d: %w", id, err)
	}
	return nil
}

// RoomByName returns the room of a stream name, if not deleted.
func (s *Store) RoomByName(ctx context.Context, name string) (Room, error) {
	return s.roomWhere(ctx, "s.name = ?", name)
}

func (s *Store) roomWhere(ctx context.Context, cond string, arg any) (Room, error) {
	var r Room
	err := s.db.GetContext(ctx, &r, `SELECT `+roomColumns+` FROM mf_live_stream s WHERE `+cond+` AND s.is_deleted = 0`, arg)
	return r, notFound(err, "room")
}

// UpdateRoom sets a room's name and, when passwordHash is not nil, its
// password hash ("" removes the password). Setting a password, or
// removing one the room had, starts a new password generation. A stopped
// room gives ErrRoomStopped.
func (s *Store) UpdateRoom(ctx context.Context, id int64, roomName string, passwordHash *string) error {
	q := `UPDATE mf_live_stream SET room_name = ?, title = ?, updated_time = ?`
	args := []any{roomName, roomName, s.now().UTC()}
	if passwordHash != nil {
		// password_gen first: MySQL's later assignments see the earlier
		// ones, so it must read the old room_password.
		q += `, password_gen = password_gen + CASE WHEN room_password = '' AND ? = '' THEN 0 ELSE 1 END, room_password = ?`
		args = append(args, *passwordHash, *passwordHash)
	}
	q += ` WHERE id = ? AND is_deleted = 0 AND status <> 3`
	args = append(args, id)
	return s.execRoom(ctx, id, q, args...)
}

// ResetStreamKey starts a new stream key generation of a room, revoking
// its publish key and every publish sign made before, and returns the
// room as it is now. A stopped room gives ErrRoomStopped.
func (s *Store) ResetStreamKey(ctx context.Context, id int64) (Room, error) {
	err := s.execRoom(ctx, id, `UPDATE mf_live_stream SET key_gen = key_gen + 1, updated_time = ? WHERE id = ? AND is_deleted = 0 AND status <> 3`,
		s.now().UTC(), id)
	if err != nil {
		return Room{}, err
	}
	return s.roomWhere(ctx, "s.id = ?", id)
}

// SetRoomStatus moves a room to status. A stopped room never changes again:
// that gives ErrRoomStopped.
func (s *Store) SetRoomStatus(ctx context.Context, id int64, status RoomStatus) error {
	return s.execRoom(ctx, id, `UPDATE mf_live_stream SET status = ?, updated_time = ? WHERE id = ? AND is_deleted = 0 AND status <> 3`,
		status, s.now().UTC(), id)
}

// execRoom runs an update guarded by "not deleted, not stopped" and tells
// which guard stopped it when no row changed.
func (s *Store) execRoom(ctx context.Context, id int64, q string, args ...any) error {
	defer s.lists.invalidate()
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: updating room %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: updating room %d: %w", id, err)
	} else if n == 1 {
		return nil
	}
	// MySQL counts only changed rows: an update to the same values
	// affects none. Look at the row to tell why.
	r, err := s.roomWhere(ctx, "s.id = ?", id)
	if err != nil {
		return err
	}
	if r.Status == RoomStopped {
		return fmt.Errorf("store: room %d: %w", id, ErrRoomStopped)
	}
	return nil
}

// ListRoomsOptions selects a page of rooms.
type ListRoomsOptions struct {
	Offset int
	Limit  int
	// Names, when not nil, keeps only rooms with these stream names.
	Names []string
	// FollowedBy, when not 0, keeps only rooms whose owner this user
	// follows (such pages are not cached).
	FollowedBy int64
}

// ListRooms returns the rooms that can go live (not deleted, not stopped),
// newest first, with their owners, and how many there are in all. Pages
// are cached (see SetListCacheTTL): the returned slice is shared and must
// not be modified.
func (s *Store) ListRooms(ctx context.Context, opt ListRoomsOptions) ([]RoomWithOwner, int, error) {
	if opt.FollowedBy != 0 {
		return s.listRooms(ctx, opt)
	}
	key := listKey(opt)
	now := s.now()
	rooms, total, gen, ok := s.lists.get(key, now)
	if ok {
		return rooms, total, nil
	}
	rooms, total, err := s.listRooms(ctx, opt)
	if err != nil {
		return nil, 0, err
	}
	s.lists.put(key, gen, now, rooms, total)
	return rooms, total, nil
}

func (s *Store) listRooms(ctx context.Context, opt ListRoomsOptions) ([]RoomWithOwner, int, error) {
	where := `s.is_deleted = 0 AND s.status <> 3`
	var args []any
	if opt.Names != nil {
		if len(opt.Names) == 0 {
			return nil, 0, nil
		}
		in, inArgs, err := sqlx.In(` AND s.name IN (?)`, opt.Names)
		if err != nil {
			return nil, 0, fmt.Errorf("store: listing rooms: %w", err)
		}
		where += in
		args = inArgs
	}
	if opt.FollowedBy != 0 {
		where += ` AND s.user_id IN (SELECT followee_id FROM mf_follow WHERE follower_id = ?)`
		args = append(args, opt.FollowedBy)
	}
	var total int
	if err := s.db.GetContext(ctx, &total, `SELECT COUNT(*) FROM mf_live_stream s WHERE `+where, args...); err != nil {
		return nil, 0, fmt.Errorf("store: counting rooms: %w", err)
	}
	rooms := make([]RoomWithOwner, 0, min(opt.Limit, total))
	if total == 0 || opt.Offset >= total {
		return rooms, total, nil
	}
	err := s.db.SelectContext(ctx, &rooms, `SELECT `+roomColumns+`, `+ownerColumns+`
		FROM mf_live_stream s JOIN mf_user u ON u.id = s.user_id
		WHERE `+where+` ORDER BY s.id DESC LIMIT ? OFFSET ?`, append(args, opt.Limit, opt.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: listing rooms: %w", err)
	}
	return rooms, total, nil
}

// EndLiveRooms sets every live room back to not started: at start-up
// nothing is being published, whatever a crash left in the database. It
// returns how many rooms it changed.
func (s *Store) EndLiveRooms(ctx context.Context) (int64, error) {
	return s.EndLiveRoomsExcept(ctx, nil, endOfTime)
}

// endOfTime is after every updated_time.
var endOfTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// EndLiveRoomsExcept sets every live room whose stream is not in live,
// and whose status did not change since updatedBefore, back to not
// started: in a cluster the stream directory is the truth of what is
// live, and a room left live by a node that died follows it (a room set
// live a moment ago may not be in the caller's view yet). It returns how
// many rooms it changed. The open live sessions of rooms not live end too.
func (s *Store) EndLiveRoomsExcept(ctx context.Context, live []string, updatedBefore time.Time) (int64, error) {
	defer s.lists.invalidate()
	query := `UPDATE mf_live_stream SET status = ?, updated_time = ? WHERE status = ? AND updated_time < ?`
	args := []any{RoomIdle, s.now().UTC(), RoomLive, updatedBefore.UTC()}
	if len(live) > 0 {
		query += ` AND name NOT IN (?)`
		args = append(args, live)
	}
	query, args, err := sqlx.In(query, args...)
	if err != nil {
		return 0, fmt.Errorf("store: ending live rooms: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return 0, fmt.Errorf("store: ending live rooms: %w", err)
	}
	if err := s.endStaleSessions(ctx); err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

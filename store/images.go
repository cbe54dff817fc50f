package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/mofang-live/mofang/schema"
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

// Image is an uploaded picture kept in the database: its metadata and
// its bytes.
type Image struct {
	Hash   string // SHA-256 of Data, 64 hex digits
	Type   string // MIME type
	Width  int
	Height int
	Size   int // bytes: len(Data), or with Data nil (ImageByHash) its size
	Data   []byte
}

// ImagePartBytes is the most bytes of a picture one row of mf_image_part
// holds: a row is far below any MySQL's max_allowed_packet (1 MiB at
// the least; MariaDB's default is 16 MiB), whatever the picture's size.
const ImagePartBytes = 512 << 10

// PutImage stores img unless a picture with its hash is stored already,
// and reports whether it stored it. The picture's row and its parts are
// written in one transaction, so a reader sees the whole picture or
// none; uploads of one picture racing (on one node or several) store it
// once.
func (s *Store) PutImage(ctx context.Context, img Image) (bool, error) {
	if len(img.Hash) != 64 || len(img.Data) == 0 {
		return false, fmt.Errorf("store: storing image %q: want a 64-digit hash and bytes", img.Hash)
	}
	ins := `INSERT INTO mf_image (hash, type, width, height, size, parts, created_time) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	if s.dialect == schema.MySQL {
		// Not INSERT IGNORE: that would turn other errors into warnings.
		ins = `INSERT INTO mf_image (hash, type, width, height, size, parts, created_time) VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE hash = hash`
	}
	parts := (len(img.Data) + ImagePartBytes - 1) / ImagePartBytes
	stored := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// A second writer of the same hash waits here on the first's
		// row lock (MySQL) or write lock (SQLite), then inserts nothing.
		res, err := tx.ExecContext(ctx, ins, img.Hash, img.Type, img.Width, img.Height, len(img.Data), parts, s.now().UTC())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err // stored already (n is 0)
		}
		for i := range parts {
			chunk := img.Data[i*ImagePartBytes : min(len(img.Data), (i+1)*ImagePartBytes)]
			if _, err := tx.ExecContext(ctx, `INSERT INTO mf_image_part (hash, part, bytes) VALUES (?, ?, ?)`, img.Hash, i, chunk); err != nil {
				return err
			}
		}
		stored = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: storing image %s: %w", img.Hash, err)
	}
	return stored, nil
}

// ImageByHash returns the picture whose bytes hash to hash, or
// ErrNotFound. Its bytes are read only when there are at most maxBytes
// of them (negative: any number); else Data is nil and ImageBytes reads
// them piecemeal.
func (s *Store) ImageByHash(ctx context.Context, hash string, maxBytes int) (Image, error) {
	var meta struct {
		Type   string `db:"type"`
		Width  int    `db:"width"`
		Height int    `db:"height"`
		Size   int    `db:"size"`
		Parts  int    `db:"parts"`
	}
	err := s.db.GetContext(ctx, &meta, `SELECT type, width, height, size, parts FROM mf_image WHERE hash = ?`, hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Image{}, ErrNotFound
	}
	if err != nil {
		return Image{}, fmt.Errorf("store: reading image %s: %w", hash, err)
	}
	img := Image{Hash: hash, Type: meta.Type, Width: meta.Width, Height: meta.Height, Size: meta.Size}
	if maxBytes >= 0 && meta.Size > maxBytes {
		return img, nil
	}
	if img.Data, err = s.imageParts(ctx, hash, 0, meta.Parts-1, meta.Size); err != nil {
		return Image{}, err
	}
	if len(img.Data) != meta.Size {
		return Image{}, fmt.Errorf("store: image %s: %d bytes of %d", hash, len(img.Data), meta.Size)
	}
	return img, nil
}

// ImageBytes returns at most n bytes of the picture with hash from
// offset off on (fewer at its end), reading only the parts they are in.
func (s *Store) ImageBytes(ctx context.Context, hash string, off, n int) ([]byte, error) {
	if off < 0 || n <= 0 {
		return nil, fmt.Errorf("store: reading image %s: bytes %d+%d", hash, off, n)
	}
	first, last := off/ImagePartBytes, (off+n-1)/ImagePartBytes
	data, err := s.imageParts(ctx, hash, first, last, (last-first+1)*ImagePartBytes)
	if err != nil {
		return nil, err
	}
	data = data[min(len(data), off-first*ImagePartBytes):]
	return data[:min(len(data), n)], nil
}

// imageParts reads parts first to last of a picture, at most max bytes.
func (s *Store) imageParts(ctx context.Context, hash string, first, last, max int) ([]byte, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT part, bytes FROM mf_image_part WHERE hash = ? AND part BETWEEN ? AND ? ORDER BY part`, hash, first, last)
	if err != nil {
		return nil, fmt.Errorf("store: reading image %s: %w", hash, err)
	}
	defer rows.Close()
	data := make([]byte, 0, max)
	next := first
	for rows.Next() {
		var part int
		var chunk []byte
		if err := rows.Scan(&part, &chunk); err != nil {
			return nil, fmt.Errorf("store: reading image %s: %w", hash, err)
		}
		if part != next || len(data)+len(chunk) > max {
			return nil, fmt.Errorf("store: image %s: part %d out of place", hash, part)
		}
		data = append(data, chunk...)
		next++
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: reading image %s: %w", hash, err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("store: image %s: no parts %d to %d", hash, first, last)
	}
	return data, nil
}

// HasImage reports whether a picture with hash is stored.
func (s *Store) HasImage(ctx context.Context, hash string) (bool, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM mf_image WHERE hash = ?`, hash); err != nil {
		return false, fmt.Errorf("store: looking for image %s: %w", hash, err)
	}
	return n > 0, nil
}

// MaxPacket returns MySQL's max_allowed_packet (the largest statement or
// row the server takes or sends); on SQLite, which has no such limit, 0.
func (s *Store) MaxPacket(ctx context.Context) (int64, error) {
	if s.dialect != schema.MySQL {
		return 0, nil
	}
	var n int64
	if err := s.db.GetContext(ctx, &n, `SELECT @@max_allowed_packet`); err != nil {
		return 0, fmt.Errorf("store: reading max_allowed_packet: %w", err)
	}
	return n, nil
}

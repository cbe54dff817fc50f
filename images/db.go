package images

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Blob is a stored picture: what the database keeps of it.
type Blob struct {
	Hash   string // SHA-256 of Data, 64 hex digits
	Type   string // MIME type: image/png or image/jpeg
	Width  int
	Height int
	Size   int    // bytes
	Data   []byte // nil when DB.Image left them to be read piecemeal
}

// DB keeps pictures where every node reads them. Its methods are safe
// for concurrent use.
type DB interface {
	// PutImage stores b unless a picture with its hash is stored: the
	// same picture put twice, even at once, is kept once.
	PutImage(ctx context.Context, b Blob) error
	// Image returns the picture whose hash is hash; found is false when
	// there is none. Its Data is read only when Size is at most maxBytes.
	Image(ctx context.Context, hash string, maxBytes int) (b Blob, found bool, err error)
	// ImageBytes returns at most n bytes of a picture from offset off on.
	ImageBytes(ctx context.Context, hash string, off, n int) ([]byte, error)
	// HasImage reports whether a picture with hash is stored.
	HasImage(ctx context.Context, hash string) (bool, error)
}

// DefaultCacheBytes is Config.CacheBytes's default: 32 MiB.
const DefaultCacheBytes = 32 << 20

// wholeBytes is the largest picture read into memory whole when there is
// no cache; a larger one, or one too large for the cache, is read a
// piece at a time as it is sent, so serving it takes a piece's memory.
const wholeBytes = DefaultCacheBytes / 4

// pieceBytes is what one read of a large picture fetches: one part of
// the store's.
const pieceBytes = 512 << 10

// loadTimeout bounds one read of a picture from the database (shared by
// the requests waiting for it, so none of theirs is used).
const loadTimeout = 10 * time.Second

// Config configures a Store kept in a database.
type Config struct {
	// DB keeps the pictures.
	DB DB
	// Dir is the folder of pictures stored as files before: those the
	// database lacks are served from there (and Import copies them into
	// the database). Nothing is written there.
	Dir string
	// Limits bound what is accepted. Zero fields take the defaults.
	Limits Limits
	// CacheBytes bounds the memory of the pictures kept to be served
	// without a query, least recently served dropped first; a picture of
	// more than a quarter of it is not kept. 0 takes DefaultCacheBytes;
	// negative turns the cache off.
	CacheBytes int64
}

// Open returns a Store that keeps pictures in cfg.DB.
func Open(cfg Config) (*Store, error) {
	if cfg.DB == nil {
		return nil, fmt.Errorf("images: no database")
	}
	cfg.Limits.setDefaults()
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = DefaultCacheBytes
	}
	return &Store{dir: cfg.Dir, limits: cfg.Limits, db: cfg.DB, cache: newCache(cfg.CacheBytes)}, nil
}

// load returns the picture with hash from the cache or the database.
// Concurrent loads of one picture make one query; a caller whose ctx
// ends stops waiting for it.
func (s *Store) load(ctx context.Context, hash string) (Blob, bool, error) {
	if b, ok := s.cache.get(hash); ok {
		return b, true, nil
	}
	c := s.loads.start(hash, func() (Blob, bool, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
		defer cancel()
		max := wholeBytes
		if s.cache != nil {
			max = s.cache.maxItem
		}
		b, found, err := s.db.Image(lctx, hash, max)
		if err == nil && found && b.Data != nil {
			s.cache.add(b)
		}
		return b, found, err
	})
	select {
	case <-c.done:
		return c.b, c.found, c.err
	case <-ctx.Done():
		return Blob{}, false, ctx.Err()
	}
}

// dbReader reads a large picture from the database a piece at a time,
// for http.ServeContent (ranges included).
type dbReader struct {
	ctx      context.Context
	db       DB
	hash     string
	size     int
	off      int
	piece    []byte
	pieceOff int
}

func (r *dbReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.piece == nil || r.off < r.pieceOff || r.off >= r.pieceOff+len(r.piece) {
		start := r.off - r.off%pieceBytes
		piece, err := r.db.ImageBytes(r.ctx, r.hash, start, pieceBytes)
		if err != nil {
			return 0, err
		}
		if len(piece) == 0 || start+len(piece) <= r.off {
			return 0, io.ErrUnexpectedEOF
		}
		r.piece, r.pieceOff = piece, start
	}
	n := copy(p, r.piece[r.off-r.pieceOff:])
	r.off += n
	return n, nil
}

func (r *dbReader) Seek(offset int64, whence int) (int64, error) {
	var at int64
	switch whence {
	case io.SeekStart:
		at = offset
	case io.SeekCurrent:
		at = int64(r.off) + offset
	case io.SeekEnd:
		at = int64(r.size) + offset
	default:
		return 0, errors.New("images: bad whence")
	}
	if at < 0 {
		return 0, errors.New("images: seek before the start")
	}
	r.off = int(min(at, int64(r.size)))
	return at, nil
}

// Import copies into the database the pictures of the folder (pictures
// stored as files before) that it lacks, and returns how many it copied.
// Only files named <sha256>.<png|jpg> whose bytes have that hash and are
// a picture of that type are copied; the files are left in place.
func (s *Store) Import(ctx context.Context, log *slog.Logger) (int, error) {
	if s.db == nil || s.dir == "" {
		return 0, nil
	}
	entries, err := os.ReadDir(s.dir)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("images: reading %s: %w", s.dir, err)
	}
	n := 0
	for _, e := range entries {
		m := namePattern.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		has, err := s.db.HasImage(ctx, m[1])
		if err != nil {
			return n, err
		}
		if has {
			continue
		}
		b, err := readBlob(filepath.Join(s.dir, e.Name()), m)
		if err != nil {
			log.Warn("picture file not imported", "file", e.Name(), "err", err)
			continue
		}
		if err := s.db.PutImage(ctx, b); err != nil {
			return n, fmt.Errorf("images: importing %s: %w", e.Name(), err)
		}
		n++
	}
	return n, nil
}

// maxImportBytes bounds a file Import reads: far above any picture an
// upload makes.
const maxImportBytes = 256 << 20

// readBlob reads the picture file at path, named by m (namePattern's
// match), and checks that it is what its name says.
func readBlob(path string, m []string) (Blob, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Blob{}, err
	}
	if fi.Size() == 0 || fi.Size() > maxImportBytes {
		return Blob{}, fmt.Errorf("size %d bytes", fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Blob{}, err
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != m[1] {
		return Blob{}, fmt.Errorf("its bytes do not have the hash of its name")
	}
	want := map[string]string{"png": "png", "jpg": "jpeg"}[m[2]]
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || format != want || sniff(data) != want {
		return Blob{}, fmt.Errorf("not a %s picture", want)
	}
	return Blob{Hash: m[1], Type: mimeTypes[m[2]], Width: cfg.Width, Height: cfg.Height, Size: len(data), Data: data}, nil
}

// cache keeps recently served pictures up to a total of bytes, least
// recently served dropped first. A nil cache keeps nothing.
type cache struct {
	mu      sync.Mutex
	max     int64 // bytes in all
	maxItem int   // bytes of one picture
	size    int64
	order   *list.List // of Blob, most recent first
	items   map[string]*list.Element
}

func newCache(max int64) *cache {
	if max <= 0 {
		return nil
	}
	return &cache{max: max, maxItem: int(max / 4), order: list.New(), items: map[string]*list.Element{}}
}

func (c *cache) get(hash string) (Blob, bool) {
	if c == nil {
		return Blob{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[hash]
	if !ok {
		return Blob{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(Blob), true
}

func (c *cache) add(b Blob) {
	if c == nil || len(b.Data) > c.maxItem {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[b.Hash]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[b.Hash] = c.order.PushFront(b)
	c.size += int64(len(b.Data))
	for c.size > c.max {
		last := c.order.Back()
		old := c.order.Remove(last).(Blob)
		delete(c.items, old.Hash)
		c.size -= int64(len(old.Data))
	}
}

// bytes returns the bytes the cache holds and its number of pictures.
func (c *cache) bytes() (int64, int) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size, len(c.items)
}

// flight runs one load per key at a time; callers of a key being loaded
// wait for that load.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done  chan struct{}
	b     Blob
	found bool
	err   error
}

// start returns the load of key under way, or starts fn as it.
func (f *flight) start(key string, fn func() (Blob, bool, error)) *call {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.calls[key]; ok {
		return c
	}
	if f.calls == nil {
		f.calls = map[string]*call{}
	}
	c := &call{done: make(chan struct{})}
	f.calls[key] = c
	go func() {
		c.b, c.found, c.err = fn()
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	return c
}

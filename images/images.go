// Package images checks, re-encodes, stores and serves the pictures users
// upload (avatars, room covers).
//
// An upload is read whole up to a size limit, recognised by its content
// (never its name or Content-Type) as PNG, JPEG, GIF or WebP, and its
// dimensions are read from its header (image.DecodeConfig) before any
// pixel is decoded, so that a small file claiming a huge picture (a
// decompression bomb) is refused without allocating it. The picture is
// then decoded and encoded again, as PNG when the source was PNG, GIF or
// WebP (transparency kept; a GIF's first frame), as JPEG when it was
// JPEG: whatever else the file carried (EXIF and GPS metadata, comments,
// trailing bytes, a script hidden in a polyglot) is dropped. The result is
// stored under its SHA-256, so no name from the client ever reaches the
// file system or the database, and served with immutable caching headers.
//
// A Store made by New keeps pictures as files in one folder (one node
// alone). One made by Open keeps them in a database every node shares
// (DB), serves them through a bounded in-memory cache, and still serves
// the files of its folder that the database lacks (pictures from before).
package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/image/webp"
)

// Defaults of Limits.
const (
	DefaultMaxBytes  = 2 << 20  // 2 MiB
	DefaultMaxSide   = 4096     // pixels, either side
	DefaultMaxPixels = 16 << 20 // 16 Mpx
)

// Why an upload is refused.
var (
	// ErrTooLarge: the file is over Limits.MaxBytes.
	ErrTooLarge = errors.New("images: file too large")
	// ErrNotImage: the content is not a PNG, JPEG, GIF or WebP picture
	// (or is a broken one).
	ErrNotImage = errors.New("images: not a PNG, JPEG, GIF or WebP image")
	// ErrDimensions: the picture is wider, taller or has more pixels than
	// the limits allow (or claims to), or is empty.
	ErrDimensions = errors.New("images: image dimensions out of bounds")
)

// Limits bound what is accepted. Zero fields take the defaults.
type Limits struct {
	MaxBytes  int64 // size of the uploaded file
	MaxSide   int   // width and height each
	MaxPixels int   // width × height
}

func (l *Limits) setDefaults() {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultMaxSide
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
}

// Store keeps images in one folder, each named by the SHA-256 of its
// bytes and its format's extension, or in a database (see Open).
type Store struct {
	dir    string
	limits Limits
	db     DB     // nil: files in dir
	cache  *cache // with db: recently served pictures
	loads  flight // with db: one load per picture at a time
}

// New returns a Store over dir, which it creates if missing.
func New(dir string, limits Limits) (*Store, error) {
	limits.setDefaults()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("images: creating %s: %w", dir, err)
	}
	return &Store{dir: dir, limits: limits}, nil
}

// Limits returns the limits in effect, defaults applied.
func (s *Store) Limits() Limits { return s.limits }

// Image is a stored image.
type Image struct {
	Name   string // <sha256 hex>.<ext>: the file's name and the last part of its URL
	Type   string // its MIME type
	Width  int
	Height int
	Size   int // bytes stored
}

// Normalize reads one picture from r (at most Limits.MaxBytes; more is
// ErrTooLarge), checks it and encodes it again. It returns the new bytes,
// their extension ("png" or "jpg") and the picture's dimensions.
func (s *Store) Normalize(r io.Reader) (data []byte, ext string, w, h int, err error) {
	raw, err := io.ReadAll(io.LimitReader(r, s.limits.MaxBytes+1))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, "", 0, 0, ErrTooLarge
		}
		return nil, "", 0, 0, fmt.Errorf("images: reading upload: %w", err)
	}
	if int64(len(raw)) > s.limits.MaxBytes {
		return nil, "", 0, 0, ErrTooLarge
	}
	format := sniff(raw)
	if format == "" {
		return nil, "", 0, 0, ErrNotImage
	}
	dec := decoders[format]
	cfg, err := dec.config(bytes.NewReader(raw))
	if err != nil {
		return nil, "", 0, 0, ErrNotImage
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > s.limits.MaxSide || cfg.Height > s.limits.MaxSide ||
		int64(cfg.Width)*int64(cfg.Height) > int64(s.limits.MaxPixels) {
		return nil, "", 0, 0, fmt.Errorf("%w: %d×%d (at most %d a side, %d pixels)", ErrDimensions, cfg.Width, cfg.Height, s.limits.MaxSide, s.limits.MaxPixels)
	}
	img, err := dec.decode(bytes.NewReader(raw))
	if err != nil {
		return nil, "", 0, 0, ErrNotImage
	}
	b := img.Bounds()
	if b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		// The header and the pixels disagree: refuse rather than guess.
		return nil, "", 0, 0, ErrNotImage
	}
	var out bytes.Buffer
	if format == "jpeg" {
		ext = "jpg"
		err = jpeg.Encode(&out, img, &jpeg.Options{Quality: 90})
	} else {
		ext = "png"
		err = (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, img)
	}
	if err != nil {
		return nil, "", 0, 0, fmt.Errorf("images: encoding %s: %w", ext, err)
	}
	return out.Bytes(), ext, b.Dx(), b.Dy(), nil
}

// Save is SaveContext without a deadline.
func (s *Store) Save(r io.Reader) (Image, error) {
	return s.SaveContext(context.Background(), r)
}

// SaveContext normalizes the picture read from r (see Normalize) and
// stores it: in the database for a Store made by Open (ctx bounds the
// write), else as a file. Saving the same picture twice stores it once.
func (s *Store) SaveContext(ctx context.Context, r io.Reader) (Image, error) {
	data, ext, w, h, err := s.Normalize(r)
	if err != nil {
		return Image{}, err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	name := hash + "." + ext
	if s.db != nil {
		b := Blob{Hash: hash, Type: mimeTypes[ext], Width: w, Height: h, Size: len(data), Data: data}
		if err := s.db.PutImage(ctx, b); err != nil {
			return Image{}, fmt.Errorf("images: storing %s: %w", name, err)
		}
		s.cache.add(b)
	} else {
		path := filepath.Join(s.dir, name)
		if _, err := os.Stat(path); err != nil {
			if err := writeFile(s.dir, path, data); err != nil {
				return Image{}, err
			}
		}
	}
	return Image{Name: name, Type: mimeTypes[ext], Width: w, Height: h, Size: len(data)}, nil
}

// writeFile writes data to path through a temporary file in dir, so that
// a reader never sees half a picture.
func writeFile(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return fmt.Errorf("images: storing: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("images: storing: %w", err)
	}
	return nil
}

// namePattern is the only shape of name the handler opens.
var namePattern = regexp.MustCompile(`^([0-9a-f]{64})\.(png|jpg)$`)

var mimeTypes = map[string]string{"png": "image/png", "jpg": "image/jpeg"}

// Handler serves GET and HEAD /<name> (mount it under a prefix with
// http.StripPrefix): the stored image, with Cache-Control public,
// max-age a year, immutable (a name is its content's hash), and an ETag.
// With a database (Open) the picture comes from the cache or the
// database, else from the folder; a database that fails is 503 with
// Retry-After. Any other name is 404.
func (s *Store) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "images are read with GET", http.StatusMethodNotAllowed)
			return
		}
		m := namePattern.FindStringSubmatch(strings.TrimPrefix(r.URL.Path, "/"))
		if m == nil {
			http.NotFound(w, r)
			return
		}
		if s.db != nil {
			b, found, err := s.load(r.Context(), m[1])
			switch {
			case err != nil:
				w.Header().Set("Retry-After", "1")
				http.Error(w, "the picture cannot be read now: try again", http.StatusServiceUnavailable)
				return
			case found && b.Type != mimeTypes[m[2]]:
				http.NotFound(w, r) // the hash of a PNG named .jpg, or the reverse
				return
			case found && b.Data != nil:
				serve(w, r, m, bytes.NewReader(b.Data))
				return
			case found:
				serve(w, r, m, &dbReader{ctx: r.Context(), db: s.db, hash: m[1], size: b.Size})
				return
			}
			// Not in the database: a file from before, or nothing.
		}
		f, err := os.Open(filepath.Join(s.dir, m[0]))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		serve(w, r, m, f)
	})
}

// serve answers with the picture named by m (namePattern's match).
func serve(w http.ResponseWriter, r *http.Request, m []string, content io.ReadSeeker) {
	h := w.Header()
	h.Set("Content-Type", mimeTypes[m[2]])
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", `"`+m[1]+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	// ServeContent answers If-None-Match with 304 and ranges; the
	// modification time is left out (the ETag says it all).
	http.ServeContent(w, r, "", time.Time{}, content)
}

// decoder reads one format.
type decoder struct {
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var decoders = map[string]decoder{
	"png":  {png.DecodeConfig, png.Decode},
	"jpeg": {jpeg.DecodeConfig, jpeg.Decode},
	"gif":  {gif.DecodeConfig, gif.Decode}, // gif.Decode: the first frame only
	"webp": {webp.DecodeConfig, webp.Decode},
}

// sniff names the format by the file's first bytes, or "".
func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return "jpeg"
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return "gif"
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return "webp"
	}
	return ""
}

package images

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// memDB is a DB in memory that counts its reads and can fail.
type memDB struct {
	mu     sync.Mutex
	blobs  map[string]Blob
	reads  int
	pieces int // ImageBytes calls
	fail   error
}

func (m *memDB) PutImage(_ context.Context, b Blob) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if _, ok := m.blobs[b.Hash]; !ok {
		m.blobs[b.Hash] = Blob{Hash: b.Hash, Type: b.Type, Width: b.Width, Height: b.Height, Size: len(b.Data), Data: bytes.Clone(b.Data)}
	}
	return nil
}

func (m *memDB) Image(_ context.Context, hash string, maxBytes int) (Blob, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.fail != nil {
		return Blob{}, false, m.fail
	}
	b, ok := m.blobs[hash]
	if len(b.Data) > maxBytes {
		b.Data = nil
	}
	return b, ok, nil
}

func (m *memDB) ImageBytes(_ context.Context, hash string, off, n int) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pieces++
	b, ok := m.blobs[hash]
	if !ok || off >= len(b.Data) {
		return nil, errors.New("no such bytes")
	}
	return bytes.Clone(b.Data[off:min(len(b.Data), off+n)]), nil
}

func (m *memDB) HasImage(_ context.Context, hash string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.blobs[hash]
	return ok, nil
}

func (m *memDB) readCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

// pngOf is a w×h PNG with a gradient.
func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// get GETs path from h with the headers, and returns the response and body.
func get(h http.Handler, path string, header map[string]string) (*http.Response, []byte) {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// TestDBStore: a picture saved to a Store on a database is written there
// (no file), once however often it is saved, and served with the same
// headers as a file (immutable caching, ETag, 304); served again, it
// costs no query (the cache); its hash under the other extension is 404;
// a database that fails is 503 with Retry-After, not 404.
func TestDBStore(t *testing.T) {
	db := &memDB{blobs: map[string]Blob{}}
	dir := t.TempDir()
	s, err := Open(Config{DB: db, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	src := pngOf(t, 30, 20)
	img, err := s.SaveContext(context.Background(), bytes.NewReader(src))
	if err != nil || img.Type != "image/png" || img.Width != 30 || img.Height != 20 {
		t.Fatalf("save: %+v %v", img, err)
	}
	if _, err := s.Save(bytes.NewReader(src)); err != nil {
		t.Fatal(err)
	}
	if len(db.blobs) != 1 {
		t.Fatalf("%d pictures in the database, want 1", len(db.blobs))
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Fatalf("files written: %v", files)
	}
	stored := db.blobs[strings.TrimSuffix(img.Name, ".png")].Data
	h := s.Handler()

	// A fresh Store (another node): its first GET reads the database,
	// the next ones do not.
	other, _ := Open(Config{DB: db, Dir: t.TempDir()})
	oh := other.Handler()
	for i := range 3 {
		resp, body := get(oh, "/"+img.Name, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, stored) || resp.Header.Get("Content-Type") != "image/png" ||
			resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || resp.Header.Get("ETag") != `"`+strings.TrimSuffix(img.Name, ".png")+`"` ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != "default-src 'none'" {
			t.Fatalf("GET %d: %d %v, %d bytes", i, resp.StatusCode, resp.Header, len(body))
		}
	}
	if n := db.readCount(); n != 1 {
		t.Fatalf("3 GETs on a fresh store read the database %d times, want 1", n)
	}
	resp, _ := get(oh, "/"+img.Name, map[string]string{"If-None-Match": `"` + strings.TrimSuffix(img.Name, ".png") + `"`})
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("GET with the ETag: %d, want 304", resp.StatusCode)
	}
	// The saving store has it cached already.
	if resp, body := get(h, "/"+img.Name, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, stored) {
		t.Fatalf("GET on the saving store: %d", resp.StatusCode)
	}
	if n := db.readCount(); n != 1 {
		t.Fatalf("the saving store read the database: %d reads", n)
	}
	if resp, _ := get(oh, "/"+strings.TrimSuffix(img.Name, ".png")+".jpg", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the PNG's hash as .jpg: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(oh, "/"+strings.Repeat("ab", 32)+".png", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an unknown hash: %d, want 404", resp.StatusCode)
	}
	db.mu.Lock()
	db.fail = errors.New("the database is down")
	db.mu.Unlock()
	third, _ := Open(Config{DB: db, Dir: t.TempDir()})
	if resp, _ := get(third.Handler(), "/"+img.Name, nil); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("GET with the database down: %d, want 503 with Retry-After", resp.StatusCode)
	}
	if _, err := third.Save(bytes.NewReader(pngOf(t, 5, 5))); err == nil {
		t.Fatal("save with the database down: no error")
	}
}

// TestDBStoreCache: the cache holds at most its bytes, dropping the
// least recently served picture first, and keeps no picture of more than
// a quarter of it.
func TestDBStoreCache(t *testing.T) {
	c := newCache(1000)
	blob := func(name string, n int) Blob { return Blob{Hash: name, Data: make([]byte, n)} }
	c.add(blob("a", 250))
	c.add(blob("b", 250))
	c.add(blob("c", 250))
	c.add(blob("big", 251)) // over a quarter: not kept
	if _, ok := c.get("big"); ok {
		t.Fatal("a picture over a quarter of the cache was kept")
	}
	c.get("a") // a is now the most recent
	c.add(blob("d", 250))
	c.add(blob("e", 250)) // over 1000 bytes: b, the least recent, goes
	if _, ok := c.get("b"); ok {
		t.Fatal("the least recently served picture was kept")
	}
	for _, k := range []string{"a", "c", "d", "e"} {
		if _, ok := c.get(k); !ok {
			t.Fatalf("%s dropped", k)
		}
	}
	if size, n := c.bytes(); size != 1000 || n != 4 {
		t.Fatalf("cache holds %d bytes in %d pictures, want 1000 in 4", size, n)
	}
}

// TestDBStoreLargePicture: a picture too large for the cache is sent a
// piece at a time from the database, whole or by ranges, with the same
// headers, and is read from the database again on every GET.
func TestDBStoreLargePicture(t *testing.T) {
	data := make([]byte, 2*pieceBytes+12345)
	rand.Read(data)
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	db := &memDB{blobs: map[string]Blob{hash: {Hash: hash, Type: "image/png", Width: 1, Height: 1, Size: len(data), Data: data}}}
	s, err := Open(Config{DB: db, CacheBytes: 4 << 20}) // keeps pictures of 1 MiB at most
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for range 2 {
		resp, body := get(h, "/"+hash+".png", nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) || resp.Header.Get("ETag") != `"`+hash+`"` ||
			resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" || resp.Header.Get("Content-Length") != strconv.Itoa(len(data)) {
			t.Fatalf("GET: %d %v, %d bytes", resp.StatusCode, resp.Header, len(body))
		}
	}
	if db.reads != 2 || db.pieces != 6 {
		t.Fatalf("2 GETs: %d reads, %d pieces; want 2 and 6 (not cached, 3 pieces each)", db.reads, db.pieces)
	}
	from := pieceBytes - 10
	resp, body := get(h, "/"+hash+".png", map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", from, from+99)})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[from:from+100]) {
		t.Fatalf("a range across two pieces: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ := get(h, "/"+hash+".png", map[string]string{"If-None-Match": `"` + hash + `"`}); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("with the ETag: %d, want 304", resp.StatusCode)
	}
}

// TestDBStoreFilesFromBefore: a picture stored as a file in the folder
// before is served when the database lacks it, and Import copies it
// into the database (the file stays), so a node without the file serves
// it; a file whose bytes do not have its name's hash is not imported.
func TestDBStoreFilesFromBefore(t *testing.T) {
	dir := t.TempDir()
	old, err := New(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := old.Save(bytes.NewReader(pngOf(t, 12, 9)))
	if err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(filepath.Join(dir, img.Name))
	forged := strings.Repeat("cd", 32) + ".png"
	os.WriteFile(filepath.Join(dir, forged), file, 0o640)

	db := &memDB{blobs: map[string]Blob{}}
	s, err := Open(Config{DB: db, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := get(s.Handler(), "/"+img.Name, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, file) ||
		resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("GET of a file from before: %d, %d bytes", resp.StatusCode, len(body))
	}
	n, err := s.Import(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil || n != 1 {
		t.Fatalf("import: %d, %v; want 1", n, err)
	}
	sum := sha256.Sum256(file)
	b, ok := db.blobs[hex.EncodeToString(sum[:])]
	if !ok || b.Width != 12 || b.Height != 9 || b.Type != "image/png" || !bytes.Equal(b.Data, file) {
		t.Fatalf("imported: %v %s %d×%d", ok, b.Type, b.Width, b.Height)
	}
	if _, ok := db.blobs[strings.TrimSuffix(forged, ".png")]; ok {
		t.Fatal("a file whose bytes are not its name's hash was imported")
	}
	if _, err := os.Stat(filepath.Join(dir, img.Name)); err != nil {
		t.Fatalf("the file went: %v", err)
	}
	if n, err := s.Import(context.Background(), slog.New(slog.DiscardHandler)); err != nil || n != 0 {
		t.Fatalf("import again: %d, %v; want 0", n, err)
	}
	elsewhere, _ := Open(Config{DB: db, Dir: t.TempDir()})
	if resp, body := get(elsewhere.Handler(), "/"+img.Name, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, file) {
		t.Fatalf("GET on a node without the file: %d", resp.StatusCode)
	}
}

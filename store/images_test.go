package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"testing"

	"github.com/mofang-live/mofang/store"
)

// testImage is a picture-like blob of n random bytes, keyed by its hash.
func testImage(t *testing.T, n int) store.Image {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	sum := sha256.Sum256(data)
	return store.Image{Hash: hex.EncodeToString(sum[:]), Type: "image/png", Width: 640, Height: 480, Data: data}
}

// TestImages: a picture is stored once per hash and read back whole,
// small (one part), larger than a part, and larger than MariaDB's
// default max_allowed_packet (16 MiB); an unknown hash is ErrNotFound;
// eight uploads of one picture racing store one row, with its parts
// once; read bounded, the metadata comes without the bytes, which are
// read by ranges; MySQL's max_allowed_packet takes a part.
func TestImages(t *testing.T) {
	forEachDialect(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, n := range []int{100, store.ImagePartBytes, 2*store.ImagePartBytes + 1, 17 << 20} {
			img := testImage(t, n)
			if stored, err := s.PutImage(ctx, img); err != nil || !stored {
				t.Fatalf("%d bytes: stored %v, %v", n, stored, err)
			}
			if stored, err := s.PutImage(ctx, img); err != nil || stored {
				t.Fatalf("%d bytes again: stored %v, %v; want false, nil", n, stored, err)
			}
			got, err := s.ImageByHash(ctx, img.Hash, -1)
			if err != nil || got.Type != img.Type || got.Width != 640 || got.Height != 480 || got.Size != n || !bytes.Equal(got.Data, img.Data) {
				t.Fatalf("%d bytes read back: %d bytes %s %d×%d, %v", n, len(got.Data), got.Type, got.Width, got.Height, err)
			}
			// Over a bound: the metadata only, the bytes piecemeal.
			meta, err := s.ImageByHash(ctx, img.Hash, n-1)
			if err != nil || meta.Data != nil || meta.Size != n || meta.Type != img.Type {
				t.Fatalf("%d bytes, bounded read: %d bytes, size %d, %v", n, len(meta.Data), meta.Size, err)
			}
			for _, r := range [][2]int{{0, 1}, {0, n}, {n - 1, 10}, {n / 2, store.ImagePartBytes + 3}, {max(0, n-store.ImagePartBytes-5), store.ImagePartBytes}} {
				part, err := s.ImageBytes(ctx, img.Hash, r[0], r[1])
				if want := img.Data[r[0]:min(n, r[0]+r[1])]; err != nil || !bytes.Equal(part, want) {
					t.Fatalf("%d bytes: bytes %d+%d: %d bytes, %v; want %d", n, r[0], r[1], len(part), err, len(want))
				}
			}
			if has, err := s.HasImage(ctx, img.Hash); err != nil || !has {
				t.Fatalf("HasImage: %v %v", has, err)
			}
		}
		unknown := testImage(t, 10).Hash
		if _, err := s.ImageByHash(ctx, unknown, -1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an unknown hash: %v, want ErrNotFound", err)
		}
		if has, err := s.HasImage(ctx, unknown); err != nil || has {
			t.Fatalf("HasImage of an unknown hash: %v %v", has, err)
		}

		// Racing uploads of one picture (three parts).
		img := testImage(t, 2*store.ImagePartBytes+10)
		var wg sync.WaitGroup
		stored := make([]bool, 8)
		errs := make([]error, 8)
		for i := range stored {
			wg.Add(1)
			go func() {
				defer wg.Done()
				stored[i], errs[i] = s.PutImage(ctx, img)
			}()
		}
		wg.Wait()
		n := 0
		for i := range stored {
			if errs[i] != nil {
				t.Fatalf("racing upload %d: %v", i, errs[i])
			}
			if stored[i] {
				n++
			}
		}
		var rows, parts int
		s.DB().Get(&rows, "SELECT COUNT(*) FROM mf_image WHERE hash = ?", img.Hash)
		s.DB().Get(&parts, "SELECT COUNT(*) FROM mf_image_part WHERE hash = ?", img.Hash)
		if n != 1 || rows != 1 || parts != 3 {
			t.Fatalf("8 racing uploads: %d stored it, %d rows, %d parts; want 1, 1, 3", n, rows, parts)
		}
		if got, err := s.ImageByHash(ctx, img.Hash, -1); err != nil || !bytes.Equal(got.Data, img.Data) {
			t.Fatalf("after the race: %d bytes, %v", len(got.Data), err)
		}

		packet, err := s.MaxPacket(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Dialect() == "mysql" {
			t.Logf("max_allowed_packet: %d bytes", packet)
			if packet < 2<<20 {
				t.Fatalf("max_allowed_packet %d: less than 2 MiB", packet)
			}
		} else if packet != 0 {
			t.Fatalf("SQLite's max packet: %d, want 0", packet)
		}
	})
}

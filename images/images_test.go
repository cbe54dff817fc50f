package images

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	_ "image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestGIFAndWebP: a GIF and a WebP (testdata: from golang.org/x/image's
// own tests) are accepted and stored as PNG; the same picture twice is
// one file.
func TestGIFAndWebP(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p := image.NewPaletted(image.Rect(0, 0, 40, 30), palette.Plan9)
	p.Set(3, 4, color.RGBA{255, 0, 0, 255})
	var g bytes.Buffer
	if err := gif.Encode(&g, p, nil); err != nil {
		t.Fatal(err)
	}
	webp, err := os.ReadFile("testdata/blue-purple-pink.lossy.webp")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
	}{{"gif", g.Bytes()}, {"webp", webp}, {"gif again", g.Bytes()}} {
		img, err := s.Save(bytes.NewReader(c.data))
		if err != nil || img.Type != "image/png" || filepath.Ext(img.Name) != ".png" {
			t.Fatalf("%s: %+v, %v", c.name, img, err)
		}
		f, err := os.Open(filepath.Join(dir, img.Name))
		if err != nil {
			t.Fatal(err)
		}
		dec, format, err := image.Decode(f)
		f.Close()
		if err != nil || format != "png" || dec.Bounds().Dx() != img.Width || dec.Bounds().Dy() != img.Height {
			t.Fatalf("%s: stored %s, %v", c.name, format, err)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 2 {
		t.Fatalf("files: %v, want the GIF's and the WebP's", files)
	}
}

// TestGIFBomb: a GIF whose header claims a huge screen is refused before
// decoding.
func TestGIFBomb(t *testing.T) {
	s, err := New(t.TempDir(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b := []byte("GIF89a\x60\xea\x60\xea\x00\x00\x00,\x00\x00\x00\x00\x60\xea\x60\xea\x00\x02\x02D\x01\x00;") // 60000×60000
	if _, err := s.Save(bytes.NewReader(b)); !errors.Is(err, ErrDimensions) {
		t.Fatalf("GIF claiming 60000×60000: %v, want ErrDimensions", err)
	}
}

package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// sourceSums reads a sha256sum-style list: "<hex>  <path>" lines, by path.
func sourceSums(t *testing.T, list string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(list, "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || name == "" {
			t.Fatalf("dist/.sources.sha256 line %d is not \"<sha256>  <path>\": %q", i+1, line)
		}
		sums[name] = sum
	}
	return sums
}

// buildInputs hashes the files build.mjs reads, as it does: build.mjs,
// package.json, package-lock.json and every file under src/.
func buildInputs(t *testing.T) map[string]string {
	t.Helper()
	sums := map[string]string{}
	add := func(name string) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		sums[name] = hex.EncodeToString(s[:])
	}
	for _, name := range []string{"build.mjs", "package.json", "package-lock.json"} {
		add(name)
	}
	err := fs.WalkDir(os.DirFS("."), "src", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			add(p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// TestBundleUpToDate fails when the committed bundle (dist/, embedded in
// the binary) was not built from the sources in src/: someone changed a
// page, the build script or the npm lock file and did not run `make web`
// and commit dist/. Without it a plain `go build` would serve stale pages.
func TestBundleUpToDate(t *testing.T) {
	list, err := fs.ReadFile(dist, "dist/.sources.sha256")
	if err != nil {
		t.Fatalf("the embedded bundle has no list of its sources (run make web and commit cmd/mofang/web/dist): %v", err)
	}
	built, now := sourceSums(t, string(list)), buildInputs(t)
	var stale []string
	for name, sum := range now {
		switch b, ok := built[name]; {
		case !ok:
			stale = append(stale, name+" (new)")
		case b != sum:
			stale = append(stale, name+" (changed)")
		}
	}
	for name := range built {
		if _, ok := now[name]; !ok {
			stale = append(stale, name+" (removed)")
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		t.Fatalf("cmd/mofang/web/dist was built from other sources than these; run `make web` and commit dist/:\n  %s", strings.Join(stale, "\n  "))
	}
}

// assetRef finds the bundle's files named by index.html.
var assetRef = regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`)

// TestEmbeddedBundle checks the bundle compiled in: index.html, the
// script and the style sheet it names (served with their types), the
// gift images, and no stale files left in assets/ by an earlier build.
func TestEmbeddedBundle(t *testing.T) {
	h := Handler()
	w := serve(h, http.MethodGet, "/")
	body := w.Body.String()
	if w.Code != http.StatusOK || !strings.Contains(body, "<title>MoFang Live</title>") {
		t.Fatalf("GET /: %d %q", w.Code, body)
	}
	refs := map[string]bool{}
	types := map[string]string{}
	for _, m := range assetRef.FindAllStringSubmatch(body, -1) {
		refs[m[1]] = true
		w := serve(h, http.MethodGet, m[1])
		if w.Code != http.StatusOK || w.Body.Len() == 0 {
			t.Errorf("GET %s (named by index.html): %d, %d bytes", m[1], w.Code, w.Body.Len())
		}
		types[path.Ext(m[1])] = w.Header().Get("Content-Type")
	}
	if types[".js"] != "text/javascript; charset=utf-8" || types[".css"] != "text/css; charset=utf-8" {
		t.Errorf("index.html's assets: types %v, want one .js and one .css", types)
	}
	for _, p := range []string{"/favicon.svg", "/static/gift/flower.png", "/static/gift/heart.png", "/static/gift/rocket.png", "/static/gift/castle.png"} {
		if w := serve(h, http.MethodGet, p); w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", p, w.Code)
		}
	}
	for _, p := range []string{"/.sources.sha256", "/.gitkeep"} {
		if w := serve(h, http.MethodGet, p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404 (dot files are not served)", p, w.Code)
		}
	}
	assets, err := fs.ReadDir(dist, "dist/assets")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range assets {
		name := "/assets/" + e.Name()
		if !refs[name] && !refs[strings.TrimSuffix(name, ".LEGAL.txt")] {
			t.Errorf("%s is in the bundle but index.html does not name it (left by an earlier build?)", name)
		}
	}
}

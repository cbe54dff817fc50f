// Package web serves MoFang's pages: the register and log-in page, the
// room list, "my room" with its OBS settings and the live room, all built
// from src/ into dist/ by `make web` (npm ci && npm run build) and
// embedded in the binary. dist/ is committed, so building the command
// needs Go only.
//
// The pages talk to the service only through its public JSON-RPC API
// (POST / and the websocket on /) and play streams from the play URLs the
// API returns, so they double as an example for app developers. They
// route with the URL fragment (/#/rooms, /#/room/0001), so the handler
// owns only the files of the bundle: every other path is a 404, and paths
// such as /live/... stay the media engine's.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

// dist is the built bundle, committed so that a plain `go build` or `go
// install` serves the pages; `make web` rebuilds it. Its dot files
// (.gitkeep, .sources.sha256: the hashes of the sources it was built
// from) are not served.
//
//go:embed all:dist
var dist embed.FS

// Cache policies: index.html is revalidated on every load so a new binary
// takes effect at once; files under assets/ carry a content hash in their
// names and never change; other files (gift images, the icon) may be kept
// for an hour.
const (
	cacheIndex  = "no-cache"
	cacheHashed = "public, max-age=31536000, immutable"
	cacheOther  = "public, max-age=3600"
)

// contentSecurityPolicy lets the pages load only their own scripts and
// styles. Media (HTTP-FLV through mpegts.js) and API calls may go to
// another host or port, as the play URLs the API returns do; mpegts.js
// feeds the video element through a blob: URL.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: http: https:; media-src 'self' blob:; " +
	"connect-src 'self' http: https: ws: wss:; worker-src 'self' blob:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// contentTypes are the types of the bundle's files, independent of the
// machine's MIME tables.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".webp":        "image/webp",
	".ico":         "image/x-icon",
	".woff2":       "font/woff2",
	".txt":         "text/plain; charset=utf-8",
	".webmanifest": "application/manifest+json",
}

// notBuilt is the answer to GET / when the bundle has not been built.
const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>MoFang Live</title></head>
<body style="font-family:sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem">
<h1>MoFang Live</h1>
<p>The API is up, but this binary was built without its pages.
Run <code>make web</code> (or <code>make run</code>), which builds them with npm and embeds them, then start the service again.</p>
</body></html>
`

// file is one file of the bundle, read once.
type file struct {
	body  []byte
	ctype string
	etag  string
	cache string
}

// handler serves the files of the bundle.
type handler struct {
	files map[string]*file // by URL path, "/index.html" for "/"
}

// Handler returns the handler of the pages: GET and HEAD of the bundle's
// files, "/" being index.html. It answers 404 for other paths and 405 for
// other methods, so it is meant to be mounted for GETs without a
// websocket upgrade; POSTs and upgrades on / belong to the API.
func Handler() http.Handler {
	h, err := newHandler(dist)
	if err != nil {
		// The bundle is compiled in, so this is a build defect; serve
		// the "not built" page rather than fail the whole service.
		slog.Error("web: serving no pages", "err", err)
		return &handler{files: map[string]*file{}}
	}
	return h
}

// newHandler reads every file of fsys's dist folder.
func newHandler(fsys fs.FS) (*handler, error) {
	h := &handler{files: map[string]*file{}}
	err := fs.WalkDir(fsys, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		urlPath := strings.TrimPrefix(p, "dist")
		sum := sha256.Sum256(body)
		f := &file{
			body:  body,
			ctype: contentTypes[path.Ext(p)],
			etag:  `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
			cache: cacheOther,
		}
		if f.ctype == "" {
			f.ctype = "application/octet-stream"
		}
		switch {
		case urlPath == "/index.html":
			f.cache = cacheIndex
		case strings.HasPrefix(urlPath, "/assets/"):
			f.cache = cacheHashed
		}
		h.files[urlPath] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: reading the embedded bundle: %w", err)
	}
	return h, nil
}

var errNotFound = errors.New("not found")

// lookup returns the file for a URL path.
func (h *handler) lookup(urlPath string) (*file, error) {
	if urlPath == "/" {
		urlPath = "/index.html"
	}
	if f, ok := h.files[urlPath]; ok {
		return f, nil
	}
	return nil, errNotFound
}

// ServeHTTP serves one file of the bundle.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	f, err := h.lookup(r.URL.Path)
	if err != nil {
		if r.URL.Path == "/" || r.URL.Path == "/index.html" {
			hdr.Set("Content-Type", contentTypes[".html"])
			hdr.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			if r.Method == http.MethodGet {
				w.Write([]byte(notBuilt))
			}
			return
		}
		http.NotFound(w, r)
		return
	}
	hdr.Set("Content-Type", f.ctype)
	hdr.Set("Cache-Control", f.cache)
	hdr.Set("ETag", f.etag)
	if f.ctype == contentTypes[".html"] {
		hdr.Set("Content-Security-Policy", contentSecurityPolicy)
		hdr.Set("Referrer-Policy", "no-referrer")
	}
	// ServeContent answers If-None-Match with 304, ranges and HEAD.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}

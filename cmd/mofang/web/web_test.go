package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func serve(h http.Handler, method, path string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandler(t *testing.T) {
	h, err := newHandler(fstest.MapFS{
		"dist/.gitkeep":                  {},
		"dist/index.html":                {Data: []byte("<!doctype html><title>MoFang Live</title>")},
		"dist/assets/main-ABC123.js":     {Data: []byte("console.log(1)")},
		"dist/assets/main-ABC123.css":    {Data: []byte("body{}")},
		"dist/static/gift/flower.png":    {Data: []byte("\x89PNG")},
		"dist/favicon.svg":               {Data: []byte("<svg/>")},
		"dist/assets/main-ABC123.js.map": {Data: []byte("{}")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, ctype, cache string
	}{
		{"/", "text/html; charset=utf-8", "no-cache"},
		{"/index.html", "text/html; charset=utf-8", "no-cache"},
		{"/assets/main-ABC123.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/assets/main-ABC123.css", "text/css; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/static/gift/flower.png", "image/png", "public, max-age=3600"},
		{"/favicon.svg", "image/svg+xml", "public, max-age=3600"},
	} {
		w := serve(h, http.MethodGet, tc.path)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != tc.ctype || w.Header().Get("Cache-Control") != tc.cache {
			t.Errorf("GET %s: %d %q %q, want 200 %q %q", tc.path, w.Code, w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"), tc.ctype, tc.cache)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.path)
		}
		// A revalidation with the ETag is answered 304.
		if w2 := serve(h, http.MethodGet, tc.path, "If-None-Match", w.Header().Get("ETag")); w2.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", tc.path, w2.Code)
		}
	}
	if w := serve(h, http.MethodGet, "/"); !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("index.html without a CSP: %v", w.Header())
	}
	if w := serve(h, http.MethodHead, "/"); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD /: %d, %d bytes", w.Code, w.Body.Len())
	}
	for _, p := range []string{"/live/room_1.flv", "/rooms", "/.gitkeep", "/assets/nope.js"} {
		if w := serve(h, http.MethodGet, p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	if w := serve(h, http.MethodPost, "/"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", w.Code)
	}
}

func TestHandlerNotBuilt(t *testing.T) {
	h, err := newHandler(fstest.MapFS{"dist/.gitkeep": {}})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(h, http.MethodGet, "/")
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "make web") {
		t.Fatalf("GET / before a build: %d %q", w.Code, w.Body.String())
	}
	if w := serve(h, http.MethodGet, "/assets/main.js"); w.Code != http.StatusNotFound {
		t.Fatalf("GET an asset before a build: %d", w.Code)
	}
}

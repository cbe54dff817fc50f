package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mofang-live/mofang/images"
)

// openImages opens the folder of uploaded pictures, <data>/images, with
// the configured size cap.
func (c *config) openImages() (*images.Store, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(c.ImageMaxBytes), 10, 64)
	if err != nil || n < 1024 || n > 64<<20 {
		return nil, fmt.Errorf("image-max-bytes %q: want a number of bytes from 1024 to %d", c.ImageMaxBytes, 64<<20)
	}
	return images.New(filepath.Join(c.DataDir, "images"), images.Limits{MaxBytes: n})
}

// uploadRoutes adds picture uploads (POST /upload/avatar,
// /upload/cover?room_id=N), the pictures (GET /images/<sha256>.<ext>) and
// rooms' share links (GET /r/<room id>, which open the room's page).
func (s *service) uploadRoutes(mux *http.ServeMux) {
	if s.images != nil {
		mux.Handle("/upload/", s.api.UploadHandler(s.images, "/images"))
		mux.Handle("/images/", http.StripPrefix("/images", s.images.Handler()))
	}
	mux.HandleFunc("GET /r/{room}", shareRedirect)
}

// shareRedirect sends a room's share link, /r/<room id>, to the page of
// the room (#/room/<id>), which asks for the room's password if it has
// one and the login first if needed. Anything but digits is 404.
func shareRedirect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 || len(id) > 19 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/#/room/"+strconv.FormatInt(n, 10), http.StatusFound)
}

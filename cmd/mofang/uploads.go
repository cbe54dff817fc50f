package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mofang-live/mofang/images"
	"github.com/mofang-live/mofang/store"
)

// openImages opens the uploaded pictures, kept in the database st (so
// that every node of a cluster serves them), with the configured size
// cap. The pictures of <data>/images, where they were kept before, are
// served when the database lacks them (and imported: importImages).
// On MySQL it checks that max_allowed_packet takes a part of a picture.
func (c *config) openImages(ctx context.Context, st *store.Store) (*images.Store, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(c.ImageMaxBytes), 10, 64)
	if err != nil || n < 1024 || n > 64<<20 {
		return nil, fmt.Errorf("image-max-bytes %q: want a number of bytes from 1024 to %d", c.ImageMaxBytes, 64<<20)
	}
	packet, err := st.MaxPacket(ctx)
	if err != nil {
		return nil, err
	}
	if packet != 0 && packet < minPacket {
		return nil, fmt.Errorf("the database's max_allowed_packet is %d bytes: pictures need at least %d (SET GLOBAL max_allowed_packet = 16777216)", packet, minPacket)
	}
	return images.Open(images.Config{DB: imageRows{st}, Dir: filepath.Join(c.DataDir, "images"), Limits: images.Limits{MaxBytes: n}})
}

// minPacket is the least max_allowed_packet pictures need: one part of a
// picture and the statement around it.
const minPacket = store.ImagePartBytes + 64<<10

// importImages copies the pictures of <data>/images that the database
// lacks into it, once at start, so that every node serves them too.
func (s *service) importImages(ctx context.Context) {
	if s.images == nil {
		return
	}
	log := s.log.With("component", "images")
	n, err := s.images.Import(ctx, log)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Error("importing the pictures of the data folder", "imported", n, "err", err)
	case n > 0:
		log.Info("pictures of the data folder imported into the database", "imported", n)
	}
}

// imageRows keeps pictures in the store's mf_image tables.
type imageRows struct{ st *store.Store }

func (r imageRows) PutImage(ctx context.Context, b images.Blob) error {
	_, err := r.st.PutImage(ctx, store.Image{Hash: b.Hash, Type: b.Type, Width: b.Width, Height: b.Height, Data: b.Data})
	return err
}

func (r imageRows) Image(ctx context.Context, hash string, maxBytes int) (images.Blob, bool, error) {
	img, err := r.st.ImageByHash(ctx, hash, maxBytes)
	if errors.Is(err, store.ErrNotFound) {
		return images.Blob{}, false, nil
	}
	if err != nil {
		return images.Blob{}, false, err
	}
	return images.Blob{Hash: img.Hash, Type: img.Type, Width: img.Width, Height: img.Height, Size: img.Size, Data: img.Data}, true, nil
}

func (r imageRows) ImageBytes(ctx context.Context, hash string, off, n int) ([]byte, error) {
	return r.st.ImageBytes(ctx, hash, off, n)
}

func (r imageRows) HasImage(ctx context.Context, hash string) (bool, error) {
	return r.st.HasImage(ctx, hash)
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

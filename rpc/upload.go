package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mofang-live/mofang/images"
	"github.com/mofang-live/mofang/store"
)

// uploadRate is how often one user may upload a picture: each is decoded
// and encoded again, tens of milliseconds of a core for a large one.
var uploadRate = Rate{Every: 6 * time.Second, Burst: 10}

// multipartSlack is what a multipart body may carry beyond the picture:
// boundaries and part headers.
const multipartSlack = 16 << 10

// UploadData is the data of an upload's answer.
type UploadData struct {
	URL    string `json:"url"` // where the picture is served: /images/<sha256>.<png|jpg>
	Type   string `json:"type"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Size   int    `json:"size"`
}

// UploadHandler serves picture uploads, mounted at "/upload/":
//
//	POST /upload/avatar             the caller's avatar
//	POST /upload/cover?room_id=N    room N's cover: its owner only
//
// The token comes in Authorization as for the API. The body is the
// picture itself or a multipart/form-data form whose "file" part is; at
// most imgs' MaxBytes. Each answer is JSON like a method's result
// ({"errno", "errmsg", "data": UploadData}) with an HTTP status that says
// the same: 401 (1005), 403 (1006), 404 (1007), 409 (1009), 413 (1050),
// 415 (1051), 422 (1052), 400 (1053), 429 (1003), 500 (1054). On success
// the user's avatar or the room's cover is the picture's URL, served by
// imgs' Handler under prefix ("/images").
func (s *Server) UploadHandler(imgs *images.Store, prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Content-Disposition")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		kind := strings.TrimPrefix(r.URL.Path, "/upload/")
		if kind != "avatar" && kind != "cover" {
			uploadReply(w, http.StatusNotFound, failf(ErrnoBadUpload, "upload to /upload/avatar or /upload/cover?room_id=N"), nil)
			return
		}
		if r.Method != http.MethodPost {
			h.Set("Allow", "POST, OPTIONS")
			uploadReply(w, http.StatusMethodNotAllowed, failf(ErrnoBadUpload, "uploads are POSTs"), nil)
			return
		}
		ctx := withCaller(r.Context(), s.newCaller(r, false))
		if s.cfg.CallTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.cfg.CallTimeout)
			defer cancel()
		}
		status, st, data := s.upload(ctx, w, r, kind, imgs, prefix)
		if st.Errno == ErrnoOK {
			status = http.StatusOK
		}
		uploadReply(w, status, localized(ctx, st), data)
	})
}

// upload does the work of UploadHandler: who, where to, the picture.
func (s *Server) upload(ctx context.Context, w http.ResponseWriter, r *http.Request, kind string, imgs *images.Store, prefix string) (int, Status, *UploadData) {
	uid, st, err := s.loginID(ctx)
	if err != nil {
		return s.uploadFailed(ctx, err)
	}
	if st.Errno != ErrnoOK {
		return http.StatusUnauthorized, st, nil
	}
	var roomID int64
	if kind == "cover" {
		roomID, err = strconv.ParseInt(r.URL.Query().Get("room_id"), 10, 64)
		if err != nil || roomID <= 0 {
			return http.StatusBadRequest, failf(ErrnoInvalid, "room_id: a room's id is required"), nil
		}
		room, err := s.cfg.Store.RoomByID(ctx, roomID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return http.StatusNotFound, fail(ErrnoNoRoom), nil
		case err != nil:
			return s.uploadFailed(ctx, err)
		case room.UserID != uid:
			return http.StatusForbidden, fail(ErrnoForbidden), nil
		case room.Status == store.RoomStopped:
			return http.StatusConflict, fail(ErrnoRoomStopped), nil
		}
	}
	if !s.allowShared(ctx, "upload:"+strconv.FormatInt(uid, 10), uploadRate) {
		return http.StatusTooManyRequests, fail(ErrnoTooMany), nil
	}
	if msg := badFileName(r.Header.Get("Content-Disposition")); msg != "" {
		return http.StatusBadRequest, failf(ErrnoBadUpload, msg), nil
	}

	// The body must arrive within BodyTimeout, as an API POST's.
	rc := http.NewResponseController(w)
	if s.cfg.Limits.BodyTimeout > 0 && rc.SetReadDeadline(time.Now().Add(s.cfg.Limits.BodyTimeout)) == nil {
		defer rc.SetReadDeadline(time.Time{})
	}
	max := imgs.Limits().MaxBytes
	r.Body = http.MaxBytesReader(w, r.Body, max+multipartSlack)
	var body io.Reader = r.Body
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			return http.StatusBadRequest, failf(ErrnoBadUpload, "the multipart form cannot be read"), nil
		}
		for {
			part, err := mr.NextRawPart()
			if err != nil {
				if tooBig(err) {
					return http.StatusRequestEntityTooLarge, imageTooLarge(max), nil
				}
				return http.StatusBadRequest, failf(ErrnoBadUpload, `the form has no "file" part`), nil
			}
			if part.FormName() != "file" {
				continue
			}
			if msg := badFileName(part.Header.Get("Content-Disposition")); msg != "" {
				return http.StatusBadRequest, failf(ErrnoBadUpload, msg), nil
			}
			body = part
			break
		}
	}
	img, err := imgs.SaveContext(ctx, body)
	var ne net.Error
	switch {
	case errors.Is(err, images.ErrTooLarge), tooBig(err):
		return http.StatusRequestEntityTooLarge, imageTooLarge(max), nil
	case errors.Is(err, images.ErrNotImage):
		return http.StatusUnsupportedMediaType, fail(ErrnoNotImage), nil
	case errors.Is(err, images.ErrDimensions):
		l := imgs.Limits()
		return http.StatusUnprocessableEntity, failf(ErrnoImageSize,
			fmt.Sprintf("the image is too large: at most %d pixels wide and high and %d pixels in all", l.MaxSide, l.MaxPixels)), nil
	case errors.As(err, &ne) && ne.Timeout():
		w.Header().Set("Connection", "close")
		return http.StatusRequestTimeout, failf(ErrnoBadUpload, "the upload did not arrive in time"), nil
	case err != nil && (store.IsUnavailable(err) || ctx.Err() != nil):
		return http.StatusServiceUnavailable, fail(ErrnoUnavailable), nil
	case err != nil:
		s.log.Error("storing an uploaded image", "err", err)
		return http.StatusInternalServerError, fail(ErrnoImageNotStored), nil
	}
	url := prefix + "/" + img.Name
	if kind == "cover" {
		err = s.cfg.Store.SetRoomCover(ctx, roomID, url)
	} else {
		err = s.cfg.Store.SetUserAvatar(ctx, uid, url)
	}
	if err != nil {
		return s.uploadFailed(ctx, err)
	}
	return http.StatusOK, ok(), &UploadData{URL: url, Type: img.Type, Width: img.Width, Height: img.Height, Size: img.Size}
}

// uploadFailed answers a database failure: 503 with errno 1021 when it
// did not answer in time, else 500 (logged).
func (s *Server) uploadFailed(ctx context.Context, err error) (int, Status, *UploadData) {
	if store.IsUnavailable(err) || ctx.Err() != nil {
		return http.StatusServiceUnavailable, fail(ErrnoUnavailable), nil
	}
	s.log.Error("upload", "err", err)
	return http.StatusInternalServerError, fail(ErrnoImageNotStored), nil
}

func imageTooLarge(max int64) Status {
	return failf(ErrnoImageTooLarge, fmt.Sprintf("the image file is larger than %d bytes", max))
}

func tooBig(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// badFileName says why the file name of a Content-Disposition is refused:
// one with a path in it (a slash, a backslash, "..") or a control
// character. The name is never used (pictures are stored under their
// hash); a client that sends such a name is broken or probing.
func badFileName(disposition string) string {
	if disposition == "" {
		return ""
	}
	_, params, err := mime.ParseMediaType(disposition)
	if err != nil {
		return "the Content-Disposition header cannot be read"
	}
	name := params["filename"]
	if strings.ContainsAny(name, `/\`) || name == ".." || strings.HasPrefix(name, "..") {
		return "the file name must not contain a path"
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return "the file name must not contain control characters"
		}
	}
	return ""
}

// uploadReply writes an upload's answer.
func uploadReply(w http.ResponseWriter, status int, st Status, data *UploadData) {
	body, err := json.Marshal(Reply[UploadData]{Status: st, Data: data})
	if err != nil {
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, body)
}

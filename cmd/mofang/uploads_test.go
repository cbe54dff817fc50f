package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mofang-live/mofang/store"
)

// uploadAnswer is an upload's JSON answer.
type uploadAnswer struct {
	Errno  int    `json:"errno"`
	Errmsg string `json:"errmsg"`
	Data   *struct {
		URL    string `json:"url"`
		Type   string `json:"type"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
	} `json:"data"`
}

// upload POSTs body to path with the token and headers, and returns the
// HTTP status and the JSON answer.
func upload(t *testing.T, base, path, tok string, body []byte, header map[string]string) (int, uploadAnswer) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, strings.TrimSuffix(base, "/")+path, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "jwt "+tok)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a uploadAnswer
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("POST %s: %d, not JSON: %q", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, a
}

// multipartFile is a multipart/form-data body with one "file" part named
// filename, and its content type.
func multipartFile(t *testing.T, filename string, data []byte) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, filename))
	h.Set("Content-Type", "image/png")
	pw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	pw.Write(data)
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

// testPicture is a w×h picture with a gradient, so that its encoding is
// not trivially small.
func testPicture(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	return img
}

// bombPNG is a valid PNG signature and IHDR claiming w×h pixels, followed
// by a tiny IDAT: decoding it would allocate w×h×4 bytes.
func bombPNG(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// TestImageUploads: a PNG avatar (raw body) and a JPEG cover (multipart)
// are accepted, re-encoded, stored under their hash, served back
// decodable with a year's immutable caching and an ETag (304 when it
// matches), and shown: the user's avatar (User.info) and the room's cover
// (Live.stream.list, Live.stream.read). Refused, each with its HTTP
// status and errno: a text file named .png, an image over the size cap,
// a PNG header claiming 100000×100000 pixels, a file name with a path, no
// token, and another user's room.
func TestImageUploads(t *testing.T) {
	data := t.TempDir()
	api, stop := startServe(t, data, "--image-max-bytes", "300000")
	defer stop()
	roomID, _ := apiRoom(t, api, "alice", "Alice's room")
	tok := rpcCall(t, api, "", "User.login", map[string]any{"username": "alice", "password": "alice-password"})["data"].(map[string]any)["access_token"].(string)
	bob := rpcCall(t, api, "", "User.register", map[string]any{"username": "bob", "password": "bob-password"})["data"].(map[string]any)["access_token"].(string)

	// Avatar: a PNG as the raw body, with a JPEG Content-Type to show the
	// header is not believed.
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, testPicture(120, 80))
	code, a := upload(t, api, "/upload/avatar", tok, pngBuf.Bytes(), map[string]string{"Content-Type": "image/jpeg"})
	if code != http.StatusOK || a.Errno != 1000 || a.Data == nil || a.Data.Type != "image/png" || a.Data.Width != 120 || a.Data.Height != 80 ||
		!strings.HasPrefix(a.Data.URL, "/images/") || !strings.HasSuffix(a.Data.URL, ".png") {
		t.Fatalf("PNG avatar: %d %+v %+v", code, a, a.Data)
	}
	avatarURL := a.Data.URL
	checkServed(t, api, avatarURL, "image/png", 120, 80)
	if u := rpcCall(t, api, tok, "User.info", map[string]any{})["data"].(map[string]any); u["avatar"] != avatarURL {
		t.Fatalf("User.info avatar %q, want %q", u["avatar"], avatarURL)
	}

	// Cover: a JPEG with EXIF-like junk after it, in a multipart form.
	var jpgBuf bytes.Buffer
	jpeg.Encode(&jpgBuf, testPicture(320, 180), &jpeg.Options{Quality: 80})
	body, ctype := multipartFile(t, "cover photo.jpg", append(jpgBuf.Bytes(), []byte("<script>alert(1)</script>")...))
	code, a = upload(t, api, "/upload/cover?room_id="+roomID, tok, body, map[string]string{"Content-Type": ctype})
	if code != http.StatusOK || a.Errno != 1000 || a.Data == nil || a.Data.Type != "image/jpeg" || !strings.HasSuffix(a.Data.URL, ".jpg") {
		t.Fatalf("JPEG cover: %d %+v", code, a)
	}
	coverURL := a.Data.URL
	served := checkServed(t, api, coverURL, "image/jpeg", 320, 180)
	if bytes.Contains(served, []byte("<script>")) {
		t.Fatal("the served cover still carries the bytes after the JPEG")
	}
	list := rpcCall(t, api, tok, "Live.stream.list", map[string]any{})["stream_list"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["cover"] != coverURL {
		t.Fatalf("Live.stream.list cover: %v, want %q", list, coverURL)
	}
	if d := rpcCall(t, api, bob, "Live.stream.read", map[string]any{"room_id": roomID})["data"].(map[string]any); d["cover"] != coverURL {
		t.Fatalf("Live.stream.read cover %q, want %q", d["cover"], coverURL)
	}
	// Stored in the database by hash, nothing else there, and no file.
	db := "sqlite:" + filepath.Join(data, "mofang.db")
	if n := storedImages(t, db); n != 2 {
		t.Fatalf("pictures in the database: %d, want 2", n)
	}
	if files, _ := filepath.Glob(filepath.Join(data, "images", "*")); len(files) != 0 {
		t.Fatalf("files in <data>/images: %v", files)
	}

	big := make([]byte, 0, 400000)
	big = append(big, pngBuf.Bytes()...)
	big = append(big, make([]byte, 400000-len(big))...)
	refusals := []struct {
		name   string
		path   string
		tok    string
		body   []byte
		header map[string]string
		status int
		errno  int
	}{
		{"a text file named .png", "/upload/avatar", tok, nil, nil, http.StatusUnsupportedMediaType, 1051},
		{"over the size cap", "/upload/avatar", tok, big, nil, http.StatusRequestEntityTooLarge, 1050},
		{"a decompression bomb", "/upload/avatar", tok, bombPNG(100000, 100000), nil, http.StatusUnprocessableEntity, 1052},
		{"over the side limit", "/upload/avatar", tok, bombPNG(5000, 10), nil, http.StatusUnprocessableEntity, 1052},
		{"a path in the file name (multipart)", "/upload/avatar", tok, nil, nil, http.StatusBadRequest, 1053},
		{"a path in the file name (header)", "/upload/avatar", tok, pngBuf.Bytes(), map[string]string{"Content-Disposition": `attachment; filename="../../etc/x.png"`}, http.StatusBadRequest, 1053},
		{"no token", "/upload/avatar", "", pngBuf.Bytes(), nil, http.StatusUnauthorized, 1005},
		{"another user's room", "/upload/cover?room_id=" + roomID, bob, pngBuf.Bytes(), nil, http.StatusForbidden, 1006},
		{"no such room", "/upload/cover?room_id=999", tok, pngBuf.Bytes(), nil, http.StatusNotFound, 1007},
	}
	text, textType := multipartFile(t, "notes.png", []byte("just some text, not a picture\n"))
	refusals[0].body, refusals[0].header = text, map[string]string{"Content-Type": textType}
	withPath, pathType := multipartFile(t, `..\..\windows\evil.png`, pngBuf.Bytes())
	refusals[4].body, refusals[4].header = withPath, map[string]string{"Content-Type": pathType}
	for _, r := range refusals {
		code, a := upload(t, api, r.path, r.tok, r.body, r.header)
		if code != r.status || a.Errno != r.errno || a.Data != nil {
			t.Errorf("%s: HTTP %d errno %d (%s), want HTTP %d errno %d", r.name, code, a.Errno, a.Errmsg, r.status, r.errno)
		}
	}
	// Nothing refused was stored, and the avatar and cover are unchanged.
	if n := storedImages(t, db); n != 2 {
		t.Fatalf("pictures in the database after the refusals: %d, want 2", n)
	}
	if u := rpcCall(t, api, tok, "User.info", map[string]any{})["data"].(map[string]any); u["avatar"] != avatarURL {
		t.Fatalf("User.info avatar after the refusals %q", u["avatar"])
	}
	// Names that are not a stored hash are 404, whatever they hold.
	for _, p := range []string{"/images/../mofang.db", "/images/%2e%2e%2fmofang.db", "/images/" + strings.Repeat("0", 64) + ".png", "/images/jwt.secret"} {
		resp, err := http.Get(strings.TrimSuffix(api, "/") + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte("SQLite")) {
			t.Fatalf("GET %s served the database", p)
		}
		if resp.StatusCode != http.StatusNotFound && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

// storedImages counts the pictures (and checks their parts) in the
// database of dsn.
func storedImages(t *testing.T, dsn string) int {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n, parts, want int
	if err := st.DB().Get(&n, "SELECT COUNT(*) FROM mf_image"); err != nil {
		t.Fatal(err)
	}
	st.DB().Get(&parts, "SELECT COUNT(*) FROM mf_image_part")
	st.DB().Get(&want, "SELECT COALESCE(SUM(parts), 0) FROM mf_image")
	if parts != want {
		t.Fatalf("%d picture parts in the database, the pictures say %d", parts, want)
	}
	return n
}

// checkServed GETs a stored picture: served with its type, a year's
// immutable caching and an ETag that answers 304, and decodable at its
// size. It returns the bytes.
func checkServed(t *testing.T, base, url, ctype string, w, h int) []byte {
	t.Helper()
	full := strings.TrimSuffix(base, "/") + url
	resp, err := http.Get(full)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ctype {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
		t.Fatalf("GET %s: Cache-Control %q", url, cc)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatalf("GET %s: no ETag", url)
	}
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != w || img.Bounds().Dy() != h {
		t.Fatalf("GET %s: decoded %s %v, %v; want %d×%d", url, format, img, err, w, h)
	}
	req, _ := http.NewRequest(http.MethodGet, full, nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("GET %s with its ETag: %d, want 304", url, resp.StatusCode)
	}
	return b
}

// TestShareLink: /r/<room id> opens the room's page; anything else there
// is 404.
func TestShareLink(t *testing.T) {
	api, stop := startServe(t, t.TempDir())
	defer stop()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(strings.TrimSuffix(api, "/") + "/r/0007")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/#/room/7" {
		t.Fatalf("GET /r/0007: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/r/abc", "/r/-1", "/r/1/2"} {
		resp, err := client.Get(strings.TrimSuffix(api, "/") + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusFound {
			t.Errorf("GET %s redirects to %q", p, resp.Header.Get("Location"))
		}
	}
}

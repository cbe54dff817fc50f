package media

import (
	"bytes"
	"image/jpeg"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/thumb"
)

// getThumb GETs a thumbnail URL: its status, headers and body.
func getThumb(t *testing.T, u string) (*http.Response, []byte) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// TestThumbnails: H.264 published over RTMP and H.265 over RTSP each
// give, at /live/<name>/thumb.jpg, a JPEG of their key frame at the
// thumbnail height (never enlarged) that image/jpeg decodes; a stream
// that is not live is 404; the viewer count does not move.
func TestThumbnails(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{Thumbnails: thumb.Config{Height: 180}})
	srv := newFLVServer(t, e)
	if res, _ := getThumb(t, srv.URL+"/live/nobody/thumb.jpg"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("a stream not live: HTTP %d, want 404", res.StatusCode)
	}
	publishClip(t, rtmpURL(e, "/live/avc"))
	startFFmpeg(t, "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error",
		"-f", "rtsp", "-rtsp_transport", "tcp", rtspURL(e, "/live/hevc"))
	for _, c := range []struct {
		name string
		w, h int
	}{{"avc", 320, 180}, {"hevc", 240, 180}} {
		var res *http.Response
		var body []byte
		waitFor(t, 15*time.Second, c.name+" thumbnail", func() bool {
			res, body = getThumb(t, srv.URL+"/live/"+c.name+"/thumb.jpg")
			return res.StatusCode == http.StatusOK
		})
		if ct, cc := res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"); ct != "image/jpeg" || cc != "max-age=10" {
			t.Fatalf("%s: Content-Type %q, Cache-Control %q", c.name, ct, cc)
		}
		img, err := jpeg.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: not a JPEG: %v", c.name, err)
		}
		if b := img.Bounds(); b.Dx() != c.w || b.Dy() != c.h {
			t.Fatalf("%s: %dx%d, want %dx%d", c.name, b.Dx(), b.Dy(), c.w, c.h)
		}
		if st, _ := e.Stream(c.name); st.ReaderCount != 0 {
			t.Fatalf("%s: a thumbnail counted as %d viewers", c.name, st.ReaderCount)
		}
	}
	if s := e.ThumbnailStats(); s.Decodes != 2 {
		t.Fatalf("stats %+v, want 2 decodes", s)
	}
}

// TestThumbnailsWithoutFFmpeg: without ffmpeg a live stream's thumbnail
// is 503; thumbnails turned off are 404.
func TestThumbnailsWithoutFFmpeg(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{Thumbnails: thumb.Config{FFmpeg: filepath.Join(t.TempDir(), "none")}})
	srv := newFLVServer(t, e)
	publishClip(t, rtmpURL(e, "/live/s"))
	waitLive(t, e, "s")
	var res *http.Response
	waitFor(t, 10*time.Second, "a key frame", func() bool {
		res, _ = getThumb(t, srv.URL+"/live/s/thumb.jpg")
		return res.StatusCode != http.StatusNotFound
	})
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("without ffmpeg: HTTP %d, want 503", res.StatusCode)
	}

	off := newTestEngine(t, Config{DisableThumbnails: true})
	srvOff := newFLVServer(t, off)
	publishClip(t, rtmpURL(off, "/live/s"))
	waitLive(t, off, "s")
	if res, _ := getThumb(t, srvOff.URL+"/live/s/thumb.jpg"); res.StatusCode != http.StatusNotFound {
		t.Fatalf("thumbnails off: HTTP %d, want 404", res.StatusCode)
	}
}

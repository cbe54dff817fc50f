package hls

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/mofang-live/mofang/media/flv"
)

// serve mounts m under /live/test/ as the engine would.
func serve(t testing.TB, m *Muxer) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/live/test/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		m.Handle(w, r, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t testing.TB, url string) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("User-Agent", "test-player")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

func newMuxer(t testing.TB, cfg Config) *Muxer {
	t.Helper()
	m, err := NewMuxer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

var mediaURI = regexp.MustCompile(`(?m)^[^#\s][^\s]*_stream\.m3u8[^\s]*$`)

// mediaPlaylist fetches index.m3u8 and the leading media playlist.
func mediaPlaylist(t testing.TB, base string) (string, string) {
	t.Helper()
	code, mv, _ := get(t, base+"index.m3u8")
	if code != 200 {
		t.Fatalf("index.m3u8: %d %s", code, mv)
	}
	uri := mediaURI.FindString(mv)
	if uri == "" {
		t.Fatalf("no media playlist in %s", mv)
	}
	code, media, _ := get(t, base+uri)
	if code != 200 {
		t.Fatalf("%s: %d %s", uri, code, media)
	}
	return uri, media
}

func TestLowLatencyPlaylist(t *testing.T) {
	tags := clipTags(t)
	m := newMuxer(t, Config{})
	srv := serve(t, m)
	feed(t, m, tags, 0)
	if !m.Ready() {
		t.Fatal("muxer not ready after the clip")
	}
	base := srv.URL + "/live/test/"
	uri, media := mediaPlaylist(t, base)
	for _, want := range []string{"#EXT-X-PART:", "#EXT-X-PRELOAD-HINT:", "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES", "#EXT-X-PART-INF:", "#EXT-X-MAP:"} {
		if !strings.Contains(media, want) {
			t.Errorf("media playlist lacks %s:\n%s", want, media)
		}
	}
	if !strings.Contains(uri, SessionParam+"=") {
		t.Errorf("media playlist URI %q lacks the session parameter", uri)
	}

	var pl playlist.Media
	if err := pl.Unmarshal([]byte(media)); err != nil {
		t.Fatalf("parse playlist: %v", err)
	}
	real := 0
	for _, s := range pl.Segments {
		if s.Gap {
			continue
		}
		real++
		// GOP 30 at 30 fps: every segment is one GOP, 1 s; the first is
		// up to 2 frames shorter (its first DTS is its PTS, B-frames).
		if d := s.Duration.Seconds(); d > 1.05 || d < 0.95 && (real > 1 || d < 0.9) {
			t.Errorf("segment %s lasts %v, want 1s (GOP)", s.URI, s.Duration)
		}
		if strings.Contains(s.URI, "/") || !strings.Contains(s.URI, SessionParam+"=") {
			t.Errorf("segment URI %q", s.URI)
		}
	}
	if real < 4 {
		t.Errorf("%d segments, want >= 4:\n%s", real, media)
	}
	if pl.TargetDuration != 1 {
		t.Errorf("target duration %d, want 1", pl.TargetDuration)
	}

	// every listed part and segment is served
	for _, s := range pl.Segments {
		if s.Gap {
			continue
		}
		if code, _, h := get(t, base+s.URI); code != 200 || h.Get("Content-Type") != "video/mp4" {
			t.Errorf("%s: %d %s", s.URI, code, h.Get("Content-Type"))
		}
		for _, p := range s.Parts {
			if code, body, _ := get(t, base+p.URI); code != 200 || len(body) == 0 {
				t.Errorf("%s: %d", p.URI, code)
			}
		}
	}

	res := ffprobe(t, base+"index.m3u8")
	v, ok := res.Stream("video")
	if !ok || v.CodecName != "h264" || v.Width != 640 || v.Height != 360 {
		t.Errorf("ffprobe video: %+v (ok %v)", v, ok)
	}
	if a, ok := res.Stream("audio"); !ok || a.CodecName != "aac" {
		t.Errorf("ffprobe audio: %+v (ok %v)", a, ok)
	}
}

func TestVariants(t *testing.T) {
	tags := clipTags(t)
	for _, v := range []Variant{FMP4, MPEGTS} {
		t.Run(v.String(), func(t *testing.T) {
			m := newMuxer(t, Config{Variant: v, SegmentCount: 3})
			srv := serve(t, m)
			feed(t, m, tags, 0)
			base := srv.URL + "/live/test/"
			_, media := mediaPlaylist(t, base)
			if strings.Contains(media, "#EXT-X-PART") {
				t.Errorf("%v playlist has parts", v)
			}
			var pl playlist.Media
			if err := pl.Unmarshal([]byte(media)); err != nil {
				t.Fatal(err)
			}
			for i, s := range pl.Segments {
				if d := s.Duration.Seconds(); d > 1.05 || d < 0.95 && (i > 0 || d < 0.9) {
					t.Errorf("segment %s lasts %v", s.URI, s.Duration)
				}
			}
			res := ffprobe(t, base+"index.m3u8")
			if s, ok := res.Stream("video"); !ok || s.CodecName != "h264" || s.Width != 640 {
				t.Errorf("ffprobe video: %+v", s)
			}
			if s, ok := res.Stream("audio"); !ok || s.CodecName != "aac" {
				t.Errorf("ffprobe audio: %+v", s)
			}
			if code, _, _ := get(t, base+"index.m3u8?_HLS_msn=3"); code != 400 {
				t.Errorf("blocking reload on %v: %d, want 400", v, code)
			}
		})
	}
}

func TestReadyTimeout(t *testing.T) {
	m := newMuxer(t, Config{ReadyTimeout: 200 * time.Millisecond})
	srv := serve(t, m)
	start := time.Now()
	code, _, h := get(t, srv.URL+"/live/test/index.m3u8")
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("before the first segment: %d, want 503 with Retry-After", code)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("waited %v, want ~200ms", d)
	}

	// a request made before the first segment is answered once it exists
	done := make(chan int, 1)
	m2 := newMuxer(t, Config{ReadyTimeout: 10 * time.Second})
	srv2 := serve(t, m2)
	go func() {
		code, _, _ := get(t, srv2.URL+"/live/test/index.m3u8")
		done <- code
	}()
	time.Sleep(50 * time.Millisecond)
	feed(t, m2, clipTags(t), 0)
	select {
	case code := <-done:
		if code != 200 {
			t.Errorf("waiting request: %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting request not answered")
	}

	// Close releases waiters with 404
	m3 := newMuxer(t, Config{ReadyTimeout: 10 * time.Second})
	srv3 := serve(t, m3)
	go func() {
		code, _, _ := get(t, srv3.URL+"/live/test/index.m3u8")
		done <- code
	}()
	time.Sleep(50 * time.Millisecond)
	m3.Close()
	select {
	case code := <-done:
		if code != 404 {
			t.Errorf("after Close: %d, want 404", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the waiting request")
	}
}

func TestBadRequests(t *testing.T) {
	tags := clipTags(t)
	m := newMuxer(t, Config{})
	srv := serve(t, m)
	feed(t, m, tags, 0)
	base := srv.URL + "/live/test/"
	uri, _ := mediaPlaylist(t, base)
	mediaName := uri[:strings.IndexByte(uri, '?')]
	for _, tc := range []struct {
		file string
		want int
	}{
		{"nope.m3u8", 404},
		{"0123456789ab_video1_part99999.mp4", 404},
		{"0123456789ab_video1_seg1.mp4", 404},
		{"..", 400},
		{"..%2F..%2Fetc%2Fpasswd", 400},
		{"%2e%2e", 400},
		{"a%00b", 400},
		{mediaName + "?_HLS_msn=100000", 400},
		{mediaName + "?_HLS_msn=8&_HLS_part=1000", 400},
		{mediaName + "?_HLS_msn=x", 400},
		{mediaName + "?_HLS_part=1", 400},
	} {
		if code, body, _ := get(t, base+tc.file); code != tc.want {
			t.Errorf("%s: %d %q, want %d", tc.file, code, body, tc.want)
		}
	}
	// direct calls with names the router would not produce
	for _, name := range []string{"../index.m3u8", "/etc/passwd", "a/b", "", ".hidden", strings.Repeat("a", 200)} {
		rec := httptest.NewRecorder()
		m.Handle(rec, httptest.NewRequest(http.MethodGet, "/live/test/x", nil), name)
		if rec.Code != 400 {
			t.Errorf("Handle(%q): %d, want 400", name, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	m.Handle(rec, httptest.NewRequest(http.MethodPost, "/live/test/index.m3u8", nil), "index.m3u8")
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

// partHint returns the preload hint URI and the next MSN of a playlist.
func nextPart(t testing.TB, media string) (hint string, msn, part int) {
	t.Helper()
	var pl playlist.Media
	if err := pl.Unmarshal([]byte(media)); err != nil {
		t.Fatal(err)
	}
	return pl.PreloadHint.URI, pl.MediaSequence + len(pl.Segments), len(pl.Parts)
}

func TestBlockingReload(t *testing.T) {
	tags := clipTags(t)
	split := len(tags) / 2
	m := newMuxer(t, Config{})
	srv := serve(t, m)
	feed(t, m, tags[:split], 0)
	base := srv.URL + "/live/test/"
	uri, media := mediaPlaylist(t, base)
	hint, msn, part := nextPart(t, media)

	type result struct {
		code int
		body string
		at   time.Time
	}
	plCh, partCh := make(chan result, 1), make(chan result, 1)
	go func() {
		code, body, _ := get(t, base+uri+"&_HLS_msn="+strconv.Itoa(msn)+"&_HLS_part="+strconv.Itoa(part))
		plCh <- result{code, body, time.Now()}
	}()
	go func() {
		code, body, _ := get(t, base+hint)
		partCh <- result{code, body, time.Now()}
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-plCh:
		t.Fatal("blocking reload answered before the part exists")
	case <-partCh:
		t.Fatal("preload hint answered before the part exists")
	default:
	}
	fedAt := time.Now()
	feed(t, m, tags[split:], 0)
	for _, ch := range []chan result{plCh, partCh} {
		select {
		case r := <-ch:
			if r.code != 200 || len(r.body) == 0 {
				t.Errorf("blocked request: %d", r.code)
			}
			if r.at.Before(fedAt) {
				t.Error("answered before the feed")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("blocked request not answered")
		}
	}
}

// TestWaitersReleased: requests blocked on a part (a blocking reload and
// the preload-hinted part) are answered 404 when the generation they wait
// in ends, by a codec change or by Close, not left to the client's
// timeout (each keeps a viewer counted while it waits).
func TestWaitersReleased(t *testing.T) {
	tags := clipTags(t)
	small := clipTags(t, "-vf", "scale=320:180", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "copy")
	for _, end := range []string{"codec change", "close"} {
		t.Run(end, func(t *testing.T) {
			m := newMuxer(t, Config{})
			srv := serve(t, m)
			feed(t, m, tags, 0)
			base := srv.URL + "/live/test/"
			uri, media := mediaPlaylist(t, base)
			hint, msn, part := nextPart(t, media)
			codes := make(chan int, 2)
			for _, u := range []string{base + uri + "&_HLS_msn=" + strconv.Itoa(msn) + "&_HLS_part=" + strconv.Itoa(part), base + hint} {
				go func() {
					code, _, _ := get(t, u)
					codes <- code
				}()
			}
			time.Sleep(100 * time.Millisecond) // both waiting
			if end == "close" {
				m.Close()
			} else {
				feed(t, m, small[:3], 20000) // its headers only: the new generation not ready
			}
			for range 2 {
				select {
				case code := <-codes:
					if code != http.StatusNotFound {
						t.Errorf("a waiter got %d after the %s, want 404", code, end)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("a waiter still blocked 5 s after the %s", end)
				}
			}
		})
	}
}

func TestSessions(t *testing.T) {
	var opened, closed atomic.Int32
	var mu sync.Mutex
	var last *Session
	m := newMuxer(t, Config{
		SessionTimeout: 300 * time.Millisecond,
		OnSessionOpen:  func(s *Session) { opened.Add(1); mu.Lock(); last = s; mu.Unlock() },
		OnSessionClose: func(*Session) { closed.Add(1) },
	})
	srv := serve(t, m)
	feed(t, m, clipTags(t), 0)
	base := srv.URL + "/live/test/"
	uri, media := mediaPlaylist(t, base)
	_, _, _ = get(t, base+uri)
	var pl playlist.Media
	_ = pl.Unmarshal([]byte(media))
	_, _, _ = get(t, base+pl.Segments[len(pl.Segments)-1].URI)
	if n := m.Viewers(); n != 1 {
		t.Fatalf("viewers %d, want 1 (one player)", n)
	}
	// another player without a session parameter: keyed by IP + User-Agent
	_, _, _ = get(t, base+uri[:strings.IndexByte(uri, '?')])
	_, _, _ = get(t, base+uri[:strings.IndexByte(uri, '?')])
	if n := m.Viewers(); n != 2 {
		t.Fatalf("viewers %d, want 2", n)
	}
	mu.Lock()
	s := last
	mu.Unlock()
	if s.BytesSent() == 0 || s.Requests() != 2 || s.UserAgent != "test-player" {
		t.Errorf("session: bytes %d requests %d UA %q", s.BytesSent(), s.Requests(), s.UserAgent)
	}
	deadline := time.Now().Add(3 * time.Second)
	// the count drops before OnSessionClose runs: wait for both.
	for (m.Viewers() != 0 || closed.Load() != 2) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if m.Viewers() != 0 || closed.Load() != 2 || opened.Load() != 2 {
		t.Errorf("after timeout: viewers %d opened %d closed %d", m.Viewers(), opened.Load(), closed.Load())
	}
}

func TestRestart(t *testing.T) {
	tags := clipTags(t)
	m := newMuxer(t, Config{})
	srv := serve(t, m)
	feed(t, m, tags, 0)
	base := srv.URL + "/live/test/"
	uri, media := mediaPlaylist(t, base)
	var before playlist.Media
	_ = before.Unmarshal([]byte(media))

	// same encoder back within the grace, its clock restarted at 0 (the
	// engine rebases timestamps; the muxer copes with raw jumps too)
	feed(t, m, tags, 0)
	if g := m.Generations(); g != 1 {
		t.Fatalf("generations %d after a restart with the same codecs, want 1", g)
	}
	code, media, _ := get(t, base+uri)
	if code != 200 {
		t.Fatal(code)
	}
	var after playlist.Media
	_ = after.Unmarshal([]byte(media))
	if after.MediaSequence+len(after.Segments) < before.MediaSequence+len(before.Segments)+5 {
		t.Errorf("playlist did not continue: before %d+%d after %d+%d", before.MediaSequence, len(before.Segments), after.MediaSequence, len(after.Segments))
	}
	for _, s := range after.Segments {
		if !s.Gap && math.Abs(s.Duration.Seconds()-1) > 0.05 {
			t.Errorf("segment %s lasts %v across the restart", s.URI, s.Duration)
		}
	}

	// other codec parameters: a new generation
	small := clipTags(t, "-vf", "scale=320:180", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "copy")
	feed(t, m, small, 20000)
	if g := m.Generations(); g != 2 {
		t.Fatalf("generations %d after a codec change, want 2", g)
	}
	res := ffprobe(t, base+"index.m3u8")
	if v, ok := res.Stream("video"); !ok || v.Width != 320 || v.Height != 180 {
		t.Errorf("after the codec change ffprobe sees %+v", v)
	}
}

func TestAudioOnlyAndVideoOnly(t *testing.T) {
	tags := clipTags(t)
	var audio, video []flv.Tag
	for _, tag := range tags {
		switch tag.Type {
		case flv.TagAudio:
			audio = append(audio, tag)
		case flv.TagVideo:
			video = append(video, tag)
		}
	}
	for name, in := range map[string][]flv.Tag{"audio": audio, "video": video} {
		t.Run(name, func(t *testing.T) {
			m := newMuxer(t, Config{})
			srv := serve(t, m)
			feed(t, m, in, 0)
			res := ffprobe(t, srv.URL+"/live/test/index.m3u8")
			if len(res.Streams) != 1 || res.Streams[0].CodecType != name {
				t.Errorf("ffprobe: %+v", res.Streams)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"index.m3u8": true, "video1_stream.m3u8": true, "a1b2c3d4e5f6_video1_part12.mp4": true,
		"": false, ".": false, "..": false, "../x": false, "a/b": false, `a\b`: false, "a%2Fb": false, "a b": false, "a\x00": false,
	} {
		if ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v", name, !want)
		}
	}
}

func FuzzHandleName(f *testing.F) {
	for _, s := range []string{"index.m3u8", "../../etc/passwd", "a%2F..", "video1_stream.m3u8?_HLS_msn=1&_HLS_part=2", "x_part1.mp4"} {
		f.Add(s, "_HLS_msn=1&_HLS_part=3")
	}
	m, err := NewMuxer(Config{ReadyTimeout: time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	f.Fuzz(func(t *testing.T, name, query string) {
		ok := ValidName(name)
		if ok && (strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") || path.Clean(name) != name) {
			t.Fatalf("ValidName accepted %q", name)
		}
		req := httptest.NewRequest(http.MethodGet, "/live/test/x", nil)
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		m.Handle(rec, req, name)
		if !ok && rec.Code != 400 {
			t.Fatalf("Handle(%q) = %d, want 400", name, rec.Code)
		}
		if rec.Code == 200 {
			t.Fatalf("Handle(%q, %q) = 200 on an empty muxer", name, query)
		}
	})
}

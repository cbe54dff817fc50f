package record

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// fakeSink records the calls of a Recorder.
type fakeSink struct {
	mu      sync.Mutex
	next    int64
	started []Info
	ended   map[int64]Info
	err     error
}

func (s *fakeSink) Started(_ context.Context, info Info) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	s.next++
	s.started = append(s.started, info)
	return s.next, nil
}

func (s *fakeSink) Ended(_ context.Context, id int64, info Info) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended == nil {
		s.ended = map[int64]Info{}
	}
	s.ended[id] = info
}

// startedCount returns how many recordings were started.
func (s *fakeSink) startedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.started)
}

func (s *fakeSink) path(id int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 1 || id > int64(len(s.started)) {
		return "", ErrNotFound
	}
	return s.started[id-1].Path, nil
}

func closeRec(t testing.TB, rec *Recording) Info {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := rec.Close(ctx)
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	return info
}

func newRecorder(t testing.TB, cfg Config) (*Recorder, *fakeSink) {
	t.Helper()
	sink := &fakeSink{}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Sink == nil {
		cfg.Sink = sink
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, sink
}

func serveRecords(t testing.TB, r *Recorder, sink *fakeSink) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/record/", http.StripPrefix("/record", r.Handler(func(_ *http.Request, id int64) (string, error) {
		return sink.path(id)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestRecordClip(t *testing.T) {
	tags := clipTags(t)
	r, sink := newRecorder(t, Config{SegmentDuration: 2 * time.Second})
	rec := r.Start("room 1/../x")
	feed(rec, tags, 0)
	info := closeRec(t, rec)

	if info.Status != StatusDone || info.Error != "" {
		t.Fatalf("status %s %q", info.Status, info.Error)
	}
	if info.VideoCodec != "h264" || info.AudioCodec != "aac" || info.Width != 640 || info.Height != 360 {
		t.Errorf("info: %+v", info)
	}
	if !near(info.Duration.Seconds(), 6, 1) || info.Segments != 3 {
		t.Errorf("duration %v segments %d, want ~6s in 3 segments", info.Duration, info.Segments)
	}
	if !ValidPath(info.Path) || !strings.HasPrefix(info.Path, "room_1____x/") {
		t.Errorf("path %q", info.Path)
	}
	var size int64
	entries, _ := os.ReadDir(filepath.Join(r.dir, info.Path))
	for _, e := range entries {
		fi, _ := e.Info()
		if strings.HasSuffix(e.Name(), ".mp4") || strings.HasSuffix(e.Name(), ".m4s") {
			size += fi.Size()
		}
	}
	if info.Size != size || size == 0 {
		t.Errorf("size %d, files %d", info.Size, size)
	}
	if len(sink.started) != 1 || sink.ended[1].Status != StatusDone || sink.ended[1].Duration != info.Duration {
		t.Errorf("sink: started %+v ended %+v", sink.started, sink.ended)
	}
	if s := sink.started[0]; s.VideoCodec != "h264" || s.Width != 640 || s.Status != StatusRecording {
		t.Errorf("Started info %+v", s)
	}

	srv := serveRecords(t, r, sink)
	pl := ffprobe(t, srv.URL+"/record/1/index.m3u8")
	checkProbe(t, "VOD HLS", pl, info.Duration.Seconds())
	mp4 := ffprobe(t, srv.URL+"/record/1.mp4")
	checkProbe(t, "MP4", mp4, info.Duration.Seconds())

	// Range requests on the MP4
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/record/1.mp4", nil)
	req.Header.Set("Range", "bytes=4-11")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || string(b) != "ftypiso5" && !strings.HasPrefix(string(b), "ftyp") {
		t.Errorf("range: %d %q", res.StatusCode, b)
	}
	if res.Header.Get("Content-Range") != "bytes 4-11/"+strconv.FormatInt(size, 10) {
		t.Errorf("Content-Range %q, size %d", res.Header.Get("Content-Range"), size)
	}
}

func checkProbe(t *testing.T, what string, p mediatest.ProbeResult, want float64) {
	t.Helper()
	v, ok := p.Stream("video")
	if !ok || v.CodecName != "h264" || v.Width != 640 || v.Height != 360 {
		t.Errorf("%s video: %+v", what, v)
	}
	if a, ok := p.Stream("audio"); !ok || a.CodecName != "aac" {
		t.Errorf("%s audio: %+v", what, a)
	}
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	// within one GOP (1 s) of the truth (6 s) and of the reported duration
	if err != nil || !near(d, 6, 1) || !near(d, want, 1) {
		t.Errorf("%s duration %q, want ~6s (reported %.3f)", what, p.Format.Duration, want)
	}
}

// faultyFS fails writes with ENOSPC once limit bytes were written.
type faultyFS struct {
	FS
	mu      sync.Mutex
	written int64
	limit   int64
	block   chan struct{} // if not nil, writes wait on it
}

type faultyFile struct {
	io.WriteCloser
	fs *faultyFS
}

func (f *faultyFS) Create(name string) (io.WriteCloser, error) {
	w, err := f.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{w, f}, nil
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if f.fs.block != nil {
		<-f.fs.block
	}
	f.fs.mu.Lock()
	room := f.fs.limit - f.fs.written
	n := int64(len(p))
	if n > room {
		n = max(room, 0)
	}
	f.fs.written += n
	f.fs.mu.Unlock()
	k, err := f.WriteCloser.Write(p[:n])
	if err == nil && k < len(p) {
		err = &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	}
	return k, err
}

func TestRecordDiskFull(t *testing.T) {
	tags := clipTags(t)
	dir := t.TempDir()
	d, err := OpenDirFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ffs := &faultyFS{FS: d, limit: 150 << 10}
	r, sink := newRecorder(t, Config{Dir: dir, FS: ffs, SegmentDuration: time.Second})
	rec := r.Start("full")
	start := time.Now()
	feed(rec, tags, 0)
	if el := time.Since(start); el > time.Second {
		t.Errorf("feeding took %v", el)
	}
	select {
	case <-rec.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("recording did not stop on a write error")
	}
	info := closeRec(t, rec)
	if info.Status != StatusFailed || info.Error != "the disk is full" {
		t.Fatalf("info %+v", info)
	}
	if !errors.Is(rec.Err(), syscall.ENOSPC) {
		t.Errorf("Err() = %v", rec.Err())
	}
	if e := sink.ended[1]; e.Status != StatusFailed || e.Error == "" {
		t.Errorf("sink ended %+v", sink.ended)
	}
	// files kept; the playlist lists the complete segments
	pl, err := os.ReadFile(filepath.Join(dir, info.Path, "index.m3u8"))
	if err != nil {
		t.Fatalf("playlist: %v", err)
	}
	if n := strings.Count(string(pl), ".m4s"); n != info.Segments || n == 0 {
		t.Errorf("playlist lists %d segments, info %d:\n%s", n, info.Segments, pl)
	}
	if _, err := os.Stat(filepath.Join(dir, info.Path, "init.mp4")); err != nil {
		t.Error(err)
	}
	// packets after the failure are dropped without blocking
	feed(rec, tags, 7000)
}

func TestRecordFellBehind(t *testing.T) {
	tags := clipTags(t)
	dir := t.TempDir()
	d, _ := OpenDirFS(dir)
	defer d.Close()
	ffs := &faultyFS{FS: d, limit: 1 << 40, block: make(chan struct{})}
	r, _ := newRecorder(t, Config{Dir: dir, FS: ffs, QueuePackets: 16})
	rec := r.Start("slow")
	start := time.Now()
	feed(rec, tags, 0)
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("a stuck disk slowed the feed: %v", el)
	}
	close(ffs.block)
	info := closeRec(t, rec)
	if info.Status != StatusFailed || !strings.Contains(info.Error, "fell behind") {
		t.Errorf("info %+v", info)
	}
}

func TestRecordResume(t *testing.T) {
	tags := clipTags(t)
	r, sink := newRecorder(t, Config{SegmentDuration: 2 * time.Second})
	rec := r.Start("resume")
	feed(rec, tags, 0)
	// the publisher comes back within the grace, clock restarted
	feed(rec, tags, 0)
	waitFor(t, func() bool { return rec.Info().Duration > 8*time.Second })
	if n := sink.startedCount(); n != 1 {
		t.Fatalf("%d recordings, want 1", n)
	}
	// a different picture size ends the recording and starts another
	small := clipTags(t, "-vf", "scale=320:180", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "copy")
	feed(rec, small, 0)
	info := closeRec(t, rec)
	sink.mu.Lock()
	nStarted, nEnded, first, second := len(sink.started), len(sink.ended), sink.ended[1], sink.ended[2]
	sink.mu.Unlock()
	if nStarted != 2 || nEnded != 2 {
		t.Fatalf("started %d ended %d, want 2", nStarted, nEnded)
	}
	if first.Status != StatusDone || !near(first.Duration.Seconds(), 12, 1) {
		t.Errorf("first recording %+v, want ~12s", first)
	}
	if info.Width != 320 || !near(info.Duration.Seconds(), 6, 1) || info != second {
		t.Errorf("second recording %+v", info)
	}
	srv := serveRecords(t, r, sink)
	p := ffprobe(t, srv.URL+"/record/1.mp4")
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	if !near(d, 12, 1) {
		t.Errorf("resumed MP4 lasts %v", d)
	}
}

func TestSinkRefuses(t *testing.T) {
	dir := t.TempDir()
	sink := &fakeSink{err: errors.New("db down")}
	r, _ := newRecorder(t, Config{Dir: dir, Sink: sink})
	rec := r.Start("x")
	feed(rec, clipTags(t), 0)
	info := closeRec(t, rec)
	if info.Status != StatusFailed || info.Error != "the recording could not be registered" || !strings.Contains(rec.Err().Error(), "db down") {
		t.Errorf("info %+v, err %v", info, rec.Err())
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "x")); len(entries) != 0 {
		t.Errorf("files left: %v", entries)
	}
}

func TestHandlerTraversal(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "records")
	r, sink := newRecorder(t, Config{Dir: dir})
	rec := r.Start("a")
	feed(rec, clipTags(t)[:200], 0)
	info := closeRec(t, rec)

	secret := filepath.Join(base, "secret")
	if err := os.MkdirAll(secret, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(secret, "index.m3u8"), []byte("#EXTM3U\nSECRET\n"), 0o644)
	os.WriteFile(filepath.Join(secret, "init.mp4"), []byte("SECRET"), 0o644)
	// a segment that is a symlink to a file outside, a recording dir that
	// is a symlink to a dir outside
	recDir := filepath.Join(dir, info.Path)
	if err := os.Symlink(filepath.Join(secret, "init.mp4"), filepath.Join(recDir, "seg09999.m4s")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "a", "evil")); err != nil {
		t.Fatal(err)
	}

	paths := map[int64]string{1: info.Path, 2: "a/evil", 3: "../secret", 4: secret, 5: "a/../../secret", 6: "a/./evil"}
	h := r.Handler(func(_ *http.Request, id int64) (string, error) {
		switch id {
		case 7:
			return "", ErrForbidden
		case 8:
			return "", errors.New("boom")
		}
		if p, ok := paths[id]; ok {
			return p, nil
		}
		return "", ErrNotFound
	})
	for _, tc := range []struct {
		url  string
		want int
	}{
		{"/1/index.m3u8", 200},
		{"/1/init.mp4", 200},
		{"/1/seg00001.m4s", 200},
		{"/1.mp4", 200},
		{"/1/seg09999.m4s", 404}, // symlink out of the root
		{"/1/seg00099.m4s", 404},
		{"/2/index.m3u8", 404}, // symlinked recording dir
		{"/2.mp4", 404},
		{"/3/index.m3u8", 404},
		{"/4/init.mp4", 404},
		{"/5/init.mp4", 404},
		{"/6/init.mp4", 404},
		{"/7/index.m3u8", 403},
		{"/8/index.m3u8", 500},
		{"/9/index.m3u8", 404},
		{"/1/../3/index.m3u8", 400},
		{"/1/..%2F..%2Fsecret%2Finit.mp4", 400},
		{"/1%2Findex.m3u8", 400},
		{"/1/%2e%2e/init.mp4", 400},
		{"/1/secret", 400},
		{"/1//etc/passwd", 400},
		{"/1/index.m3u8/", 400},
		{"/01/index.m3u8", 400},
		{"/-1/index.m3u8", 400},
		{"/1", 400},
		{"/", 400},
		{"/1.mp4.mp4", 400},
		{"/99999999999999999999.mp4", 400},
		{"/1/init.mp4\\..", 400},
	} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		u := *req.URL
		u.RawPath = ""
		if p, err := pathUnescape(tc.url); err == nil {
			u.Path = p
			if p != tc.url {
				u.RawPath = tc.url
			}
		}
		req.URL = &u
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.url, rec.Code, tc.want)
		}
		if strings.Contains(rec.Body.String(), "SECRET") {
			t.Errorf("%s: served a file outside the recordings", tc.url)
		}
	}

	// through a real server too (the client and mux clean some paths)
	srv := serveRecords(t, r, sink)
	for _, u := range []string{"/record/1/..%2F..%2F..%2Fsecret%2Finit.mp4", "/record/1/%2e%2e%2f%2e%2e%2fsecret/init.mp4"} {
		res, err := http.Get(srv.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode < 400 || res.StatusCode >= 500 || strings.Contains(string(b), "SECRET") {
			t.Errorf("%s: %d %q", u, res.StatusCode, b)
		}
	}

	// Remove: refused outside; a symlink is removed, not its target
	for _, p := range []string{"", "..", "../secret", secret, "a/../../secret", "a/./b", `a\..\b`} {
		if err := r.Remove(p); err == nil {
			t.Errorf("Remove(%q) accepted", p)
		}
	}
	if err := r.Remove("a/evil"); err != nil {
		t.Errorf("Remove(symlink): %v", err)
	}
	if _, err := os.Stat(filepath.Join(secret, "init.mp4")); err != nil {
		t.Errorf("Remove followed a symlink: %v", err)
	}
	if err := r.Remove(info.Path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(recDir); !os.IsNotExist(err) {
		t.Errorf("recording still there: %v", err)
	}
}

func pathUnescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", err
			}
			b.WriteByte(byte(v))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

func FuzzRequestPath(f *testing.F) {
	for _, s := range []string{"/1/index.m3u8", "/12.mp4", "/1/seg00001.m4s", "/1/../x", "/1/%2e%2e", "//1", "/1/init.mp4/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		id, file, ok := parseRequestPath(p)
		if !ok {
			return
		}
		if id <= 0 {
			t.Fatalf("%q: id %d", p, id)
		}
		if file != "" && (!validFile(file) || strings.ContainsAny(file, "/\\") || file != path.Base(file) || !filepath.IsLocal(file)) {
			t.Fatalf("%q: file %q", p, file)
		}
	})
}

func FuzzValidPath(f *testing.F) {
	for _, s := range []string{"a/20261121-153000-abcdef", "..", "a/../b", "/etc", "a//b", "a/.b", `a\b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !ValidPath(p) {
			return
		}
		if !filepath.IsLocal(p) || path.IsAbs(p) || strings.Contains(p, "..") && slicesContains(strings.Split(p, "/"), "..") || strings.ContainsAny(p, "\\\x00") {
			t.Fatalf("ValidPath accepted %q", p)
		}
	})
}

func slicesContains(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}

// TestRecordShortOneTrack: a video-only stream that ends before the probe
// for an audio track is over is recorded, not dropped with the packets
// held while the audio was awaited.
func TestRecordShortOneTrack(t *testing.T) {
	tags := clipTags(t, "-an", "-c:v", "copy", "-t", "2")
	r, sink := newRecorder(t, Config{})
	rec := r.Start("short")
	feed(rec, tags, 0)
	info := closeRec(t, rec)
	if info.Status != StatusDone || info.VideoCodec != "h264" || info.AudioCodec != "" || !near(info.Duration.Seconds(), 2, 0.5) {
		t.Fatalf("recording %+v, want a done 2 s h264 recording", info)
	}
	if n := sink.startedCount(); n != 1 {
		t.Fatalf("%d recordings started, want 1", n)
	}
}

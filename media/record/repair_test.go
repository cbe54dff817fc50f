package record

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// settle waits until the writer has written every packet queued so far:
// the queue is empty and the figures stay put.
func settle(t *testing.T, rec *Recording) Info {
	t.Helper()
	waitFor(t, func() bool { return len(rec.queue) == 0 })
	prev, stable := rec.Info(), 0
	deadline := time.Now().Add(5 * time.Second)
	for stable < 5 {
		if time.Now().After(deadline) {
			t.Fatal("the recording's figures do not settle")
		}
		time.Sleep(20 * time.Millisecond)
		cur := rec.Info()
		if cur.Size == prev.Size && cur.Duration == prev.Duration {
			stable++
		} else {
			stable = 0
		}
		prev = cur
	}
	return prev
}

// filesSize is the size of the recording's media files on disk.
func filesSize(t *testing.T, dir string) int64 {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".mp4") || strings.HasSuffix(e.Name(), ".m4s") {
			fi, _ := e.Info()
			n += fi.Size()
		}
	}
	return n
}

// TestRepairAfterKill: the server is killed while recording (the files on
// disk are what the writer had written, nothing finalized, the last
// fragment torn); Repair at the next start cuts the torn bytes, ends the
// playlist and measures the recording: duration and size as written, and
// ffprobe plays the replay to its end.
func TestRepairAfterKill(t *testing.T) {
	tags := clipTags(t)
	r, _ := newRecorder(t, Config{SegmentDuration: 2 * time.Second})
	rec := r.Start("killed")
	feed(rec, tags, 0)
	live := settle(t, rec)
	if live.Status != StatusRecording || live.Duration < 4*time.Second || live.Segments != 2 {
		t.Fatalf("before the kill: %+v", live)
	}

	// The disk as a SIGKILL leaves it: a copy of the directory now.
	crashed := t.TempDir()
	if err := os.CopyFS(filepath.Join(crashed, live.Path), os.DirFS(filepath.Join(r.dir, live.Path))); err != nil {
		t.Fatal(err)
	}
	closeRec(t, rec)
	dir := filepath.Join(crashed, live.Path)
	pl, _ := os.ReadFile(filepath.Join(dir, playlistName))
	if bytes.Contains(pl, []byte("#EXT-X-ENDLIST")) || bytes.Contains(pl, []byte(segmentName(3))) {
		t.Fatalf("the killed recording's playlist is already complete:\n%s", pl)
	}
	if got := filesSize(t, dir); got != live.Size {
		t.Fatalf("files on disk %d bytes, the recorder wrote %d", got, live.Size)
	}
	// A fragment torn by the kill: the start of a moof written, not the rest.
	last := filepath.Join(dir, segmentName(3))
	head, err := os.ReadFile(last)
	if err != nil || len(head) < 200 || string(head[4:8]) != "moof" {
		t.Fatalf("open segment: %d bytes, %v", len(head), err)
	}
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(head[:100])
	f.Close()
	os.WriteFile(filepath.Join(dir, playlistName+".tmp"), []byte("#EXTM3U\n"), 0o644)

	info, err := Repair(crashed, live.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("repaired: %v in %d segments, %d bytes (written before the kill: %v, %d bytes)", info.Duration, info.Segments, info.Size, live.Duration, live.Size)
	if info.Status != StatusDone || info.Segments != 3 || info.Path != live.Path || info.End.IsZero() {
		t.Errorf("repaired info %+v", info)
	}
	if d := info.Duration - live.Duration; d < -50*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("repaired duration %v, written %v", info.Duration, live.Duration)
	}
	if got := filesSize(t, dir); info.Size != got || got != live.Size {
		t.Errorf("repaired size %d, on disk %d, written before the kill %d", info.Size, got, live.Size)
	}
	pl, _ = os.ReadFile(filepath.Join(dir, playlistName))
	if !bytes.HasSuffix(pl, []byte("#EXT-X-ENDLIST\n")) || !bytes.Contains(pl, []byte("#EXT-X-PLAYLIST-TYPE:VOD")) || bytes.Count(pl, []byte(".m4s")) != 3 {
		t.Errorf("repaired playlist:\n%s", pl)
	}
	var sum float64
	for _, line := range strings.Split(string(pl), "\n") {
		if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			d, _ := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			sum += d
		}
	}
	if !near(sum, info.Duration.Seconds(), 0.01) {
		t.Errorf("playlist lasts %.3f s, info %v", sum, info.Duration)
	}
	if _, err := os.Stat(filepath.Join(dir, playlistName+".tmp")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temporary playlist left: %v", err)
	}

	// ffprobe reads the replay to the end, as HLS and as one MP4.
	r2, _ := newRecorder(t, Config{Dir: crashed})
	srv := serveRecords(t, r2, &fakeSink{started: []Info{info}})
	for _, u := range []string{"/record/1/index.m3u8", "/record/1.mp4"} {
		p := ffprobe(t, srv.URL+u)
		d, err := strconv.ParseFloat(p.Format.Duration, 64)
		if err != nil || !near(d, info.Duration.Seconds(), 0.5) {
			t.Errorf("%s: ffprobe reads %q s, repaired %v", u, p.Format.Duration, info.Duration)
		}
		if v, ok := p.Stream("video"); !ok || v.CodecName != "h264" || v.Width != 640 {
			t.Errorf("%s: video %+v", u, v)
		}
	}

	// Repairing again changes nothing.
	again, err := Repair(crashed, live.Path)
	if err != nil || again.Duration != info.Duration || again.Size != info.Size || again.Segments != info.Segments {
		t.Errorf("second repair %+v (%v), first %+v", again, err, info)
	}
}

// TestRepairNothingRecorded: killed before any fragment was written, or
// with the directory gone.
func TestRepairNothingRecorded(t *testing.T) {
	r, _ := newRecorder(t, Config{})
	rec := r.Start("early")
	feed(rec, clipTags(t)[:40], 0) // before the second key frame: no fragment yet
	live := settle(t, rec)
	crashed := t.TempDir()
	if err := os.CopyFS(filepath.Join(crashed, live.Path), os.DirFS(filepath.Join(r.dir, live.Path))); err != nil {
		t.Fatal(err)
	}
	closeRec(t, rec)
	// The first segment holds a torn fragment only.
	os.WriteFile(filepath.Join(crashed, live.Path, segmentName(1)), []byte("\x00\x00\x01\x00moof\x00\x00"), 0o644)
	info, err := Repair(crashed, live.Path)
	if err != nil || info.Status != StatusFailed || info.Segments != 0 || info.Duration != 0 {
		t.Fatalf("repair: %+v, %v", info, err)
	}
	if _, err := os.Stat(filepath.Join(crashed, live.Path, segmentName(1))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an empty segment was kept: %v", err)
	}
	if got := filesSize(t, filepath.Join(crashed, live.Path)); info.Size != got {
		t.Errorf("size %d, on disk %d", info.Size, got)
	}
	pl, _ := os.ReadFile(filepath.Join(crashed, live.Path, playlistName))
	if !bytes.HasSuffix(pl, []byte("#EXT-X-ENDLIST\n")) {
		t.Errorf("playlist:\n%s", pl)
	}

	if _, err := Repair(crashed, "early/gone"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing recording: %v", err)
	}
	if _, err := Repair(crashed, "../x"); err == nil {
		t.Error("an invalid path was repaired")
	}
}

// TestRecordFullDiskAtStart: a live starting on a full disk still gets a
// recording row, failed, saying so plainly; no files are left.
func TestRecordFullDiskAtStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   func(d *DirFS) FS
	}{
		{"init not written", func(d *DirFS) FS { return &faultyFS{FS: d, limit: 0} }},
		{"no directory", func(d *DirFS) FS { return mkdirFails{d} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d, err := OpenDirFS(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			r, sink := newRecorder(t, Config{Dir: dir, FS: tc.fs(d)})
			rec := r.Start("full")
			feed(rec, clipTags(t), 0)
			select {
			case <-rec.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the recording did not stop")
			}
			info := closeRec(t, rec)
			sink.mu.Lock()
			defer sink.mu.Unlock()
			if len(sink.started) != 1 {
				t.Fatalf("%d rows made, want 1", len(sink.started))
			}
			s, e := sink.started[0], sink.ended[1]
			if s.Status != StatusFailed || s.Error != "the disk is full" || s.Stream != "full" || s.VideoCodec != "h264" {
				t.Errorf("Started %+v", s)
			}
			if e.Status != StatusFailed || e.Error != "the disk is full" || e.Size != 0 || e.Duration != 0 || e.End.IsZero() {
				t.Errorf("Ended %+v", e)
			}
			if info != e {
				t.Errorf("Close %+v, Ended %+v", info, e)
			}
			if !errors.Is(rec.Err(), syscall.ENOSPC) {
				t.Errorf("Err() %v", rec.Err())
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, "full")); len(entries) != 0 {
				t.Errorf("files left: %v", entries)
			}
			if _, _, ok := r.Progress(1); ok {
				t.Error("a failed recording is in progress")
			}
		})
	}
}

type mkdirFails struct{ FS }

func (mkdirFails) MkdirAll(name string, _ fs.FileMode) error {
	return &fs.PathError{Op: "mkdir", Path: "/srv/mofang/recordings/" + name, Err: syscall.ENOSPC}
}

// TestRecordProgress: while recording, Progress gives the duration and the
// bytes written so far (the open segment's too); once ended, nothing.
func TestRecordProgress(t *testing.T) {
	tags := clipTags(t)
	r, sink := newRecorder(t, Config{SegmentDuration: 4 * time.Second})
	rec := r.Start("progress")
	var half int
	for i, tag := range tags {
		if tag.Timestamp > 2500 {
			half = i
			break
		}
	}
	feed(rec, tags[:half], 0)
	live := settle(t, rec)
	d, size, ok := r.Progress(rec.ID())
	if !ok || rec.ID() != 1 {
		t.Fatalf("Progress(%d): %v %d %v", rec.ID(), d, size, ok)
	}
	// In the first, still open, segment: 2 s of whole fragments.
	if live.Segments != 0 || !near(d.Seconds(), 2, 0.1) || d != live.Duration {
		t.Errorf("progress duration %v (info %+v), want ~2s", d, live)
	}
	if got := filesSize(t, filepath.Join(r.dir, live.Path)); size != got || size < 10000 {
		t.Errorf("progress size %d, on disk %d", size, got)
	}
	if _, _, ok := r.Progress(2); ok {
		t.Error("progress of an unknown recording")
	}
	feed(rec, tags[half:], 0)
	info := closeRec(t, rec)
	if _, _, ok := r.Progress(1); ok {
		t.Error("progress of an ended recording")
	}
	if sink.ended[1].Duration != info.Duration || !near(info.Duration.Seconds(), 6, 0.5) {
		t.Errorf("ended %+v", info)
	}
}

// TestReasonIsPlain: the reasons a recording's row shows name no file.
func TestReasonIsPlain(t *testing.T) {
	for _, err := range []error{
		&fs.PathError{Op: "write", Path: "/srv/mofang/recordings/a/b/seg00001.m4s", Err: syscall.ENOSPC},
		&fs.PathError{Op: "open", Path: "/srv/x", Err: syscall.EACCES},
		&fs.PathError{Op: "open", Path: "/srv/x", Err: syscall.EIO},
		&fs.PathError{Op: "open", Path: "/srv/x", Err: syscall.EROFS},
		errors.Join(errSink, errors.New("store: adding record: dial tcp 10.0.0.3:3306: connection refused")),
		errFellBehind,
	} {
		r := Reason(err)
		if r == "" || strings.ContainsAny(r, "/:") || strings.Contains(r, "seg") {
			t.Errorf("Reason(%v) = %q", err, r)
		}
	}
}

func FuzzScanFragments(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x10moof\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08mdat"))
	f.Add([]byte("\x00\x00\x00\x01moof\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte("\x00\x00\x00\x08styp\x00\x00\x00\x08mdat"))
	var buf seekablebuffer.Buffer
	part := fmp4.Part{SequenceNumber: 1, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: 900, Samples: []*fmp4.Sample{
		{Duration: 3000, Payload: []byte{0, 0, 0, 1, 0x65}}, {Duration: 3000, IsNonSyncSample: true, Payload: []byte{0, 0, 0, 1, 0x41}},
	}}}}
	if err := part.Marshal(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(append(bytes.Clone(buf.Bytes()), buf.Bytes()[:30]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		good, err := scanFragments(bytes.NewReader(b), int64(len(b)), func(*fmp4.Part) {})
		if err != nil || good < 0 || good > int64(len(b)) {
			t.Fatalf("scan: %d, %v", good, err)
		}
		// What was kept scans the same.
		again, _ := scanFragments(bytes.NewReader(b[:good]), good, func(*fmp4.Part) {})
		if again != good {
			t.Fatalf("kept %d bytes, then %d", good, again)
		}
	})
}

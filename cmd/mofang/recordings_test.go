package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/store"
)

// recordRow is a recording as Live.record.list shows it.
type recordRow struct {
	ID       int64   `json:"id"`
	Status   string  `json:"status"`
	Error    string  `json:"error"`
	Duration float64 `json:"duration"`
	Size     int64   `json:"size"`
	HLS      string  `json:"hls"`
	MP4      string  `json:"mp4"`
}

func listRecords(t *testing.T, url, tok string, roomID any) []recordRow {
	t.Helper()
	var recs struct {
		Data struct {
			Records []recordRow `json:"records"`
		} `json:"data"`
	}
	remarshal(t, rpcCall(t, url, tok, "Live.record.list", map[string]any{"room_id": roomID}), &recs)
	return recs.Data.Records
}

// dirSize is the bytes of the media files in dir (init and segments).
func dirSize(t *testing.T, dir string) int64 {
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

// TestRecordingAfterKill: while a live is recorded, Live.record.list
// shows its duration and size so far. Then the server is killed (the disk
// and the database as a SIGKILL leaves them: the files as they were at
// that moment, the row still "recording" with nothing measured): the next
// start repairs it, and the row says interrupted, with the duration and
// size of what is on disk, and its replay plays to its end.
func TestRecordingAfterKill(t *testing.T) {
	needFFmpeg(t)
	data := t.TempDir()
	rtmp := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	url, stop := startServe(t, data, "--rtmp", rtmp, "--public-host", "127.0.0.1")
	reg := rpcCall(t, url, "", "User.register", map[string]any{"username": "streamer", "password": "streamer-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, url, tok, "Live.stream", map[string]any{"room_name": "killed"})["data"].(map[string]any)
	ff := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", room["publish"].(map[string]any)["url"].(string))

	var live recordRow
	eventually(t, 20*time.Second, "a recording in progress with its figures", func() bool {
		rs := listRecords(t, url, tok, room["room_id"])
		if len(rs) == 1 {
			live = rs[0]
		}
		return len(rs) == 1 && rs[0].Status == "recording" && rs[0].Duration >= 3
	})
	if live.Size < 50000 {
		t.Fatalf("recording in progress: %+v", live)
	}
	t.Logf("in progress: %.1f s, %d bytes", live.Duration, live.Size)

	// The disk at the kill: a copy of the recording's folder now.
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(data, "mofang.db"))
	if err != nil {
		t.Fatal(err)
	}
	row, err := st.RecordByID(context.Background(), live.ID)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(data, "recordings", filepath.FromSlash(row.Path))
	killed := t.TempDir()
	if err := os.CopyFS(killed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	ff.Process.Kill()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, os.DirFS(killed)); err != nil {
		t.Fatal(err)
	}
	pl, _ := os.ReadFile(filepath.Join(dir, "index.m3u8"))
	if strings.Contains(string(pl), "#EXT-X-ENDLIST") {
		t.Fatalf("the playlist at the kill is already ended:\n%s", pl)
	}
	// The database at the kill.
	st, err = store.Open(context.Background(), "sqlite:"+filepath.Join(data, "mofang.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().Exec(`UPDATE mf_record SET status = 'recording', error = '', duration_ms = 0, size = 0, end_time = NULL WHERE id = ?`, live.ID); err != nil {
		t.Fatal(err)
	}
	st.Close()

	url, stop = startServe(t, data, "--public-host", "127.0.0.1")
	defer stop()
	rs := listRecords(t, url, tok, room["room_id"])
	if len(rs) != 1 {
		t.Fatalf("records after the restart: %+v", rs)
	}
	r := rs[0]
	t.Logf("after the restart: %+v", r)
	if r.Status != "interrupted" || r.Error == "" || strings.Contains(r.Error, "/") {
		t.Errorf("status %q, error %q; want interrupted, with a plain reason", r.Status, r.Error)
	}
	if size := dirSize(t, dir); r.Size != size || r.Size < live.Size {
		t.Errorf("size %d, on disk %d, in progress it was %d", r.Size, size, live.Size)
	}
	pl, _ = os.ReadFile(filepath.Join(dir, "index.m3u8"))
	if !strings.HasSuffix(string(pl), "#EXT-X-ENDLIST\n") {
		t.Errorf("repaired playlist does not end:\n%s", pl)
	}
	if r.Duration < live.Duration-0.1 {
		t.Errorf("duration %.2f s, it was %.2f s in progress before the kill", r.Duration, live.Duration)
	}
	for _, u := range []string{r.HLS, r.MP4} {
		if got := probe(t, u); got != "h264 640x360, aac" {
			t.Errorf("ffprobe of the replay %s sees %q", u, got)
		}
		if d := probeDuration(t, u); d < r.Duration-0.5 || d > r.Duration+0.5 {
			t.Errorf("replay %s lasts %.2f s, the row says %.2f s", u, d, r.Duration)
		}
	}
}

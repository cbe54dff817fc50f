package rpc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/store/storetest"
)

// progressFiles is a recorder writing some recordings.
type progressFiles struct {
	fakeFiles
	live map[int64][2]int64 // id: duration ms, bytes
}

func (f *progressFiles) Progress(id int64) (time.Duration, int64, bool) {
	p, ok := f.live[id]
	return time.Duration(p[0]) * time.Millisecond, p[1], ok
}

// TestRecordsInProgress: a recording being written shows its duration and
// size so far (the row holds 0 until it ends); a failed recording's error
// names no server path, whatever the row holds.
func TestRecordsInProgress(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			files := &progressFiles{live: map[int64][2]int64{}}
			e := newEnvWith(t, dialect, func(c *rpc.Config) { c.RecordFiles = files })
			ctx := context.Background()
			ownerTok, roomID, stream := e.liveRoom("alice", "")
			add := func(path string) int64 {
				id, err := e.store.AddRecord(ctx, store.NewRecord{RoomID: roomID, Stream: stream, Path: stream + "/" + path, Start: time.Now().Add(-time.Minute)})
				if err != nil {
					t.Fatal(err)
				}
				return id
			}
			failed := add("1")
			if err := e.store.EndRecord(ctx, failed, store.RecordEnd{Status: store.RecordFailed, End: time.Now(), DurationMS: 1500, Size: 999,
				Error: "write segment 3: write /var/lib/mofang/recordings/" + stream + "/1/seg00003.m4s: no space left on device"}); err != nil {
				t.Fatal(err)
			}
			plain := add("2")
			if err := e.store.EndRecord(ctx, plain, store.RecordEnd{Status: store.RecordFailed, End: time.Now(), Error: "the disk is full"}); err != nil {
				t.Fatal(err)
			}
			recording := add("3")
			files.live[recording] = [2]int64{119700, 5 << 20}
			gone := add("4") // a row "recording" the recorder does not know

			var list struct {
				Errno int `json:"errno"`
				Data  struct {
					Records []rpc.RecordData `json:"records"`
				} `json:"data"`
			}
			e.callInto(ownerTok, "Live.record.list", map[string]any{"room_id": roomID}, &list)
			if list.Errno != 1000 || len(list.Data.Records) != 4 {
				t.Fatalf("list: %+v", list)
			}
			byID := map[int64]rpc.RecordData{}
			for _, r := range list.Data.Records {
				byID[r.ID] = r
				if strings.ContainsAny(r.Error, "/\\") {
					t.Errorf("record %d: error %q shows a path", r.ID, r.Error)
				}
			}
			if r := byID[recording]; r.Status != "recording" || r.Duration != 119.7 || r.Size != 5<<20 {
				t.Errorf("recording in progress: %+v", r)
			}
			if r := byID[gone]; r.Status != "recording" || r.Duration != 0 || r.Size != 0 {
				t.Errorf("unknown to the recorder: %+v", r)
			}
			if r := byID[failed]; r.Status != "failed" || r.Error == "" || r.Duration != 1.5 || r.Size != 999 {
				t.Errorf("failed with a path in its row: %+v", r)
			}
			if r := byID[plain]; r.Error != "the disk is full" {
				t.Errorf("a plain reason changed: %+v", r)
			}
			for _, id := range []int64{failed, recording} {
				res := e.call(ownerTok, "Live.record.read", map[string]any{"record_id": id})
				if res.Errno != 1000 {
					t.Fatalf("read %d: %+v", id, res)
				}
				if msg, _ := res.Data["error"].(string); strings.ContainsAny(msg, "/\\") {
					t.Errorf("read %d: error %q", id, msg)
				}
				if id == recording && (res.Data["duration"] != 119.7 || res.Data["size"] != float64(5<<20)) {
					t.Errorf("read in progress: %+v", res.Data)
				}
			}
		})
	}
}

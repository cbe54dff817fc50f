package rpc_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/store/storetest"
)

type fakeFiles struct {
	mu      sync.Mutex
	removed []string
}

func (f *fakeFiles) Remove(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, path)
	return nil
}

// TestRecords: the owner and holders of the room's password list and read
// recordings with signed replay URLs; only the owner deletes.
func TestRecords(t *testing.T) {
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			files := &fakeFiles{}
			e := newEnvWith(t, dialect, func(c *rpc.Config) { c.RecordFiles = files })
			ctx := context.Background()
			ownerTok, roomID, stream := e.liveRoom("alice", "pw")
			bobTok, _ := e.register("bob")
			id, err := e.store.AddRecord(ctx, store.NewRecord{RoomID: roomID, Stream: stream, Path: stream + "/1", Start: time.Now().Add(-time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.store.EndRecord(ctx, id, store.RecordEnd{Status: store.RecordComplete, End: time.Now(), DurationMS: 60500, Size: 12345, VideoCodec: "h264", AudioCodec: "aac", Width: 640, Height: 360}); err != nil {
				t.Fatal(err)
			}

			var list struct {
				Errno int `json:"errno"`
				Data  struct {
					Records []rpc.RecordData `json:"records"`
					Total   int              `json:"total"`
				} `json:"data"`
			}
			e.callInto(ownerTok, "Live.record.list", map[string]any{"room_id": roomID}, &list)
			if list.Errno != 1000 || list.Data.Total != 1 {
				t.Fatalf("owner's list: %+v", list)
			}
			r := list.Data.Records[0]
			if r.Status != "complete" || r.Duration != 60.5 || r.Width != 640 || !strings.Contains(r.HLS, "/record/") {
				t.Fatalf("record: %+v", r)
			}
			sign := r.HLS[strings.Index(r.HLS, "sign=")+5:]
			if err := e.signer.Check(urlsign.Play, rpc.RecordSignName(id), sign); err != nil {
				t.Fatalf("replay sign: %v", err)
			}
			if res := e.call(bobTok, "Live.record.list", map[string]any{"room_id": roomID}); res.Errno != 1008 {
				t.Fatalf("list without the password: errno %d", res.Errno)
			}
			if res := e.call(bobTok, "Live.record.read", map[string]any{"record_id": id, "password": "nope"}); res.Errno != 1008 {
				t.Fatalf("read with a wrong password: errno %d", res.Errno)
			}
			if res := e.call(bobTok, "Live.record.read", map[string]any{"record_id": id, "password": "pw"}); res.Errno != 1000 || res.Data["mp4"] == nil {
				t.Fatalf("read with the password: %+v", res)
			}
			if res := e.call(bobTok, "Live.record.read", map[string]any{"record_id": 999}); res.Errno != 1020 {
				t.Fatalf("unknown record: errno %d", res.Errno)
			}
			if res := e.call(bobTok, "Live.record.delete", map[string]any{"record_id": id}); res.Errno != 1006 && res.Errno != 1008 {
				t.Fatalf("another user's delete: errno %d", res.Errno)
			}
			if len(files.removed) != 0 {
				t.Fatalf("a refused delete removed %v", files.removed)
			}
			if res := e.call(ownerTok, "Live.record.delete", map[string]any{"record_id": id}); res.Errno != 1000 {
				t.Fatalf("owner's delete: %+v", res)
			}
			if len(files.removed) != 1 || files.removed[0] != stream+"/1" {
				t.Fatalf("removed %v", files.removed)
			}
			if _, err := e.store.RecordByID(ctx, id); err == nil {
				t.Fatal("deleted record still readable")
			}
		})
	}
}

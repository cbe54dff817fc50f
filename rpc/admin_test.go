package rpc_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/mofang-live/mofang/rpc"
)

// fakeMedia is a MediaAdmin the tests set by hand.
type fakeMedia struct {
	mu      sync.Mutex
	streams []rpc.AdminStream
	clients []rpc.AdminClient
	kicked  []string
}

func (f *fakeMedia) Streams() []rpc.AdminStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rpc.AdminStream(nil), f.streams...)
}

func (f *fakeMedia) Clients() []rpc.AdminClient {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rpc.AdminClient(nil), f.clients...)
}

func (f *fakeMedia) KickStream(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.streams {
		if s.Name == name {
			f.kicked = append(f.kicked, "stream:"+name)
			return true
		}
	}
	return false
}

func (f *fakeMedia) KickClient(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.clients {
		if c.ID == id {
			f.kicked = append(f.kicked, "client:"+id)
			return true
		}
	}
	return false
}

func (f *fakeMedia) Totals() rpc.MediaTotals { return rpc.MediaTotals{BytesIn: 42} }

func TestAdminMethods(t *testing.T) {
	media := &fakeMedia{}
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) { c.Media = media })
	ctx := context.Background()
	_, roomID, stream := e.liveRoom("alice", "")
	media.streams = []rpc.AdminStream{{Name: stream, Live: true, ReaderCount: 2}, {Name: "orphan"}}
	media.clients = []rpc.AdminClient{{ID: "c1", Stream: stream, Role: "publish"}, {ID: "c2", Stream: stream, Role: "play"}, {ID: "c3", Stream: "orphan"}}

	userTok, _ := e.register("mallory")
	adminTok, adminID := e.register("root")
	if err := e.store.SetAdmin(ctx, adminID, true); err != nil {
		t.Fatal(err)
	}
	calls := map[string]map[string]any{
		"Admin.stream.list":   {},
		"Admin.client.list":   {},
		"Admin.stream.kick":   {"stream": stream},
		"Admin.client.kick":   {"client_id": "c2"},
		"Admin.room.ban":      {"room_id": roomID},
		"Admin.room.unban":    {"room_id": roomID},
		"Admin.server.stats":  {},
		"Admin.cluster.nodes": {},
	}
	// Every Admin method is registered here and refuses non-admins.
	for _, m := range e.api.Methods() {
		if strings.HasPrefix(m, "Admin.") {
			if _, ok := calls[m]; !ok {
				t.Fatalf("Admin method %s is not tested", m)
			}
		}
	}
	for m, p := range calls {
		if r := e.call(userTok, m, p); r.Errno != 1017 {
			t.Errorf("%s as a non-admin: errno %d, want 1017", m, r.Errno)
		}
		if r := e.call("", m, p); r.Errno != 1005 {
			t.Errorf("%s without login: errno %d, want 1005", m, r.Errno)
		}
	}
	if len(media.kicked) != 0 {
		t.Fatalf("refused calls kicked %v", media.kicked)
	}
	if room, _ := e.store.RoomByID(ctx, roomID); room.IsBanned {
		t.Fatal("a refused ban banned the room")
	}

	var sl struct {
		Data struct {
			Streams []rpc.AdminStream `json:"streams"`
			Total   int               `json:"total"`
		} `json:"data"`
	}
	e.callInto(adminTok, "Admin.stream.list", map[string]any{"page": 1, "size": 1}, &sl)
	if sl.Data.Total != 2 || len(sl.Data.Streams) != 1 || sl.Data.Streams[0].Room == nil || sl.Data.Streams[0].Room.Owner != "Nick alice" {
		t.Fatalf("stream list: %+v", sl.Data)
	}
	var cl struct {
		Data struct {
			Clients []rpc.AdminClient `json:"clients"`
			Total   int               `json:"total"`
		} `json:"data"`
	}
	e.callInto(adminTok, "Admin.client.list", map[string]any{"stream": stream}, &cl)
	if cl.Data.Total != 2 || len(cl.Data.Clients) != 2 || cl.Data.Clients[0].Node != "local" {
		t.Fatalf("client list of %s: %+v", stream, cl.Data)
	}
	var nodes struct {
		Data struct {
			Nodes []rpc.AdminNode `json:"nodes"`
		} `json:"data"`
	}
	e.callInto(adminTok, "Admin.cluster.nodes", map[string]any{}, &nodes)
	if n := nodes.Data.Nodes; len(n) != 1 || n[0].ID != "local" || !n[0].Self || n[0].Started == 0 || n[0].LastSeen == 0 {
		t.Fatalf("cluster nodes of a node alone: %+v", n)
	}
	if r := e.call(adminTok, "Admin.client.kick", map[string]any{"client_id": "nope"}); r.Errno != 1019 {
		t.Fatalf("kick unknown client: errno %d", r.Errno)
	}
	if r := e.call(adminTok, "Admin.stream.kick", map[string]any{"stream": "nope"}); r.Errno != 1018 {
		t.Fatalf("kick unknown stream: errno %d", r.Errno)
	}
	if r := e.call(adminTok, "Admin.client.kick", map[string]any{"client_id": "c2"}); r.Errno != 1000 {
		t.Fatalf("kick client: %+v", r)
	}
	if r := e.call(adminTok, "Admin.room.ban", map[string]any{"room_id": roomID}); r.Errno != 1000 || r.Data["banned"] != true {
		t.Fatalf("ban: %+v", r)
	}
	if room, _ := e.store.RoomByID(ctx, roomID); !room.IsBanned {
		t.Fatal("ban not stored")
	}
	if got := strings.Join(media.kicked, " "); got != "client:c2 stream:"+stream {
		t.Fatalf("kicked %q", got)
	}
	if r := e.call(adminTok, "Admin.room.unban", map[string]any{"room_id": roomID}); r.Errno != 1000 {
		t.Fatalf("unban: %+v", r)
	}
	if room, _ := e.store.RoomByID(ctx, roomID); room.IsBanned {
		t.Fatal("unban not stored")
	}
	st := e.call(adminTok, "Admin.server.stats", map[string]any{})
	calls2 := st.Data["calls"].(map[string]any)
	ban := calls2["Admin.room.ban"].(map[string]any)
	if st.Data["streams"] != float64(2) || st.Data["live_streams"] != float64(1) || st.Data["clients"] != float64(3) || ban["calls"] != float64(3) {
		t.Fatalf("server stats: %+v", st.Data)
	}
}

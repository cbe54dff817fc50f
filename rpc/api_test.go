package rpc_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/token"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
)

// TestMoFangFlow walks the seed's pages: register, log in, create a room
// with a password, list rooms, read a room with its password.
func TestMoFangFlow(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		if r := e.call("", "User.register", map[string]any{"username": "alice", "password": "alice-pass", "nickname": "Alice"}); r.Errno != 1000 {
			t.Fatalf("register: %+v", r)
		}
		if r := e.call("", "User.register", map[string]any{"username": "alice", "password": "other-pass"}); r.Errno != 1002 {
			t.Fatalf("second register of alice: errno %d, want 1002", r.Errno)
		}
		if r := e.call("", "User.login", map[string]any{"username": "alice", "password": "wrong-pass"}); r.Errno != 1004 {
			t.Fatalf("wrong password: errno %d, want 1004", r.Errno)
		}
		if r := e.call("", "User.login", map[string]any{"username": "nobody", "password": "wrong-pass"}); r.Errno != 1004 {
			t.Fatalf("unknown user: errno %d, want 1004", r.Errno)
		}
		login := e.call("", "User.login", map[string]any{"username": "alice", "password": "alice-pass"})
		if login.Errno != 1000 || login.Data["token_type"] != "jwt" {
			t.Fatalf("login: %+v", login)
		}
		alice := login.Data["access_token"].(string)

		info := e.call(alice, "User.info", map[string]any{})
		if info.Errno != 1000 || info.Data["username"] != "alice" || info.Data["nickname"] != "Alice" {
			t.Fatalf("User.info: %+v", info)
		}
		if _, leaked := info.Data["password"]; leaked {
			t.Fatal("User.info returns the password hash")
		}

		// add_room.html: Live.stream with room_name and password.
		room := e.call(alice, "Live.stream", map[string]any{"room_name": "爱的直播间", "password": "roompw"})
		if room.Errno != 1000 {
			t.Fatalf("Live.stream: %+v", room)
		}
		d := room.Data
		name := d["stream_name"].(string)
		if !strings.HasPrefix(name, "room_000001") || len(name) != len("room_")+6+14+6 {
			t.Fatalf("stream name %q is not seed MoFang's room_%%06d<time>%%06d", name)
		}
		if d["room_name"] != "爱的直播间" || d["room_id"] != "0001" || d["room_owner"] != float64(1) || d["has_password"] != true {
			t.Fatalf("Live.stream data: %+v", d)
		}
		pub := d["publish"].(map[string]any)
		if pub["server"] != "rtmp://live.example/live" || pub["stream_key"] != name+"?sign="+pub["sign"].(string) ||
			pub["srt"] != "srt://live.example:8890?streamid=publish:"+name+"?sign="+pub["sign"].(string) {
			t.Fatalf("publish URLs: %+v", pub)
		}
		if err := e.signer.Check(urlsign.Publish, name, pub["sign"].(string)); err != nil {
			t.Fatalf("publish sign does not verify: %v", err)
		}
		stored, err := e.store.RoomByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if stored.PasswordHash == "roompw" || !strings.HasPrefix(stored.PasswordHash, "$2") {
			t.Fatal("room password is not stored as a bcrypt hash")
		}

		// Calling Live.stream again updates the same room; the seed's live
		// page sends room_name only, which keeps the password.
		again := e.call(alice, "Live.stream", map[string]any{"room_name": "新名字"})
		if again.Data["stream_name"] != name || again.Data["room_name"] != "新名字" || again.Data["has_password"] != true {
			t.Fatalf("second Live.stream: %+v", again.Data)
		}

		bob, _ := e.register("bob")
		e.live.set(name, rpc.LiveStream{Clients: 3, PublisherIP: "192.0.2.7"})

		// live_list.html: Live.stream.list with "params": {}.
		var list struct {
			Errno      int              `json:"errno"`
			StreamList []map[string]any `json:"stream_list"`
			Total      int              `json:"total"`
		}
		e.callInto(bob, "Live.stream.list", map[string]any{}, &list)
		if list.Errno != 1000 || len(list.StreamList) != 1 || list.Total != 1 {
			t.Fatalf("Live.stream.list: %+v", list)
		}
		it := list.StreamList[0]
		user := it["user"].(map[string]any)
		if it["name"] != name || it["room_name"] != "新名字" || it["status"] != true || it["clients_number"] != float64(3) ||
			user["ip"] != "192.0.2.x" || user["nickname"] != "Alice" || it["has_password"] != true {
			t.Fatalf("list item: %+v", it)
		}
		for _, secret := range []string{"room_password", "password"} {
			if _, leaked := it[secret]; leaked {
				t.Fatalf("list leaks %s", secret)
			}
		}
		if b, _ := json.Marshal(list); strings.Contains(string(b), "$2") {
			t.Fatal("list leaks a bcrypt hash")
		}

		// live.html: the password is checked by the server.
		if r := e.call(bob, "Live.stream.read", map[string]any{"room_id": "0001"}); r.Errno != 1008 || r.Data != nil {
			t.Fatalf("read without password: %+v", r)
		}
		if r := e.call(bob, "Live.stream.read", map[string]any{"room_id": "0001", "password": "nope"}); r.Errno != 1008 || r.Data != nil {
			t.Fatalf("read with a wrong password: %+v", r)
		}
		read := e.call(bob, "Live.stream.read", map[string]any{"room_id": "0001", "password": "roompw"})
		if read.Errno != 1000 || read.Data["name"] != name || read.Data["status"] != true {
			t.Fatalf("read with the password: %+v", read)
		}
		play := read.Data["play"].(map[string]any)
		sign := play["sign"].(string)
		if play["flv"] != "http://live.example:8080/live/"+name+".flv?sign="+sign ||
			play["rtmp"] != "rtmp://live.example/live/"+name+"?sign="+sign ||
			play["rtsp"] != "rtsp://live.example:8554/live/"+name+"?sign="+sign ||
			play["srt"] != "srt://live.example:8890?streamid=read:"+name+"?sign="+sign ||
			play["hls"] != "http://live.example:8080/live/"+name+"/index.m3u8?sign="+sign {
			t.Fatalf("play URLs: %+v", play)
		}
		if err := e.signer.Check(urlsign.Play, name, sign); err != nil {
			t.Fatalf("play sign: %v", err)
		}
		if err := e.signer.Check(urlsign.Publish, name, sign); err == nil {
			t.Fatal("a viewer's play sign also allows publishing")
		}
		// The owner needs no password; a numeric room_id works too.
		if r := e.call(alice, "Live.stream.read", map[string]any{"room_id": 1}); r.Errno != 1000 {
			t.Fatalf("owner read: %+v", r)
		}
		// Positional params work as well.
		if r := e.rpc(bob, "Live.stream.read", []any{"0001", "roompw"}); r.Error != nil {
			t.Fatalf("positional read: %+v", r.Error)
		}
	})
}

func TestStreamStatus(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, _ := e.register("alice")
		bob, _ := e.register("bob")
		room := e.call(alice, "Live.stream", map[string]any{"room_name": "r"})
		id := room.Data["room_id"]

		if r := e.call(bob, "Live.stream.status", map[string]any{"room_id": id, "type": "stop"}); r.Errno != 1006 {
			t.Fatalf("another user's room: errno %d, want 1006", r.Errno)
		}
		if r := e.call(alice, "Live.stream.status", map[string]any{"room_id": id, "type": "dance"}); r.Errno != 1001 {
			t.Fatalf("unknown type: errno %d, want 1001", r.Errno)
		}
		if r := e.call(alice, "Live.stream.status", map[string]any{"room_id": 999, "type": "play"}); r.Errno != 1007 {
			t.Fatalf("unknown room: errno %d, want 1007", r.Errno)
		}
		got, _ := e.store.RoomByID(ctx, 1)
		if got.Status != store.RoomIdle {
			t.Fatalf("refused calls changed the room to %d", got.Status)
		}
		for _, c := range []struct {
			typ  string
			want store.RoomStatus
		}{{"play", store.RoomLive}, {"pause", store.RoomPaused}, {"stop", store.RoomStopped}} {
			r := e.call(alice, "Live.stream.status", map[string]any{"room_id": id, "type": c.typ})
			if r.Errno != 1000 || r.Data["room_status"] != float64(c.want) {
				t.Fatalf("%s: %+v", c.typ, r)
			}
			if got, _ := e.store.RoomByID(ctx, 1); got.Status != c.want {
				t.Fatalf("%s: stored status %d", c.typ, got.Status)
			}
		}
		if r := e.call(alice, "Live.stream.status", map[string]any{"room_id": id, "type": "play"}); r.Errno != 1009 {
			t.Fatalf("changing a stopped room: errno %d, want 1009", r.Errno)
		}
		// A stopped room gives no play sign and leaves the list; the next
		// Live.stream opens a new room.
		if r := e.call(bob, "Live.stream.read", map[string]any{"room_id": id}); r.Errno != 1000 || r.Data["play"] != nil {
			t.Fatalf("read of a stopped room: %+v", r)
		}
		var list rpc.StreamListReply
		e.callInto(bob, "Live.stream.list", map[string]any{}, &list)
		if len(list.StreamList) != 0 {
			t.Fatalf("stopped room listed: %+v", list.StreamList)
		}
		next := e.call(alice, "Live.stream", map[string]any{"room_name": "again"})
		if next.Data["room_id"] == id || next.Data["stream_name"] == room.Data["stream_name"] {
			t.Fatalf("Live.stream after stop reused the ended room: %+v", next.Data)
		}
	})
}

func TestStreamListPaging(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		tok, _ := e.register("viewer")
		for i := range 30 {
			u, err := e.store.CreateUser(ctx, store.NewUser{Name: fmt.Sprintf("u%02d", i), PasswordHash: "x"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.CreateRoom(ctx, store.NewRoom{Name: fmt.Sprintf("s%02d", i), RoomName: "r", UserID: u.ID}); err != nil {
				t.Fatal(err)
			}
		}
		e.live.set("s05", rpc.LiveStream{Clients: 2})
		e.live.set("s17", rpc.LiveStream{Clients: 9, PublisherIP: "203.0.113.9"})

		var all rpc.StreamListReply
		e.callInto(tok, "Live.stream.list", map[string]any{}, &all)
		if len(all.StreamList) != 30 || all.Total != 30 {
			t.Fatalf("no params: %d rooms of %d, want all 30", len(all.StreamList), all.Total)
		}
		var page rpc.StreamListReply
		e.callInto(tok, "Live.stream.list", map[string]any{"page": 2, "size": 20}, &page)
		if len(page.StreamList) != 10 || page.Total != 30 || page.StreamList[0].Name != "s09" {
			t.Fatalf("page 2: %d rooms, total %d, first %q", len(page.StreamList), page.Total, page.StreamList[0].Name)
		}
		var live rpc.StreamListReply
		e.callInto(tok, "Live.stream.list", map[string]any{"page": 1, "live_only": true}, &live)
		if len(live.StreamList) != 2 || live.Total != 2 || live.StreamList[0].Name != "s17" ||
			!live.StreamList[0].Status || live.StreamList[0].ClientsNumber != 9 || live.StreamList[0].User.IP != "203.0.113.x" {
			t.Fatalf("live only: %+v", live)
		}
		for _, bad := range []map[string]any{{"page": -1}, {"page": 1, "size": 1000}, {"size": 5}} {
			if r := e.call(tok, "Live.stream.list", bad); r.Errno != 1001 {
				t.Fatalf("params %v: errno %d, want 1001", bad, r.Errno)
			}
		}
	})
}

func TestRefresh(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.register("alice")
		login := e.call("", "User.login", map[string]any{"username": "alice", "password": "secret-alice"})
		refresh := login.Data["refresh_token"].(string)
		r := e.call("", "User.refresh", map[string]any{"refresh_token": refresh})
		if r.Errno != 1000 || r.Data["access_token"] == "" || r.Data["refresh_token"] == refresh {
			t.Fatalf("refresh: %+v", r)
		}
		if info := e.call(r.Data["access_token"].(string), "User.info", map[string]any{}); info.Errno != 1000 {
			t.Fatalf("new access token: %+v", info)
		}
		if again := e.call("", "User.refresh", map[string]any{"refresh_token": refresh}); again.Errno != 1005 {
			t.Fatalf("reused refresh token: errno %d, want 1005", again.Errno)
		}
		if junk := e.call("", "User.refresh", map[string]any{"refresh_token": "junk"}); junk.Errno != 1005 {
			t.Fatalf("junk refresh token: errno %d, want 1005", junk.Errno)
		}
	})
}

// TestBadTokens sends every kind of wrong token to every method that needs
// a login: each gets errno 1005 (the seed's "log in again") and nothing
// changes.
func TestBadTokens(t *testing.T) {
	e := newEnv(t, "sqlite")
	good, _ := e.register("alice")
	parts := strings.Split(good, ".")
	enc := base64.RawURLEncoding.EncodeToString
	other, _ := token.NewIssuer([]byte("another-secret-0123456789abcdefgh"), time.Hour)
	forged, _, _ := other.Issue(1)
	short, _ := token.NewIssuer(testJWTSecret, time.Nanosecond)
	expired, _, _ := short.Issue(1)
	time.Sleep(1100 * time.Millisecond) // expiry has second resolution

	bad := map[string]string{
		"none":            "",
		"garbage":         "not-a-jwt",
		"forged":          forged,
		"expired":         expired,
		"alg none":        enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".",
		"swapped payload": parts[0] + "." + enc([]byte(`{"iss":"mofang","sub":"2","exp":4102444800}`)) + "." + parts[2],
	}
	for name, tok := range bad {
		for method, params := range map[string]any{
			"User.info":             map[string]any{},
			"Live.stream":           map[string]any{"room_name": "x"},
			"Live.stream.list":      map[string]any{},
			"Live.stream.read":      map[string]any{"room_id": 1},
			"Live.stream.status":    map[string]any{"room_id": 1, "type": "stop"},
			"Live.stream.key.reset": map[string]any{},
		} {
			if r := e.call(tok, method, params); r.Errno != 1005 {
				t.Errorf("%s token on %s: errno %d, want 1005", name, method, r.Errno)
			}
		}
	}
	if _, err := e.store.OpenRoomOfUser(context.Background(), 1); err == nil {
		t.Fatal("a bad token created a room")
	}
	// Bearer is accepted as well as MoFang's "jwt".
	req := `{"jsonrpc":"2.0","id":1,"method":"User.info","params":{}}`
	for _, scheme := range []string{"Bearer", "bearer", "JWT"} {
		code, body := e.postHeader(scheme+" "+good, req)
		if code != 200 || !strings.Contains(string(body), `"errno":1000`) {
			t.Fatalf("%s scheme: %d %s", scheme, code, body)
		}
	}
	if _, body := e.postHeader("Basic "+good, req); !strings.Contains(string(body), `"errno":1005`) {
		t.Fatalf("Basic scheme accepted: %s", body)
	}
}

func TestBadInput(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		alice, _ := e.register("alice")
		for _, c := range []struct {
			method string
			params any
			code   int
		}{
			{"Live.stream", map[string]any{"room_name": 123}, -32602},
			{"Live.stream", map[string]any{"room_name": "x", "password": []int{1}}, -32602},
			{"Live.stream.read", map[string]any{}, -32602},
			{"Live.stream.read", map[string]any{"room_id": "abc"}, -32602},
			{"Live.stream.read", map[string]any{"room_id": -3}, -32602},
			{"Live.stream.read", map[string]any{"room_id": 1.5}, -32602},
			{"Live.stream.status", map[string]any{"room_id": 1}, -32602},
			{"User.register", map[string]any{"username": "x"}, -32602},
			{"User.register", map[string]any{"username": "x", "password": "y", "admin": true}, -32602},
			{"User.login", []any{"a", "b", "c"}, -32602},
			{"Live.stream.list", map[string]any{"page": "1"}, -32602},
			{"Live.nope", map[string]any{}, -32601},
		} {
			r := e.rpc(alice, c.method, c.params)
			if r.Error == nil || r.Error.Code != c.code {
				t.Errorf("%s %v: %+v, want error %d", c.method, c.params, r, c.code)
			}
		}
		for _, c := range []struct {
			params map[string]any
			errno  int
		}{
			{map[string]any{"username": "ab", "password": "longenough"}, 1001},
			{map[string]any{"username": "has space", "password": "longenough"}, 1001},
			{map[string]any{"username": "okname", "password": "short"}, 1001},
			{map[string]any{"username": "okname", "password": strings.Repeat("p", 73)}, 1001},
			{map[string]any{"username": "okname", "password": "longenough", "nickname": strings.Repeat("n", 33)}, 1001},
			{map[string]any{"username": "okname", "password": "longenough", "nickname": "a\x00b"}, 1001},
		} {
			if r := e.call("", "User.register", c.params); r.Errno != c.errno {
				t.Errorf("register %v: errno %d, want %d", c.params, r.Errno, c.errno)
			}
		}
		if _, err := e.store.UserByName(ctx, "okname"); err == nil {
			t.Error("a refused registration stored a user")
		}
		if r := e.call(alice, "Live.stream", map[string]any{"room_name": strings.Repeat("长", 65)}); r.Errno != 1001 {
			t.Errorf("long room name: errno %d", r.Errno)
		}
		if _, err := e.store.OpenRoomOfUser(ctx, 1); err == nil {
			t.Error("a refused Live.stream stored a room")
		}
	})
}

func TestRoomPasswordGuessing(t *testing.T) {
	e := newEnv(t, "sqlite")
	alice, _ := e.register("alice")
	bob, _ := e.register("bob")
	e.call(alice, "Live.stream", map[string]any{"room_name": "r", "password": "right"})
	for i := range 5 {
		if r := e.call(bob, "Live.stream.read", map[string]any{"room_id": 1, "password": fmt.Sprint("guess", i)}); r.Errno != 1008 {
			t.Fatalf("guess %d: errno %d", i, r.Errno)
		}
	}
	if r := e.call(bob, "Live.stream.read", map[string]any{"room_id": 1, "password": "right"}); r.Errno != 1003 {
		t.Fatalf("after 5 wrong guesses: errno %d, want 1003 (too many attempts)", r.Errno)
	}
}

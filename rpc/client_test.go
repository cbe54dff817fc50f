package rpc_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/filecoin-project/go-jsonrpc"

	"github.com/mofang-live/mofang/rpc"
)

// liveClient is a Go client of the Live and User namespaces, built by
// go-jsonrpc's client.
type liveClient struct {
	Stream     func(ctx context.Context, p rpc.StreamParams) (*rpc.Reply[rpc.StreamData], error)
	StreamRead func(ctx context.Context, p rpc.StreamReadParams) (*rpc.Reply[rpc.RoomData], error)
	RoomJoin   func(ctx context.Context, p rpc.JoinParams) (*rpc.Reply[rpc.JoinData], error)
	Comment    func(ctx context.Context, p rpc.CommentParams) (*rpc.Reply[rpc.CommentData], error)
}

// roomEvents is a go-jsonrpc client handler of Live.room.events.
type roomEvents struct{ got chan rpc.RoomEvents }

func (h *roomEvents) RoomEvents(ctx context.Context, ev rpc.RoomEvents) { h.got <- ev }

type userClient struct {
	Info func(ctx context.Context, p rpc.InfoParams) (*rpc.Reply[rpc.UserData], error)
}

// TestGoJSONRPCClient calls the API with go-jsonrpc's own client, over
// HTTP POST and over a websocket, with the JWT in the header.
func TestGoJSONRPCClient(t *testing.T) {
	e := newEnv(t, "sqlite")
	tok, id := e.register("alice")
	header := http.Header{"Authorization": []string{"jwt " + tok}}
	for _, scheme := range []string{"http", "ws"} {
		t.Run(scheme, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			addr := scheme + strings.TrimPrefix(e.url, "http") + "/"
			var live liveClient
			closeLive, err := jsonrpc.NewMergeClient(ctx, addr, "Live", []any{&live}, header, jsonrpc.WithMethodNameFormatter(rpc.MethodName))
			if err != nil {
				t.Fatal(err)
			}
			defer closeLive()
			var user userClient
			closeUser, err := jsonrpc.NewMergeClient(ctx, addr, "User", []any{&user}, header, jsonrpc.WithMethodNameFormatter(rpc.MethodName))
			if err != nil {
				t.Fatal(err)
			}
			defer closeUser()

			info, err := user.Info(ctx, rpc.InfoParams{})
			if err != nil || info.Errno != rpc.ErrnoOK || info.Data.ID != id {
				t.Fatalf("User.info: %+v, %v", info, err)
			}
			pw := "pw"
			room, err := live.Stream(ctx, rpc.StreamParams{RoomName: "go client", Password: &pw})
			if err != nil || room.Errno != rpc.ErrnoOK || room.Data.RoomName != "go client" || !room.Data.HasPassword {
				t.Fatalf("Live.stream: %+v, %v", room, err)
			}
			read, err := live.StreamRead(ctx, rpc.StreamReadParams{RoomID: 1})
			if err != nil || read.Errno != rpc.ErrnoOK || read.Data.Play == nil {
				t.Fatalf("Live.stream.read: %+v, %v", read, err)
			}
		})
	}
}

// TestGoJSONRPCRoomEvents receives a room's events with go-jsonrpc's own
// client: a client handler of Live.room.events on a websocket opened with
// ?events=array. Before, the client could not decode the events' params
// (an object) and dropped them ("unmarshaling param array").
func TestGoJSONRPCRoomEvents(t *testing.T) {
	e := newEnv(t, "sqlite")
	aliceTok, roomID, _ := e.liveRoom("alice", "")
	bobTok, _ := e.register("bob")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := "ws" + strings.TrimPrefix(e.url, "http") + "/?events=array"
	var alice liveClient
	events := &roomEvents{got: make(chan rpc.RoomEvents, 100)}
	closeAlice, err := jsonrpc.NewMergeClient(ctx, addr, "Live", []any{&alice},
		http.Header{"Authorization": []string{"jwt " + aliceTok}},
		jsonrpc.WithMethodNameFormatter(rpc.MethodName),
		jsonrpc.WithClientHandler("Live", events),
		jsonrpc.WithClientHandlerFormatter(rpc.MethodName))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAlice()
	if r, err := alice.RoomJoin(ctx, rpc.JoinParams{RoomID: rpc.RoomID(roomID)}); err != nil || r.Errno != rpc.ErrnoOK {
		t.Fatalf("Live.room.join: %+v, %v", r, err)
	}

	// Bob comments from a plain websocket, which keeps the object params.
	bob := e.dialWS(bobTok, false)
	if r := bob.call("Live.room.join", map[string]any{"room_id": roomID}); r.Errno != 1000 {
		t.Fatalf("bob joins: %+v", r)
	}
	if r := bob.call("Live.comment", map[string]any{"room_id": roomID, "content": "hello go"}); r.Errno != 1000 {
		t.Fatalf("bob comments: %+v", r)
	}
	if ev := bob.next("online", "join"); ev.Type != "comment" || ev.Content != "hello go" {
		t.Fatalf("bob's socket got %+v", ev)
	}
	// Alice comments through the Go client, and sees both comments.
	if r, err := alice.Comment(ctx, rpc.CommentParams{RoomID: rpc.RoomID(roomID), Content: "hi from go"}); err != nil || r.Errno != rpc.ErrnoOK {
		t.Fatalf("Live.comment: %+v, %v", r, err)
	}
	want := map[string]bool{"hello go": true, "hi from go": true}
	for len(want) > 0 {
		select {
		case batch := <-events.got:
			if batch.RoomID != roomID {
				t.Fatalf("events of room %d, want %d", batch.RoomID, roomID)
			}
			for _, ev := range batch.Events {
				if ev.Type == "comment" {
					if !want[ev.Content] || ev.User == nil || ev.Seq == 0 {
						t.Fatalf("unexpected comment %+v", ev)
					}
					delete(want, ev.Content)
				}
			}
		case <-ctx.Done():
			t.Fatalf("go-jsonrpc client: comments %v never arrived", want)
		}
	}
}

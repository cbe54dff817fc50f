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
}

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

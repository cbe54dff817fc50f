package main

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/store/storetest"
)

// A relay between nodes plays with the node credential RelayQuery makes
// (whatever the room's password), and with nothing else: no sign, a
// viewer's play sign or a publish sign, another stream's credential or
// an expired one are refused; the node credential is no viewer's sign.
func TestMediaAuthRelay(t *testing.T) {
	st := storetest.Open(t, "sqlite")
	ctx := context.Background()
	u, err := st.CreateUser(ctx, store.NewUser{Name: "owner", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := st.CreateRoom(ctx, store.NewRoom{Name: "room_relay", RoomName: "r", PasswordHash: "hash", UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := urlsign.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	a := mediaAuth{store: st, signer: signer}
	relayReq := func(q url.Values) media.AuthRequest {
		return media.AuthRequest{Stream: room.Name, Query: q, Protocol: media.ProtocolHTTPFLV, Relay: "node-b"}
	}
	cred := a.RelayQuery(room.Name)
	if err := a.AuthorizePlay(ctx, relayReq(cred)); err != nil {
		t.Fatalf("the node credential was refused: %v", err)
	}
	play, _ := signer.SignGen(urlsign.Play, room.Name, room.PasswordGen, time.Hour)
	publish, _ := signer.Sign(urlsign.Publish, room.Name, time.Hour)
	expired, _ := signer.Sign(urlsign.Relay, room.Name, -time.Second)
	for name, q := range map[string]url.Values{
		"no credential":  {},
		"a play sign":    {"sign": {play}},
		"a publish sign": {"sign": {publish}},
		"another stream": a.RelayQuery("room_other"),
		"expired":        {"sign": {expired}},
	} {
		err := a.AuthorizePlay(ctx, relayReq(q))
		var ref *media.RefusalError
		if !errors.As(err, &ref) || !strings.Contains(ref.Reason, "node credential") {
			t.Errorf("relay with %s: %v, want a refusal naming the node credential", name, err)
		}
	}
	// a viewer of the password room cannot use a node credential as a sign
	viewer := media.AuthRequest{Stream: room.Name, Query: cred, Protocol: media.ProtocolHTTPFLV}
	if err := a.AuthorizePlay(ctx, viewer); err == nil {
		t.Error("a viewer played a password room with a node credential")
	}
	if err := a.AuthorizePlay(ctx, media.AuthRequest{Stream: room.Name, Query: url.Values{"sign": {play}}}); err != nil {
		t.Errorf("the viewer's play sign: %v", err)
	}
}

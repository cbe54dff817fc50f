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

// A refused sign reaches the client as a refusal with a reason it can act
// on, not as "service unavailable"; a store failure is no refusal (the
// engine logs it and sends a plain reason).
func TestMediaAuthRefusals(t *testing.T) {
	st := storetest.Open(t, "sqlite")
	ctx := context.Background()
	u, err := st.CreateUser(ctx, store.NewUser{Name: "owner", PasswordHash: "x"})
	if err != nil {
		t.Fatal(err)
	}
	room, err := st.CreateRoom(ctx, store.NewRoom{Name: "room_auth", RoomName: "r", PasswordHash: "hash", UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := urlsign.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	a := mediaAuth{store: st, signer: signer}
	req := func(sign string) media.AuthRequest {
		return media.AuthRequest{Stream: room.Name, Query: url.Values{"sign": {sign}}, Protocol: media.ProtocolRTMP}
	}
	for name, check := range map[string]func(media.AuthRequest) error{
		"publish": func(r media.AuthRequest) error { return a.AuthorizePublish(ctx, r) },
		"play":    func(r media.AuthRequest) error { return a.AuthorizePlay(ctx, r) },
	} {
		for _, sign := range []string{"", "123-abc", "garbage"} {
			err := check(req(sign))
			var ref *media.RefusalError
			if !errors.As(err, &ref) || !strings.Contains(ref.Reason, "sign") {
				t.Errorf("%s with sign %q: %v, want a refusal naming the sign", name, sign, err)
			}
		}
	}
	good, _ := signer.Sign(urlsign.Publish, room.Name, time.Hour)
	if err := a.AuthorizePublish(ctx, req(good)); err != nil {
		t.Fatalf("a valid publish sign was refused: %v", err)
	}
	st.Close()
	err = a.AuthorizePlay(ctx, req(good))
	var ref *media.RefusalError
	if err == nil || errors.As(err, &ref) {
		t.Fatalf("a store failure gave %v, want a plain (non-refusal) error", err)
	}
}

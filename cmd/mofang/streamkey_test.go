package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
)

// TestStreamKeyLasts is issue 14's "stream keys that last", end to end:
// the stream key Live.stream hands out is the same after a restart of the
// service and publishes then; a day (and years) later by the clock it is
// still admitted while a play sign is not; Live.stream.key.reset
// disconnects the publisher using it, and the old key (and an old-style
// expiring publish sign) no longer publishes while the new key does.
func TestStreamKeyLasts(t *testing.T) {
	needFFmpeg(t)
	data := t.TempDir()
	rtmp := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := []string{"--rtmp", rtmp, "--public-host", "127.0.0.1", "--publisher-grace", "1s"}
	base, stop := startServe(t, data, args...)
	reg := rpcCall(t, base, "", "User.register", map[string]any{"username": "streamer", "password": "streamer-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	first := rpcCall(t, base, tok, "Live.stream", map[string]any{"room_name": "keys"})["data"].(map[string]any)
	stream := first["stream_name"].(string)
	key := first["publish"].(map[string]any)["stream_key"].(string)
	publishURL := first["publish"].(map[string]any)["url"].(string)
	if first["publish"].(map[string]any)["expires"] != float64(0) {
		t.Fatalf("the stream key expires: %v", first["publish"])
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	base, stop = startServe(t, data, args...)
	defer stop()
	again := rpcCall(t, base, tok, "Live.stream", map[string]any{"room_name": "keys"})["data"].(map[string]any)
	if got := again["publish"].(map[string]any)["stream_key"]; got != key {
		t.Fatalf("the stream key after a restart is %v, was %v", got, key)
	}
	publisher := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", publishURL)
	eventually(t, 15*time.Second, "room live with the key of the first run", func() bool { return roomState(t, base, tok, stream).Status })
	play := rpcCall(t, base, tok, "Live.stream.read", map[string]any{"room_id": first["room_id"]})["data"].(map[string]any)["play"].(map[string]any)

	// The service's own rules, its secret and its database, with the
	// clock moved on.
	secret, err := os.ReadFile(filepath.Join(data, "sign.secret"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := urlsign.New([]byte(strings.TrimSpace(string(secret))))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(data, "mofang.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	oldStyle, _ := signer.Sign(urlsign.Publish, stream, 24*time.Hour) // as Live.stream gave before
	authAt := func(later time.Duration) mediaAuth {
		return mediaAuth{store: st, signer: signer.WithClock(func() time.Time { return time.Now().Add(later) })}
	}
	req := func(sign string) media.AuthRequest {
		return media.AuthRequest{Stream: stream, Query: url.Values{"sign": {sign}}, Protocol: media.ProtocolRTMP}
	}
	sign := strings.TrimPrefix(key, stream+"?sign=")
	ctx := context.Background()
	for _, later := range []time.Duration{0, 25 * time.Hour, 10 * 365 * 24 * time.Hour} {
		if err := authAt(later).AuthorizePublish(ctx, req(sign)); err != nil {
			t.Fatalf("the stream key %v later: %v", later, err)
		}
	}
	if err := authAt(0).AuthorizePublish(ctx, req(oldStyle)); err != nil {
		t.Fatalf("an old-style expiring publish sign: %v", err)
	}
	var ref *media.RefusalError
	if err := authAt(25*time.Hour).AuthorizePublish(ctx, req(oldStyle)); !errors.As(err, &ref) {
		t.Fatalf("an old-style 24 h publish sign a day later: %v, want refused", err)
	}
	// Play signs stay short-lived (the room has a password, so they count).
	rpcCall(t, base, tok, "Live.stream", map[string]any{"room_name": "keys", "password": "pw"})
	play = rpcCall(t, base, tok, "Live.stream.read", map[string]any{"room_id": first["room_id"], "password": "pw"})["data"].(map[string]any)["play"].(map[string]any)
	if err := authAt(0).AuthorizePlay(ctx, req(play["sign"].(string))); err != nil {
		t.Fatalf("a fresh play sign: %v", err)
	}
	if err := authAt(25*time.Hour).AuthorizePlay(ctx, req(play["sign"].(string))); !errors.As(err, &ref) {
		t.Fatalf("a play sign a day later: %v, want refused", err)
	}

	// The reset: the publisher goes, the old key and sign are refused,
	// the new key works.
	done := make(chan struct{})
	go func() { publisher.Wait(); close(done) }()
	reset := rpcCall(t, base, tok, "Live.stream.key.reset", map[string]any{})
	if reset["errno"] != float64(1000) {
		t.Fatalf("Live.stream.key.reset: %v", reset)
	}
	pub := reset["data"].(map[string]any)["publish"].(map[string]any)
	if pub["stream_key"] == key {
		t.Fatal("the reset kept the key")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the publisher with the old key was not disconnected within 10 s")
	}
	publishRefused(t, publishURL)
	for name, s := range map[string]string{"old key": sign, "old-style sign": oldStyle} {
		if err := authAt(0).AuthorizePublish(ctx, req(s)); !errors.As(err, &ref) {
			t.Fatalf("the %s after the reset: %v, want refused", name, err)
		}
	}
	newSign := pub["sign"].(string)
	if err := authAt(400*24*time.Hour).AuthorizePublish(ctx, req(newSign)); err != nil {
		t.Fatalf("the new key 400 days later: %v", err)
	}
	eventually(t, 15*time.Second, "the live of the old key ended", func() bool { return !roomState(t, base, tok, stream).Status })
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", pub["url"].(string))
	eventually(t, 15*time.Second, "room live with the new key", func() bool { return roomState(t, base, tok, stream).Status })
	if got := probe(t, play["rtmp"].(string)); got != "h264 640x360, aac" {
		t.Fatalf("the live published with the new key plays as %q", got)
	}
}

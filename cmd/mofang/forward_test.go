package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestForwardRestream is issue 14's restreaming test, end to end with two
// services: room A on the source has a destination that is room B's
// RTMP ingest on a second MoFang (its stream key as the key). ffmpeg
// publishes to A; the forwarded stream plays at B (ffprobe); B stopped,
// the destination shows error or connecting while A still plays; B back
// on the same port, forwarding resumes and B plays again. The key is
// never in Live.forward.list's answers nor in the source's logs; the
// forward is no viewer of A; a non-owner is refused; bad URLs, an unknown
// destination and the cap per room get their errnos.
func TestForwardRestream(t *testing.T) {
	needFFmpeg(t)
	// The destination: a second service whose room B takes a publish.
	dataB := t.TempDir()
	rtmpB := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	argsB := []string{"--rtmp", rtmpB, "--public-host", "127.0.0.1", "--publisher-grace", "1s"}
	baseB, stopB := startServe(t, dataB, argsB...)
	stopped := false
	defer func() {
		if !stopped {
			stopB()
		}
	}()
	regB := rpcCall(t, baseB, "", "User.register", map[string]any{"username": "dest", "password": "dest-pass"})
	tokB := regB["data"].(map[string]any)["access_token"].(string)
	roomB := rpcCall(t, baseB, tokB, "Live.stream", map[string]any{"room_name": "mirror"})["data"].(map[string]any)
	streamB := roomB["stream_name"].(string)
	keyB := roomB["publish"].(map[string]any)["stream_key"].(string) // room_...?sign=...
	serverB := "rtmp://" + rtmpB + "/live"
	secret := keyB[strings.Index(keyB, "sign=")+len("sign="):]

	// The source, with its logs kept to look for the key.
	logsA := &syncBuffer{}
	rtmpA := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	baseA, stopA := startServeLogs(t, t.TempDir(), logsA, "--rtmp", rtmpA, "--public-host", "127.0.0.1",
		"--log-level", "debug", "--forward-private", "--forward-max", "2")
	defer stopA()
	reg := rpcCall(t, baseA, "", "User.register", map[string]any{"username": "streamer", "password": "streamer-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, baseA, tok, "Live.stream", map[string]any{"room_name": "source"})["data"].(map[string]any)
	roomID, streamA := room["room_id"], room["stream_name"].(string)
	other := rpcCall(t, baseA, "", "User.register", map[string]any{"username": "other", "password": "other-pass"})
	tokOther := other["data"].(map[string]any)["access_token"].(string)

	noKey := func(what string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if strings.Contains(string(b), secret) || strings.Contains(string(b), keyB) {
			t.Fatalf("%s shows the stream key: %s", what, b)
		}
	}
	errno := func(r map[string]any) float64 { t.Helper(); return r["errno"].(float64) }

	for _, bad := range []string{"http://" + rtmpB + "/live", "rtmp://", "rtmp://" + rtmpB, "rtmp://u:p@" + rtmpB + "/live",
		"rtmp://" + rtmpB + "/live?x=1", "rtmp://" + rtmpB + ":99999/live", "rtmp://" + rtmpB + "/li ve", "rtmp://h/" + strings.Repeat("a", 600)} {
		if r := rpcCall(t, baseA, tok, "Live.forward.add", map[string]any{"room_id": roomID, "url": bad, "key": keyB}); errno(r) != 1029 {
			t.Fatalf("Live.forward.add %q: %v, want errno 1029", bad, r)
		}
	}
	if r := rpcCall(t, baseA, tokOther, "Live.forward.add", map[string]any{"room_id": roomID, "url": serverB, "key": keyB}); errno(r) != 1006 {
		t.Fatalf("Live.forward.add by another user: %v, want errno 1006", r)
	}
	add := rpcCall(t, baseA, tok, "Live.forward.add", map[string]any{"room_id": roomID, "url": serverB, "key": keyB})
	if errno(add) != 1000 {
		t.Fatalf("Live.forward.add: %v", add)
	}
	noKey("Live.forward.add", add)
	fwd := add["data"].(map[string]any)
	if fwd["key"] != "****"+keyB[len(keyB)-4:] || fwd["url"] != serverB || fwd["state"] != "idle" {
		t.Fatalf("the destination added: %v", fwd)
	}
	// a second fits, a third passes the cap of 2; removing it twice
	spare := rpcCall(t, baseA, tok, "Live.forward.add", map[string]any{"room_id": roomID, "url": "rtmps://203.0.113.9/app", "key": "k-0123456789"})
	if errno(spare) != 1000 {
		t.Fatalf("second Live.forward.add: %v", spare)
	}
	if r := rpcCall(t, baseA, tok, "Live.forward.add", map[string]any{"room_id": roomID, "url": serverB, "key": "k"}); errno(r) != 1028 {
		t.Fatalf("third Live.forward.add with a cap of 2: %v, want errno 1028", r)
	}
	spareID := spare["data"].(map[string]any)["id"]
	if r := rpcCall(t, baseA, tok, "Live.forward.remove", map[string]any{"room_id": roomID, "forward_id": spareID}); errno(r) != 1000 {
		t.Fatalf("Live.forward.remove: %v", r)
	}
	if r := rpcCall(t, baseA, tok, "Live.forward.remove", map[string]any{"room_id": roomID, "forward_id": spareID}); errno(r) != 1027 {
		t.Fatalf("Live.forward.remove again: %v, want errno 1027", r)
	}
	if r := rpcCall(t, baseA, tokOther, "Live.forward.list", map[string]any{"room_id": roomID}); errno(r) != 1006 {
		t.Fatalf("Live.forward.list by another user: %v, want errno 1006", r)
	}

	list := func() map[string]any {
		t.Helper()
		r := rpcCall(t, baseA, tok, "Live.forward.list", map[string]any{"room_id": roomID})
		if errno(r) != 1000 {
			t.Fatalf("Live.forward.list: %v", r)
		}
		noKey("Live.forward.list", r)
		fs := r["data"].(map[string]any)["forwards"].([]any)
		if len(fs) != 1 {
			t.Fatalf("Live.forward.list: %v", r)
		}
		return fs[0].(map[string]any)
	}
	if d := list(); d["state"] != "idle" || d["id"] != fwd["id"] {
		t.Fatalf("before the live: %v", d)
	}

	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", room["publish"].(map[string]any)["url"].(string))
	eventually(t, 20*time.Second, "the destination live", func() bool { return list()["state"] == "live" })
	eventually(t, 15*time.Second, "room B live from the forward", func() bool { return roomState(t, baseB, tokB, streamB).Status })
	playB := func() string {
		p := rpcCall(t, baseB, tokB, "Live.stream.read", map[string]any{"room_id": roomB["room_id"]})["data"].(map[string]any)["play"].(map[string]any)
		return p["rtmp"].(string)
	}
	if got := probe(t, playB()); got != "h264 640x360, aac" {
		t.Fatalf("the forwarded stream at the destination: %q", got)
	}
	if d := list(); d["bytes_sent"].(float64) <= 0 || d["since"].(float64) <= 0 {
		t.Fatalf("a live destination: %v", d)
	}
	if n := roomState(t, baseA, tok, streamA).ClientsNumber; n != 0 {
		t.Fatalf("the source counts %d viewers with only the forward reading it", n)
	}
	if m := scrape(t, baseA+"metrics"); m["mofang_forward_up"] != 1 || m["mofang_forward_sent_bytes_total"] <= 0 {
		t.Fatalf("metrics: up %v, bytes %v", m["mofang_forward_up"], m["mofang_forward_sent_bytes_total"])
	}

	// The destination goes away: the push fails and retries; the source
	// plays on.
	stopped = true
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the destination failing", func() bool {
		d := list()
		return d["state"] == "error" || d["state"] == "connecting"
	})
	eventually(t, 20*time.Second, "the destination in error with a reason", func() bool {
		d := list()
		return d["state"] == "error" && d["reason"] != ""
	})
	playA := rpcCall(t, baseA, tok, "Live.stream.read", map[string]any{"room_id": roomID})["data"].(map[string]any)["play"].(map[string]any)["rtmp"].(string)
	if got := probe(t, playA); got != "h264 640x360, aac" {
		t.Fatalf("the source while its destination is down: %q", got)
	}

	// The destination back on its address: forwarding resumes.
	baseB, stopB = startServe(t, dataB, argsB...)
	stopped = false
	eventually(t, 45*time.Second, "the destination live again", func() bool { return list()["state"] == "live" })
	eventually(t, 15*time.Second, "room B live again", func() bool { return roomState(t, baseB, tokB, streamB).Status })
	if got := probe(t, playB()); got != "h264 640x360, aac" {
		t.Fatalf("the forwarded stream after the destination came back: %q", got)
	}
	if m := scrape(t, baseA+"metrics"); m["mofang_forward_connects_total"] < 2 {
		t.Fatalf("connects after the destination came back: %v", m["mofang_forward_connects_total"])
	}

	// Removed while live: the push stops.
	if r := rpcCall(t, baseA, tok, "Live.forward.remove", map[string]any{"room_id": roomID, "forward_id": fwd["id"]}); errno(r) != 1000 {
		t.Fatalf("Live.forward.remove: %v", r)
	}
	eventually(t, 15*time.Second, "room B no longer fed", func() bool { return !roomState(t, baseB, tokB, streamB).Status })
	if logs := logsA.String(); strings.Contains(logs, secret) {
		t.Fatal("the source's logs show the destination's stream key")
	} else if !strings.Contains(logs, "forward live") {
		t.Fatal("the source's logs do not show the forward (are they kept?)")
	}
}

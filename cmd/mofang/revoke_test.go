package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// status returns the HTTP status of GET url, reading and dropping what
// comes for at most a second (a live FLV stream never ends).
func status(t *testing.T, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	go func() { time.Sleep(time.Second); cancel() }()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// probeRefused checks that ffprobe cannot read url (promptly).
func probeRefused(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-hide_banner", "-loglevel", "error", "-show_entries", "stream=codec_name", url).CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("ffprobe %s was not refused promptly (err %v): %s", url, err, out)
	}
}

// TestPasswordChangeRevokesMedia is issue 10's "play signs outlive a room
// password change", end to end: after the owner changes the password, a
// viewer's play sign from before is refused over HTTP-FLV and RTMP, the
// player reading with it is disconnected, and a replay sign from before
// is refused; new signs (with the new password) work.
func TestPasswordChangeRevokesMedia(t *testing.T) {
	needFFmpeg(t)
	rtmpPort := freePort(t)
	url, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1")
	defer stop()

	owner := rpcCall(t, url, "", "User.register", map[string]any{"username": "streamer", "password": "streamer-pass"})
	ownerTok := owner["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, url, ownerTok, "Live.stream", map[string]any{"room_name": "private", "password": "one"})["data"].(map[string]any)
	roomID, stream := room["room_id"], room["stream_name"].(string)
	publishURL := room["publish"].(map[string]any)["url"].(string)
	viewer := rpcCall(t, url, "", "User.register", map[string]any{"username": "viewer", "password": "viewer-pass"})
	viewerTok := viewer["data"].(map[string]any)["access_token"].(string)

	// A first live, recorded.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip(t),
		"-t", "3", "-c", "copy", "-f", "flv", publishURL).CombinedOutput()
	cancel()
	if err != nil {
		t.Fatalf("publishing: %v: %s", err, out)
	}
	var recs struct {
		Data struct {
			Records []struct {
				Status string `json:"status"`
				MP4    string `json:"mp4"`
			} `json:"records"`
		} `json:"data"`
	}
	eventually(t, 15*time.Second, "recording finished", func() bool {
		remarshal(t, rpcCall(t, url, viewerTok, "Live.record.list", map[string]any{"room_id": roomID, "password": "one"}), &recs)
		return len(recs.Data.Records) == 1 && recs.Data.Records[0].Status == "complete"
	})
	oldReplay := recs.Data.Records[0].MP4
	if code := status(t, oldReplay); code != http.StatusOK {
		t.Fatalf("replay before the change: HTTP %d", code)
	}

	// A second live, watched with the old password's sign.
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", publishURL)
	eventually(t, 15*time.Second, "room live", func() bool { return roomState(t, url, ownerTok, stream).Status })
	play := rpcCall(t, url, viewerTok, "Live.stream.read", map[string]any{"room_id": roomID, "password": "one"})["data"].(map[string]any)["play"].(map[string]any)
	oldFLV, oldRTMP := play["flv"].(string), play["rtmp"].(string)
	player := startFFmpeg(t, "-i", oldFLV, "-c", "copy", "-f", "null", "-")
	eventually(t, 10*time.Second, "player counted", func() bool { return roomState(t, url, ownerTok, stream).ClientsNumber == 1 })
	playerDone := make(chan struct{})
	go func() { player.Wait(); close(playerDone) }()

	if r := rpcCall(t, url, ownerTok, "Live.stream", map[string]any{"room_name": "private", "password": "two"}); r["errno"] != float64(1000) {
		t.Fatalf("changing the password: %v", r)
	}
	select {
	case <-playerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the player of the old password was not disconnected within 10 s")
	}
	if code := status(t, oldFLV); code != http.StatusForbidden {
		t.Fatalf("HTTP-FLV with the old play sign: HTTP %d, want 403", code)
	}
	probeRefused(t, oldRTMP)
	if code := status(t, oldReplay); code != http.StatusForbidden {
		t.Fatalf("replay with the old sign: HTTP %d, want 403", code)
	}

	play = rpcCall(t, url, viewerTok, "Live.stream.read", map[string]any{"room_id": roomID, "password": "two"})["data"].(map[string]any)["play"].(map[string]any)
	for _, u := range []string{play["flv"].(string), play["rtmp"].(string)} {
		if got := probe(t, u); got != "h264 640x360, aac" {
			t.Fatalf("ffprobe %s with the new sign sees %q", u, got)
		}
	}
	remarshal(t, rpcCall(t, url, viewerTok, "Live.record.list", map[string]any{"room_id": roomID, "password": "two"}), &recs)
	if code := status(t, recs.Data.Records[len(recs.Data.Records)-1].MP4); code != http.StatusOK {
		t.Fatalf("replay with the new sign: HTTP %d", code)
	}
}

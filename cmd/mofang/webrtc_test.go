package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/webrtc/client"
)

// whipFiles makes a WHIP publisher's input from the test clip: Annex-B
// H.264 baseline and Ogg Opus, one packet per page.
func whipFiles(t *testing.T) (h264, ogg string) {
	dir := t.TempDir()
	h264, ogg = filepath.Join(dir, "clip.h264"), filepath.Join(dir, "clip.ogg")
	for _, args := range [][]string{
		{"-i", clip(t), "-an", "-c:v", "libx264", "-bf", "0", "-profile:v", "baseline", "-g", "30", "-preset", "veryfast", "-f", "h264", h264},
		{"-i", clip(t), "-vn", "-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2", "-page_duration", "1", "-f", "ogg", ogg},
	} {
		if b, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
		}
	}
	return h264, ogg
}

// statusOf returns the HTTP status of a WHIP/WHEP client's refusal, 0
// for none.
func statusOf(err error) (int, string) {
	var se *client.StatusError
	if errors.As(err, &se) {
		return se.Code, se.Body
	}
	return 0, ""
}

// TestWebRTCService: WHIP and WHEP through the service, with the real
// Authorizer: Live.stream's whip URL publishes (and no sign, a wrong one
// or a play sign is refused with 403); the room is live with the
// publisher's address; Live.stream.read's whep URL plays it (without the
// sign, a room with a password refuses: 403); the WHEP viewer is counted
// in Live.stream.list and is a webrtc client for admins; an RTMP
// publisher is refused while WHIP publishes and WHIP while RTMP does; a
// stream with B-frames says so in Live.stream.read and Admin.stream.list
// and refuses WHEP with 409.
func TestWebRTCService(t *testing.T) {
	needFFmpeg(t)
	rtmpPort := freePort(t)
	data := t.TempDir()
	url, stop := startServe(t, data, "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1",
		"--ice-server", "stun:stun.example.org:3478")
	defer stop()

	reg := rpcCall(t, url, "", "User.register", map[string]any{"username": "rtcstreamer", "password": "streamer-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, url, tok, "Live.stream", map[string]any{"room_name": "rtc", "password": "letmein"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	pub := room["publish"].(map[string]any)
	whip, _ := pub["whip"].(string)
	if !strings.HasPrefix(whip, url+"live/"+stream+"/whip?sign=") {
		t.Fatalf("whip URL %q, want %slive/%s/whip?sign=...", whip, url, stream)
	}
	read := rpcCall(t, url, tok, "Live.stream.read", map[string]any{"room_id": room["room_id"]})["data"].(map[string]any)
	play := read["play"].(map[string]any)
	whep, _ := play["whep"].(string)
	if !strings.HasPrefix(whep, url+"live/"+stream+"/whep?sign=") {
		t.Fatalf("whep URL %q", whep)
	}
	if read["bframes"] != false {
		t.Errorf("Live.stream.read bframes = %v before any stream", read["bframes"])
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := url + "live/" + stream + "/whip"
	for name, u := range map[string]string{
		"no sign":    base,
		"wrong sign": base + "?sign=4102444800-00000000000000000000000000000000",
		"play sign":  base + "?sign=" + play["sign"].(string),
	} {
		_, err := client.Publish(ctx, client.PublisherConfig{URL: u})
		if code, body := statusOf(err); code != http.StatusForbidden || !strings.Contains(body, "sign") {
			t.Errorf("WHIP with %s: %v, want 403 naming the sign", name, err)
		}
	}
	if _, err := client.Publish(ctx, client.PublisherConfig{URL: url + "live/room_nobody/whip?sign=" + pub["sign"].(string)}); func() bool {
		c, _ := statusOf(err)
		return c != http.StatusForbidden
	}() {
		t.Errorf("WHIP of an unknown stream: %v, want 403", err)
	}
	if st := roomState(t, url, tok, stream); st.Status {
		t.Fatal("a refused WHIP publisher made the room live")
	}

	h264, ogg := whipFiles(t)
	p, err := client.Publish(ctx, client.PublisherConfig{URL: whip})
	if err != nil {
		t.Fatalf("WHIP publish: %v", err)
	}
	pubCtx, pubStop := context.WithCancel(ctx)
	defer pubStop()
	for _, send := range []func() error{
		func() error {
			f, err := os.Open(h264)
			if err != nil {
				return err
			}
			defer f.Close()
			return client.SendH264(pubCtx, p.Video, f, 30)
		},
		func() error {
			f, err := os.Open(ogg)
			if err != nil {
				return err
			}
			defer f.Close()
			return client.SendOgg(pubCtx, p.Audio, f)
		},
	} {
		go send() //nolint:errcheck
	}
	eventually(t, 20*time.Second, "room live over WHIP", func() bool {
		st := roomState(t, url, tok, stream)
		return st.Status && st.RoomStatus == 1
	})
	if st := roomState(t, url, tok, stream); st.User.IP != "127.0.0.1" {
		t.Errorf("WHIP room's publisher IP %q, want 127.0.0.1", st.User.IP)
	}

	// an RTMP publisher is refused while WHIP publishes
	rctx, rcancel := context.WithTimeout(ctx, 15*time.Second)
	out, err := exec.CommandContext(rctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip(t),
		"-t", "2", "-c", "copy", "-f", "flv", pub["url"].(string)).CombinedOutput()
	timedOut := rctx.Err() != nil
	rcancel()
	if err == nil || timedOut {
		t.Errorf("RTMP publisher while WHIP publishes was not refused (err %v): %s", err, out)
	}

	// WHEP: a room with a password wants the play sign
	if _, err := client.Play(ctx, client.PlayerConfig{URL: url + "live/" + stream + "/whep"}); func() bool {
		c, _ := statusOf(err)
		return c != http.StatusForbidden
	}() {
		t.Errorf("WHEP without the sign of a room with a password: %v, want 403", err)
	}
	viewer, err := client.Play(ctx, client.PlayerConfig{URL: whep})
	if err != nil {
		t.Fatalf("WHEP play: %v", err)
	}
	defer viewer.Close()
	eventually(t, 20*time.Second, "video and audio over WHEP", func() bool {
		v, a, _, _ := viewer.Packets()
		return v > 50 && a > 25
	})
	if st := roomState(t, url, tok, stream); st.ClientsNumber != 1 {
		t.Errorf("clients_number = %d with one WHEP viewer", st.ClientsNumber)
	}

	makeAdmin(t, data, "rtcstreamer")
	var clients struct {
		Data struct {
			Clients []struct {
				ID       string `json:"id"`
				Role     string `json:"role"`
				Protocol string `json:"protocol"`
				IP       string `json:"ip"`
			} `json:"clients"`
		} `json:"data"`
	}
	eventually(t, 10*time.Second, "admins see the webrtc publisher and viewer", func() bool {
		remarshal(t, rpcCall(t, url, tok, "Admin.client.list", map[string]any{"stream": stream}), &clients)
		roles := map[string]string{}
		for _, c := range clients.Data.Clients {
			roles[c.Role] = c.Protocol
		}
		return roles["publish"] == "webrtc" && roles["play"] == "webrtc"
	})

	// the publisher leaves; an RTMP publisher with x264's B-frames comes
	p.Close()
	pubStop()
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c:v", "libx264", "-bf", "2", "-preset", "veryfast",
		"-c:a", "aac", "-f", "flv", pub["url"].(string))
	var bread map[string]any
	eventually(t, 30*time.Second, "Live.stream.read says bframes", func() bool {
		bread = rpcCall(t, url, tok, "Live.stream.read", map[string]any{"room_id": room["room_id"]})["data"].(map[string]any)
		return bread["bframes"] == true
	})
	if w, _ := bread["warning"].(string); !strings.Contains(w, "bframes=0") {
		t.Errorf("Live.stream.read warning %q does not name the OBS fix", w)
	}
	var streams struct {
		Data struct {
			Streams []struct {
				Name    string `json:"name"`
				BFrames bool   `json:"bframes"`
			} `json:"streams"`
		} `json:"data"`
	}
	remarshal(t, rpcCall(t, url, tok, "Admin.stream.list", map[string]any{}), &streams)
	if len(streams.Data.Streams) != 1 || !streams.Data.Streams[0].BFrames {
		t.Errorf("Admin.stream.list: %+v, want the stream with bframes", streams)
	}
	_, err = client.Play(ctx, client.PlayerConfig{URL: whep})
	if code, body := statusOf(err); code != http.StatusConflict || !strings.Contains(body, "bframes=0") {
		t.Errorf("WHEP of a stream with B-frames: %v, want 409 naming the fix", err)
	}
	// WHIP while RTMP publishes
	_, err = client.Publish(ctx, client.PublisherConfig{URL: whip})
	if code, _ := statusOf(err); code != http.StatusConflict {
		t.Errorf("WHIP while RTMP publishes: %v, want 409", err)
	}
	// the ICE servers are announced to WHIP/WHEP clients
	req, _ := http.NewRequest(http.MethodOptions, whep, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if l := resp.Header.Get("Link"); !strings.Contains(l, "stun:stun.example.org:3478") {
		t.Errorf("OPTIONS Link = %q, want the configured STUN server", l)
	}
}

package main

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fetch GETs u: status, headers and body.
func fetch(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// thumbOf is the thumb field of stream's item in tok's room list.
func thumbOf(t *testing.T, api, tok, stream string) string {
	t.Helper()
	var r struct {
		List []struct {
			Name  string  `json:"name"`
			Thumb *string `json:"thumb"`
			Cover *string `json:"cover"`
		} `json:"stream_list"`
	}
	remarshal(t, rpcCall(t, api, tok, "Live.stream.list", map[string]any{}), &r)
	for _, it := range r.List {
		if it.Name == stream {
			if it.Thumb == nil || it.Cover == nil {
				t.Fatalf("list item of %s without thumb or cover", stream)
			}
			return *it.Thumb
		}
	}
	t.Fatalf("%s not listed", stream)
	return ""
}

// TestThumbnailEndToEnd: while a room is live, its list item and
// /live/<stream>/thumb.jpg give a JPEG of its stream (640x360, the clip's
// size at the default 360 lines); two requests at once make one ffmpeg
// decode (mofang_thumbnail_decodes_total); a room that is not live is 404;
// a room with a password does not show its picture without the play
// sign of its playback.
func TestThumbnailEndToEnd(t *testing.T) {
	needFFmpeg(t)
	rtmpPort := freePort(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1",
		"--publisher-grace", "1s")
	defer stop()
	login := func(name string) string {
		r := rpcCall(t, api, "", "User.register", map[string]any{"username": name, "password": name + "-pass"})
		return r["data"].(map[string]any)["access_token"].(string)
	}
	alice, bob, carol := login("alice"), login("bob"), login("carol")
	open := rpcCall(t, api, alice, "Live.stream", map[string]any{"room_name": "open"})["data"].(map[string]any)
	stream := open["stream_name"].(string)
	thumbURL := strings.TrimSuffix(api, "/") + "/live/" + stream + "/thumb.jpg"

	if code, _, _ := fetch(t, thumbURL); code != http.StatusNotFound {
		t.Fatalf("thumbnail of a room not live: HTTP %d, want 404", code)
	}
	if th := thumbOf(t, api, bob, stream); th != "" {
		t.Fatalf("a room not live lists the thumb %q", th)
	}

	pub := startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", open["publish"].(map[string]any)["url"].(string))
	eventually(t, 15*time.Second, "room live", func() bool { return roomState(t, api, bob, stream).Status })
	if th := thumbOf(t, api, bob, stream); th != thumbURL {
		t.Fatalf("list thumb %q, want %q", th, thumbURL)
	}

	// Two requests at once, the first ones: one decode, one picture.
	var codes [2]int
	var bodies [2][]byte
	var hdr http.Header
	eventually(t, 10*time.Second, "a thumbnail", func() bool {
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var h http.Header
				codes[i], h, bodies[i] = fetch(t, thumbURL)
				if i == 0 {
					hdr = h
				}
			}()
		}
		wg.Wait()
		// 404 until the first key frame: no decode runs for it
		return codes[0] == http.StatusOK && codes[1] == http.StatusOK
	})
	if n := scrape(t, api+"metrics")["mofang_thumbnail_decodes_total"]; n != 1 {
		t.Fatalf("two requests at once: %v decodes, want 1", n)
	}
	if !bytes.Equal(bodies[0], bodies[1]) {
		t.Fatal("the two requests got different pictures")
	}
	if ct, cc := hdr.Get("Content-Type"), hdr.Get("Cache-Control"); ct != "image/jpeg" || cc != "max-age=10" {
		t.Fatalf("Content-Type %q, Cache-Control %q", ct, cc)
	}
	img, err := jpeg.Decode(bytes.NewReader(bodies[0]))
	if err != nil {
		t.Fatalf("the thumbnail is no JPEG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 360 {
		t.Fatalf("thumbnail %dx%d, want 640x360", b.Dx(), b.Dy())
	}
	if st := roomState(t, api, bob, stream); st.ClientsNumber != 0 {
		t.Fatalf("thumbnails counted as %d viewers", st.ClientsNumber)
	}

	// A room with a password: no picture without the sign, in the list
	// (but for its owner) or at its URL.
	locked := rpcCall(t, api, carol, "Live.stream", map[string]any{"room_name": "locked", "password": "pw"})["data"].(map[string]any)
	lstream := locked["stream_name"].(string)
	lthumb := strings.TrimSuffix(api, "/") + "/live/" + lstream + "/thumb.jpg"
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", locked["publish"].(map[string]any)["url"].(string))
	eventually(t, 15*time.Second, "locked room live", func() bool { return roomState(t, api, bob, lstream).Status })
	if th := thumbOf(t, api, bob, lstream); th != "" {
		t.Fatalf("a room with a password lists its thumb %q to others", th)
	}
	for what, u := range map[string]string{
		"no sign":        lthumb,
		"a wrong sign":   lthumb + "?sign=4102444800-00000000000000000000000000000000",
		"another room's": lthumb + "?sign=" + strings.Split(rpcCall(t, api, bob, "Live.stream.read", map[string]any{"room_id": open["room_id"]})["data"].(map[string]any)["play"].(map[string]any)["flv"].(string), "sign=")[1],
		"a publish sign": lthumb + "?sign=" + locked["publish"].(map[string]any)["sign"].(string),
	} {
		if code, _, b := fetch(t, u); code != http.StatusForbidden || bytes.HasPrefix(b, []byte{0xff, 0xd8}) {
			t.Fatalf("locked room's thumbnail with %s: HTTP %d, want 403", what, code)
		}
	}
	read := rpcCall(t, api, bob, "Live.stream.read", map[string]any{"room_id": locked["room_id"], "password": "pw"})["data"].(map[string]any)
	signed := read["play"].(map[string]any)["thumb"].(string)
	if !strings.HasPrefix(signed, lthumb+"?sign=") {
		t.Fatalf("play.thumb %q", signed)
	}
	owners := thumbOf(t, api, carol, lstream)
	for who, u := range map[string]string{"with the password's play sign": signed, "the owner's list": owners} {
		var code int
		var b []byte
		var h http.Header
		eventually(t, 10*time.Second, who, func() bool {
			code, h, b = fetch(t, u)
			return code != http.StatusNotFound
		})
		if _, err := jpeg.Decode(bytes.NewReader(b)); code != http.StatusOK || err != nil {
			t.Fatalf("locked room's thumbnail %s: HTTP %d, %v", who, code, err)
		}
		if cc := h.Get("Cache-Control"); cc != "private, max-age=10" {
			t.Fatalf("locked room's thumbnail: Cache-Control %q", cc)
		}
	}

	// The live ends: 404, and the list has no thumb.
	pub.Process.Kill()
	pub.Wait()
	eventually(t, 15*time.Second, "thumbnail gone", func() bool {
		code, _, _ := fetch(t, thumbURL)
		return code == http.StatusNotFound
	})
	eventually(t, 15*time.Second, "list thumb gone", func() bool { return thumbOf(t, api, bob, stream) == "" })
}

// TestThumbnailSettings: thumb-decodes 0 turns thumbnails off (404, no
// thumb in the list); bad thumbnail settings stop the start.
func TestThumbnailSettings(t *testing.T) {
	for _, bad := range [][]string{{"--thumb-decodes", "-1"}, {"--thumb-decodes", "two"}, {"--thumb-interval", "100ms"}, {"--thumb-ffmpeg", ""}} {
		c, _, err := loadConfig("test", bad, io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.thumbnails(); err == nil || !strings.Contains(err.Error(), bad[0][2:]) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, bad[0][2:])
		}
	}
	c, _, _ := loadConfig("test", nil, io.Discard, nil)
	if tc, off, err := c.thumbnails(); err != nil || off || tc.Interval != 10*time.Second || tc.MaxDecodes != 2 || tc.FFmpeg != "ffmpeg" {
		t.Fatalf("defaults: %+v, off %v, %v", tc, off, err)
	}

	needFFmpeg(t)
	rtmpPort := freePort(t)
	api, stop := startServe(t, t.TempDir(), "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort), "--public-host", "127.0.0.1", "--thumb-decodes", "0")
	defer stop()
	reg := rpcCall(t, api, "", "User.register", map[string]any{"username": "alice", "password": "alice-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, api, tok, "Live.stream", map[string]any{"room_name": "no thumbnails"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", room["publish"].(map[string]any)["url"].(string))
	eventually(t, 15*time.Second, "room live", func() bool { return roomState(t, api, tok, stream).Status })
	time.Sleep(time.Second) // a key frame is in
	if code, _, _ := fetch(t, strings.TrimSuffix(api, "/")+"/live/"+stream+"/thumb.jpg"); code != http.StatusNotFound {
		t.Fatalf("thumbnails off: HTTP %d, want 404", code)
	}
	if th := thumbOf(t, api, tok, stream); th != "" {
		t.Fatalf("thumbnails off: list thumb %q", th)
	}
	play := rpcCall(t, api, tok, "Live.stream.read", map[string]any{"room_id": room["room_id"]})["data"].(map[string]any)["play"].(map[string]any)
	if _, ok := play["thumb"]; ok {
		t.Fatalf("thumbnails off: play.thumb %q", play["thumb"])
	}
}

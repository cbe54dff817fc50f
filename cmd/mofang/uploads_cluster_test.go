package main

import (
	"bytes"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/images"
)

// getPicture GETs a picture and returns the status, headers and bytes.
func getPicture(t *testing.T, base, url string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, strings.TrimSuffix(base, "/")+url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// TestImagesAcrossNodes: two nodes on one MariaDB database and one
// Redis. An avatar uploaded on node A is served by node B with the same
// bytes and headers (type, immutable caching, ETag, nosniff, CSP), and
// B answers its ETag with 304. One picture uploaded on A and B at once
// is stored once: one row, its parts once, served by both.
func TestImagesAcrossNodes(t *testing.T) {
	redisURL := testRedisURL(t)
	o := newClusterOpts(t, "redis://"+redisHostPort(redisURL)+"/11")
	suffix := randomHex(3)
	a := startClusterNode(t, o, "a-"+suffix)
	b := startClusterNode(t, o, "b-"+suffix)
	register := func(n *clusterNode, name string) string {
		reg := rpcCall(t, n.api, "", "User.register", map[string]any{"username": name, "password": name + "-pass"})
		return reg["data"].(map[string]any)["access_token"].(string)
	}
	alice, bob := register(a, "alice"), register(b, "bob")

	var pic bytes.Buffer
	png.Encode(&pic, testPicture(200, 150))
	code, ans := upload(t, a.api, "/upload/avatar", alice, pic.Bytes(), nil)
	if code != http.StatusOK || ans.Data == nil {
		t.Fatalf("avatar on A: %d %+v", code, ans)
	}
	url := ans.Data.URL
	codeA, hA, bodyA := getPicture(t, a.api, url, nil)
	codeB, hB, bodyB := getPicture(t, b.api, url, nil)
	if codeA != http.StatusOK || codeB != http.StatusOK || !bytes.Equal(bodyA, bodyB) || len(bodyB) == 0 {
		t.Fatalf("GET %s: A %d (%d bytes), B %d (%d bytes)", url, codeA, len(bodyA), codeB, len(bodyB))
	}
	for _, k := range []string{"Content-Type", "Content-Length", "Cache-Control", "ETag", "X-Content-Type-Options", "Content-Security-Policy"} {
		if hA.Get(k) != hB.Get(k) || hB.Get(k) == "" {
			t.Errorf("%s: A %q, B %q", k, hA.Get(k), hB.Get(k))
		}
	}
	checkServed(t, b.api, url, "image/png", 200, 150) // decodable, immutable, 304 on its ETag

	// One picture uploaded on both nodes at once.
	var same bytes.Buffer
	png.Encode(&same, testPicture(640, 480))
	var wg sync.WaitGroup
	urls := make([]string, 2)
	codes := make([]int, 2)
	for i, n := range []struct {
		api, tok string
	}{{a.api, alice}, {b.api, bob}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, ans := upload(t, n.api, "/upload/avatar", n.tok, same.Bytes(), nil)
			codes[i] = code
			if ans.Data != nil {
				urls[i] = ans.Data.URL
			}
		}()
	}
	wg.Wait()
	if codes[0] != http.StatusOK || codes[1] != http.StatusOK || urls[0] != urls[1] || urls[0] == "" {
		t.Fatalf("racing uploads: %v %v", codes, urls)
	}
	if n := storedImages(t, o.dsn); n != 2 {
		t.Fatalf("pictures in the database: %d, want 2 (the avatar, the raced one once)", n)
	}
	_, _, onA := getPicture(t, a.api, urls[0], nil)
	_, _, onB := getPicture(t, b.api, urls[0], nil)
	if !bytes.Equal(onA, onB) {
		t.Fatal("the raced picture differs between the nodes")
	}
	checkServed(t, a.api, urls[0], "image/png", 640, 480)
	checkServed(t, b.api, urls[0], "image/png", 640, 480)
}

// TestImagesFromBefore: a picture stored as a file in <data>/images by
// an earlier version is served at its URL and copied into the database
// at start (the file stays), so other nodes serve it too.
func TestImagesFromBefore(t *testing.T) {
	data := t.TempDir()
	old, err := images.New(filepath.Join(data, "images"), images.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var pic bytes.Buffer
	png.Encode(&pic, testPicture(64, 48))
	img, err := old.Save(bytes.NewReader(pic.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(filepath.Join(data, "images", img.Name))
	api, stop := startServe(t, data)
	url := "/images/" + img.Name
	if code, _, body := getPicture(t, api, url, nil); code != http.StatusOK || !bytes.Equal(body, file) {
		t.Fatalf("GET %s: %d, %d bytes", url, code, len(body))
	}
	checkServed(t, api, url, "image/png", 64, 48)
	db := "sqlite:" + filepath.Join(data, "mofang.db")
	eventually(t, 10*time.Second, "the file imported into the database", func() bool { return storedImages(t, db) == 1 })
	if _, err := os.Stat(filepath.Join(data, "images", img.Name)); err != nil {
		t.Fatalf("the file went: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Served from the database now: the file gone, a restart still serves it.
	os.Remove(filepath.Join(data, "images", img.Name))
	api, stop = startServe(t, data)
	defer stop()
	if code, _, body := getPicture(t, api, url, nil); code != http.StatusOK || !bytes.Equal(body, file) {
		t.Fatalf("GET %s from the database: %d, %d bytes", url, code, len(body))
	}
}

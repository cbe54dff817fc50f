package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPlainGoBuildServesPages clones this repository's HEAD into a
// temporary folder, builds the command there with the go tool alone (no
// make, no npm: the clone has no node_modules) and starts it: GET / gives
// the pages' HTML and the script and style sheet it names come with their
// types and the committed bytes. This is what `go install
// github.com/mofang-live/mofang/cmd/mofang@<version>` gives an operator.
//
// Under the race detector the build passes -race, so it reuses the
// packages this test binary was compiled from instead of compiling every
// dependency once more; the bundle is embedded the same way either way.
func TestPlainGoBuildServesPages(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the build of the binary from a clone")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("skipping: the go tool is not on PATH (%v)", err)
	}
	gitTool, err := exec.LookPath("git")
	if err != nil {
		t.Skipf("skipping: git is not on PATH (%v)", err)
	}
	top, err := exec.Command(gitTool, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("skipping: not in a git work tree, nothing to clone (%v)", err)
	}
	root := strings.TrimSpace(string(top))
	if st, _ := exec.Command(gitTool, "-C", root, "status", "--porcelain", "--", "cmd/mofang/web").Output(); len(st) > 0 {
		t.Logf("cmd/mofang/web has uncommitted changes; this test builds the committed HEAD:\n%s", st)
	}

	tmp := t.TempDir()
	clone := filepath.Join(tmp, "clone")
	if out, err := exec.Command(gitTool, "clone", "--quiet", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(clone, "cmd/mofang/web/node_modules")); err == nil {
		t.Fatal("the clone has node_modules: it is not clean")
	}

	bin := filepath.Join(tmp, "mofang")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/mofang")
	build := exec.Command(goTool, args...)
	build.Dir = clone
	// Everything the build needs is in the module cache already (this
	// test was compiled from it): no network.
	build.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go %s in a clean clone: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("go %s in a clean clone took %v", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	serve := exec.Command(bin, "serve", "--http", addr, "--data", filepath.Join(tmp, "data"), "--log-level", "warn",
		"--rtmp", "127.0.0.1:0", "--rtsp", "127.0.0.1:0", "--rtsp-udp", "", "--srt-addr", "127.0.0.1:0", "--webrtc-addr", "127.0.0.1:0")
	serve.Stdout, serve.Stderr = &logs, &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	defer func() {
		serve.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("serve after SIGTERM: %v\n%s", err, logs.String())
			}
		case <-time.After(20 * time.Second):
			serve.Process.Kill()
			<-exited
			t.Errorf("serve did not stop within 20 s of SIGTERM")
		}
	}()

	base := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, logs.String())
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp, body
	}

	// The service is up once /healthz answers (migrations run first).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("serve exited: %v\n%s", err, logs.String())
		case <-ctx.Done():
			t.Fatalf("serve did not answer /healthz within 30 s\n%s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}

	resp, page := get("/")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!bytes.Contains(page, []byte("<title>MoFang Live</title>")) || !bytes.Contains(page, []byte(`id="app"`)) {
		t.Fatalf("GET /: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	refs := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+\.(js|css))"`).FindAllSubmatch(page, -1)
	want := map[string]string{"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
	seen := map[string]bool{}
	for _, m := range refs {
		path, ext := string(m[1]), string(m[2])
		resp, body := get(path)
		committed, err := os.ReadFile(filepath.Join(clone, "cmd/mofang/web/dist", filepath.FromSlash(path)))
		if err != nil {
			t.Fatalf("%s named by the page is not in the clone's committed bundle: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != want[ext] || !bytes.Equal(body, committed) {
			t.Errorf("GET %s: %d %q, %d bytes (committed: %d), want 200 %q and the committed file",
				path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(committed), want[ext])
		}
		seen[ext] = true
	}
	if !seen["js"] || !seen["css"] {
		t.Fatalf("the page names no script or no style sheet under /assets/: %v\n%s", seen, page)
	}
	if resp, _ := get("/favicon.svg"); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("GET /favicon.svg: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

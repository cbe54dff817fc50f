package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/schema"
)

// startServe runs "mofang serve" in-process with a data folder and returns
// its base URL and a function that stops it and returns its error.
func startServe(t *testing.T, data string, extra ...string) (string, func() error) {
	t.Helper()
	return startServeLogs(t, data, io.Discard, extra...)
}

// startServeLogs is startServe writing the service's logs to logs.
func startServeLogs(t *testing.T, data string, logs io.Writer, extra ...string) (string, func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// bcrypt at the default cost takes seconds under the race detector on
	// a loaded machine: the default 5 s call deadline would fail logins.
	args := append([]string{"serve", "--http", addr, "--data", data, "--log-level", "warn",
		"--rtmp", "127.0.0.1:0", "--rtsp", "127.0.0.1:0", "--rtsp-udp", "", "--srt-addr", "127.0.0.1:0", "--webrtc-addr", "127.0.0.1:0", "--call-timeout", "1m"}, extra...)
	go func() { done <- run(ctx, args, strings.NewReader(""), io.Discard, logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("serve did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop within 15 s")
			return nil
		}
	}
	return "http://" + addr + "/", stop
}

func rpcCall(t *testing.T, url, tok, method string, params any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "jwt "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Result map[string]any `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Result == nil {
		t.Fatalf("%s: %v", method, err)
	}
	return r.Result
}

// TestServeKeepsItsSecrets starts the service on a fresh data folder, as
// `make run` does, and again on the same folder: the database and the
// generated secrets persist, so a token of the first run still works.
func TestServeKeepsItsSecrets(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	url, stop := startServe(t, data)
	reg := rpcCall(t, url, "", "User.register", map[string]any{"username": "alice", "password": "alice-pass"})
	if reg["errno"] != float64(1000) {
		t.Fatalf("register: %v", reg)
	}
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, url, tok, "Live.stream", map[string]any{"room_name": "r"})
	if room["errno"] != float64(1000) {
		t.Fatalf("Live.stream: %v", room)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	for _, f := range []string{"mofang.db", "jwt.secret", "sign.secret"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if strings.HasSuffix(f, ".secret") && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}

	url, stop = startServe(t, data)
	defer stop()
	info := rpcCall(t, url, tok, "User.info", map[string]any{})
	if info["errno"] != float64(1000) {
		t.Fatalf("token of the first run after a restart: %v", info)
	}
	list := rpcCall(t, url, tok, "Live.stream.list", map[string]any{})
	if rooms := list["stream_list"].([]any); len(rooms) != 1 {
		t.Fatalf("rooms after restart: %v", rooms)
	}
}

// TestConfigPrecedence: flag over environment over file over default.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mofang.yaml")
	os.WriteFile(file, []byte("http: \":7777\"\npublic-host: file.example\nlog-level: debug\ntoken-ttl: 1h\nallow-recharge: true\n"), 0o600)
	t.Setenv("MOFANG_PUBLIC_HOST", "env.example")
	t.Setenv("MOFANG_TOKEN_TTL", "5m")
	c, _, err := loadConfig("test", []string{"--config", file, "--public-host", "flag.example"}, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":7777" || c.PublicHost != "flag.example" || c.TokenTTL != 5*time.Minute ||
		c.LogLevel != "debug" || !c.AllowRecharge || c.RTMPAddr != ":1935" {
		t.Fatalf("config = %+v", c)
	}
	if got := c.dbDSN(); got != "sqlite:data/mofang.db" {
		t.Fatalf("default db = %q", got)
	}
	os.WriteFile(file, []byte("htp: \":7777\"\n"), 0o600)
	if _, _, err := loadConfig("test", []string{"--config", file}, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "unknown setting") {
		t.Fatalf("a misspelt setting: %v", err)
	}
	// config print shows the file's values and never a secret.
	var out bytes.Buffer
	os.WriteFile(file, []byte("public-host: file.example\njwt-secret: super-secret-value-0123456789abcdef\n"), 0o600)
	if err := run(context.Background(), []string{"config", "print", "--config", file}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `public-host: "env.example"`) || strings.Contains(out.String(), "super-secret") {
		t.Fatalf("config print:\n%s", out.String())
	}
}

// TestUserCommands makes an admin from the command line.
func TestUserCommands(t *testing.T) {
	data := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"user", "create", "--data", data, "--admin", "boss"}, strings.NewReader("boss-password\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"user", "create", "--data", data, "--password", "pleb-password", "pleb"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"user", "promote", "--data", data, "pleb"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"user", "promote", "--data", data, "nobody"}, nil, &out, io.Discard); err == nil {
		t.Fatal("promoted a user that does not exist")
	}
	if !strings.Contains(out.String(), "created user boss (id 1), admin: true") || !strings.Contains(out.String(), "user pleb (id 2) admin: true") {
		t.Fatalf("output:\n%s", out.String())
	}
	url, stop := startServe(t, data)
	defer stop()
	login := rpcCall(t, url, "", "User.login", map[string]any{"username": "boss", "password": "boss-password"})
	tok := login["data"].(map[string]any)["access_token"].(string)
	if r := rpcCall(t, url, tok, "Admin.server.stats", map[string]any{}); r["errno"] != float64(1000) {
		t.Fatalf("admin made on the command line: %v", r)
	}
}

func TestMigrateCommand(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "m.db")
	ms, err := schema.Migrations(schema.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	versions := make([]int, len(ms))
	for i, m := range ms {
		versions[i] = m.Version
	}
	if len(versions) < 5 {
		t.Fatalf("only %d migrations embedded", len(versions))
	}
	var out bytes.Buffer
	for _, want := range []string{fmt.Sprintf("applied migrations %v", versions), "schema is up to date"} {
		out.Reset()
		if err := run(context.Background(), []string{"migrate", "--db", dsn}, nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), want) {
			t.Fatalf("migrate printed %q, want %q", out.String(), want)
		}
	}
	if err := run(context.Background(), []string{"nope"}, nil, io.Discard, io.Discard); err == nil {
		t.Fatal("an unknown command succeeded")
	}
}

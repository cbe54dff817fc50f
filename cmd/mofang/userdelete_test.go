package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestUserDelete: `mofang user delete` while the service runs: the user's
// token stops working within seconds, and the user can no longer log in.
func TestUserDelete(t *testing.T) {
	data := t.TempDir()
	url, stop := startServe(t, data)
	defer stop()
	reg := rpcCall(t, url, "", "User.register", map[string]any{"username": "Mallory", "password": "mallory-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	if r := rpcCall(t, url, tok, "Live.stream.list", map[string]any{}); r["errno"] != float64(1000) {
		t.Fatalf("list before: %v", r)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"user", "delete", "--data", data, "mallory"}, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "deleted user Mallory (id 1)") {
		t.Fatalf("output: %s", out.String())
	}
	eventually(t, 10*time.Second, "token refused", func() bool {
		return rpcCall(t, url, tok, "Live.stream.list", map[string]any{})["errno"] == float64(1005)
	})
	if r := rpcCall(t, url, "", "User.login", map[string]any{"username": "Mallory", "password": "mallory-pass"}); r["errno"] != float64(1004) {
		t.Fatalf("login of a deleted user: %v", r)
	}
	if err := run(context.Background(), []string{"user", "delete", "--data", data, "mallory"}, nil, io.Discard, io.Discard); err == nil {
		t.Fatal("deleted a user twice")
	}
}

package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// postLang makes one call over HTTP with an Accept-Language header.
func (e *env) postLang(lang, tok, method string, params any) result {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, err := http.NewRequest(http.MethodPost, e.url+"/", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	if tok != "" {
		req.Header.Set("Authorization", "jwt "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Result result `json:"result"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatalf("%s: %s: %v", method, b, err)
	}
	return r.Result
}

// errmsg follows Accept-Language (zh* → Chinese, else English) for the
// errnos' standard messages, over HTTP and over a websocket (the upgrade
// request's header); errno never changes, and a specific message with
// details stays as it is.
func TestErrmsgFollowsAcceptLanguage(t *testing.T) {
	e := newEnv(t, "sqlite")
	tok, _ := e.register("lang")
	bad := map[string]any{"username": "lang", "password": "wrong-password"}
	for _, c := range []struct{ lang, want string }{
		{"", "wrong user name or password"},
		{"en-US,en;q=0.9", "wrong user name or password"},
		{"de-DE", "wrong user name or password"},
		{"zh-CN,zh;q=0.9,en;q=0.8", "用户名或密码错误"},
		{"zh", "用户名或密码错误"},
		{"zh-Hans", "用户名或密码错误"},
	} {
		r := e.postLang(c.lang, "", "User.login", bad)
		if r.Errno != 1004 || r.Errmsg != c.want {
			t.Errorf("Accept-Language %q: login: %d %q, want 1004 %q", c.lang, r.Errno, r.Errmsg, c.want)
		}
	}
	// Success stays "ok"; a detailed message stays English.
	if r := e.postLang("zh-CN", tok, "User.info", map[string]any{}); r.Errno != 1000 || r.Errmsg != "ok" {
		t.Errorf("User.info in Chinese: %d %q", r.Errno, r.Errmsg)
	}
	if r := e.postLang("zh-CN", tok, "Live.stream.list", map[string]any{"page": 0, "size": 10}); r.Errno != 1001 || !strings.Contains(r.Errmsg, "page must be") {
		t.Errorf("Live.stream.list page 0 in Chinese: %d %q, want 1001 with its details", r.Errno, r.Errmsg)
	}
	if r := e.postLang("zh-CN", tok, "Live.stream.read", map[string]any{"room_id": 987654}); r.Errno != 1007 || r.Errmsg != "房间不存在" {
		t.Errorf("Live.stream.read of no room in Chinese: %d %q", r.Errno, r.Errmsg)
	}

	// Websocket: the language of the upgrade request.
	for _, c := range []struct{ lang, want string }{
		{"zh-CN", "房间不存在"},
		{"en", "room does not exist"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		url := "ws" + strings.TrimPrefix(e.url, "http") + "/?token=" + tok
		conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Accept-Language": {c.lang}}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.CloseNow() })
		w := &wsClient{t: t, c: conn, events: make(chan roomEvent, 100), closed: make(chan struct{})}
		go w.readLoop()
		r := w.call("Live.room.join", map[string]any{"room_id": 987654})
		if r.Errno != 1007 || r.Errmsg != c.want {
			t.Errorf("websocket %s: join of no room: %d %q, want 1007 %q", c.lang, r.Errno, r.Errmsg, c.want)
		}
	}
}

package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/token"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/store/storetest"
)

var (
	testJWTSecret  = []byte("test-jwt-secret-0123456789abcdef")
	testSignSecret = []byte("test-sign-secret-0123")
)

// fakeLive is a LiveStats the tests set by hand.
type fakeLive struct {
	mu      sync.Mutex
	streams map[string]rpc.LiveStream
}

func (f *fakeLive) set(name string, s rpc.LiveStream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams == nil {
		f.streams = map[string]rpc.LiveStream{}
	}
	f.streams[name] = s
}

func (f *fakeLive) LiveStream(name string) (rpc.LiveStream, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.streams[name]
	return s, ok
}

func (f *fakeLive) LiveStreamNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for n := range f.streams {
		names = append(names, n)
	}
	return names
}

// env is an API server over real HTTP on a fresh database.
type env struct {
	t      testing.TB
	url    string
	store  *store.Store
	live   *fakeLive
	api    *rpc.Server
	signer *urlsign.Signer
}

func newEnv(t testing.TB, dialect string) *env {
	t.Helper()
	return newEnvWith(t, dialect, func(*rpc.Config) {})
}

// newEnvWith is newEnv with changes to the server's config.
func newEnvWith(t testing.TB, dialect string, change func(*rpc.Config)) *env {
	t.Helper()
	return newEnvOn(t, storetest.Open(t, dialect), &fakeLive{}, change)
}

// newEnvOn is newEnvWith on a given store and live streams, which several
// servers (nodes) may share.
func newEnvOn(t testing.TB, st *store.Store, live *fakeLive, change func(*rpc.Config)) *env {
	t.Helper()
	tokens, err := token.NewIssuer(testJWTSecret, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := urlsign.New(testSignSecret)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rpc.Config{
		Store: st, Tokens: tokens, Signer: signer, Live: live,
		PublicHost: "live.example", Ports: rpc.Ports{HTTP: 8080, RTMP: 1935, RTSP: 8554, SRT: 8890},
		MaxBodyBytes: 64 << 10, BcryptCost: 4,
		// Fixtures sign up many users from one address; the tests of the
		// per-address limit on logins set it.
		Limits: rpc.Limits{Costly: rpc.Rate{Burst: -1}},
	}
	change(&cfg)
	api, err := rpc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := api.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &env{t: t, url: srv.URL, store: st, live: live, api: api, signer: signer}
}

// forEachDialect runs f against a server on every database.
func forEachDialect(t *testing.T, f func(t *testing.T, e *env)) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) { f(t, newEnv(t, d)) })
	}
}

// post sends a raw body to the endpoint as MoFang's pages do (axios POST to
// the base URL) and returns the status and body.
func (e *env) post(tok string, body string) (int, []byte) {
	e.t.Helper()
	auth := ""
	if tok != "" {
		auth = "jwt " + tok
	}
	return e.postHeader(auth, body)
}

// postHeader is post with any Authorization header ("" for none).
func (e *env) postHeader(auth, body string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/", bytes.NewBufferString(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// response is a decoded JSON-RPC response.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// result is the MoFang part of a result.
type result struct {
	Errno  int            `json:"errno"`
	Errmsg string         `json:"errmsg"`
	Data   map[string]any `json:"data"`
}

// call makes one MoFang call with named params and returns its result,
// failing the test on a JSON-RPC error.
func (e *env) call(tok, method string, params any) result {
	e.t.Helper()
	var r result
	e.callInto(tok, method, params, &r)
	return r
}

// callInto is call decoding the result into out.
func (e *env) callInto(tok, method string, params any, out any) {
	e.t.Helper()
	resp := e.rpc(tok, method, params)
	if resp.Error != nil {
		e.t.Fatalf("%s: error %d %s %s", method, resp.Error.Code, resp.Error.Message, resp.Error.Data)
	}
	if err := json.Unmarshal(resp.Result, out); err != nil {
		e.t.Fatalf("%s: result %s: %v", method, resp.Result, err)
	}
}

// rpc makes one call and returns the whole response.
func (e *env) rpc(tok, method string, params any) response {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "6f1c2f1e-uuid", "method": method, "params": params})
	code, b := e.post(tok, string(body))
	if code != http.StatusOK {
		e.t.Fatalf("%s: HTTP %d: %s", method, code, b)
	}
	var resp response
	if err := json.Unmarshal(b, &resp); err != nil {
		e.t.Fatalf("%s: response %s: %v", method, b, err)
	}
	if resp.JSONRPC != "2.0" || string(resp.ID) != `"6f1c2f1e-uuid"` {
		e.t.Fatalf("%s: response envelope %s", method, b)
	}
	return resp
}

// register makes a user and returns its access token and id.
func (e *env) register(name string) (string, int64) {
	e.t.Helper()
	r := e.call("", "User.register", map[string]any{"username": name, "password": "secret-" + name, "nickname": "Nick " + name})
	if r.Errno != 1000 {
		e.t.Fatalf("register %s: %+v", name, r)
	}
	user := r.Data["user"].(map[string]any)
	return r.Data["access_token"].(string), int64(user["id"].(float64))
}

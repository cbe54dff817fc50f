package rpc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

// specAPI holds the methods the examples of the JSON-RPC 2.0
// specification (section 7) call.
type specAPI struct {
	updates atomic.Int32
	hellos  atomic.Int32
}

type SubtractParams struct {
	Minuend    int `json:"minuend"`
	Subtrahend int `json:"subtrahend"`
}

func (a *specAPI) Subtract(ctx context.Context, p SubtractParams) (int, error) {
	return p.Minuend - p.Subtrahend, nil
}

type SumParams struct {
	A int `json:"a"`
	B int `json:"b"`
	C int `json:"c"`
}

func (a *specAPI) Sum(ctx context.Context, p SumParams) (int, error) { return p.A + p.B + p.C, nil }

type FiveParams struct {
	P1 int `json:"p1"`
	P2 int `json:"p2"`
	P3 int `json:"p3"`
	P4 int `json:"p4"`
	P5 int `json:"p5"`
}

func (a *specAPI) Update(ctx context.Context, p FiveParams) (int, error) {
	a.updates.Add(1)
	return 0, nil
}

type NoParams struct{}

func (a *specAPI) GetData(ctx context.Context, p NoParams) ([]any, error) {
	return []any{"hello", 5}, nil
}

type OneParam struct {
	V int `json:"v"`
}

func (a *specAPI) NotifyHello(ctx context.Context, p OneParam) (int, error) {
	a.hellos.Add(1)
	return 0, nil
}

func (a *specAPI) NotifySum(ctx context.Context, p SumParams) (int, error) {
	return p.A + p.B + p.C, nil
}

func newSpecEnv(t testing.TB) (*env, *specAPI) {
	e := newEnv(t, "sqlite")
	api := &specAPI{}
	if err := e.api.Register("Spec", api); err != nil {
		t.Fatal(err)
	}
	for alias, orig := range map[string]string{
		"subtract": "Spec.subtract", "sum": "Spec.sum", "update": "Spec.update",
		"get_data": "Spec.get.data", "notify_hello": "Spec.notify.hello", "notify_sum": "Spec.notify.sum",
	} {
		if err := e.api.Alias(alias, orig); err != nil {
			t.Fatal(err)
		}
	}
	return e, api
}

// TestSpecExamples sends every example of section 7 of the JSON-RPC 2.0
// specification and expects the responses written there. Error messages
// must match the specification's; detail goes to "data", which is not
// compared.
func TestSpecExamples(t *testing.T) {
	e, api := newSpecEnv(t)
	for _, c := range []struct {
		name string
		send string
		want string // "" means no response at all
	}{
		{"positional 1", `{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}`,
			`{"jsonrpc": "2.0", "result": 19, "id": 1}`},
		{"positional 2", `{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}`,
			`{"jsonrpc": "2.0", "result": -19, "id": 2}`},
		{"named 1", `{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}`,
			`{"jsonrpc": "2.0", "result": 19, "id": 3}`},
		{"named 2", `{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}`,
			`{"jsonrpc": "2.0", "result": 19, "id": 4}`},
		{"notification 1", `{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}`, ``},
		{"notification 2", `{"jsonrpc": "2.0", "method": "foobar"}`, ``},
		{"non-existent method", `{"jsonrpc": "2.0", "method": "foobar", "id": "1"}`,
			`{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}`},
		{"invalid JSON", `{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]`,
			`{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`},
		{"invalid Request object", `{"jsonrpc": "2.0", "method": 1, "params": "bar"}`,
			`{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`},
		{"batch, invalid JSON", `[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]`, `{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}`},
		{"empty Array", `[]`,
			`{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}`},
		{"invalid batch, not empty", `[1]`,
			`[{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}]`},
		{"invalid batch", `[1,2,3]`, `[
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}
]`},
		{"batch", `[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
  {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
  {"foo": "boo"},
  {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
  {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
]`, `[
  {"jsonrpc": "2.0", "result": 7, "id": "1"},
  {"jsonrpc": "2.0", "result": 19, "id": "2"},
  {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
  {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
  {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
]`},
		{"batch, all notifications", `[
  {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
  {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
]`, ``},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.post("", c.send)
			if c.want == "" {
				if len(strings.TrimSpace(string(body))) != 0 || code != http.StatusNoContent {
					t.Fatalf("a notification was answered: HTTP %d %q", code, body)
				}
				return
			}
			if code != http.StatusOK {
				t.Fatalf("HTTP %d, want 200", code)
			}
			if got, want := normalize(t, body), normalize(t, []byte(c.want)); !reflect.DeepEqual(got, want) {
				t.Fatalf("sent %s\n got %s\nwant %s", c.send, body, c.want)
			}
		})
	}
	// Notifications run even though they are not answered.
	if api.updates.Load() != 1 || api.hellos.Load() != 2 {
		t.Fatalf("notifications ran: update %d times, notify_hello %d times; want 1 and 2", api.updates.Load(), api.hellos.Load())
	}
}

// normalize decodes a response and drops the errors' "data", which the
// specification leaves to the server.
func normalize(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("response is not JSON: %s", b)
	}
	drop := func(m map[string]any) {
		if e, ok := m["error"].(map[string]any); ok {
			delete(e, "data")
		}
	}
	switch x := v.(type) {
	case map[string]any:
		drop(x)
	case []any:
		for _, it := range x {
			if m, ok := it.(map[string]any); ok {
				drop(m)
			}
		}
	}
	return v
}

func TestIDsEchoedExactly(t *testing.T) {
	e, _ := newSpecEnv(t)
	for _, id := range []string{`1`, `-7`, `1.5`, `1e3`, `12345678901234567890123`, `"abc"`, `"é\u00e9\"x"`, `""`, `null`} {
		code, body := e.post("", `{"jsonrpc":"2.0","method":"subtract","params":[1,1],"id":`+id+`}`)
		if code != http.StatusOK {
			t.Fatalf("id %s: HTTP %d", id, code)
		}
		if want := `"id":` + id + `,`; !strings.Contains(string(body), want) {
			t.Fatalf("id %s not echoed exactly: %s", id, body)
		}
	}
	for _, id := range []string{`{}`, `[1]`, `true`} {
		_, body := e.post("", `{"jsonrpc":"2.0","method":"subtract","params":[1,1],"id":`+id+`}`)
		if !strings.Contains(string(body), `"code":-32600`) || !strings.Contains(string(body), `"id":null`) {
			t.Fatalf("id %s: %s, want Invalid Request with id null", id, body)
		}
	}
}

func TestEnvelopeErrors(t *testing.T) {
	e, _ := newSpecEnv(t)
	for _, c := range []struct {
		name, send string
		code       int
	}{
		{"no version", `{"method":"subtract","params":[1,1],"id":1}`, -32600},
		{"version 1.0", `{"jsonrpc":"1.0","method":"subtract","params":[1,1],"id":1}`, -32600},
		{"version as number", `{"jsonrpc":2.0,"method":"subtract","params":[1,1],"id":1}`, -32600},
		{"params a string", `{"jsonrpc":"2.0","method":"subtract","params":"x","id":1}`, -32600},
		{"params null", `{"jsonrpc":"2.0","method":"subtract","params":null,"id":1}`, -32600},
		{"no method", `{"jsonrpc":"2.0","id":1}`, -32600},
		{"a string", `"hello"`, -32600},
		{"empty body", ``, -32700},
		{"truncated", `{"jsonrpc":"2.0",`, -32700},
		{"two objects", `{"jsonrpc":"2.0","method":"sum","id":1}{"jsonrpc":"2.0","method":"sum","id":2}`, -32700},
		{"too many positional", `{"jsonrpc":"2.0","method":"subtract","params":[1,2,3],"id":1}`, -32602},
		{"wrong type", `{"jsonrpc":"2.0","method":"subtract","params":{"minuend":"x"},"id":1}`, -32602},
		{"unknown name", `{"jsonrpc":"2.0","method":"subtract","params":{"minuends":1},"id":1}`, -32602},
		{"rpc-reserved name", `{"jsonrpc":"2.0","method":"rpc.foo","id":1}`, -32601},
		{"case matters", `{"jsonrpc":"2.0","method":"Subtract","id":1}`, -32601},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.post("", c.send)
			if code != http.StatusOK {
				t.Fatalf("HTTP %d, want 200: %s", code, body)
			}
			var r response
			if err := json.Unmarshal(body, &r); err != nil || r.Error == nil || r.Error.Code != c.code {
				t.Fatalf("got %s, want error %d", body, c.code)
			}
		})
	}
}

func TestBodyLimits(t *testing.T) {
	e, _ := newSpecEnv(t)
	big := `{"jsonrpc":"2.0","method":"subtract","params":[1,1],"id":1,"pad":"` + strings.Repeat("x", 70<<10) + `"}`
	code, body := e.post("", big)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), `"code":-32600`) {
		t.Fatalf("oversized body: HTTP %d %s", code, body)
	}
	var batch []string
	for range 101 {
		batch = append(batch, `{"jsonrpc":"2.0","method":"sum","params":[1,1,1],"id":1}`)
	}
	code, body = e.post("", "["+strings.Join(batch, ",")+"]")
	if code != http.StatusOK || !strings.HasPrefix(string(body), `{"jsonrpc":"2.0","id":null,"error":{"code":-32600`) {
		t.Fatalf("batch of 101: HTTP %d %s", code, body)
	}
	// The endpoint answers POST only.
	resp, err := http.Get(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: HTTP %d", resp.StatusCode)
	}
}

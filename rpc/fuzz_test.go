package rpc_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzEndpoint posts arbitrary bodies: every answer is a 204 with no body,
// or a 200/413 whose body is valid JSON; nothing panics.
func FuzzEndpoint(f *testing.F) {
	e, _ := newSpecEnv(f)
	for _, seed := range []string{
		`{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}`,
		`{"jsonrpc":"2.0","method":"subtract","params":{"minuend":1},"id":"x"}`,
		`[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"foo":"boo"},1]`,
		`{"jsonrpc":"2.0","method":"Live.stream.read","params":{"room_id":"0001","password":"x"},"id":null}`,
		`{"jsonrpc":"2.0","method":"User.login","params":["a","b"],"id":1e400}`,
		`[]`, `{`, `null`, `"x"`, `{"id":{}}`, `[[[]]]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		e.api.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusNoContent:
			if rec.Body.Len() != 0 {
				t.Fatalf("204 with a body: %q", rec.Body)
			}
		case http.StatusOK, http.StatusRequestEntityTooLarge:
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("body %q: invalid JSON response %q", body, rec.Body)
			}
		default:
			t.Fatalf("body %q: HTTP %d", body, rec.Code)
		}
	})
}

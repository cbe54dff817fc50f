package rpc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mofang-live/mofang/store"
)

// BenchmarkPing is the cost of the cheapest call through the handler,
// without the network.
func BenchmarkPing(b *testing.B) {
	e := newEnv(b, "sqlite")
	body := `{"jsonrpc":"2.0","id":1,"method":"Server.ping","params":{}}`
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkStreamList is Live.stream.list, a page of 20 of 1,000 rooms,
// through the handler with a logged-in caller.
func BenchmarkStreamList(b *testing.B) {
	e := newEnv(b, "sqlite")
	tok := seedBenchRooms(b, e, 1000)
	body := `{"jsonrpc":"2.0","id":1,"method":"Live.stream.list","params":{"page":1,"size":20}}`
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			req.Header.Set("Authorization", "jwt "+tok)
			e.api.ServeHTTP(rec, req)
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"errno":1000`) {
				b.Fatal(rec.Code, rec.Body.String())
			}
		}
	})
}

func seedBenchRooms(b *testing.B, e *env, n int) string {
	ctx := context.Background()
	tok, _ := e.register("viewer")
	for i := range n {
		u, err := e.store.CreateUser(ctx, store.NewUser{Name: fmt.Sprintf("u%05d", i), PasswordHash: "-"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.store.CreateRoom(ctx, store.NewRoom{Name: fmt.Sprintf("s%05d", i), RoomName: "r", UserID: u.ID}); err != nil {
			b.Fatal(err)
		}
	}
	return tok
}

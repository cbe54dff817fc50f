package rpc_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/store"
	"github.com/mofang-live/mofang/store/storetest"
)

// hungStore opens a store of dialect that the test can make stop
// answering: MySQL through a proxy that stops forwarding (as a MariaDB
// stopped with SIGSTOP), SQLite with its write lock held by another
// connection (reads still go on: WAL).
func hungStore(t *testing.T, dialect string) (st *store.Store, freeze, thaw func()) {
	t.Helper()
	ctx := context.Background()
	dsn := storetest.DSN(t, dialect)
	var proxy *storetest.Proxy
	if dialect == "mysql" {
		proxy = storetest.NewProxy(t, storetest.MySQLAddr(t, dsn))
		dsn = proxy.MySQLDSN(t, dsn)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if proxy != nil {
		return st, proxy.Freeze, proxy.Thaw
	}
	var tx *sql.Tx
	freeze = func() {
		var err error
		if tx, err = st.DB().BeginTx(ctx, nil); err != nil { // BEGIN IMMEDIATE
			t.Fatal(err)
		}
		if _, err := tx.Exec("UPDATE mf_user SET coin = coin WHERE id = 0"); err != nil {
			t.Fatal(err)
		}
	}
	thaw = func() {
		if tx != nil {
			tx.Rollback()
			tx = nil
		}
	}
	return st, freeze, thaw
}

// TestHungDatabase stops the database and checks that calls answer errno
// 1021 (database unavailable) within the call deadline instead of hanging,
// and that a call on a websocket is answered while an earlier one on the
// same socket is stuck. Before call deadlines, a login on a hung MariaDB
// never answered and everything after it on its socket waited behind it.
func TestHungDatabase(t *testing.T) {
	const deadline = 2 * time.Second
	for _, dialect := range storetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			st, freeze, thaw := hungStore(t, dialect)
			e := newEnvWith(t, "sqlite", func(c *rpc.Config) {
				c.Store = st
				c.CallTimeout = deadline
				c.Limits.SlowCall = deadline / 4
			})
			t.Cleanup(thaw) // before the server's cleanups, which wait for calls
			tok, _ := e.register("alice")
			room := e.call(tok, "Live.stream", map[string]any{"room_name": "before"})
			roomID := room.Data["room_id"]
			ws := e.dialWS(tok, false)
			login := map[string]any{"username": "alice", "password": "secret-alice"}

			freeze()
			// What waits: on MySQL every query, on SQLite (WAL) the writes.
			calls := []struct {
				method string
				params map[string]any
			}{
				{"User.login", login}, // writes a refresh token
				{"Live.stream", map[string]any{"room_name": "during"}},
			}
			if dialect == "mysql" {
				calls = append(calls, []struct {
					method string
					params map[string]any
				}{
					{"Live.stream.list", map[string]any{"page": 1, "size": 7}},
					{"Live.stream.read", map[string]any{"room_id": roomID}},
					{"User.info", map[string]any{}},
				}...)
			}
			client := &http.Client{Timeout: 20 * time.Second} // a hang fails the test, not stalls it
			for _, c := range calls {
				start := time.Now()
				r, err := postCall(client, e.url, tok, c.method, c.params)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("%s on a hung database: %v after %v", c.method, err, took)
				}
				if r.Errno != int(rpc.ErrnoUnavailable) || !strings.Contains(r.Errmsg, "database") {
					t.Fatalf("%s on a hung database: %+v after %v, want errno 1021", c.method, r, took)
				}
				if took > deadline+4*time.Second {
					t.Fatalf("%s answered after %v, deadline %v", c.method, took, deadline)
				}
			}

			// A websocket: a stuck login does not hold up the ping after it.
			stuck := ws.send("User.login", login)
			ping := ws.send("Server.ping", map[string]any{})
			select {
			case r := <-ping:
				if r.Error != nil {
					t.Fatalf("ping: %+v", r.Error)
				}
			case <-stuck:
				t.Fatal("the login on a hung database answered before the ping sent after it")
			case <-time.After(deadline + 5*time.Second):
				t.Fatal("ping behind a stuck call: no answer")
			}
			if r := ws.await("User.login", stuck); r.Errno != int(rpc.ErrnoUnavailable) {
				t.Fatalf("login on the websocket: %+v, want errno 1021", r)
			}

			thaw()
			if r := e.call("", "User.login", login); r.Errno != 1000 {
				t.Fatalf("login once the database is back: %+v", r)
			}
			if r := ws.call("User.login", login); r.Errno != 1000 {
				t.Fatalf("login on the websocket once the database is back: %+v", r)
			}
		})
	}
}

// postCall makes one call over POST with client and returns its MoFang
// result.
func postCall(client *http.Client, url, tok, method string, params any) (result, error) {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, err := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(body))
	if err != nil {
		return result{}, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "jwt "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	var r response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return result{}, err
	}
	if r.Error != nil {
		return result{}, &rpcError{r.Error.Code, r.Error.Message}
	}
	var res result
	err = json.Unmarshal(r.Result, &res)
	return res, err
}

type rpcError struct {
	code int
	msg  string
}

func (e *rpcError) Error() string { return "JSON-RPC error " + e.msg }

// TestWebsocketOrder pipelines calls on one websocket: while each answers
// quickly they run one after the other, as sent, so a client may send
// dependent calls without waiting (here: renames, the last one wins).
func TestWebsocketOrder(t *testing.T) {
	e := newEnv(t, "sqlite")
	tok, _ := e.register("alice")
	ws := e.dialWS(tok, false)
	var chans []chan response
	for i := range 20 {
		chans = append(chans, ws.send("Live.stream", map[string]any{"room_name": fmt.Sprintf("name %02d", i)}))
	}
	last := ""
	for i, ch := range chans {
		r := ws.await("Live.stream", ch)
		if r.Errno != 1000 {
			t.Fatalf("rename %d: %+v", i, r)
		}
		last = r.Data["room_name"].(string)
	}
	if last != "name 19" {
		t.Fatalf("last rename answered %q", last)
	}
	var list struct {
		StreamList []struct {
			RoomName string `json:"room_name"`
		} `json:"stream_list"`
	}
	e.callInto(tok, "Live.stream.list", map[string]any{}, &list)
	if len(list.StreamList) != 1 || list.StreamList[0].RoomName != "name 19" {
		t.Fatalf("rooms after 20 pipelined renames: %+v", list)
	}
}

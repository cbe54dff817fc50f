package rpc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mofang-live/mofang/rpc"
)

// TestCostlyBatch sends a batch of 100 User.login: at most 5 of them run
// bcrypt, the others answer errno 1003 at once. Before, all 100 ran
// (7.9 s of bcrypt at cost 10).
func TestCostlyBatch(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) {
		c.BcryptCost = 4
		c.Limits.Costly = rpc.Rate{} // the default: burst 10 per IP
		c.CallTimeout = time.Minute  // bcrypt under the race detector is slow
	})
	e.register("alice")
	var batch []string
	for i := range 100 {
		batch = append(batch, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"User.login","params":{"username":"alice","password":"secret-alice"}}`, i))
	}
	start := time.Now()
	code, body := e.post("", "["+strings.Join(batch, ",")+"]")
	took := time.Since(start)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, body)
	}
	var resps []response
	if err := json.Unmarshal(body, &resps); err != nil || len(resps) != 100 {
		t.Fatalf("%d responses, %v", len(resps), err)
	}
	ran, refused := 0, 0
	for _, r := range resps {
		var res result
		json.Unmarshal(r.Result, &res)
		switch res.Errno {
		case 1000:
			ran++
		case int(rpc.ErrnoTooMany):
			refused++
		default:
			t.Fatalf("login in a batch: %s", r.Result)
		}
	}
	if ran != 5 || refused != 95 {
		t.Fatalf("%d logins ran, %d refused; want 5 and 95", ran, refused)
	}
	t.Logf("a batch of 100 logins (bcrypt cost 4) answered in %v", took)
}

// TestCostlyPerIP logs in quickly from one address: after 10 (a sign-up
// included) the next is refused with errno 1003, on POST and websocket
// alike, while another address still logs in.
func TestCostlyPerIP(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) {
		c.Limits.Costly = rpc.Rate{Every: time.Minute, Burst: 10} // the default burst; no refill within the test
	})
	e.register("alice") // the first
	login := map[string]any{"username": "alice", "password": "secret-alice"}
	for i := 2; i <= 10; i++ {
		if r := e.call("", "User.login", login); r.Errno != 1000 {
			t.Fatalf("login %d: %+v", i, r)
		}
	}
	if r := e.call("", "User.login", login); r.Errno != int(rpc.ErrnoTooMany) {
		t.Fatalf("11th login from one address: %+v, want errno 1003", r)
	}
	if r := e.dialWS("", false).call("User.login", login); r.Errno != int(rpc.ErrnoTooMany) {
		t.Fatalf("login on a websocket from the same address: %+v, want errno 1003", r)
	}
	// Another loopback address has its own bucket.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)},
	}).DialContext}}
	r, err := postCall(other, e.url, "", "User.login", login)
	if err != nil || r.Errno != 1000 {
		t.Fatalf("login from 127.0.0.2: %+v, %v", r, err)
	}
}

// TestPOSTIgnoresURLToken: a token in the URL of a POST does not log in
// (URLs end up in logs and histories); the websocket upgrade, which
// browsers cannot give headers, still takes it.
func TestPOSTIgnoresURLToken(t *testing.T) {
	e := newEnv(t, "sqlite")
	tok, _ := e.register("alice")
	resp, err := http.Post(e.url+"/?token="+tok, "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"User.info","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Result result }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.Result.Errno != int(rpc.ErrnoLogin) {
		t.Fatalf("POST with ?token=: %+v, want errno 1005", r.Result)
	}
	if r := e.call(tok, "User.info", map[string]any{}); r.Errno != 1000 {
		t.Fatalf("POST with the header: %+v", r)
	}
	if r := e.dialWS(tok, true).call("User.info", map[string]any{}); r.Errno != 1000 {
		t.Fatalf("websocket with ?token=: %+v", r)
	}
}

// TestWebsocketsPerIP opens websockets from one address up to the cap:
// the next is refused with HTTP 429 until one closes.
func TestWebsocketsPerIP(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) { c.Limits.SocketsPerIP = 3 })
	tok, _ := e.register("alice")
	var open []*wsClient
	for range 3 {
		open = append(open, e.dialWS(tok, false))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.url, "http") + "/"
	_, resp, err := websocket.Dial(ctx, url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th websocket from one address: %v, %+v; want HTTP 429", err, resp)
	}
	open[0].c.Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := websocket.Dial(ctx, url, nil)
		if err == nil {
			c.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no websocket after one of 3 closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAnonymousWebsocketCloses: a websocket without a valid token may call
// the methods that need no login, and is closed after AuthTimeout; one
// with a token stays. Before, 1,000 such sockets stayed open for good.
func TestAnonymousWebsocketCloses(t *testing.T) {
	const authTimeout = 500 * time.Millisecond
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) { c.Limits.AuthTimeout = authTimeout })
	tok, _ := e.register("alice")
	logged := e.dialWS(tok, false)
	for _, bad := range []string{"", "not-a-token"} {
		ctx, cancel := context.WithTimeout(context.Background(), authTimeout+5*time.Second)
		defer cancel()
		opts := &websocket.DialOptions{}
		if bad != "" {
			opts.HTTPHeader = http.Header{"Authorization": []string{"jwt " + bad}}
		}
		anon, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/", opts)
		if err != nil {
			t.Fatal(err)
		}
		defer anon.CloseNow()
		if err := anon.Write(ctx, websocket.MessageText, []byte(`{"jsonrpc":"2.0","id":1,"method":"Server.ping"}`)); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := anon.Read(ctx); err != nil || !strings.Contains(string(msg), `"errno":1000`) {
			t.Fatalf("ping without a login: %s, %v", msg, err)
		}
		_, _, err = anon.Read(ctx)
		if ctx.Err() != nil {
			t.Fatalf("websocket with token %q still open after %v", bad, authTimeout+5*time.Second)
		}
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("closed with %v, want policy violation", err)
		}
	}
	if r := logged.call("Server.ping", map[string]any{}); r.Errno != 1000 {
		t.Fatalf("logged-in websocket after the auth timeout: %+v", r)
	}
}

// TestSlowPOSTBody sends a POST whose body never finishes: the server
// answers 408 after BodyTimeout and closes the connection. Before, it
// waited as long as the client kept the connection.
func TestSlowPOSTBody(t *testing.T) {
	const bodyTimeout = 500 * time.Millisecond
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) { c.Limits.BodyTimeout = bodyTimeout })
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":")
	c.SetReadDeadline(time.Now().Add(bodyTimeout + 5*time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer to a stalled body after %v", time.Since(start))
		}
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body: HTTP %d, want 408", resp.StatusCode)
	}
	t.Logf("stalled body answered after %v", time.Since(start))
}

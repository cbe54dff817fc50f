package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/token"
	"github.com/mofang-live/mofang/store"
)

// callFrom is e.call from the loopback address ip (127.0.0.1 to
// 127.255.255.254 are all this machine on Linux).
func (e *env) callFrom(ip, tok, method string, params any) result {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	b := e.postFrom(ip, tok, string(body))
	var resp response
	if err := json.Unmarshal(b, &resp); err != nil || resp.Error != nil {
		e.t.Fatalf("%s from %s: %s", method, ip, b)
	}
	var r result
	if err := json.Unmarshal(resp.Result, &r); err != nil {
		e.t.Fatalf("%s from %s: result %s", method, ip, resp.Result)
	}
	return r
}

// postFrom POSTs a body from the loopback address ip and returns the
// response body.
func (e *env) postFrom(ip, tok, body string) []byte {
	e.t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	req, err := http.NewRequest(http.MethodPost, e.url+"/", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "jwt "+tok)
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// accounts makes n users in the store (not through User.register) and
// returns their access tokens.
func (e *env) accounts(prefix string, n int) []string {
	e.t.Helper()
	issuer, err := token.NewIssuer(testJWTSecret, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	toks := make([]string, n)
	for i := range n {
		u, err := e.store.CreateUser(context.Background(), store.NewUser{Name: fmt.Sprintf("%s%03d", prefix, i), PasswordHash: "-"})
		if err != nil {
			e.t.Fatal(err)
		}
		if toks[i], _, err = issuer.Issue(u.ID); err != nil {
			e.t.Fatal(err)
		}
	}
	return toks
}

// TestRegistrationThrottledPerAddress: one address cannot make accounts
// in bulk (issue 10: 87 accounts from one IP in 21 s); another address
// still can.
func TestRegistrationThrottledPerAddress(t *testing.T) {
	e := newEnv(t, "sqlite")
	made, refused := 0, 0
	for i := range 30 {
		r := e.callFrom("127.0.0.1", "", "User.register", map[string]any{"username": fmt.Sprintf("sock%02d", i), "password": "secret-pw"})
		switch r.Errno {
		case 1000:
			made++
		case 1003:
			refused++
		default:
			t.Fatalf("register %d: %+v", i, r)
		}
	}
	if made != 10 || refused != 20 {
		t.Fatalf("30 registrations from one address: %d made, %d refused; want 10 and 20", made, refused)
	}
	if r := e.callFrom("127.0.0.2", "", "User.register", map[string]any{"username": "neighbour", "password": "secret-pw"}); r.Errno != 1000 {
		t.Fatalf("register from another address: %+v", r)
	}
}

// slowLockouts are the default room budgets with first lockouts long
// enough that none ends while a test runs (the growing lockouts
// themselves are TestBackoff's).
func slowLockouts(c *rpc.Config) {
	c.Auth.Room = rpc.Backoff{Free: 20, Base: time.Minute, Max: time.Hour, Forget: time.Hour}
	c.Auth.RoomAddress = rpc.Backoff{Free: 10, Base: time.Minute, Max: time.Hour, Forget: time.Hour}
}

// TestRoomPasswordNotGuessableWithManyAccounts is issue 10's attack: a
// 3-digit room password guessed with throwaway accounts. Guesses are
// counted per address and per room, not only per account, so however
// many accounts guess, few passwords are ever checked; a user who entered
// the room before still gets in while it is under attack.
func TestRoomPasswordNotGuessableWithManyAccounts(t *testing.T) {
	e := newEnvWith(t, "sqlite", slowLockouts)
	_, roomID, _ := e.liveRoom("alice", "417")
	regular := e.accounts("regular", 1)[0]
	if r := e.callFrom("127.0.0.9", regular, "Live.stream.read", map[string]any{"room_id": roomID, "password": "417"}); r.Errno != 1000 {
		t.Fatalf("a regular viewer: %+v", r)
	}

	checked := map[string]int{} // address: guesses answered 1008
	guess := 0
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		for _, tok := range e.accounts("throw"+strings.ReplaceAll(ip, ".", ""), 20) {
			for range 5 {
				pw := fmt.Sprintf("%03d", guess)
				guess++
				switch r := e.callFrom(ip, tok, "Live.stream.read", map[string]any{"room_id": roomID, "password": pw}); r.Errno {
				case 1008:
					checked[ip]++
				case 1003:
				default:
					t.Fatalf("guess %s from %s: %+v", pw, ip, r)
				}
			}
		}
	}
	// 10 per address, 20 for the room: 127.0.0.3 finds it locked.
	if checked["127.0.0.1"] != 10 || checked["127.0.0.2"] != 10 || checked["127.0.0.3"] != 0 {
		t.Fatalf("300 guesses with 60 accounts from 3 addresses: passwords checked per address %v, want 10, 10, 0", checked)
	}
	// The room is locked for newcomers, even with the right password...
	fresh := e.accounts("fresh", 1)[0]
	if r := e.callFrom("127.0.0.4", fresh, "Live.stream.read", map[string]any{"room_id": roomID, "password": "417"}); r.Errno != 1003 {
		t.Fatalf("a newcomer while the room is under attack: errno %d, want 1003", r.Errno)
	}
	// ...but not for who entered before, from anywhere.
	if r := e.callFrom("127.0.0.1", regular, "Live.stream.read", map[string]any{"room_id": roomID, "password": "417"}); r.Errno != 1000 {
		t.Fatalf("the regular viewer while the room is under attack: %+v", r)
	}
}

// TestRoomGuessesCountedInBatchesAndSockets: a batch of 100 guesses, and
// guesses over a websocket, are counted as single calls are.
func TestRoomGuessesCountedInBatchesAndSockets(t *testing.T) {
	e := newEnvWith(t, "sqlite", slowLockouts)
	_, roomID, _ := e.liveRoom("alice", "417")
	toks := e.accounts("batch", 3)
	batch := func(tok string) (checked, refused int) {
		var calls []string
		for i := range 100 {
			calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"Live.stream.read","params":{"room_id":%d,"password":"%03d"}}`, i, roomID, i))
		}
		var resps []struct {
			Result result `json:"result"`
		}
		b := e.postFrom("127.0.0.1", tok, "["+strings.Join(calls, ",")+"]")
		if err := json.Unmarshal(b, &resps); err != nil || len(resps) != 100 {
			t.Fatalf("batch: %d answers, %v", len(resps), err)
		}
		for _, r := range resps {
			switch r.Result.Errno {
			case 1008:
				checked++
			case 1003:
				refused++
			}
		}
		return checked, refused
	}
	if c, r := batch(toks[0]); c != 5 || r != 95 {
		t.Fatalf("a batch of 100 guesses: %d checked, %d refused; want 5 and 95", c, r)
	}
	if c, r := batch(toks[1]); c != 5 || r != 95 {
		t.Fatalf("a second account's batch: %d checked, %d refused; want 5 and 95", c, r)
	}
	// The address has used its 10: a third account, over a websocket too.
	ws := e.dialWS(toks[2], false)
	if r := ws.call("Live.room.join", map[string]any{"room_id": roomID, "password": "999"}); r.Errno != 1003 {
		t.Fatalf("a guess over a websocket after 10 from its address: errno %d, want 1003", r.Errno)
	}
	if c, _ := batch(toks[2]); c != 0 {
		t.Fatalf("a third account's batch: %d checked, want 0", c)
	}
}

// TestConcurrentRoomGuesses: parallel requests cannot slip past the count
// together (it is taken before bcrypt runs).
func TestConcurrentRoomGuesses(t *testing.T) {
	e := newEnv(t, "sqlite")
	_, roomID, _ := e.liveRoom("alice", "417")
	tok := e.accounts("racer", 1)[0]
	var mu sync.Mutex
	checked := 0
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"Live.stream.read","params":{"room_id":%d,"password":"%03d"}}`, roomID, i)
			b := e.postFrom("127.0.0.1", tok, body)
			if bytes.Contains(b, []byte(`"errno":1008`)) {
				mu.Lock()
				checked++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if checked != 5 {
		t.Fatalf("40 parallel guesses by one account: %d checked, want 5", checked)
	}
}

// TestLoginLockoutIsPerAddress is issue 10's lock-out: a stranger's wrong
// passwords lock only the stranger's address out, never the owner.
func TestLoginLockoutIsPerAddress(t *testing.T) {
	e := newEnvWith(t, "sqlite", func(c *rpc.Config) {
		c.Auth.LoginAccount = rpc.Backoff{Free: 20, Base: 100 * time.Millisecond, Max: 200 * time.Millisecond, Forget: time.Hour}
	})
	login := func(ip, name, pw string) int {
		t.Helper()
		return e.callFrom(ip, "", "User.login", map[string]any{"username": name, "password": pw}).Errno
	}
	if r := e.callFrom("127.0.0.3", "", "User.register", map[string]any{"username": "admin", "password": "right-password"}); r.Errno != 1000 {
		t.Fatalf("register: %+v", r)
	}
	// The owner has logged in from 127.0.0.4 before.
	if n := login("127.0.0.4", "admin", "right-password"); n != 1000 {
		t.Fatalf("login from .4: %d", n)
	}

	// A stranger at .1 tries 20 passwords, in any case of the name.
	var got []int
	for i := range 20 {
		name := []string{"admin", "ADMIN", "Admin"}[i%3]
		got = append(got, login("127.0.0.1", name, fmt.Sprint("guess", i)))
	}
	if fmt.Sprint(got[:6]) != "[1004 1004 1004 1004 1004 1003]" || got[19] != 1003 {
		t.Fatalf("20 wrong logins: %v, want five 1004 then 1003", got)
	}
	if n := login("127.0.0.1", "admin", "right-password"); n != 1003 {
		t.Fatalf("the right password from the stranger's address (never the owner's): %d, want 1003", n)
	}
	// The owner, from a new address and from a known one.
	if n := login("127.0.0.2", "admin", "right-password"); n != 1000 {
		t.Fatalf("the owner from another address after a stranger's 20 failures: errno %d, want 1000", n)
	}
	// A stranger sharing the owner's known address (.4) fails 20 times:
	// the owner there still logs in with the right password.
	for i := range 20 {
		login("127.0.0.4", "admin", fmt.Sprint("nat", i))
	}
	if n := login("127.0.0.4", "admin", "right-password"); n != 1000 {
		t.Fatalf("the owner from a known address after 20 failures there: errno %d, want 1000", n)
	}

	// Failures from many addresses put the account under attack: logins
	// from new addresses are slowed, never refused.
	for i := range 2 {
		for j := range 5 {
			login(fmt.Sprintf("127.0.1.%d", i+1), "admin", fmt.Sprint("botnet", j))
		}
	}
	start := time.Now()
	if n := login("127.0.0.5", "admin", "right-password"); n != 1000 {
		t.Fatalf("the owner from a new address while the account is under attack: errno %d, want 1000", n)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("a login of an account under attack from a new address took %v, want it slowed (>= 100ms)", d)
	}
}

// TestNamesCaseInsensitive: "Alice" is taken when "alice" is, and logs in
// as alice.
func TestNamesCaseInsensitive(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		e.register("alice")
		if r := e.call("", "User.register", map[string]any{"username": "Alice", "password": "another-pw"}); r.Errno != 1002 {
			t.Fatalf("register Alice beside alice: errno %d, want 1002", r.Errno)
		}
		r := e.call("", "User.login", map[string]any{"username": "ALICE", "password": "secret-alice"})
		if r.Errno != 1000 || r.Data["user"].(map[string]any)["username"] != "alice" {
			t.Fatalf("login as ALICE: %+v", r)
		}
	})
}

// TestDeletedUserToken: a deleted user's access token stops working on
// every method soon after, not at its expiry.
func TestDeletedUserToken(t *testing.T) {
	forEachDialect(t, func(t *testing.T, e *env) {
		_, roomID, _ := e.liveRoom("alice", "")
		tok, id := e.register("bob")
		calls := map[string]map[string]any{
			"Live.stream.list":   {},
			"Live.stream.read":   {"room_id": roomID},
			"Live.comment.list":  {"room_id": roomID},
			"Live.record.list":   {"room_id": roomID},
			"Live.stream.status": {"room_id": roomID, "type": "play"},
			"User.info":          {},
			"Live.stream":        {},
		}
		for m, p := range calls {
			if r := e.call(tok, m, p); r.Errno == 1005 {
				t.Fatalf("%s before deleting: errno 1005", m)
			}
		}
		if err := e.store.DeleteUser(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		// The account's state is cached for 5 s: within 10 s every
		// method refuses the token.
		deadline := time.Now().Add(10 * time.Second)
		for m, p := range calls {
			for {
				r := e.call(tok, m, p)
				if r.Errno == 1005 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s with a deleted user's token: errno %d 10 s after deleting, want 1005", m, r.Errno)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		ws := e.dialWS(tok, false)
		if r := ws.call("Live.like", map[string]any{"room_id": roomID}); r.Errno != 1005 {
			t.Fatalf("Live.like over a websocket with a deleted user's token: errno %d, want 1005", r.Errno)
		}
	})
}

// TestPublisherIPShownToOwnerAndAdmins: a room's publisher address is
// whole for its owner and admins, masked for everyone else, unless the
// server is set to show it as MoFang did.
func TestPublisherIPShownToOwnerAndAdmins(t *testing.T) {
	for _, show := range []bool{false, true} {
		t.Run(fmt.Sprint("show=", show), func(t *testing.T) {
			e := newEnvWith(t, "sqlite", func(c *rpc.Config) { c.ShowPublisherIP = show })
			aliceTok, roomID, stream := e.liveRoom("alice", "")
			bobTok, _ := e.register("bob")
			adminTok, adminID := e.register("root")
			if err := e.store.SetAdmin(context.Background(), adminID, true); err != nil {
				t.Fatal(err)
			}
			seen := func(tok string) (list, read string) {
				t.Helper()
				var l rpc.StreamListReply
				e.callInto(tok, "Live.stream.list", map[string]any{}, &l)
				if len(l.StreamList) != 1 {
					t.Fatalf("list: %+v", l)
				}
				r := e.call(tok, "Live.stream.read", map[string]any{"room_id": roomID})
				return l.StreamList[0].User.IP, r.Data["user"].(map[string]any)["ip"].(string)
			}
			for _, c := range []struct{ publisher, masked string }{
				{"203.0.113.7", "203.0.113.x"},
				{"2001:db8:1:2::5", "2001:db8:1::/48"},
				{"", ""},
			} {
				e.live.set(stream, rpc.LiveStream{Clients: 1, PublisherIP: c.publisher})
				whole := c.publisher
				if whole == "" {
					whole = "127.0.0.1" // the owner's last login address
					c.masked = "127.0.0.x"
				}
				for who, tok := range map[string]string{"owner": aliceTok, "admin": adminTok, "bob": bobTok} {
					want := whole
					if who == "bob" && !show {
						want = c.masked
					}
					if l, r := seen(tok); l != want || r != want {
						t.Errorf("publisher %q as seen by %s: list %q, read %q; want %q", c.publisher, who, l, r, want)
					}
				}
			}
		})
	}
}

// TestHugePages: a page number so large that its offset would overflow is
// refused as out of range, by every paged method.
func TestHugePages(t *testing.T) {
	e := newEnv(t, "sqlite")
	_, roomID, _ := e.liveRoom("alice", "")
	tok, id := e.register("root")
	if err := e.store.SetAdmin(context.Background(), id, true); err != nil {
		t.Fatal(err)
	}
	const huge = int64(1) << 62
	for m, p := range map[string]map[string]any{
		"Live.stream.list":  {"page": huge, "size": 20},
		"Live.comment.list": {"room_id": roomID, "page": huge, "size": 20},
		"Live.record.list":  {"room_id": roomID, "page": huge, "size": 20},
		"Admin.stream.list": {"page": huge, "size": 20},
		"Admin.client.list": {"page": huge, "size": 20},
	} {
		resp := e.rpc(tok, m, p)
		if resp.Error != nil {
			t.Errorf("%s page 2^62: error %d %s", m, resp.Error.Code, resp.Error.Message)
			continue
		}
		var r result
		json.Unmarshal(resp.Result, &r)
		if r.Errno != 1001 {
			t.Errorf("%s page 2^62: errno %d, want 1001", m, r.Errno)
		}
		p["page"] = 1_000_000
		if r := e.call(tok, m, p); r.Errno != 1000 {
			t.Errorf("%s page 1000000: errno %d, want 1000 (an empty page)", m, r.Errno)
		}
	}
}

package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsClient is a test's websocket client of the API: calls with named
// params, and a feed of the room events it receives.
type wsClient struct {
	t testing.TB
	c *websocket.Conn
	pending

	events chan roomEvent
	closed chan struct{}
}

// pending matches the responses that come on a websocket to the requests
// sent on it.
type pending struct {
	nextID  atomic.Int64
	mu      sync.Mutex
	waiting map[string]chan response
}

// send writes a request on c and returns the channel its response will
// come on.
func (p *pending) send(c *websocket.Conn, method string, params any) (chan response, error) {
	id := fmt.Sprint(p.nextID.Add(1))
	ch := make(chan response, 1)
	p.mu.Lock()
	if p.waiting == nil {
		p.waiting = map[string]chan response{}
	}
	p.waiting[`"`+id+`"`] = ch // as the response's raw id
	p.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return ch, c.Write(ctx, websocket.MessageText, body)
}

// deliver hands the response in message data, of request id, to its
// sender.
func (p *pending) deliver(id json.RawMessage, data []byte) {
	var r response
	json.Unmarshal(data, &r)
	p.mu.Lock()
	ch := p.waiting[string(id)]
	delete(p.waiting, string(id))
	p.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

// roomEvent is one event of a Live.room.events notification.
type roomEvent struct {
	RoomID  int64
	Seq     uint64 `json:"seq"`
	Type    string `json:"type"`
	Content string `json:"content"`
	User    *struct {
		ID       int64  `json:"id"`
		Nickname string `json:"nickname"`
	} `json:"user"`
	Online []struct {
		ID int64 `json:"id"`
	} `json:"online"`
	Gift *struct {
		Name string `json:"name"`
	} `json:"gift"`
	Count   int64 `json:"count"`
	Likes   int64 `json:"likes"`
	Viewers int   `json:"viewers"`
	// ID is a comment's (comment, comment_delete); Reason a reenter's;
	// Mod a moderation event's.
	ID     int64  `json:"id"`
	Reason string `json:"reason"`
	Mod    *struct {
		Action string `json:"action"`
		By     *struct {
			ID int64 `json:"id"`
		} `json:"by"`
		Target *struct {
			ID int64 `json:"id"`
		} `json:"target"`
		Until int64 `json:"until"`
		Slow  *int  `json:"slow"`
	} `json:"mod"`
	Rank *struct {
		SessionID int64       `json:"session_id"`
		Live      []rankEntry `json:"live"`
		All       []rankEntry `json:"all"`
		Total     int64       `json:"total"`
	} `json:"rank"`
}

// rankEntry is a place of a "rank" event.
type rankEntry struct {
	Rank int `json:"rank"`
	User struct {
		ID int64 `json:"id"`
	} `json:"user"`
	Coins int64 `json:"coins"`
}

// wsDial opens a websocket to the endpoint with a token in the header
// (or, when query is true, in the URL as browsers do), closed at the end
// of the test.
func (e *env) wsDial(tok string, query bool) *websocket.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.url, "http") + "/"
	opts := &websocket.DialOptions{}
	if query {
		url += "?token=" + tok
	} else if tok != "" {
		opts.HTTPHeader = http.Header{"Authorization": []string{"jwt " + tok}}
	}
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		e.t.Fatalf("dial websocket: %v", err)
	}
	c.SetReadLimit(1 << 20)
	e.t.Cleanup(func() { c.CloseNow() })
	return c
}

// dialWS opens a websocket to the endpoint with a token in the header
// (or, when query is true, in the URL as browsers do).
func (e *env) dialWS(tok string, query bool) *wsClient {
	e.t.Helper()
	w := &wsClient{t: e.t, c: e.wsDial(tok, query), events: make(chan roomEvent, 10000), closed: make(chan struct{})}
	go w.readLoop()
	return w
}

func (w *wsClient) readLoop() {
	defer close(w.closed)
	for {
		_, data, err := w.c.Read(context.Background())
		if err != nil {
			return
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				RoomID int64       `json:"room_id"`
				Events []roomEvent `json:"events"`
			} `json:"params"`
		}
		if err := json.Unmarshal(data, &msg); err != nil {
			panic(fmt.Sprintf("websocket message is not JSON: %s", data))
		}
		if msg.Method == "Live.room.events" {
			for _, ev := range msg.Params.Events {
				ev.RoomID = msg.Params.RoomID
				w.events <- ev
			}
			continue
		}
		w.deliver(msg.ID, data)
	}
}

// send makes a call and returns a channel of its response.
func (w *wsClient) send(method string, params any) chan response {
	ch, err := w.pending.send(w.c, method, params)
	if err != nil {
		w.t.Errorf("%s: write: %v", method, err)
		close(ch)
	}
	return ch
}

// call makes a call and returns its MoFang result.
func (w *wsClient) call(method string, params any) result {
	w.t.Helper()
	return w.await(method, w.send(method, params))
}

func (w *wsClient) await(method string, ch chan response) result {
	w.t.Helper()
	select {
	case r, ok := <-ch:
		if !ok {
			w.t.Fatalf("%s: no response", method)
		}
		if r.Error != nil {
			w.t.Fatalf("%s: error %d %s %s", method, r.Error.Code, r.Error.Message, r.Error.Data)
		}
		var res result
		if err := json.Unmarshal(r.Result, &res); err != nil {
			w.t.Fatalf("%s: result %s", method, r.Result)
		}
		return res
	case <-time.After(10 * time.Second):
		w.t.Fatalf("%s: no response in 10 s", method)
	}
	return result{}
}

// next returns the next room event, skipping types in skip.
func (w *wsClient) next(skip ...string) roomEvent {
	w.t.Helper()
	for {
		select {
		case ev := <-w.events:
			if contains(skip, ev.Type) {
				continue
			}
			return ev
		case <-time.After(5 * time.Second):
			w.t.Fatalf("no room event in 5 s")
		}
	}
}

// quiet checks that no event other than those in skip arrives for d.
func (w *wsClient) quiet(d time.Duration, skip ...string) {
	w.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-w.events:
			if !contains(skip, ev.Type) {
				w.t.Fatalf("unexpected event %+v", ev)
			}
		case <-deadline:
			return
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestConnectionLimits runs the service with short timeouts and a small
// cap of connections per address, and holds connections open the ways
// that used to keep them forever: headers sent a byte at a time, a POST
// body that never ends, a websocket that never logs in, one address
// opening more connections than the cap.
func TestConnectionLimits(t *testing.T) {
	const short = 500 * time.Millisecond
	const margin = 5 * time.Second // generous on a loaded machine
	base, stop := startServe(t, filepath.Join(t.TempDir(), "data"),
		"--http-header-timeout", short.String(), "--http-body-timeout", short.String(),
		"--ws-auth-timeout", short.String(), "--conns-per-ip", "4")
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	addr := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/")

	t.Run("headers trickling", func(t *testing.T) {
		c := dial(t, addr)
		defer c.Close()
		start := time.Now()
		closed := readUntilClosed(c)
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n")
		for i := 0; ; i++ {
			select {
			case <-closed:
				if took := time.Since(start); took > short+margin {
					t.Fatalf("header trickle cut after %v", took)
				}
				return
			case <-time.After(100 * time.Millisecond):
			}
			if time.Since(start) > short+margin {
				t.Fatalf("a client sending one header line every 100 ms still connected after %v", time.Since(start))
			}
			fmt.Fprintf(c, "X-Slow-%d: 1\r\n", i) // an error here is the server closing: seen above
		}
	})

	t.Run("POST body stalled", func(t *testing.T) {
		c := dial(t, addr)
		defer c.Close()
		start := time.Now()
		fmt.Fprint(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"jsonrpc\":")
		c.SetReadDeadline(time.Now().Add(short + margin))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stalled POST body: no answer after %v: %v", time.Since(start), err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("stalled POST body: HTTP %d, want 408", resp.StatusCode)
		}
	})

	t.Run("websocket without a login", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), short+margin)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		_, _, err = ws.Read(ctx)
		if ctx.Err() != nil {
			t.Fatalf("websocket without a token still open after %v", short+margin)
		}
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("websocket without a token closed with %v, want policy violation", err)
		}
	})

	t.Run("connections per address", func(t *testing.T) {
		// Earlier subtests' connections may take a moment to be let go.
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		deadline := time.Now().Add(margin)
		for len(held) < 4 {
			c := dial(t, addr)
			if !healthy(c) {
				c.Close()
				if time.Now().After(deadline) {
					t.Fatalf("only %d connections from one address served, cap 4", len(held))
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			held = append(held, c)
		}
		extra := dial(t, addr)
		defer extra.Close()
		if healthy(extra) {
			t.Fatal("a 5th connection from one address was served, cap 4")
		}
		held[0].Close()
		held = held[1:]
		deadline = time.Now().Add(margin)
		for {
			c := dial(t, addr)
			ok := healthy(c)
			c.Close()
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no connection served after one of 4 closed")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// healthy asks GET /healthz on c, keeping it open, and reports whether it
// was answered.
func healthy(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// readUntilClosed reads c until it fails, then closes the channel.
func readUntilClosed(c net.Conn) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, c)
	}()
	return done
}

// --rtmp-pending-per-ip 0 turns the RTMP cap off (the engine takes a
// negative number for that; its 0 means the default, 16).
func TestRTMPPendingFlag(t *testing.T) {
	for in, want := range map[string]int{"16": 16, "3": 3, "0": -1} {
		c := &config{RTMPPending: in}
		got, err := c.rtmpPendingPerIP()
		if err != nil || got != want {
			t.Errorf("rtmp-pending-per-ip %s: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "x", ""} {
		if _, err := (&config{RTMPPending: bad}).rtmpPendingPerIP(); err == nil {
			t.Errorf("rtmp-pending-per-ip %q accepted", bad)
		}
	}
}

package rpc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/token"
	"github.com/mofang-live/mofang/store"
)

// rawSub is a websocket subscriber that speaks just enough of RFC 6455
// over a plain TCP connection to join a room and read server messages,
// so that the client side of a test with thousands of sockets costs
// little beside the server.
type rawSub struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialRawSub opens a websocket with a token and joins a room on it.
func dialRawSub(ctx context.Context, host, tok string, roomID int64) (*rawSub, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: jwt " + tok + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 16<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("websocket handshake: %s", resp.Status)
	}
	s := &rawSub{conn: c, br: br}
	join := fmt.Sprintf(`{"jsonrpc":"2.0","id":"join","method":"Live.room.join","params":{"room_id":%d}}`, roomID)
	if err := s.write([]byte(join)); err != nil {
		c.Close()
		return nil, err
	}
	for {
		msg, err := s.next()
		if err != nil {
			c.Close()
			return nil, err
		}
		if bytes.HasPrefix(msg, []byte(`{"jsonrpc":"2.0","id":"join"`)) {
			if !bytes.Contains(msg, []byte(`"errno":1000`)) {
				c.Close()
				return nil, fmt.Errorf("join refused: %s", msg)
			}
			break
		}
	}
	c.SetDeadline(time.Time{})
	return s, nil
}

// write sends one masked text frame (a zero mask).
func (s *rawSub) write(p []byte) error {
	hdr := []byte{0x81, 0}
	switch n := len(p); {
	case n < 126:
		hdr[1] = 0x80 | byte(n)
	case n < 1<<16:
		hdr[1] = 0x80 | 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = 0x80 | 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	hdr = append(hdr, 0, 0, 0, 0)
	_, err := (&net.Buffers{hdr, p}).WriteTo(s.conn)
	return err
}

// next reads one server message, skipping control frames.
func (s *rawSub) next() ([]byte, error) { return s.nextInto(nil) }

// nextInto is next reading into buf's room when it has enough.
func (s *rawSub) nextInto(buf []byte) ([]byte, error) {
	for {
		// Byte by byte: arrays handed to io.ReadFull would be allocated.
		h0, err := s.br.ReadByte()
		if err != nil {
			return nil, err
		}
		h1, err := s.br.ReadByte()
		if err != nil {
			return nil, err
		}
		n := uint64(h1 & 0x7f)
		ext := 0
		switch n {
		case 126:
			n, ext = 0, 2
		case 127:
			n, ext = 0, 8
		}
		for range ext {
			c, err := s.br.ReadByte()
			if err != nil {
				return nil, err
			}
			n = n<<8 | uint64(c)
		}
		if n > 16<<20 {
			return nil, errors.New("frame too large")
		}
		msg := buf[:0]
		if uint64(cap(msg)) < n {
			msg = make([]byte, n)
		}
		msg = msg[:n]
		if _, err := io.ReadFull(s.br, msg); err != nil {
			return nil, err
		}
		switch h0 & 0x0f {
		case 0x8:
			return nil, io.EOF
		case 0x1, 0x0:
			return msg, nil
		}
	}
}

// idleRoom is a server with a live room and n users with tokens.
type idleRoom struct {
	e      *env
	host   string
	roomID int64
	toks   []string
}

func newIdleRoom(tb testing.TB, n int, change func(*rpc.Config)) *idleRoom {
	tb.Helper()
	e := newEnvWith(tb, "sqlite", func(c *rpc.Config) {
		c.Limits.SocketsPerIP = -1
		change(c)
	})
	_, roomID, _ := e.liveRoom("host", "")
	issuer, err := token.NewIssuer(testJWTSecret, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	toks := make([]string, n)
	for i := range n {
		u, err := e.store.CreateUser(ctx, store.NewUser{Name: fmt.Sprintf("idle%05d", i), PasswordHash: "-", Nickname: fmt.Sprintf("Viewer %d", i)})
		if err != nil {
			tb.Fatal(err)
		}
		if toks[i], _, err = issuer.Issue(u.ID); err != nil {
			tb.Fatal(err)
		}
	}
	return &idleRoom{e: e, host: strings.TrimPrefix(e.url, "http://"), roomID: roomID, toks: toks}
}

// open dials every user's socket into the room, each read (its room's
// join events discarded) from its dial until the room has been quiet on
// it for a while after the last dial; then the readers and their buffers
// go: the client side holds only the TCP connections, no goroutine.
func (r *idleRoom) open(tb testing.TB) []*rawSub {
	tb.Helper()
	ctx := context.Background()
	subs := make([]*rawSub, len(r.toks))
	var wg, readers sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, 1)
	stop := make(chan struct{})
	for i, tok := range r.toks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := dialRawSub(ctx, r.host, tok, r.roomID)
			if err != nil {
				select {
				case errs <- err:
				default:
				}
				return
			}
			subs[i] = s
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					s.conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
					_, err := s.next()
					if err == nil {
						continue
					}
					select {
					case <-stop:
						return // quiet since the last dial
					default:
					}
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						return
					}
					// A timeout may cut a frame: the server sends
					// nothing more once the room is quiet, and the
					// reader starts afresh.
					s.br = bufio.NewReaderSize(s.conn, 16<<10)
				}
			}()
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	select {
	case err := <-errs:
		tb.Fatalf("opening sockets: %v", err)
	default:
	}
	tb.Cleanup(func() {
		for _, s := range subs {
			if s != nil {
				s.conn.Close()
			}
		}
	})
	for _, s := range subs {
		s.conn.SetReadDeadline(time.Time{})
		s.br = nil
	}
	return subs
}

// memNow returns the live heap, the heap and stacks in use and the
// goroutines, after collecting a few times (each collection may halve
// the stack of a parked goroutine that uses little of it).
func memNow() (live, heap, stack uint64, goroutines int) {
	for range 4 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine()
}

// BenchmarkIdleSockets opens 2,000 websockets to an in-process server,
// each joined to one live room and idle, and reports what the server
// holds for each: live heap (HeapAlloc), heap in use (HeapInuse, spans
// with their free room) and stack KiB and goroutines per socket (the
// client side, plain TCP connections without goroutines or buffers, is
// in the figures too, at a few hundred bytes per socket). b.N is not
// used: one run is the measurement. MOFANG_IDLE_SOCKETS sets another
// count.
func BenchmarkIdleSockets(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("MOFANG_IDLE_SOCKETS")); err == nil && v > 0 {
		n = v // e.g. 5000 or 10000, to see that it stays flat
	}
	r := newIdleRoom(b, n, func(*rpc.Config) {})
	live0, heap0, stack0, g0 := memNow()
	subs := r.open(b)
	time.Sleep(500 * time.Millisecond)
	live1, heap1, stack1, g1 := memNow()
	if got := r.e.api.RoomStats().Members; got != n {
		b.Fatalf("%d members in the room, want %d", got, n)
	}
	if path := os.Getenv("MOFANG_IDLE_HEAPPROFILE"); path != "" {
		// With -memprofilerate=1: what the idle sockets hold, by site.
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(int64(live1)-int64(live0))/1024/float64(n), "live-KiB/socket")
	b.ReportMetric(float64(int64(heap1)-int64(heap0))/1024/float64(n), "heap-KiB/socket")
	b.ReportMetric(float64(int64(stack1)-int64(stack0))/1024/float64(n), "stack-KiB/socket")
	b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/socket")
	runtime.KeepAlive(subs)
}

// BenchmarkRoomFanout is the cost of one comment delivered to 1,000
// websockets of an in-process server, from the call to the last socket's
// read: one op is one comment (each in a message of its own, the room's
// gathering interval set to a microsecond), ns/delivery its time per
// socket. The client side reads with reused buffers (a handful of
// allocations per op of its own); allocs/op is mostly the server's.
func BenchmarkRoomFanout(b *testing.B) {
	const n = 1000
	r := newIdleRoom(b, n+1, func(c *rpc.Config) {
		c.Limits.EventInterval = time.Microsecond
		c.Limits.Comments = rpc.Rate{Burst: -1}
		c.Limits.SendQueue = 1 << 14
	})
	subs := r.open(b)
	commenter, subs := subs[0], subs[1:]
	var got atomic.Int64
	done := make(chan struct{})
	var readers sync.WaitGroup
	for _, s := range subs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			s.br = bufio.NewReaderSize(s.conn, 4<<10)
			var buf []byte
			for {
				msg, err := s.nextInto(buf)
				if err != nil {
					return
				}
				buf = msg[:0]
				got.Add(int64(bytes.Count(msg, []byte(`"type":"comment"`))))
			}
		}()
	}
	commenter.br = bufio.NewReaderSize(commenter.conn, 4<<10)
	go func() { // the commenter's responses
		for {
			if _, err := commenter.next(); err != nil {
				close(done)
				return
			}
		}
	}()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":"c","method":"Live.comment","params":{"room_id":%d,"content":"fan-out comment"}}`, r.roomID)
	var want int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := commenter.write([]byte(body)); err != nil {
			b.Fatal(err)
		}
		want += n
		deadline := time.Now().Add(30 * time.Second)
		for got.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d deliveries after 30s", got.Load(), want)
			}
			runtime.Gosched()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/delivery")
	for _, s := range append(subs, commenter) {
		s.conn.Close()
	}
	readers.Wait()
	<-done
}

// TestIdleSocketMemory holds 300 idle websockets joined to a room and
// checks what the server keeps for each: one goroutine, and under 12 KiB
// of live heap (the HTTP server's 8 KiB of buffers, its request and its
// goroutine are let go after the upgrade; 18.6 KiB were kept before).
func TestIdleSocketMemory(t *testing.T) {
	const n = 300
	r := newIdleRoom(t, n, func(*rpc.Config) {})
	live0, _, _, g0 := memNow()
	subs := r.open(t)
	time.Sleep(200 * time.Millisecond)
	live1, _, _, g1 := memNow()
	if got := r.e.api.RoomStats().Members; got != n {
		t.Fatalf("%d members in the room, want %d", got, n)
	}
	perSocket := float64(int64(live1)-int64(live0)) / 1024 / n
	goroutines := float64(g1-g0) / n
	t.Logf("per idle socket: %.1f KiB live heap, %.2f goroutines", perSocket, goroutines)
	if perSocket >= 12 {
		t.Errorf("%.1f KiB of live heap per idle socket, want under 12", perSocket)
	}
	if goroutines > 1.05 {
		t.Errorf("%.2f goroutines per idle socket, want 1", goroutines)
	}
	runtime.KeepAlive(subs)
}

// TestFrameWithUpgrade sends a call in the same write as the upgrade
// request, before the server's answer: the call is read (from the bytes
// the HTTP server had buffered) and answered.
func TestFrameWithUpgrade(t *testing.T) {
	e := newEnv(t, "sqlite")
	host := strings.TrimPrefix(e.url, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	ping := []byte(`{"jsonrpc":"2.0","id":"early","method":"Server.ping","params":{}}`)
	frame := append([]byte{0x81, 0x80 | byte(len(ping)), 0, 0, 0, 0}, ping...)
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	s := &rawSub{conn: c, br: bufio.NewReader(c)}
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	msg, err := s.next()
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	if !bytes.Contains(msg, []byte(`"id":"early"`)) || !bytes.Contains(msg, []byte(`"errno":1000`)) {
		t.Fatalf("answer %s", msg)
	}
}

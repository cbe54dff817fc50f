package rpc

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestFrameWriterLateControlFrame: a control frame written long after the
// last message (a pong, a close) is not refused by the deadline that
// message's write set.
func TestFrameWriterLateControlFrame(t *testing.T) {
	server, client := tcpPair(t)
	f := &frameWriter{buffers: newWriteBuffers(), conn: server}
	if err := f.WriteMessages([][]byte{[]byte(`{"a":1}`)}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond) // that write's deadline has passed
	closeFrame := []byte{0x88, 0x02, 0x03, 0xe8}
	if _, err := f.Write(closeFrame); err != nil {
		t.Fatalf("close frame after the message's deadline: %v", err)
	}
	want := append(appendFrameHeader(nil, 7), `{"a":1}`...)
	want = append(want, closeFrame...)
	got := make([]byte, len(want))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != string(want) {
		t.Fatalf("peer read %q, %v; want %q", got, err, want)
	}
}

// TestFrameWriterTimeout: writes to a peer that reads nothing fail within
// the timeout once the socket's buffers are full, though the deadline is
// not set on every write.
func TestFrameWriterTimeout(t *testing.T) {
	server, _ := tcpPair(t)
	f := &frameWriter{buffers: newWriteBuffers(), conn: server}
	msg := make([]byte, 60<<10)
	start := time.Now()
	var err error
	for range 2000 { // 120 MiB: far more than loopback buffers hold
		if err = f.WriteMessages([][]byte{msg}, 200*time.Millisecond); err != nil {
			break
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writes to a peer that reads nothing: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the write failed after %v", d)
	}
	if err := f.WriteMessages([][]byte{[]byte("x")}, time.Second); !errors.Is(err, errWriterClosed) {
		t.Fatalf("a write after a cut frame: %v", err)
	}
}

// TestFrameWriterTryWriteLate: a message tried long after the last
// blocking write is written, not refused by the deadline that write set.
func TestFrameWriterTryWriteLate(t *testing.T) {
	server, client := tcpPair(t)
	f := newFrameWriter(server, newWriteBuffers())
	if err := f.WriteMessages([][]byte{[]byte(`{"a":1}`)}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond) // that write's deadline has passed
	if taken, err := f.TryWrite([]byte(`{"b":2}`)); !taken || err != nil {
		t.Fatalf("TryWrite after the deadline: %v, %v", taken, err)
	}
	want := append(appendFrameHeader(nil, 7), `{"a":1}`...)
	want = append(append(want, appendFrameHeader(nil, 7)...), `{"b":2}`...)
	got := make([]byte, len(want))
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != string(want) {
		t.Fatalf("peer read %q, %v; want %q", got, err, want)
	}
}

// TestFrameWriterTryWriteCut: when the socket takes only part of a frame,
// the rest goes out before anything written after it (messages and
// control frames), so the peer reads whole frames in order.
func TestFrameWriterTryWriteCut(t *testing.T) {
	server, client := tcpPair(t)
	f := newFrameWriter(server, newWriteBuffers())
	var want []byte
	msg := func(i int) []byte {
		m := make([]byte, 1000+i%3000)
		for j := range m {
			m[j] = byte('a' + (i+j)%26)
		}
		return m
	}
	// Try until the peer, reading nothing, leaves a frame cut. A socket
	// that takes nothing of a frame leaves it to the queue: the peer
	// then reads a little, and the frame is tried again.
	var early []byte // what the peer read meanwhile
	i := 0
	for ; f.Flushed(); i++ {
		if i > 100000 {
			t.Fatal("no write was cut")
		}
		m := msg(i)
		taken, err := f.TryWrite(m)
		if err != nil {
			t.Fatalf("TryWrite %d: %v", i, err)
		}
		if !taken {
			b := make([]byte, 700)
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := io.ReadFull(client, b)
			if err != nil {
				t.Fatal(err)
			}
			early = append(early, b[:n]...)
			i--
			continue
		}
		want = append(append(want, appendFrameHeader(nil, len(m))...), m...)
	}
	if taken, err := f.TryWrite([]byte("x")); taken || err != nil {
		t.Fatalf("TryWrite with a frame cut: %v, %v; want it left to the queue", taken, err)
	}
	pong := []byte{0x8a, 0x00}
	got := make(chan []byte)
	size := len(want) - len(early) + len(pong) + 5 // and the "end" frame
	go func() {
		b := make([]byte, size)
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := io.ReadFull(client, b)
		got <- b[:n]
	}()
	if _, err := f.Write(pong); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteMessages([][]byte{[]byte("end")}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	want = append(want, pong...)
	want = append(append(want, appendFrameHeader(nil, 3)...), "end"...)
	b := append(early, <-got...)
	if !f.Flushed() || string(b[:min(len(b), len(want))]) != string(want) {
		t.Fatalf("after %d frames, one cut: the peer read %d bytes, not the %d bytes of whole frames in order", i, len(b), len(want))
	}
}

// TestFrameWriterTryWriteAllocs: a message the socket takes at once costs
// no allocation. make test runs it without -race too.
func TestFrameWriterTryWriteAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not exact under the race detector")
	}
	server, client := tcpPair(t)
	go io.Copy(io.Discard, client)
	f := newFrameWriter(server, newWriteBuffers())
	msg := make([]byte, 1500)
	if n := testing.AllocsPerRun(1000, func() {
		if taken, err := f.TryWrite(msg); !taken || err != nil || !f.Flushed() {
			t.Fatalf("TryWrite: %v, %v, flushed %v", taken, err, f.Flushed())
		}
	}); n > 0 {
		t.Errorf("TryWrite: %.1f allocations a message, want 0", n)
	}
}

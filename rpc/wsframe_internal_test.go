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

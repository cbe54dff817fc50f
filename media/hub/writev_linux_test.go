package hub

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		done <- c
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-done
	if sc == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { sc.Close(); cc.Close() })
	return sc.(*net.TCPConn), cc.(*net.TCPConn)
}

// TestConnSinkLargeBatch writes batches larger than the socket buffers
// (partial writes, waits for the socket to drain) and of more buffers
// than one writev takes, to a peer that reads slowly: every byte arrives,
// in order.
func TestConnSinkLargeBatch(t *testing.T) {
	sc, cc := tcpPair(t)
	sc.SetWriteBuffer(16 << 10) //nolint:errcheck
	cc.SetReadBuffer(16 << 10)  //nolint:errcheck
	sink := &ConnSink{Conn: sc, Lock: &sync.Mutex{}, Timeout: 10 * time.Second}

	var want bytes.Buffer
	var bufs [][]byte
	for i := range 3 * maxIovecs {
		b := bytes.Repeat([]byte{byte(i)}, 1+i*37%3000)
		if i%50 == 7 {
			b = nil // empty buffers are skipped
		}
		bufs = append(bufs, b)
		want.Write(b)
	}
	got := make(chan []byte, 1)
	go func() {
		var out bytes.Buffer
		buf := make([]byte, 1000)
		for out.Len() < want.Len() {
			n, err := cc.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
		got <- out.Bytes()
	}()
	nb := net.Buffers(bufs)
	n, err := sink.WriteBuffers(&nb)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(want.Len()) || len(nb) != 0 {
		t.Fatalf("wrote %d of %d bytes, %d buffers left", n, want.Len(), len(nb))
	}
	if g := <-got; !bytes.Equal(g, want.Bytes()) {
		t.Fatalf("peer got %d bytes, not the %d written in order", len(g), want.Len())
	}
}

// TestConnSinkTimeout: a peer that reads nothing makes the write fail with
// a timeout once the socket buffers are full; a closed peer with an error.
func TestConnSinkTimeout(t *testing.T) {
	sc, cc := tcpPair(t)
	sc.SetWriteBuffer(16 << 10) //nolint:errcheck
	cc.SetReadBuffer(16 << 10)  //nolint:errcheck
	sink := &ConnSink{Conn: sc, Lock: &sync.Mutex{}, Timeout: 300 * time.Millisecond}
	big := make([]byte, 8<<20)
	nb := net.Buffers{big}
	n, err := sink.WriteBuffers(&nb)
	if !errors.Is(err, os.ErrDeadlineExceeded) || !isTimeout(err) {
		t.Fatalf("write to a stalled peer: %d bytes, err %v; want a timeout", n, err)
	}
	if n <= 0 || n >= int64(len(big)) {
		t.Fatalf("wrote %d bytes before the timeout", n)
	}

	cc.Close()
	io.Copy(io.Discard, sc) //nolint:errcheck // until the close is seen
	for range 3 {
		nb = net.Buffers{make([]byte, 64<<10)}
		if _, err = sink.WriteBuffers(&nb); err != nil {
			break
		}
	}
	var oe *net.OpError
	if err == nil || !errors.As(err, &oe) || oe.Op != "writev" {
		t.Fatalf("write to a closed peer: err %v; want a writev error", err)
	}
}

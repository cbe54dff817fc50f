package rpc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Buffers of a websocket after the upgrade. The HTTP server's own (4 KiB
// each way) are let go: an idle socket keeps these small ones. Reads of
// message payloads larger than the read buffer go straight into the
// message; the write buffer carries only the library's control frames
// (pongs, close), which are at most 139 bytes, since messages are
// written by frameWriter without a buffer.
const (
	wsReadBuffer    = 512
	wsControlBuffer = 256
)

// wsMaxWrite bounds the bytes that one write of queued messages sends.
const wsMaxWrite = 64 << 10

// errWriterClosed is returned for messages after the close frame.
var errWriterClosed = errors.New("rpc: websocket closed")

// frameWriter is the one way to a websocket's connection out. The
// websocket library writes its control frames through it (each a whole
// frame in one Write: see wsControlBuffer) and the server writes its
// messages with TryWrite, one at once when the socket takes it without
// waiting, or with WriteMessages, several queued messages in one write.
// The lock keeps the frames of all three whole.
type frameWriter struct {
	buffers *sync.Pool // of *[]byte, see newWriteBuffers

	mu       sync.Mutex
	conn     net.Conn
	raw      syscall.RawConn // for TryWrite; nil when the connection has none (TLS)
	closed   bool            // a close frame went out: nothing may follow
	deadline time.Time       // the connection's write deadline
	// What TryWrite could not write of a frame at once, which every
	// later write sends first: the header's last restHdr bytes, then
	// restMsg, the end of the message (shared, never changed, so not
	// copied). cut tells whether there is any, without the lock.
	restHdr []byte
	restMsg []byte
	cut     atomic.Bool

	// TryWrite's, kept here so that a write allocates nothing: the
	// frame's header, the header and message as writev takes them, and
	// writev's result.
	hdr    [10]byte
	iov    [2]unix.Iovec
	writev func(fd uintptr) bool
	n      int
	errno  unix.Errno
}

// newFrameWriter returns the writer of a websocket's connection.
func newFrameWriter(conn net.Conn, buffers *sync.Pool) *frameWriter {
	f := &frameWriter{buffers: buffers, conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		f.raw, _ = sc.SyscallConn()
	}
	f.writev = f.writevNow
	return f
}

// writevNow writes f.iov to the socket fd once, not waiting: it is the
// function of TryWrite's raw write. f.mu is held.
func (f *frameWriter) writevNow(fd uintptr) bool {
	if raceEnabled {
		// The race detector orders a socket's writes before the reads
		// of its peer in this process through syscall.Write and Read; a
		// raw writev is not seen. An empty write releases as any does.
		syscall.Write(int(fd), nil)
	}
	for {
		n, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&f.iov[0])), uintptr(len(f.iov)))
		if errno == unix.EINTR {
			continue
		}
		f.n, f.errno = int(n), errno
		if errno != 0 {
			f.n = 0 // n is -1 then
		}
		return true // written, or not now: never wait here
	}
}

// TryWrite writes one text message if the socket takes it at once,
// without waiting and on the caller's goroutine: that is how most room
// events go out, with no writer goroutine started for them. msg must not
// change afterwards. It reports false, having written nothing, when it
// cannot (a write is on its way, a frame is cut, the connection has no
// raw access, or the socket takes nothing now), with errWriterClosed
// after the close frame. When the socket takes part of the frame, the
// rest is kept and sent first by the next write: TryWrite reports true,
// and Flushed false until then. A failed write reports true and the
// error: the message is lost with the connection.
func (f *frameWriter) TryWrite(msg []byte) (bool, error) {
	if f.raw == nil || !f.mu.TryLock() {
		return false, nil
	}
	defer f.mu.Unlock()
	if f.closed {
		return false, errWriterClosed
	}
	if f.cut.Load() {
		return false, nil
	}
	// The raw write does not wait, but it fails once the deadline a
	// blocking write set has passed.
	if err := f.extendDeadline(time.Now(), wsWriteTimeout); err != nil {
		f.closed = true
		return true, err
	}
	hdr := appendFrameHeader(f.hdr[:0], len(msg))
	f.iov[0].Base, f.iov[1].Base = &hdr[0], unsafe.SliceData(msg)
	f.iov[0].SetLen(len(hdr))
	f.iov[1].SetLen(len(msg))
	err := f.raw.Write(f.writev)
	f.iov = [2]unix.Iovec{} // keeps no message
	n, werr := f.n, f.errno
	if err == nil && werr != 0 && werr != unix.EAGAIN {
		err = werr
	}
	if err != nil {
		f.closed = true
		return true, fmt.Errorf("rpc: websocket write: %w", err)
	}
	switch {
	case n == 0:
		return false, nil // the socket is full: the message is queued
	case n < len(hdr):
		f.restHdr = hdr[n:] // in f.hdr
		f.restMsg = msg
		f.cut.Store(true)
	case n < len(hdr)+len(msg):
		f.restMsg = msg[n-len(hdr):]
		f.cut.Store(true)
	}
	return true, nil
}

// Flushed tells whether no frame TryWrite began is still to finish. It
// does not wait for a write on its way.
func (f *frameWriter) Flushed() bool { return !f.cut.Load() }

// writeRest sends what TryWrite left of a frame, within the deadline
// set. f.mu is held.
func (f *frameWriter) writeRest() error {
	if !f.cut.Load() {
		return nil
	}
	var err error
	if len(f.restHdr) > 0 {
		_, err = f.conn.Write(f.restHdr)
	}
	if err == nil {
		_, err = f.conn.Write(f.restMsg)
	}
	f.restHdr, f.restMsg = nil, nil // the socket keeps no message
	f.cut.Store(false)
	if err != nil {
		f.closed = true // nothing can follow a cut frame
		return fmt.Errorf("rpc: websocket write: %w", err)
	}
	return nil
}

// extendDeadline makes sure the next write has at least half of timeout:
// the deadline moves only once that much of it has passed, so that a busy
// socket does not update a runtime timer on every write. Every write
// goes through it, the library's control frames too: a pong or a close
// frame long after the last message used to meet that message's
// deadline, passed since, and fail. f.mu is held.
func (f *frameWriter) extendDeadline(now time.Time, timeout time.Duration) error {
	if f.deadline.Sub(now) >= timeout/2 {
		return nil
	}
	f.deadline = now.Add(timeout)
	if err := f.conn.SetWriteDeadline(f.deadline); err != nil {
		return fmt.Errorf("rpc: websocket write deadline: %w", err)
	}
	return nil
}

// Write writes one frame of the websocket library.
func (f *frameWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, net.ErrClosed
	}
	if len(p) > 0 && p[0]&0x0f == 0x8 {
		f.closed = true
	}
	if err := f.extendDeadline(time.Now(), wsWriteTimeout); err != nil {
		return 0, err
	}
	if err := f.writeRest(); err != nil {
		return 0, err
	}
	n, err := f.conn.Write(p)
	if err != nil {
		f.closed = true // a frame may be cut: nothing more can follow
	}
	return n, err
}

// WriteMessages writes text messages, each one unfragmented frame, in one
// write (after what TryWrite left), within timeout (at least half of it: see extendDeadline). The
// frames are put together in a pooled buffer, held only while writing:
// an idle socket keeps none.
func (f *frameWriter) WriteMessages(msgs [][]byte, timeout time.Duration) error {
	bp := f.buffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= wsPooledBuffer {
			f.buffers.Put(bp)
		}
	}()
	b := (*bp)[:0]
	for _, m := range msgs {
		b = appendFrameHeader(b, len(m))
		b = append(b, m...)
	}
	*bp = b
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errWriterClosed
	}
	if err := f.extendDeadline(time.Now(), timeout); err != nil {
		return err
	}
	if err := f.writeRest(); err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	if _, err := f.conn.Write(b); err != nil {
		f.closed = true // a frame may be cut: nothing more can follow
		return fmt.Errorf("rpc: websocket write: %w", err)
	}
	return nil
}

// wsPooledBuffer is the largest write buffer kept for reuse.
const wsPooledBuffer = wsMaxWrite + wsMaxWrite/8 // a full batch and its frames' headers

// newWriteBuffers returns the pool of WriteMessages's buffers, one for
// all of a server's websockets.
func newWriteBuffers() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}
}

// appendFrameHeader appends the header of a final, unmasked text frame
// of n bytes (RFC 6455 5.2), as a server sends it.
func appendFrameHeader(b []byte, n int) []byte {
	switch {
	case n < 126:
		return append(b, 0x81, byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0x81, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0x81, 127), uint64(n))
	}
}

// smallHijack hands the websocket library, on the upgrade, the connection
// with small buffers of its own in place of the HTTP server's, and writes
// through a frameWriter.
type smallHijack struct {
	http.ResponseWriter
	buffers *sync.Pool   // for the frameWriter
	writer  *frameWriter // set by Hijack
	reader  *idleReader  // set by Hijack
}

// Hijack takes the connection over from the HTTP server, keeping the
// bytes its reader had buffered.
func (h *smallHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The library takes what the reader holds buffered, then reads the
	// connection: frames a client sent before the upgrade's answer must
	// be in the new reader's buffer.
	var br *bufio.Reader
	if n := brw.Reader.Buffered(); n > 0 {
		early := make([]byte, n)
		io.ReadFull(brw.Reader, early) // buffered: cannot fail
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(early), conn), max(n, wsReadBuffer))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("rpc: websocket upgrade: %w", err)
		}
	} else {
		br = bufio.NewReaderSize(conn, wsReadBuffer)
	}
	h.writer = newFrameWriter(conn, h.buffers)
	h.reader = newIdleReader(conn, br)
	// The library moves those bytes out of the buffer to read them first:
	// neither the buffer nor the connection shows them to wait.
	h.reader.early = br.Buffered() > 0
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(h.writer, wsControlBuffer)), nil
}

// idleReader waits for a websocket's next input on a shallow stack, so
// that the reader goroutine of an idle socket, parked there rather than
// deep in the websocket library, keeps a small stack (the runtime shrinks
// the stacks of parked goroutines that use little of theirs).
type idleReader struct {
	conn net.Conn
	raw  syscall.RawConn // nil when the connection has none (TLS)

	// mu keeps wait off br once the library reads it from elsewhere:
	// its Close reads the peer's close frame on the closing goroutine.
	mu      sync.Mutex
	br      *bufio.Reader // the library's reader: input may wait there
	closing bool          // a close handshake began: wait no more

	early bool // input came with the upgrade: the first wait returns at once
}

func newIdleReader(conn net.Conn, br *bufio.Reader) *idleReader {
	r := &idleReader{conn: conn, br: br}
	if sc, ok := conn.(syscall.Conn); ok {
		r.raw, _ = sc.SyscallConn()
	}
	return r
}

// wait returns once input is there to read, or the connection failed or
// was closed (the library's next read then tells what happened). Only
// the goroutine that reads the websocket calls it.
func (r *idleReader) wait() error {
	if r.raw == nil {
		return nil
	}
	if r.early {
		// The library's first read takes all of it into the buffer
		// (as large as it), where later waits see what is left.
		r.early = false
		return nil
	}
	r.mu.Lock()
	ready := r.closing || r.br.Buffered() > 0
	r.mu.Unlock()
	if ready {
		return nil
	}
	err := r.raw.Read(func(fd uintptr) bool {
		// Input that came before this wait raised no readiness the
		// poller still holds: look, then wait only if there is none.
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN // input, end of stream or a failure: the library's read tells
	})
	if errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// closeHandshake tells wait that the library reads the connection from
// elsewhere from now on; call it before the websocket's Close. A close
// frame to send unblocks nothing: the peer's answer ends the wait.
func (r *idleReader) closeHandshake() {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
}

// close ends a wait, closing the connection.
func (r *idleReader) close() { r.conn.Close() }

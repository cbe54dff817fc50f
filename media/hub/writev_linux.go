package hub

import (
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// maxIovecs is how many buffers one writev call takes here (a batch has
// at most maxBatchBufs+2; the kernel's limit is 1024).
const maxIovecs = maxBatchBufs + 16

// iovecPool holds the iovec arrays of writes in progress. The poll
// package keeps one per socket, as large as the largest batch (2–4 KiB per
// viewer); taken from a pool for the time of a write, only viewers being
// written to hold one.
var iovecPool = sync.Pool{New: func() any { return new([maxIovecs]syscall.Iovec) }}

// write writes bufs to the connection: with writev calls on its socket
// when it is a *net.TCPConn, else with net.Buffers.
func (cs *ConnSink) write(bufs *net.Buffers) (int64, error) {
	if !cs.rawSet {
		cs.rawSet = true
		if tc, ok := cs.Conn.(*net.TCPConn); ok {
			cs.raw, _ = tc.SyscallConn()
		}
	}
	if cs.raw == nil {
		return bufs.WriteTo(cs.Conn)
	}
	return writev(cs.raw, cs.Conn, bufs)
}

// writev writes bufs to rc (nc's socket) with non-blocking writev calls,
// waiting in the poller, within the write deadline, while the socket's
// buffer is full. bufs is consumed.
func writev(rc syscall.RawConn, nc net.Conn, bufs *net.Buffers) (int64, error) {
	iov := iovecPool.Get().(*[maxIovecs]syscall.Iovec)
	defer iovecPool.Put(iov)
	var total int64
	var werr error
	b := *bufs
	err := rc.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			n := 0
			for _, p := range b {
				if n == len(iov) {
					break
				}
				if len(p) == 0 {
					continue
				}
				iov[n].Base = &p[0]
				iov[n].SetLen(len(p))
				n++
			}
			if n == 0 {
				b = b[:0]
				break
			}
			w, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
			clear(iov[:n])
			switch e {
			case 0:
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait until the socket is writable
			default:
				werr = os.NewSyscallError("writev", e)
				return true
			}
			total += int64(w)
			b = consume(b, int64(w))
		}
		return true
	})
	*bufs = b
	if werr == nil {
		werr = err
	}
	if werr != nil {
		return total, &net.OpError{Op: "writev", Net: nc.LocalAddr().Network(), Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: werr}
	}
	return total, nil
}

// consume drops the first n bytes of b.
func consume(b net.Buffers, n int64) net.Buffers {
	for len(b) > 0 && n > 0 {
		if n < int64(len(b[0])) {
			b[0] = b[0][n:]
			return b
		}
		n -= int64(len(b[0]))
		b[0] = nil
		b = b[1:]
	}
	for len(b) > 0 && len(b[0]) == 0 {
		b = b[1:]
	}
	return b
}

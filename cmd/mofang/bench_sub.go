package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// benchSub is one websocket subscriber of the room benchmarks: it counts
// the room events it gets and, if sampling, their latency from the
// event's server time. It speaks just enough of the websocket protocol
// (RFC 6455) over a plain TCP socket to read server messages cheaply.
// After the handshake and the join, its socket is read by a subReader,
// which reads every subscriber on one goroutine: with a goroutine per
// socket (and, before that, a general client library) the subscribers'
// own process was the bottleneck of the measurement.
type benchSub struct {
	fd     int // the socket, non-blocking, once the handshake is done
	sample bool

	// The frame being read, touched only by the subReader's goroutine.
	hdr     [14]byte
	hdrLen  int    // header bytes read
	left    uint64 // payload bytes still to come; 0 between frames
	op      byte   // the frame's opcode
	tail    []byte // the frame's last bytes read, to count keys cut by a read
	msg     []byte // the sampled frame's payload so far
	counted int64  // events in the frame so far

	delivered atomic.Int64
	gone      atomic.Bool

	mu      sync.Mutex
	latency []time.Duration
}

var seqKey = []byte(`"seq":`)

// dialSub opens a websocket to url as the user of tok, sends join and
// waits for its answer, then hands the socket to r.
func dialSub(ctx context.Context, r *subReader, url, tok string, join []byte, sample bool) (*benchSub, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/")
	d := net.Dialer{Timeout: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	defer c.Close() // the subscriber keeps a duplicate of the socket
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: jwt " + tok + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(c, 4<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("websocket handshake: %v %v", resp, err)
	}
	if _, err := c.Write(clientFrame(join)); err != nil {
		return nil, err
	}
	for {
		msg, err := readFrame(br)
		if err != nil {
			return nil, err
		}
		if bytes.HasPrefix(msg, []byte(`{"jsonrpc":"2.0","id":"join"`)) {
			if !bytes.Contains(msg, []byte(`"errno":1000`)) {
				return nil, fmt.Errorf("join refused: %s", msg)
			}
			break
		}
	}
	rest := make([]byte, br.Buffered())
	io.ReadFull(br, rest) // buffered: cannot fail
	s := &benchSub{fd: -1, sample: sample}
	sc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return nil, err
	}
	var dupErr error
	if err := sc.Control(func(fd uintptr) { s.fd, dupErr = syscall.Dup(int(fd)) }); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, fmt.Errorf("duplicating the socket: %w", dupErr)
	}
	// The duplicate shares the socket's non-blocking mode, which the
	// reader relies on.
	if err := syscall.SetNonblock(s.fd, true); err != nil {
		syscall.Close(s.fd)
		return nil, err
	}
	s.feed(rest, time.Now())
	if err := r.add(s); err != nil {
		syscall.Close(s.fd)
		return nil, err
	}
	return s, nil
}

// clientFrame frames p as one masked text frame, as a client must send.
func clientFrame(p []byte) []byte {
	b := []byte{0x81, 0}
	switch n := len(p); {
	case n < 126:
		b[1] = 0x80 | byte(n)
	case n < 1<<16:
		b[1] = 0x80 | 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = 0x80 | 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, 0, 0, 0, 0) // a zero mask leaves the payload as is
	return append(b, p...)
}

// readFrame reads one server message (unmasked, unfragmented text
// frames; control frames are skipped), during the handshake.
func readFrame(br *bufio.Reader) ([]byte, error) {
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return nil, err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		if n > 16<<20 {
			return nil, errors.New("frame too large")
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			return nil, err
		}
		switch h[0] & 0x0f {
		case 0x8:
			return nil, io.EOF
		case 0x1, 0x0:
			return msg, nil
		}
	}
}

// write sends p as one text frame. It may be called beside the reader.
func (s *benchSub) write(p []byte) error {
	b := clientFrame(p)
	for deadline := time.Now().Add(5 * time.Second); len(b) > 0; {
		n, err := syscall.Write(s.fd, b)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			if time.Now().After(deadline) {
				return errors.New("websocket write: timed out")
			}
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			return fmt.Errorf("websocket write: %w", err)
		}
		b = b[n:]
	}
	return nil
}

// feed takes bytes read from the socket at now: it splits them into
// frames, counting the events of each text frame (the "seq" keys it
// holds) and, if sampling, the latency of its comments.
func (s *benchSub) feed(b []byte, now time.Time) {
	for len(b) > 0 {
		if s.left == 0 && !s.inPayload() {
			if !s.readHeader(&b) {
				return
			}
			if s.left == 0 {
				s.endFrame(now)
			}
			continue
		}
		k := int(min(s.left, uint64(len(b))))
		chunk := b[:k]
		b = b[k:]
		s.left -= uint64(k)
		if s.op == 0x1 || s.op == 0x0 {
			s.count(chunk)
			if s.sample {
				s.msg = append(s.msg, chunk...)
			}
		}
		if s.left == 0 {
			s.endFrame(now)
		}
	}
}

// inPayload tells whether a header was read whose payload is still
// coming (left counts it down).
func (s *benchSub) inPayload() bool { return s.hdrLen < 0 }

// readHeader takes a frame's header from b, or as much of it as there
// is; true when the header is whole (s.left is then its payload's size).
func (s *benchSub) readHeader(b *[]byte) bool {
	for len(*b) > 0 {
		s.hdr[s.hdrLen] = (*b)[0]
		s.hdrLen++
		*b = (*b)[1:]
		if s.hdrLen < 2 {
			continue
		}
		need := 2
		switch s.hdr[1] & 0x7f {
		case 126:
			need = 4
		case 127:
			need = 10
		}
		if s.hdrLen < need {
			continue
		}
		s.op = s.hdr[0] & 0x0f
		switch need {
		case 2:
			s.left = uint64(s.hdr[1] & 0x7f)
		case 4:
			s.left = uint64(binary.BigEndian.Uint16(s.hdr[2:4]))
		default:
			s.left = binary.BigEndian.Uint64(s.hdr[2:10])
		}
		s.hdrLen = -1 // in the payload
		return true
	}
	return false
}

// count counts the seq keys in a frame's next chunk, those cut by the
// read before it too.
func (s *benchSub) count(chunk []byte) {
	s.counted += int64(bytes.Count(chunk, seqKey))
	if len(s.tail) > 0 {
		// A key cut by a read starts in the tail (shorter than the key)
		// and ends in the chunk's first bytes.
		j := append(s.tail, chunk[:min(len(chunk), len(seqKey)-1)]...)
		s.counted += int64(bytes.Count(j, seqKey))
	}
	keep := len(seqKey) - 1
	if len(chunk) >= keep {
		s.tail = append(s.tail[:0], chunk[len(chunk)-keep:]...)
	} else {
		s.tail = append(s.tail, chunk...)
		s.tail = s.tail[max(0, len(s.tail)-keep):]
	}
}

// endFrame finishes the frame read.
func (s *benchSub) endFrame(now time.Time) {
	op := s.op
	s.hdrLen, s.left, s.tail = 0, 0, s.tail[:0]
	if op == 0x8 {
		s.gone.Store(true)
		return
	}
	if op != 0x1 && op != 0x0 {
		return
	}
	s.delivered.Add(s.counted)
	s.counted = 0
	if !s.sample {
		return
	}
	var batch struct {
		Params struct {
			Events []struct {
				Type string `json:"type"`
				Time int64  `json:"time"`
			} `json:"events"`
		} `json:"params"`
	}
	if json.Unmarshal(s.msg, &batch) == nil {
		s.mu.Lock()
		for _, ev := range batch.Params.Events {
			if ev.Type == "comment" {
				s.latency = append(s.latency, now.Sub(time.UnixMilli(ev.Time)))
			}
		}
		s.mu.Unlock()
	}
	s.msg = s.msg[:0]
}

func (s *benchSub) reset() {
	s.delivered.Store(0)
	s.mu.Lock()
	s.latency = nil
	s.mu.Unlock()
}

func (s *benchSub) results() (int64, []time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered.Load(), s.latency, s.gone.Load()
}

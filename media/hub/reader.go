package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

// Limits of one batched write.
const (
	maxBatchBufs  = 128
	maxBatchBytes = 512 << 10
	skipWindow    = 30 * time.Second
)

// ErrStreamEnded is returned by Reader.Run and Cursor.Next once the
// stream has ended.
var ErrStreamEnded = errors.New("stream ended")

var errReaderTooSlow = errors.New("reader too slow")

// Sink is where a reader writes its batches.
type Sink interface {
	// WriteBuffers writes bufs (consuming it) and returns the bytes written.
	WriteBuffers(bufs *net.Buffers) (int64, error)
}

// ConnSink writes batches with one writev on a connection, under the lock
// shared with the protocol's control messages. Conn must be the socket
// itself (a *net.TCPConn) for net.Buffers to be one writev.
type ConnSink struct {
	// Conn is the connection written to.
	Conn net.Conn
	// Lock is held during each write; the protocol holds it too around
	// its own writes.
	Lock *sync.Mutex
	// Timeout bounds each write.
	Timeout time.Duration
}

// WriteBuffers writes bufs with one writev within Timeout.
func (cs *ConnSink) WriteBuffers(bufs *net.Buffers) (int64, error) {
	cs.Lock.Lock()
	defer cs.Lock.Unlock()
	if err := cs.Conn.SetWriteDeadline(time.Now().Add(cs.Timeout)); err != nil {
		return 0, err
	}
	return bufs.WriteTo(cs.Conn)
}

// Reader sends one stream to one client. It holds a cursor into the
// stream's ring, never a copy of the media: the framed bytes of every packet
// are shared by all readers of the same framing.
type Reader struct {
	s       *Stream
	c       *Client
	framer  Framer
	sink    Sink
	chunked bool // HTTP/1.1 chunked framing of each batch

	cursor     uint64
	waitKey    bool
	timer      *time.Timer // write coalescing
	skips      int
	skipWindow time.Time

	arr      [maxBatchBufs + 16][]byte // arr[0] is reserved for the chunk size line
	n        int                       // buffers queued in arr[1:]
	size     int                       // bytes queued
	sizeLine [20]byte
}

var crlf = []byte("\r\n")

// NewReader returns a reader of s for client c that frames packets with f
// and writes them to sk; chunked wraps every batch in an HTTP/1.1 chunk.
// Run it; a reader allocates nothing per packet.
func NewReader(s *Stream, c *Client, f Framer, sk Sink, chunked bool) *Reader {
	return &Reader{s: s, c: c, framer: f, sink: sk, chunked: chunked}
}

// queue appends the framed bytes of p.
func (r *Reader) queue(p *Packet) {
	bufs := p.Framed(r.framer)
	for _, b := range bufs {
		r.arr[1+r.n] = b
		r.n++
		r.size += len(b)
	}
}

// QueueRaw queues bytes that belong to this reader only (a protocol's
// prefix, such as the FLV file header), written before the stream by
// Run's first write. b must stay unmodified until then.
func (r *Reader) QueueRaw(b []byte) {
	r.arr[1+r.n] = b
	r.n++
	r.size += len(b)
}

// flush writes what is queued with one system call (writev).
func (r *Reader) flush() error {
	if r.n == 0 {
		return nil
	}
	first, last := 1, 1+r.n
	if r.chunked {
		line := strconv.AppendInt(r.sizeLine[:0], int64(r.size), 16)
		line = append(line, '\r', '\n')
		r.arr[0] = line
		r.arr[last] = crlf
		first, last = 0, last+1
	}
	bufs := net.Buffers(r.arr[first:last])
	n, err := r.sink.WriteBuffers(&bufs)
	clear(r.arr[:last])
	r.n, r.size = 0, 0
	r.c.addOut(int(n))
	r.s.bytesOut.Add(uint64(n))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			r.s.dropped.Add(1)
			r.s.h.readersDropped.Add(1)
			r.s.log.Warn("reader dropped: write timed out", "client", r.c.id, "ip", r.c.IP(), "protocol", r.c.protocol)
			return fmt.Errorf("%w: %w", errReaderTooSlow, err)
		}
		return err
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// queueHeaders queues the metadata and sequence headers hs, the sequence
// headers stamped with ts. Metadata is stamped 0: ffmpeg's FLV demuxer
// takes an onMetaData tag with another timestamp for a data track.
func (r *Reader) queueHeaders(hs *Headers, ts uint32) {
	for _, p := range hs.packets() {
		if p.typ == flv.TagScript {
			r.queue(p.withTimestamp(0))
			continue
		}
		r.queue(p.withTimestamp(ts))
	}
}

// start positions the cursor at the newest key packet (the cached GOP) and
// queues the headers before it. The headers are loaded first: the stream
// clears lastKey before it stores changed headers, so the GOP found next is
// never older than them (and newer headers come in order from the ring).
func (r *Reader) start() {
	s := r.s
	hs := s.headers.Load()
	w := s.writeSeq.Load()
	k := s.lastKey.Load()
	var ts uint32
	if k > 0 && w-(k-1) <= s.ringLen() {
		if p := s.packetAt(k - 1); p != nil {
			r.cursor = k - 1
			ts = p.ts
		} else {
			r.cursor, r.waitKey = w, true
		}
	} else {
		r.cursor, r.waitKey = w, true
	}
	if r.waitKey && w > 0 {
		if p := s.packetAt(w - 1); p != nil {
			ts = p.ts
		}
	}
	r.queueHeaders(hs, ts)
}

// fellBehind moves a reader that lags too much to the newest key packet, or
// drops it if it keeps lagging.
func (r *Reader) fellBehind(w uint64) error {
	s := r.s
	now := time.Now()
	if now.Sub(r.skipWindow) > skipWindow {
		r.skipWindow, r.skips = now, 0
	}
	r.skips++
	s.fellBehind.Add(1)
	s.h.readersFellBehind.Add(1)
	lag := w - r.cursor
	if r.skips > s.h.cfg.MaxReaderSkips {
		s.dropped.Add(1)
		s.h.readersDropped.Add(1)
		s.log.Warn("reader dropped: stays behind", "client", r.c.id, "ip", r.c.IP(),
			"protocol", r.c.protocol, "lag_packets", lag, "skips", r.skips)
		return errReaderTooSlow
	}
	s.log.Info("reader fell behind, skipping to the next key frame", "client", r.c.id,
		"protocol", r.c.protocol, "lag_packets", lag)

	hs := s.headers.Load()
	k := s.lastKey.Load()
	if k > 0 && k-1 > r.cursor && w-(k-1) <= s.ringLen() {
		if p := s.packetAt(k - 1); p != nil {
			r.cursor, r.waitKey = k-1, false
			r.queueHeaders(hs, p.ts)
			return nil
		}
	}
	// no key frame to go to: wait for the next one, after the headers
	// (they may have changed in the packets skipped).
	r.cursor, r.waitKey = w, true
	if w > 0 {
		if p := s.packetAt(w - 1); p != nil {
			r.queueHeaders(hs, p.ts)
		}
	}
	return nil
}

// Run sends the stream until ctx ends, the stream ends (ErrStreamEnded), a
// write fails or the reader is too slow. The caller has queued any
// protocol prefix (QueueRaw). The first write carries the headers and the
// cached GOP.
func (r *Reader) Run(ctx context.Context) error {
	s := r.s
	cfg := &s.h.cfg
	queueLimit := uint64(cfg.ReaderQueue)
	r.start()

	for {
		w := s.writeSeq.Load()
		if r.cursor == w {
			if err := r.flush(); err != nil {
				return err
			}
			ch := s.notify.Load()
			if s.writeSeq.Load() != r.cursor {
				continue
			}
			select {
			case <-*ch:
			case <-ctx.Done():
				return ctx.Err()
			case <-s.done:
				return ErrStreamEnded
			}
			if cfg.WriteCoalesce > 0 {
				// let packets pile up so that one writev carries many
				// (like SRS's merged write). Each reader waits from its
				// own wake-up, which spreads the writes of many readers
				// (a stream-wide tick measured 20% worse at 5000 viewers).
				// The first write of a reader is never delayed.
				if r.timer == nil {
					r.timer = time.NewTimer(cfg.WriteCoalesce)
				} else {
					r.timer.Reset(cfg.WriteCoalesce)
				}
				select {
				case <-r.timer.C:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			continue
		}

		lag := w - r.cursor
		if lag > s.ringLen() {
			if err := r.fellBehind(w); err != nil {
				return err
			}
			continue
		}
		if lag > queueLimit {
			if k := s.lastKey.Load(); k > 0 && k-1 > r.cursor {
				if err := r.fellBehind(w); err != nil {
					return err
				}
				continue
			}
		}

		for r.cursor < w && r.n < maxBatchBufs && r.size < maxBatchBytes {
			p := s.packetAt(r.cursor)
			if p == nil {
				break // overwritten: seen as lag on the next turn
			}
			r.cursor++
			if r.waitKey {
				if !p.key {
					continue
				}
				r.waitKey = false
			}
			r.queue(p)
		}
		if err := r.flush(); err != nil {
			return err
		}
	}
}

package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
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
	// Timeout bounds each write: a write fails once it has waited between
	// 3/4 of Timeout and Timeout.
	Timeout time.Duration

	// deadline is the connection's write deadline as last set here. It is
	// moved only when less than 3/4 of Timeout is left: setting it resets
	// a runtime timer, a cost paid on every write otherwise.
	deadline time.Time
	// raw is the socket's RawConn (Linux, *net.TCPConn; see
	// writev_linux.go); rawSet says it was looked up.
	raw    syscall.RawConn
	rawSet bool
}

// WriteBuffers writes bufs (on Linux with writev: one call, or more for a
// batch of more buffers than one call takes or a partial write) within
// Timeout: the deadline moves only when a quarter of it has passed, so a
// write has between 3/4 of Timeout and Timeout.
func (cs *ConnSink) WriteBuffers(bufs *net.Buffers) (int64, error) {
	cs.Lock.Lock()
	defer cs.Lock.Unlock()
	if now := time.Now(); cs.deadline.Sub(now) < cs.Timeout-cs.Timeout/4 {
		d := now.Add(cs.Timeout)
		if err := cs.Conn.SetWriteDeadline(d); err != nil {
			return 0, err
		}
		cs.deadline = d
	}
	return cs.write(bufs)
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
	slept      bool        // the last wait was the coalescing delay
	skips      int
	skipWindow time.Time

	// arr is the batch being queued, taken from batchPool when the first
	// buffer is queued and given back after the write, so that a reader
	// waiting for packets holds none (a few KiB less per viewer).
	arr  *batch
	n    int // buffers queued in arr[1:]
	size int // bytes queued
}

// batch is the buffers of one write; [0] is reserved for the chunk size
// line.
type batch struct {
	bufs     [maxBatchBufs + 16][]byte
	sizeLine [20]byte
}

var batchPool = sync.Pool{New: func() any { return new(batch) }}

// add queues b.
func (r *Reader) add(b []byte) {
	if r.arr == nil {
		r.arr = batchPool.Get().(*batch)
	}
	r.arr.bufs[1+r.n] = b
	r.n++
	r.size += len(b)
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
		r.add(b)
	}
}

// QueueRaw queues bytes that belong to this reader only (a protocol's
// prefix, such as the FLV file header), written before the stream by
// Run's first write. b must stay unmodified until then.
func (r *Reader) QueueRaw(b []byte) { r.add(b) }

// flush writes what is queued with one system call (writev).
func (r *Reader) flush() error {
	if r.n == 0 {
		return nil
	}
	b := r.arr
	first, last := 1, 1+r.n
	if r.chunked {
		line := strconv.AppendInt(b.sizeLine[:0], int64(r.size), 16)
		line = append(line, '\r', '\n')
		b.bufs[0] = line
		b.bufs[last] = crlf
		first, last = 0, last+1
	}
	bufs := net.Buffers(b.bufs[first:last])
	n, err := r.sink.WriteBuffers(&bufs)
	clear(b.bufs[:last])
	batchPool.Put(b)
	r.arr, r.n, r.size = nil, 0, 0
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
	coalesce := cfg.WriteCoalesce > 0
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
			if coalesce && !r.slept {
				// an idle stream woke us: let packets pile up.
				if err := r.sleep(ctx, cfg.WriteCoalesce); err != nil {
					return err
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
		began := time.Now()
		if err := r.flush(); err != nil {
			return err
		}
		r.slept = false
		if coalesce && r.cursor == w {
			// let packets pile up so that one writev carries many (like
			// SRS's merged write): the next write comes WriteCoalesce
			// after this one began, so that a viewer of a live stream
			// wakes once per write, and a write that took long is not
			// followed by a whole delay. Each reader keeps its own
			// cadence, which spreads the writes of many readers (a
			// stream-wide tick measured worse). The first write of a
			// reader is never delayed.
			if d := cfg.WriteCoalesce - time.Since(began); d > 0 {
				if err := r.sleep(ctx, d); err != nil {
					return err
				}
			}
		}
	}
}

// sleep waits d, or until ctx ends.
func (r *Reader) sleep(ctx context.Context, d time.Duration) error {
	r.slept = true
	if r.timer == nil {
		r.timer = time.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	select {
	case <-r.timer.C:
		return nil
	case <-ctx.Done():
		r.timer.Stop()
		return ctx.Err()
	}
}

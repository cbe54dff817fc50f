package media

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

// outFormat is the framing a reader receives.
type outFormat uint8

const (
	formatRTMP outFormat = iota
	formatFLV
)

// Limits of one batched write.
const (
	maxBatchBufs  = 128
	maxBatchBytes = 512 << 10
	skipWindow    = 30 * time.Second
)

var (
	errStreamEnded   = errors.New("stream ended")
	errReaderTooSlow = errors.New("reader too slow")
)

// sink is where a reader writes its batches.
type sink interface {
	// writeBuffers writes bufs (consuming it) and returns the bytes written.
	writeBuffers(bufs *net.Buffers) (int64, error)
}

// connSink writes batches with one writev on a connection, under the lock
// shared with the protocol's control messages.
type connSink struct {
	conn    net.Conn
	wmu     *sync.Mutex
	timeout time.Duration
}

func (cs *connSink) writeBuffers(bufs *net.Buffers) (int64, error) {
	cs.wmu.Lock()
	defer cs.wmu.Unlock()
	if err := cs.conn.SetWriteDeadline(time.Now().Add(cs.timeout)); err != nil {
		return 0, err
	}
	return bufs.WriteTo(cs.conn)
}

// reader sends one stream to one client. It holds a cursor into the
// stream's ring, never a copy of the media: the framed bytes of every packet
// are shared by all readers of the same format.
type reader struct {
	s       *stream
	c       *client
	format  outFormat
	sink    sink
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

func newReader(s *stream, c *client, format outFormat, sk sink, chunked bool) *reader {
	return &reader{s: s, c: c, format: format, sink: sk, chunked: chunked}
}

// queue appends the framed bytes of p.
func (r *reader) queue(p *packet) {
	var bufs [][]byte
	if r.format == formatRTMP {
		bufs = p.rtmpBufs()
	} else {
		bufs = p.flvBufs()
	}
	for _, b := range bufs {
		r.arr[1+r.n] = b
		r.n++
		r.size += len(b)
	}
}

// queueRaw appends bytes that belong to this reader only (headers).
func (r *reader) queueRaw(b []byte) {
	r.arr[1+r.n] = b
	r.n++
	r.size += len(b)
}

// flush writes what is queued with one system call (writev).
func (r *reader) flush() error {
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
	n, err := r.sink.writeBuffers(&bufs)
	clear(r.arr[:last])
	r.n, r.size = 0, 0
	r.c.addOut(int(n))
	r.s.bytesOut.Add(uint64(n))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			r.s.dropped.Add(1)
			r.s.h.e.readersDropped.Add(1)
			r.s.log.Warn("reader dropped: write timed out", "client", r.c.id, "ip", r.c.ip(), "protocol", r.c.protocol)
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
func (r *reader) queueHeaders(hs *headerSet, ts uint32) {
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
func (r *reader) start() {
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
func (r *reader) fellBehind(w uint64) error {
	s := r.s
	now := time.Now()
	if now.Sub(r.skipWindow) > skipWindow {
		r.skipWindow, r.skips = now, 0
	}
	r.skips++
	s.fellBehind.Add(1)
	s.h.e.readersFellBehind.Add(1)
	lag := w - r.cursor
	if r.skips > s.h.e.cfg.MaxReaderSkips {
		s.dropped.Add(1)
		s.h.e.readersDropped.Add(1)
		s.log.Warn("reader dropped: stays behind", "client", r.c.id, "ip", r.c.ip(),
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

// run sends the stream until ctx ends, the stream ends, a write fails or the
// reader is too slow. The caller has queued any protocol prefix.
func (r *reader) run(ctx context.Context) error {
	s := r.s
	cfg := &s.h.e.cfg
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
				return errStreamEnded
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

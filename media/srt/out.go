package srt

import (
	"context"
	"sync"
	"sync/atomic"

	gosrt "github.com/datarhei/gosrt"

	"github.com/mofang-live/mofang/media/hub"
)

// gopMaxPackets bounds the cached GOP, in SRT packets: a joining reader
// gets it written at once, and gosrt's send queue holds 1024 packets.
const gopMaxPackets = 512

// srtPayload is the SRT payload size gosrt cuts writes into: seven TS
// packets, 1316 bytes (libsrt's and ffmpeg's default for live).
const srtPayload = 1316

// reader is one SRT reader of an output.
type reader struct {
	conn gosrt.Conn
	c    *hub.Client
	// leaving is set when the reader's connection has closed: a write
	// error then is not a slow reader.
	leaving atomic.Bool
}

// output is the MPEG-TS output of one stream, shared by its SRT readers.
// One goroutine reads the stream with a hub Cursor, muxes each frame
// into MPEG-TS once (tsMuxer) and writes the bytes to every reader.
// gosrt's writes never block: they queue the packets for SRT's sender,
// which drops what its peer has not acknowledged in time (too-late
// packet drop, about a second); a reader whose queue is full is dropped.
//
// A reader joining gets the frames since the newest key frame (the
// cached GOP, with the program tables before it) and then the shared
// feed, written under the same lock so nothing is lost or repeated.
// Another track layout (a publisher back with other codecs or audio
// settings) closes the output and its readers; new ones get a new one.
type output struct {
	srv *Server
	s   *hub.Stream

	ctx  context.Context
	stop context.CancelFunc
	done chan struct{}

	bytesOut atomic.Uint64

	mu      sync.Mutex
	readers map[*reader]struct{}
	gop     [][]byte // chunks since the newest key frame
	gopPkts int
	gopOK   bool // gop starts at a key frame
	closed  bool
}

func newOutput(srv *Server, s *hub.Stream) *output {
	o := &output{srv: srv, s: s, readers: map[*reader]struct{}{}, done: make(chan struct{})}
	o.ctx, o.stop = context.WithCancel(context.Background())
	go o.run()
	return o
}

func (o *output) isClosed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// close stops the output and closes its readers' connections.
func (o *output) close() {
	o.stop()
	<-o.done
}

// join adds a reader, after writing it the cached GOP. It returns false
// if the output has closed.
func (o *output) join(r *reader) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return false
	}
	if o.gopOK {
		for _, b := range o.gop {
			if !o.writeTo(r, b) {
				return true // dropped (and closed): it leaves
			}
		}
	}
	o.readers[r] = struct{}{}
	return true
}

// leave removes a reader.
func (o *output) leave(r *reader) {
	o.mu.Lock()
	delete(o.readers, r)
	o.mu.Unlock()
}

// writeTo writes b to r; a reader whose write fails is closed (and
// counted as dropped unless it was leaving). mu is held.
func (o *output) writeTo(r *reader, b []byte) bool {
	if _, err := r.conn.Write(b); err != nil {
		delete(o.readers, r)
		r.conn.Close()
		if !r.leaving.Load() {
			o.s.CountDroppedReader()
			o.s.Logger().Warn("SRT reader dropped: its send queue is full", "client", r.c.ID(), "ip", r.c.IP())
		}
		return false
	}
	o.bytesOut.Add(uint64(len(b)))
	return true
}

// send writes one muxed frame to every reader and keeps it for those
// joining.
func (o *output) send(b []byte, key bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if key {
		clear(o.gop)
		o.gop, o.gopPkts, o.gopOK = o.gop[:0], 0, true
	}
	if o.gopOK {
		o.gopPkts += (len(b) + srtPayload - 1) / srtPayload
		if o.gopPkts > gopMaxPackets {
			clear(o.gop)
			o.gop, o.gopPkts, o.gopOK = o.gop[:0], 0, false
		} else {
			o.gop = append(o.gop, b)
		}
	}
	for r := range o.readers {
		o.writeTo(r, b)
	}
}

// resetGOP forgets the cached GOP until the next key frame.
func (o *output) resetGOP() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.gop)
	o.gop, o.gopPkts, o.gopOK = o.gop[:0], 0, false
}

func (o *output) run() {
	defer close(o.done)
	defer func() {
		o.srv.removeOutput(o.s, o)
		o.mu.Lock()
		o.closed = true
		for r := range o.readers {
			r.conn.Close()
		}
		clear(o.readers)
		o.gop = nil
		o.mu.Unlock()
	}()
	log := o.s.Logger()
	cur := o.s.NewCursor(hub.FromKey)
	var mux *tsMuxer
	var hs *hub.Headers
	waitKey := true
	for {
		p, skipped, err := cur.Next(o.ctx)
		if err != nil { // closed, or the stream ended
			return
		}
		if skipped > 0 { // a whole ring behind: on from a key frame
			waitKey = true
			o.resetGOP()
			continue
		}
		if h := o.s.Headers(); h != hs {
			hs = h
			tr := tracksOf(hs)
			if mux != nil && tr.layout() != mux.layout {
				log.Info("SRT output closed: the publisher's tracks or audio configuration changed; its SRT readers are disconnected")
				return
			}
		}
		if waitKey {
			if !p.Key() {
				continue
			}
			waitKey = false
		}
		if mux == nil {
			if mux, err = newTSMuxer(tracksOf(hs)); err != nil {
				log.Warn("SRT output", "err", err)
				return
			}
		}
		b, err := mux.mux(p)
		if err != nil {
			log.Debug("SRT output: frame not muxed", "err", err)
			continue
		}
		if len(b) > 0 {
			o.send(b, p.Key())
		}
	}
}

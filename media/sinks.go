package media

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mofang-live/mofang/media/hls"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/record"
)

// sinks are what a stream feeds besides its readers: the HLS muxer and
// the recording. One goroutine per stream reads the stream with a hub
// Cursor and hands every packet to them, so that neither can make the
// publisher wait; the recording has its own bounded queue and fails rather
// than block.
type sinks struct {
	hls *hls.Muxer

	mu  sync.Mutex
	rec *record.Recording

	hlsClients  sync.Map      // *hls.Session → *hub.Client
	hlsBytesOut atomic.Uint64 // sent to HLS sessions that closed
}

// startSinks creates the HLS muxer of a new stream and starts feeding it
// and, when the stream is recorded, its recording. The hub calls it once
// per stream (a publisher taking the stream back continues both), with
// its lock held.
func (e *Engine) startSinks(s *hub.Stream) {
	if e.cfg.HLS == "off" && e.recorder == nil {
		return
	}
	sk := &sinks{}
	if e.cfg.HLS != "off" {
		v, err := hls.ParseVariant(e.cfg.HLS)
		if err != nil {
			v = hls.LowLatency
		}
		m, err := hls.NewMuxer(hls.Config{
			Variant:        v,
			Logger:         s.Logger(),
			OnSessionOpen:  func(ses *hls.Session) { e.hlsSessionOpen(s, sk, ses) },
			OnSessionClose: func(ses *hls.Session) { e.hlsSessionClose(s, sk, ses) },
		})
		if err != nil {
			s.Logger().Error("HLS muxer", "err", err)
		} else {
			sk.hls = m
		}
	}
	e.sinks.Store(s, sk)
	e.sinksWG.Add(1)
	go func() {
		defer e.sinksWG.Done()
		e.feedSinks(s, sk)
	}()
}

// sinksOf returns the sinks of s, or nil.
func (e *Engine) sinksOf(s *hub.Stream) *sinks {
	if v, ok := e.sinks.Load(s); ok {
		return v.(*sinks)
	}
	return nil
}

// feedSinks reads s from its first packet until the stream ends and
// everything written is fed, then finishes the muxer and recording.
//
// Only a stream this node owns is recorded (see hub.Stream.Owned): a
// stream relayed from another node is recorded there; a recording stops
// when another node takes the stream over, and one starts, at the next
// key frame, when a publisher of this node takes a relayed stream.
func (e *Engine) feedSinks(s *hub.Stream, sk *sinks) {
	defer e.sinks.Delete(s)
	// Whether to record is the application's call (a room setting), made
	// here, off the publish path, once.
	decided, record := false, false
	wantRecord := func() bool {
		if e.recorder == nil || !s.Owned() {
			return false
		}
		if _, ok := e.isRendition(s.Name()); ok {
			return false // a rendition is its source's live, recorded once
		}
		if !decided {
			decided = true
			record = e.cfg.Record == nil || e.cfg.Record(s.Name())
		}
		return record
	}
	if wantRecord() {
		sk.mu.Lock()
		sk.rec = e.recorder.Start(s.Name())
		sk.mu.Unlock()
	}
	cur := s.NewCursor(hub.FromFirst)
	for {
		p, skipped, err := cur.Next(context.Background())
		if err != nil { // the stream ended and everything written was fed
			e.closeSinks(s, sk)
			return
		}
		if skipped > 0 {
			// Overwritten before we read it: we were too slow (only
			// possible if the muxer stalled for a whole ring). The cursor
			// goes on from the newest key packet.
			s.Logger().Warn("HLS and recording fell behind the stream, skipping", "packets", skipped)
			continue
		}
		if sk.hls != nil {
			if err := sk.hls.WritePacket(p.Type(), p.Timestamp(), p.Body()); err != nil {
				s.Logger().Debug("HLS muxer", "err", err)
			}
		}
		if sk.rec != nil && !s.Owned() {
			e.stopRecording(s, sk)
		} else if sk.rec == nil && p.Key() && wantRecord() {
			e.startRecording(s, sk, p.Timestamp())
		}
		if sk.rec != nil {
			sk.rec.WritePacket(p.Type(), p.Timestamp(), p.Body())
		}
	}
}

// startRecording starts the recording of s in the middle of the stream,
// at a key frame of time ts: the stream's headers first.
func (e *Engine) startRecording(s *hub.Stream, sk *sinks, ts uint32) {
	rec := e.recorder.Start(s.Name())
	if h := s.Headers(); h != nil {
		for _, p := range []*hub.Packet{h.Meta, h.Video, h.Audio} {
			if p != nil {
				rec.WritePacket(p.Type(), ts, p.Body())
			}
		}
	}
	sk.mu.Lock()
	sk.rec = rec
	sk.mu.Unlock()
	s.Logger().Info("recording started: this node publishes the stream now")
}

// stopRecording finishes the recording of s, which another node took
// over (it records the stream from then on), off the feeding goroutine.
func (e *Engine) stopRecording(s *hub.Stream, sk *sinks) {
	sk.mu.Lock()
	rec := sk.rec
	sk.rec = nil
	sk.mu.Unlock()
	s.Logger().Info("recording stopped: another node publishes the stream now")
	e.sinksWG.Add(1)
	go func() {
		defer e.sinksWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := rec.Close(ctx); err != nil {
			s.Logger().Warn("recording ended with an error", "err", err)
		}
	}()
}

// closeSinks ends the HLS output and finalizes the recording (bounded).
func (e *Engine) closeSinks(s *hub.Stream, sk *sinks) {
	if sk.hls != nil {
		sk.hls.Close()
	}
	sk.mu.Lock()
	rec := sk.rec
	sk.mu.Unlock()
	if rec != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		info, err := rec.Close(ctx)
		switch {
		case info.Path == "":
			// Nothing was written: no media came.
		case err != nil:
			s.Logger().Warn("recording ended with an error", "path", info.Path, "err", err)
		default:
			s.Logger().Info("recording finished", "path", info.Path, "duration", info.Duration.Round(time.Millisecond), "bytes", info.Size)
		}
	}
}

// Recorder returns the engine's recorder, or nil when it records nothing.
func (e *Engine) Recorder() *record.Recorder { return e.recorder }

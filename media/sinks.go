package media

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media/hls"
	"github.com/mofang-live/mofang/media/record"
)

// sinks are what a stream feeds besides its readers: the HLS muxer and
// the recording. One goroutine per stream reads the ring like a reader
// and hands every packet to them, so that neither can make the publisher
// wait; the recording has its own bounded queue and fails rather than
// block.
type sinks struct {
	hls *hls.Muxer

	mu  sync.Mutex
	rec *record.Recording
}

// startSinks creates the HLS muxer of a new stream and starts feeding it
// and, when the stream is recorded, its recording. It is called once per
// stream (a publisher taking the stream back continues both).
func (e *Engine) startSinks(s *stream) {
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
			Logger:         s.log,
			OnSessionOpen:  func(ses *hls.Session) { e.hlsSessionOpen(s, ses) },
			OnSessionClose: func(ses *hls.Session) { e.hlsSessionClose(s, ses) },
		})
		if err != nil {
			s.log.Error("HLS muxer", "err", err)
		} else {
			sk.hls = m
		}
	}
	s.sinks.Store(sk)
	e.sinksWG.Add(1)
	go func() {
		defer e.sinksWG.Done()
		e.feedSinks(s, sk)
	}()
}

// feedSinks reads s's ring from its first packet until the stream ends
// and everything written is fed, then finishes the muxer and recording.
func (e *Engine) feedSinks(s *stream, sk *sinks) {
	// Whether to record is the application's call (a room setting), made
	// here, off the publish path.
	if e.recorder != nil && (e.cfg.Record == nil || e.cfg.Record(s.name)) {
		sk.mu.Lock()
		sk.rec = e.recorder.Start(s.name)
		sk.mu.Unlock()
	}
	var cursor uint64
	for {
		ch := *s.notify.Load()
		w := s.writeSeq.Load()
		for cursor < w {
			p := s.packetAt(cursor)
			if p == nil {
				// Overwritten before we read it: we were too slow (only
				// possible if the muxer stalled for a whole ring). Go on
				// from the newest key packet.
				k := s.lastKey.Load()
				if k == 0 || k-1 <= cursor {
					cursor = w
					break
				}
				s.log.Warn("HLS and recording fell behind the stream, skipping", "packets", k-1-cursor)
				cursor = k - 1
				continue
			}
			if sk.hls != nil {
				if err := sk.hls.WritePacket(p.typ, p.ts, p.body); err != nil {
					s.log.Debug("HLS muxer", "err", err)
				}
			}
			if sk.rec != nil {
				sk.rec.WritePacket(p.typ, p.ts, p.body)
			}
			cursor++
		}
		select {
		case <-ch:
		case <-s.done:
			if s.writeSeq.Load() == cursor {
				e.closeSinks(s, sk)
				return
			}
		}
	}
}

// closeSinks ends the HLS output and finalizes the recording (bounded).
func (e *Engine) closeSinks(s *stream, sk *sinks) {
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
			s.log.Warn("recording ended with an error", "path", info.Path, "err", err)
		default:
			s.log.Info("recording finished", "path", info.Path, "duration", info.Duration.Round(time.Millisecond), "bytes", info.Size)
		}
	}
}

// hlsSessionOpen counts an HLS player as a client of the stream.
func (e *Engine) hlsSessionOpen(s *stream, ses *hls.Session) {
	remote, _ := netip.ParseAddrPort(ses.RemoteAddr)
	if !remote.IsValid() {
		if a, err := netip.ParseAddr(ses.RemoteAddr); err == nil {
			remote = netip.AddrPortFrom(a, 0)
		}
	}
	c := e.makeClient(ProtocolHLS, remote, nil)
	c.id = "hls-" + ses.ID
	c.connectedAt = ses.Created
	c.byteCounts = func() (uint64, uint64) { return 0, ses.BytesSent() }
	e.addClient(c)
	c.setRole(RolePlay, s.name)
	s.mu.Lock()
	s.readers[c] = struct{}{}
	s.mu.Unlock()
	s.hlsClients.Store(ses, c)
}

// hlsSessionClose stops counting an HLS player.
func (e *Engine) hlsSessionClose(s *stream, ses *hls.Session) {
	v, ok := s.hlsClients.LoadAndDelete(ses)
	if !ok {
		return
	}
	c := v.(*client)
	s.mu.Lock()
	delete(s.readers, c)
	s.mu.Unlock()
	s.bytesOut.Add(ses.BytesSent())
	e.removeClient(c)
}

// serveHLS serves /live/<name>/<file>: playlists, segments and parts, each
// request authorized as a play (the sign travels in every URL).
func (e *Engine) serveHLS(w http.ResponseWriter, req *http.Request, name, file string) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if req.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	remote, _ := netip.ParseAddrPort(req.RemoteAddr)
	areq := AuthRequest{Stream: name, Query: req.URL.Query(), RemoteIP: remote.Addr().Unmap(), Protocol: ProtocolHLS}
	if err := e.hlsAuth.authorize(e, areq); err != nil {
		http.Error(w, "forbidden: "+publicReason(err), http.StatusForbidden)
		return
	}
	s := e.hub.get(name)
	var sk *sinks
	if s != nil {
		sk = s.sinks.Load()
	}
	if sk == nil || sk.hls == nil {
		e.refused.Add(1)
		http.Error(w, "stream not found", http.StatusNotFound)
		return
	}
	sk.hls.Handle(w, req, file)
}

// splitHLSPath splits "/live/<name>/<file>" (or "<name>/<file>").
func splitHLSPath(p string) (name, file string, ok bool) {
	p = strings.TrimPrefix(strings.TrimPrefix(p, "/"), appName+"/")
	name, file, ok = strings.Cut(p, "/")
	if !ok || name == "" || file == "" || strings.Contains(file, "/") || !validStreamName(name) {
		return "", "", false
	}
	return name, file, true
}

// authCache remembers play authorizations of HLS requests for a few
// seconds: a player makes several requests a second, each carrying the
// same sign, and the Authorizer may ask a database.
type authCache struct {
	mu      sync.Mutex
	entries map[string]authEntry
}

type authEntry struct {
	err error
	at  time.Time
}

const authCacheTTL = 10 * time.Second

func (a *authCache) authorize(e *Engine, req AuthRequest) error {
	key := req.Stream + "?" + req.Query.Get("sign")
	now := time.Now()
	a.mu.Lock()
	if en, ok := a.entries[key]; ok && now.Sub(en.at) < authCacheTTL {
		a.mu.Unlock()
		return en.err
	}
	a.mu.Unlock()
	err := e.authorize(false, req)
	a.mu.Lock()
	if a.entries == nil || len(a.entries) > 10_000 {
		a.entries = map[string]authEntry{}
	}
	a.entries[key] = authEntry{err: err, at: now}
	a.mu.Unlock()
	return err
}

// Recorder returns the engine's recorder, or nil when it records nothing.
func (e *Engine) Recorder() *record.Recorder { return e.recorder }

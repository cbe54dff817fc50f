// Package hls serves one live stream as HLS: Low-Latency HLS (fMP4 parts,
// blocking playlist reload, preload hints) by default, plain fMP4 or MPEG-TS
// HLS as options. The muxer is gohlslib's; this package feeds it from FLV
// tag bodies (the engine's packets), bounds the waits gohlslib leaves
// unbounded, refuses bad names, and counts players as sessions.
package hls

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"

	"github.com/mofang-live/mofang/media/flv"
)

// Variant is the HLS flavour a Muxer produces.
type Variant int

// Variants.
const (
	// LowLatency is Low-Latency HLS: fMP4 segments split into parts,
	// blocking playlist reload and preload hints. The default.
	LowLatency Variant = iota
	// FMP4 is plain HLS with fMP4 segments.
	FMP4
	// MPEGTS is plain HLS with MPEG-TS segments (H.264 and AAC only).
	MPEGTS
)

// String returns the variant name used in configuration ("lowlatency",
// "fmp4", "mpegts").
func (v Variant) String() string {
	switch v {
	case LowLatency:
		return "lowlatency"
	case FMP4:
		return "fmp4"
	case MPEGTS:
		return "mpegts"
	}
	return "variant(" + strconv.Itoa(int(v)) + ")"
}

// ParseVariant parses a variant name as returned by Variant.String.
func ParseVariant(s string) (Variant, error) {
	switch s {
	case "", "lowlatency", "ll", "llhls":
		return LowLatency, nil
	case "fmp4":
		return FMP4, nil
	case "mpegts", "ts":
		return MPEGTS, nil
	}
	return 0, fmt.Errorf("unknown HLS variant %q", s)
}

func (v Variant) gohlslib() gohlslib.MuxerVariant {
	switch v {
	case FMP4:
		return gohlslib.MuxerVariantFMP4
	case MPEGTS:
		return gohlslib.MuxerVariantMPEGTS
	}
	return gohlslib.MuxerVariantLowLatency
}

// Config configures a Muxer. Zero values take the defaults shown.
type Config struct {
	Variant Variant
	// SegmentCount is the number of segments kept in the playlist
	// (default 7, at least 7 for Low-Latency HLS, 3 otherwise).
	SegmentCount int
	// SegmentMinDuration is the minimum segment duration; a segment ends at
	// the first key frame after it (default 1 s).
	SegmentMinDuration time.Duration
	// PartMinDuration is the target part duration of Low-Latency HLS
	// (default 200 ms). With video, parts are a whole number of frames,
	// the number closest to it (one at least): 6 at 30 fps (200 ms), 5 at
	// 25 fps (200 ms), 6 at 29.97 fps (200.2 ms).
	PartMinDuration time.Duration
	// SegmentMaxSize caps a segment's size in memory (default 50 MiB).
	SegmentMaxSize uint64
	// ReadyTimeout bounds how long a request made before the first segment
	// exists waits for it; it then gets 503 (default 10 s).
	ReadyTimeout time.Duration
	// ProbeDuration is how long of media is buffered, when only one track's
	// configuration is known, before starting without the other (default 1 s).
	ProbeDuration time.Duration
	// SessionTimeout is how long after its last request a player stops
	// counting as a viewer (default 5 s).
	SessionTimeout time.Duration
	// OnSessionOpen and OnSessionClose, if set, are called when a player
	// starts and stops counting as a viewer. They must not block.
	OnSessionOpen  func(*Session)
	OnSessionClose func(*Session)
	// Logger receives muxing errors (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.SegmentCount == 0 {
		c.SegmentCount = 7
	}
	if c.Variant == LowLatency && c.SegmentCount < 7 {
		return fmt.Errorf("Low-Latency HLS needs at least 7 segments, not %d", c.SegmentCount)
	}
	if c.SegmentCount < 3 {
		return fmt.Errorf("HLS needs at least 3 segments, not %d", c.SegmentCount)
	}
	if c.Variant < LowLatency || c.Variant > MPEGTS {
		return fmt.Errorf("unknown HLS variant %d", c.Variant)
	}
	if c.SegmentMinDuration <= 0 {
		c.SegmentMinDuration = time.Second
	}
	if c.PartMinDuration <= 0 {
		c.PartMinDuration = 200 * time.Millisecond
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	if c.ProbeDuration <= 0 {
		c.ProbeDuration = time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// ErrClosed is returned by WritePacket after Close.
var ErrClosed = errors.New("hls: muxer closed")

// Muxer is the HLS output of one live stream. WritePacket is called by one
// goroutine (the stream's HLS feeder); Handle, Sessions, Viewers and Close
// may be called from any goroutine.
type Muxer struct {
	cfg Config
	log *slog.Logger

	in input // touched by the WritePacket goroutine only

	mu       sync.Mutex
	gen      *generation
	gens     uint64        // generations started
	change   chan struct{} // closed and replaced when gen changes or becomes ready
	closed   bool
	closedCh chan struct{}
	maxSeg   time.Duration // longest segment seen, bounds _HLS_part
	partDur  time.Duration // part duration of the current generation

	sessions *sessions

	// Low-Latency only: the snapshot requests are served from, and the
	// refresher's wake-up (see cache.go)
	snap atomic.Pointer[snapshot]
	kick chan struct{}
	// written counts the leading track's frames written once ready;
	// checked is the count the snapshot reflects. rmu serializes refreshes.
	// following is set while the refresher follows gohlslib part by part
	// (the snapshot is then up to date but for the moment of a refresh).
	written, checked atomic.Uint64
	following        atomic.Bool
	rmu              sync.Mutex
}

// generation is one gohlslib muxer: the tracks are fixed for its life, so a
// publisher coming back with other codec parameters starts a new one.
type generation struct {
	m     *gohlslib.Muxer
	video *gohlslib.Track
	audio *gohlslib.Track
	ready bool // the first segment exists (mirror of gohlslib's rule)
}

// NewMuxer returns a Muxer; it starts muxing when the first frames arrive.
func NewMuxer(cfg Config) (*Muxer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m := &Muxer{
		cfg:      cfg,
		log:      cfg.Logger,
		change:   make(chan struct{}),
		closedCh: make(chan struct{}),
	}
	m.sessions = newSessions(cfg.SessionTimeout, cfg.OnSessionOpen, cfg.OnSessionClose)
	m.in.m = m
	if cfg.Variant == LowLatency {
		m.kick = make(chan struct{}, 1)
		go m.runRefresher()
	}
	return m, nil
}

// Variant returns the muxer's variant.
func (m *Muxer) Variant() Variant { return m.cfg.Variant }

// Close stops the muxer: pending and later requests get 404, every session
// is closed (OnSessionClose is called for each). Call it when the stream
// ends for good (publisher grace expired), not when a publisher leaves.
func (m *Muxer) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	g := m.gen
	m.gen = nil
	close(m.closedCh)
	m.signal()
	m.mu.Unlock()
	if g != nil {
		g.m.Close()
	}
	m.sessions.close()
}

// Ready reports whether the playlist has its first segment.
func (m *Muxer) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen != nil && m.gen.ready
}

// Generations returns how many times muxing (re)started: 1 after the first
// frames, +1 each time the codec parameters changed.
func (m *Muxer) Generations() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gens
}

// signal wakes requests waiting for a generation change; m.mu is held.
func (m *Muxer) signal() {
	close(m.change)
	m.change = make(chan struct{})
}

// startGeneration starts a gohlslib muxer for the given tracks, cutting
// parts at partMin (see partFrames); parts last about partDur.
func (m *Muxer) startGeneration(video, audio *gohlslib.Track, partMin, partDur time.Duration) error {
	var tracks []*gohlslib.Track
	if video != nil {
		tracks = append(tracks, video)
	}
	if audio != nil {
		tracks = append(tracks, audio)
	}
	var iosWarned atomic.Bool
	hm := &gohlslib.Muxer{
		Tracks:             tracks,
		Variant:            m.cfg.Variant.gohlslib(),
		SegmentCount:       m.cfg.SegmentCount,
		SegmentMinDuration: m.segmentMin(),
		PartMinDuration:    partMin,
		SegmentMaxSize:     m.cfg.SegmentMaxSize,
		OnEncodeError: func(err error) {
			// gohlslib reports every change of the part or segment target
			// ("... this will cause an error in iOS clients"). Parts are
			// regular for a live with a steady frame rate; one whose
			// timing is not (variable frame rate, dropped frames) would
			// log it every few parts: the first one is a warning, the
			// others go to debug.
			if strings.Contains(err.Error(), "iOS clients") && iosWarned.Swap(true) {
				m.log.Debug("hls: muxing", "err", err)
				return
			}
			m.log.Warn("hls: muxing", "err", err)
		},
	}
	if err := hm.Start(); err != nil {
		return fmt.Errorf("hls: start muxer: %w", err)
	}
	g := &generation{m: hm, video: video, audio: audio}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		hm.Close()
		return ErrClosed
	}
	old := m.gen
	m.gen = g
	m.gens++
	m.partDur = partDur
	m.signal()
	m.mu.Unlock()
	if old != nil {
		old.m.Close()
	}
	return nil
}

// segmentMin is the minimum segment duration given to gohlslib: a little
// under the configured one, because gohlslib compares decoding timestamps
// it derives itself (B-frames shift them by a frame or two, 90 kHz rounding
// by a tick) and would otherwise skip the key frame that ends a GOP-long
// segment, doubling it.
func (m *Muxer) segmentMin() time.Duration {
	d := m.cfg.SegmentMinDuration
	return d - min(d/10, 250*time.Millisecond)
}

// stopGeneration closes the current gohlslib muxer (codec change).
func (m *Muxer) stopGeneration() {
	m.mu.Lock()
	old := m.gen
	m.gen = nil
	m.signal()
	m.mu.Unlock()
	if old != nil {
		old.m.Close()
	}
}

// segmentDone records a finished segment (mirror of gohlslib's rotation).
func (m *Muxer) segmentDone(n int, d time.Duration) {
	need := 1
	if m.cfg.Variant == FMP4 {
		need = 2
	}
	m.mu.Lock()
	if d > m.maxSeg {
		m.maxSeg = d
	}
	if m.gen != nil && !m.gen.ready && n >= need {
		m.gen.ready = true
		m.signal()
	}
	m.mu.Unlock()
}

// WritePacket feeds one packet of the stream: typ is flv.TagAudio,
// flv.TagVideo or flv.TagScript, ts the DTS in milliseconds, body the FLV tag
// body (= RTMP message body). Sequence headers set the codec parameters;
// frames before the first key frame are skipped. body is retained until
// the segment holding it leaves the playlist: it must not be modified
// (the engine's packets are immutable). Errors concern this packet only;
// the caller may log them and keep feeding.
func (m *Muxer) WritePacket(typ uint8, ts uint32, body []byte) error {
	select {
	case <-m.closedCh:
		return ErrClosed
	default:
	}
	switch typ {
	case flv.TagVideo:
		return m.in.video(ts, body)
	case flv.TagAudio:
		return m.in.audio(ts, body)
	}
	return nil
}

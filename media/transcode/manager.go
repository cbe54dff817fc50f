package transcode

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media/hub"
)

// Protocol is the protocol the hub shows for a transcoder publishing a
// rendition.
const Protocol hub.Protocol = "transcode"

// Config configures a Manager. Zero values take the documented defaults.
type Config struct {
	// Hub is where sources are read and renditions published.
	Hub *hub.Hub
	// Renditions is the ladder (see ParseLadder); a source gets those
	// lower than its own height.
	Renditions []Rendition
	// MaxLives is how many lives are transcoded at once (default 1); a
	// live beyond it plays at source quality only.
	MaxLives int
	// Threads is the threads ffmpeg may use for each of decoding,
	// filtering and each encoder (default 2).
	Threads int
	// FFmpeg is the ffmpeg binary (default "ffmpeg", found in PATH).
	FFmpeg string
	// MaxRestarts is how many times a failing ffmpeg is started again
	// for one live (default 3); a run of over a minute resets the count.
	MaxRestarts int
	// SourceWait is how long a new live may take to send its video
	// configuration before it is given up as one without video
	// (default 10 s).
	SourceWait time.Duration
	// StallTimeout is how long ffmpeg may make nothing while its live
	// sends media before it is taken for hung, killed and started again
	// (default 30 s).
	StallTimeout time.Duration
	// Logger receives the transcoder's logs (default slog.Default()).
	Logger *slog.Logger
}

// Manager runs one transcoder per live. Create it with New; Start it for
// each new source stream.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	slots chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	jobs   map[string]*job // by source stream name
	closed bool
}

// job is the transcoder of one live.
type job struct {
	source     string
	renditions []Rendition
}

// New returns a manager; it runs nothing until Start.
func New(cfg Config) (*Manager, error) {
	if cfg.Hub == nil {
		return nil, errors.New("transcode: no hub")
	}
	if len(cfg.Renditions) == 0 {
		return nil, errors.New("transcode: no rendition")
	}
	if cfg.MaxLives <= 0 {
		cfg.MaxLives = 1
	}
	if cfg.Threads <= 0 {
		cfg.Threads = 2
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.MaxRestarts <= 0 {
		cfg.MaxRestarts = 3
	}
	if cfg.SourceWait <= 0 {
		cfg.SourceWait = 10 * time.Second
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "transcode"),
		slots:  make(chan struct{}, cfg.MaxLives),
		ctx:    ctx,
		cancel: cancel,
		jobs:   map[string]*job{},
	}, nil
}

// Start transcodes the new source stream s, in the background, until it
// ends. It does not block (the hub calls it with its lock held).
func (m *Manager) Start(s *hub.Stream) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(s)
	}()
}

// Output is a rendition of a live being published now.
type Output struct {
	// Stream is the rendition's stream name, "<source>_480p".
	Stream string
	Rendition
	// Width is its video's width (from its stream).
	Width int
}

// Renditions returns the renditions of source that are being published
// now, from the highest; none when source is not transcoded.
func (m *Manager) Renditions(source string) []Output {
	m.mu.Lock()
	j := m.jobs[source]
	m.mu.Unlock()
	if j == nil {
		return nil
	}
	var out []Output
	for _, r := range j.renditions {
		name := StreamName(source, r)
		s := m.cfg.Hub.Stream(name)
		if s == nil || s.Publisher() == nil {
			continue
		}
		st := s.Stats()
		if st.Height == 0 {
			continue // no video configuration yet
		}
		out = append(out, Output{Stream: name, Rendition: r, Width: st.Width})
	}
	return out
}

// Close stops every transcoder (their ffmpeg is killed) and waits for
// them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

// run transcodes s: it waits for its video, takes a slot, and runs ffmpeg
// until the stream ends, starting it again when it fails.
func (m *Manager) run(s *hub.Stream) {
	log := m.log.With("stream", s.Name())
	src, ok := m.waitSource(s)
	if !ok {
		return
	}
	var rends []Rendition
	for _, r := range m.cfg.Renditions {
		if r.Height < src.height {
			rends = append(rends, r)
		}
	}
	if len(rends) == 0 {
		log.Info("transcode: no rendition lower than the source", "height", src.height)
		return
	}
	select {
	case m.slots <- struct{}{}:
	default:
		log.Warn("transcode: every transcoder is busy (transcode-max), the live plays at source quality only", "max", m.cfg.MaxLives)
		return
	}
	defer func() { <-m.slots }()

	m.mu.Lock()
	m.jobs[s.Name()] = &job{source: s.Name(), renditions: rends}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.jobs, s.Name())
		m.mu.Unlock()
	}()

	failures := 0
	for {
		start := time.Now()
		err := m.runFFmpeg(log, s, src, rends)
		if ended(s) || m.ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			failures = 0
		}
		failures++
		if failures > m.cfg.MaxRestarts {
			log.Error("transcode: ffmpeg keeps failing, giving up: the live plays at source quality only", "err", err, "restarts", m.cfg.MaxRestarts)
			return
		}
		wait := time.Duration(failures) * time.Second
		log.Warn("transcode: ffmpeg failed, starting it again", "err", err, "attempt", failures, "in", wait)
		select {
		case <-time.After(wait):
		case <-s.Done():
			return
		case <-m.ctx.Done():
			return
		}
	}
}

// source is what the transcoder needs to know of a live.
type source struct {
	width, height int
	fps           float64
	audio         string // audio codec, "" without audio
}

// waitSource waits until s has its video configuration (bounded by
// SourceWait): false for a stream without video, or ended.
func (m *Manager) waitSource(s *hub.Stream) (source, bool) {
	deadline := time.NewTimer(m.cfg.SourceWait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if h := s.Headers(); h != nil && h.Video != nil {
			st := s.Stats()
			if st.Height > 0 {
				if st.AudioCodec == "" && h.Audio == nil {
					// the audio configuration may come just after the video's
					select {
					case <-time.After(500 * time.Millisecond):
					case <-s.Done():
						return source{}, false
					}
					st = s.Stats()
				}
				return source{width: st.Width, height: st.Height, fps: st.FPS, audio: st.AudioCodec}, true
			}
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			m.log.Info("transcode: no video configuration, not transcoded", "stream", s.Name(), "waited", m.cfg.SourceWait)
			return source{}, false
		case <-s.Done():
			return source{}, false
		case <-m.ctx.Done():
			return source{}, false
		}
	}
}

// ended reports whether s has ended.
func ended(s *hub.Stream) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

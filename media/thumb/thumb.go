// Package thumb makes JPEG thumbnails of live streams: the newest key
// frame of a stream, decoded by ffmpeg run as a subprocess (there is no
// pure-Go H.264/H.265 decoder), at most once per stream per interval and
// only when someone asks. Concurrent requests for one stream share one
// decode; decodes across all streams are bounded by a semaphore, each
// by a timeout and by the size of its output.
package thumb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Codec is the video codec of a Frame.
type Codec string

// Codecs ffmpeg is asked to decode.
const (
	H264 Codec = "h264"
	H265 Codec = "hevc"
)

// Frame is a key frame to decode: its codec and its access unit in
// Annex-B form, parameter sets first.
type Frame struct {
	Codec  Codec
	AnnexB []byte
	// ID identifies the key frame (comparable; nil: unknown). A refresh
	// that finds the same key frame as the cached picture's keeps the
	// picture without running ffmpeg.
	ID any
}

// Source is a live stream to take pictures of. Its values must be
// comparable (a pointer, or a struct of pointers): the same stream is the
// same value.
type Source interface {
	// KeyFrame returns the stream's newest key frame, or an error
	// wrapping ErrNoPicture when it has none that can be decoded.
	KeyFrame() (Frame, error)
	// Done is closed when the stream ends.
	Done() <-chan struct{}
}

// Errors of Picture. They can be matched with errors.Is.
var (
	// ErrNoPicture: the stream has no decodable video key frame (yet):
	// audio only, another codec, or just started.
	ErrNoPicture = errors.New("no picture")
	// ErrUnavailable: thumbnails cannot be made here (ffmpeg is missing)
	// or not now (every decode slot busy past the timeout, the maker
	// closed).
	ErrUnavailable = errors.New("thumbnails unavailable")
	// ErrDecode: ffmpeg failed, timed out or gave no valid JPEG.
	ErrDecode = errors.New("thumbnail decode failed")
)

// Config configures a Maker. Zero values take the defaults.
type Config struct {
	// FFmpeg is the ffmpeg program, a path or a name looked up in PATH
	// (default "ffmpeg").
	FFmpeg string
	// Interval is how long a picture is served before a request makes a
	// new one (default 10 s).
	Interval time.Duration
	// MaxDecodes is how many ffmpeg processes may run at once, across
	// every stream (default 2).
	MaxDecodes int
	// Timeout bounds one decode: waiting for a slot, then ffmpeg
	// (default 5 s).
	Timeout time.Duration
	// MaxBytes caps a picture; a bigger output fails (default 1 MiB).
	MaxBytes int
	// Height is the pictures' height; smaller videos are not enlarged.
	// The width keeps the aspect ratio (default 360).
	Height int
	// Logger receives the maker's logs (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.Interval <= 0 {
		c.Interval = 10 * time.Second
	}
	if c.MaxDecodes <= 0 {
		c.MaxDecodes = 2
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 20
	}
	if c.Height <= 0 {
		c.Height = 360
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Picture is a JPEG thumbnail and when it was made.
type Picture struct {
	JPEG []byte
	At   time.Time
}

// Stats counts the maker's work since New.
type Stats struct {
	// Decodes counts ffmpeg runs that gave a picture; Failures those
	// that did not (errors, timeouts, outputs over the cap).
	Decodes, Failures uint64
	// Running is the number of ffmpeg processes running now.
	Running int
}

// Maker makes and caches the thumbnails of streams. Create it with New.
type Maker struct {
	cfg Config
	log *slog.Logger
	sem chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	entries map[string]*entry

	decodes, failures atomic.Uint64
	missing           atomic.Bool // logged that ffmpeg is missing
}

// entry is one stream's cached picture and its refresh in flight.
type entry struct {
	src     Source
	pic     Picture // JPEG nil: none yet
	frameID any     // the key frame of pic
	// failErr is the failure of the last decode (ErrDecode), at failAt:
	// no decode again within the interval.
	failErr error
	failAt  time.Time
	fl      *flight // the refresh in flight; nil: none
}

// flight is one refresh, shared by every caller that waits for it.
type flight struct {
	done chan struct{} // closed once pic and err are set
	pic  Picture
	err  error
}

// New returns a maker configured by cfg.
func New(cfg Config) *Maker {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Maker{
		cfg:     cfg,
		log:     cfg.Logger,
		sem:     make(chan struct{}, cfg.MaxDecodes),
		ctx:     ctx,
		cancel:  cancel,
		entries: map[string]*entry{},
	}
}

// Interval is how long a picture is served (Config.Interval).
func (m *Maker) Interval() time.Duration { return m.cfg.Interval }

// Stats returns the maker's counters.
func (m *Maker) Stats() Stats {
	return Stats{Decodes: m.decodes.Load(), Failures: m.failures.Load(), Running: len(m.sem)}
}

// Close stops the decodes running (their waiters get ErrUnavailable) and
// waits for them.
func (m *Maker) Close() {
	m.cancel()
	m.wg.Wait()
}

// Picture returns the thumbnail of the stream called name, fed by src:
// the cached one while younger than the interval; else the first caller
// starts one refresh, which every caller meanwhile waits for (or for
// ctx). A refresh whose decode fails serves the previous picture if
// there is one; the failure is kept for the interval, so a broken stream
// costs at most one ffmpeg per interval.
func (m *Maker) Picture(ctx context.Context, name string, src Source) (Picture, error) {
	m.mu.Lock()
	en := m.entries[name]
	if en == nil {
		en = &entry{}
		m.entries[name] = en
	}
	if en.src != src { // a new entry, or the stream published again
		en.src = src
		m.wg.Add(1)
		go m.forgetAtEnd(name, src)
	}
	if en.fl == nil {
		now := time.Now()
		if en.pic.JPEG != nil && now.Sub(en.pic.At) < m.cfg.Interval {
			pic := en.pic
			m.mu.Unlock()
			return pic, nil
		}
		if en.failErr != nil && now.Sub(en.failAt) < m.cfg.Interval {
			pic, err := en.pic, en.failErr
			m.mu.Unlock()
			if pic.JPEG != nil {
				return pic, nil
			}
			return Picture{}, err
		}
		en.fl = &flight{done: make(chan struct{})}
		m.wg.Add(1)
		go m.refresh(name, en, en.fl, src)
	}
	fl := en.fl
	m.mu.Unlock()
	select {
	case <-fl.done:
		return fl.pic, fl.err
	case <-ctx.Done():
		return Picture{}, fmt.Errorf("waiting for a thumbnail: %w", ctx.Err())
	case <-m.ctx.Done():
		return Picture{}, fmt.Errorf("%w: closed", ErrUnavailable)
	}
}

// forgetAtEnd forgets the picture of the stream called name when src,
// its source, ends (unless the name has another source by then): an
// ended stream's picture and frames are not kept.
func (m *Maker) forgetAtEnd(name string, src Source) {
	defer m.wg.Done()
	select {
	case <-src.Done():
	case <-m.ctx.Done():
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if en := m.entries[name]; en != nil && en.src == src {
		delete(m.entries, name) // a refresh in flight still answers its waiters
	}
}

// refresh makes a new picture of en, off the callers' goroutines, and
// stores it, or its failure, for the callers waiting on fl and the next.
func (m *Maker) refresh(name string, en *entry, fl *flight, src Source) {
	defer m.wg.Done()
	pic, id, err := m.make(src, en)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil:
		en.pic, en.frameID, en.failErr = pic, id, nil
	case errors.Is(err, ErrDecode):
		m.log.Warn("thumbnail failed", "stream", name, "err", err)
		en.failErr, en.failAt = err, time.Now()
		if en.pic.JPEG != nil {
			pic, err = en.pic, nil
		}
	case errors.Is(err, ErrUnavailable) && en.pic.JPEG != nil:
		// busy: the previous picture rather than none
		pic, err = en.pic, nil
	}
	fl.pic, fl.err = pic, err
	close(fl.done)
	en.fl = nil
}

// make decodes the newest key frame of src; the same key frame as the
// cached picture's gives the cached picture again.
func (m *Maker) make(src Source, en *entry) (Picture, any, error) {
	f, err := src.KeyFrame()
	if err != nil {
		return Picture{}, nil, err
	}
	if f.Codec != H264 && f.Codec != H265 {
		return Picture{}, nil, fmt.Errorf("%w: codec %q", ErrNoPicture, f.Codec)
	}
	m.mu.Lock()
	same := f.ID != nil && en.pic.JPEG != nil && en.frameID == f.ID
	old := en.pic
	m.mu.Unlock()
	if same {
		return Picture{JPEG: old.JPEG, At: time.Now()}, f.ID, nil
	}
	path, err := exec.LookPath(m.cfg.FFmpeg)
	if err != nil {
		if !m.missing.Swap(true) {
			m.log.Error("thumbnails are unavailable: ffmpeg not found (install ffmpeg or set thumb-ffmpeg)", "ffmpeg", m.cfg.FFmpeg, "err", err)
		}
		return Picture{}, nil, fmt.Errorf("%w: ffmpeg not found", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.Timeout)
	defer cancel()
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return Picture{}, nil, fmt.Errorf("%w: every decode slot busy", ErrUnavailable)
	}
	defer func() { <-m.sem }()
	jpeg, err := m.decode(ctx, path, f)
	if err != nil {
		m.failures.Add(1)
		return Picture{}, nil, err
	}
	m.decodes.Add(1)
	return Picture{JPEG: jpeg, At: time.Now()}, f.ID, nil
}

// decode runs ffmpeg on one Annex-B access unit and returns its JPEG.
func (m *Maker) decode(ctx context.Context, path string, f Frame) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, "-hide_banner", "-nostdin", "-loglevel", "error",
		"-threads", "1", "-f", string(f.Codec), "-i", "pipe:0",
		"-frames:v", "1", "-filter_threads", "1",
		"-vf", "scale=-2:'min("+strconv.Itoa(m.cfg.Height)+",ih)'",
		"-q:v", "5", "-f", "mjpeg", "pipe:1")
	cmd.Stdin = bytes.NewReader(f.AnnexB)
	out := &cappedBuffer{max: m.cfg.MaxBytes}
	errOut := &cappedBuffer{max: 2048, truncate: true}
	cmd.Stdout, cmd.Stderr = out, errOut
	cmd.WaitDelay = time.Second // pipes closed soon after a kill
	err := cmd.Run()
	switch {
	case out.over:
		return nil, fmt.Errorf("%w: ffmpeg's picture exceeds %d bytes", ErrDecode, m.cfg.MaxBytes)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: ffmpeg did not finish within %v", ErrDecode, m.cfg.Timeout)
	case err != nil:
		return nil, fmt.Errorf("%w: ffmpeg: %v: %s", ErrDecode, err, bytes.TrimSpace(errOut.b.Bytes()))
	}
	b := out.b.Bytes()
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 || b[len(b)-2] != 0xff || b[len(b)-1] != 0xd9 {
		return nil, fmt.Errorf("%w: ffmpeg gave no JPEG (%d bytes): %s", ErrDecode, len(b), bytes.TrimSpace(errOut.b.Bytes()))
	}
	return b, nil
}

// cappedBuffer keeps at most max bytes: beyond, it fails the write (the
// output of a picture) or drops the rest (truncate: ffmpeg's messages).
type cappedBuffer struct {
	b        bytes.Buffer
	max      int
	truncate bool
	over     bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); len(p) > room {
		if !c.truncate {
			c.over = true
			return 0, errors.New("output over its cap")
		}
		c.b.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.b.Write(p)
}

// Package record records publish sessions to fragmented MP4 segments on
// disk (mediacommon's fMP4 writer), keeps a VOD HLS playlist of them, and
// serves recordings over HTTP as HLS or as one downloadable MP4.
//
// A recording lives in its own directory under the recordings directory:
//
//	<stream>/<YYYYMMDD-HHMMSS>-<rand>/init.mp4, seg00001.m4s..., index.m3u8
//
// init.mp4 followed by every segment is itself a valid fragmented MP4.
package record

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Status of a recording.
type Status string

// Statuses.
const (
	StatusRecording Status = "recording"
	StatusDone      Status = "done"
	StatusFailed    Status = "failed"
)

// Info describes a recording, for the store.
type Info struct {
	// Stream is the stream name given to Start.
	Stream string
	// Path is the recording's directory, slash-separated and relative to
	// Config.Dir; Handler's lookup returns it and Remove takes it.
	Path string
	// Start is when the recording started (first frame written); End when
	// it ended (zero while recording).
	Start, End time.Time
	// Duration is the media duration written so far: while recording,
	// the complete segments and the fragments of the open one; once
	// ended, the segments of the playlist.
	Duration time.Duration
	// Size is the bytes written (init + segments).
	Size int64
	// VideoCodec ("h264", "h265") and AudioCodec ("aac", "opus"); "" for
	// no such track.
	VideoCodec, AudioCodec string
	Width, Height          int
	// Segments is the number of complete segments.
	Segments int
	Status   Status
	// Error says why a failed recording stopped, in plain words for the
	// people who see it (no file names: the detail is logged, and
	// Recording.Err returns it).
	Error string
}

// Sink is told about recordings; the app implements it to keep a row per
// recording. Calls come from the recording's writer goroutine, never from
// the packet path; they should not take long.
type Sink interface {
	// Started is called once the first segment is being written and the
	// codecs are known; the returned id names the recording in Ended and
	// in Handler URLs. An error stops the recording and removes its files.
	// It is called too, with Status failed and Error set, when the
	// recording could not write its first file (a full disk): Ended
	// follows at once, so that the failure has a row that says why.
	Started(ctx context.Context, info Info) (id int64, err error)
	// Ended is called once when the recording stops: Close, a write error
	// (Status failed, files kept), or a change of codec or picture size
	// (the recording ends and a new one starts).
	Ended(ctx context.Context, id int64, info Info)
}

// Config configures a Recorder. Zero values take the defaults shown.
type Config struct {
	// Dir is the recordings directory (required unless FS is set).
	Dir string
	// FS writes the files (default: DirFS on Dir).
	FS FS
	// Sink receives the start and end of recordings (optional).
	Sink Sink
	// SegmentDuration is the minimum segment duration; segments end at a
	// key frame (default 4 s).
	SegmentDuration time.Duration
	// QueuePackets and QueueBytes bound the packets waiting for the
	// writer (default 2048 and 32 MiB). A recording whose writer falls
	// that far behind fails rather than slowing the stream.
	QueuePackets int
	QueueBytes   int64
	// ProbeDuration is how long of media is buffered, when only one track's
	// configuration is known, before starting without the other (default
	// 3 s: a track that comes later ends the recording and starts another,
	// and a transcoded track, such as WebRTC's Opus made AAC, can lag a
	// second behind on a busy machine).
	ProbeDuration time.Duration
	// SinkTimeout bounds Sink calls (default 10 s).
	SinkTimeout time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Recorder starts recordings in one directory and serves them.
type Recorder struct {
	cfg Config
	fs  FS
	dir string // for Handler and Remove (reads); "" if only an FS was given
	log *slog.Logger
	own *DirFS

	mu   sync.Mutex
	live map[int64]*Recording // by Sink id, while being written
}

// New returns a Recorder writing under cfg.Dir.
func New(cfg Config) (*Recorder, error) {
	if cfg.SegmentDuration <= 0 {
		cfg.SegmentDuration = 4 * time.Second
	}
	if cfg.QueuePackets <= 0 {
		cfg.QueuePackets = 2048
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 32 << 20
	}
	if cfg.ProbeDuration <= 0 {
		cfg.ProbeDuration = 3 * time.Second
	}
	if cfg.SinkTimeout <= 0 {
		cfg.SinkTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Recorder{cfg: cfg, fs: cfg.FS, dir: cfg.Dir, log: cfg.Logger, live: map[int64]*Recording{}}
	if r.fs == nil {
		if cfg.Dir == "" {
			return nil, errors.New("record: no recordings directory")
		}
		d, err := OpenDirFS(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("record: open %s: %w", cfg.Dir, err)
		}
		r.fs, r.own = d, d
	}
	return r, nil
}

// Close releases the directory; recordings must be closed first.
func (r *Recorder) Close() error {
	if r.own != nil {
		return r.own.Close()
	}
	return nil
}

// Progress returns the duration and size written so far of recording id
// (the id its Sink gave), and false when it is not being written (from
// just after Sink.Ended returns).
func (r *Recorder) Progress(id int64) (time.Duration, int64, bool) {
	r.mu.Lock()
	rec := r.live[id]
	r.mu.Unlock()
	if rec == nil {
		return 0, 0, false
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.id != id {
		return 0, 0, false
	}
	return rec.info.Duration, rec.info.Size, true
}

// track and untrack keep the recordings being written, for Progress.
func (r *Recorder) track(id int64, rec *Recording) {
	r.mu.Lock()
	r.live[id] = rec
	r.mu.Unlock()
}

func (r *Recorder) untrack(id int64, rec *Recording) {
	r.mu.Lock()
	if r.live[id] == rec {
		delete(r.live, id)
	}
	r.mu.Unlock()
}

// safeStreamDir turns a stream name into one path element.
func safeStreamDir(stream string) string {
	var b strings.Builder
	for i := 0; i < len(stream) && b.Len() < 64; i++ {
		c := stream[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// newPath returns a new recording directory for stream.
func newPath(stream string, now time.Time) string {
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	return path.Join(safeStreamDir(stream), now.UTC().Format("20060102-150405")+"-"+hex.EncodeToString(rnd[:]))
}

// Start starts recording a publish session of stream. It does not touch
// the disk: the directory is made by the writer goroutine when the first
// frames arrive. Feed it with WritePacket; Close it when the stream ends
// (publisher grace expired), not when a publisher leaves: a publisher
// coming back within the grace continues the same recording.
func (r *Recorder) Start(stream string) *Recording {
	rec := &Recording{
		r:      r,
		stream: stream,
		queue:  make(chan packet, r.cfg.QueuePackets),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	rec.info.Stream = stream
	rec.info.Status = StatusRecording
	go rec.run()
	return rec
}

type packet struct {
	typ  uint8
	ts   uint32
	body []byte
}

// Recording is one recorded publish session.
type Recording struct {
	r      *Recorder
	stream string

	queue       chan packet
	queuedBytes atomic.Int64
	failed      atomic.Bool // no more packets accepted
	closing     atomic.Bool
	stopOnce    sync.Once
	stop        chan struct{} // closed by Close or by a producer-side failure
	done        chan struct{} // closed when the writer goroutine ends

	mu       sync.Mutex
	info     Info // current chapter
	id       int64
	failErr  error
	finished []Info // chapters already ended (codec changes)
}

// WritePacket queues a packet (typ flv.TagAudio/TagVideo/TagScript, ts the
// DTS in ms, body the FLV tag body) without blocking. body is retained
// until written: it must not be modified (the engine's packets are
// immutable). If the queue is full the recording fails ("fell behind") and
// later packets are dropped; the stream is never slowed down.
func (rec *Recording) WritePacket(typ uint8, ts uint32, body []byte) {
	if rec.failed.Load() || rec.closing.Load() {
		return
	}
	n := rec.queuedBytes.Add(int64(len(body)))
	if n > rec.r.cfg.QueueBytes {
		rec.queuedBytes.Add(-int64(len(body)))
		rec.fail(fmt.Errorf("%w: %d bytes queued", errFellBehind, n))
		return
	}
	select {
	case rec.queue <- packet{typ, ts, body}:
	default:
		rec.queuedBytes.Add(-int64(len(body)))
		rec.fail(fmt.Errorf("%w: %d packets queued", errFellBehind, cap(rec.queue)))
	}
}

// fail stops accepting packets and tells the writer to stop as failed.
func (rec *Recording) fail(err error) {
	rec.mu.Lock()
	if rec.failErr == nil {
		rec.failErr = err
	}
	rec.mu.Unlock()
	rec.failed.Store(true)
	rec.stopOnce.Do(func() { close(rec.stop) })
}

// Close ends the recording: the queued packets are written, the last
// segment and the playlist completed, Sink.Ended called. It waits for that
// or ctx, and returns the recording's final Info (its last chapter).
func (rec *Recording) Close(ctx context.Context) (Info, error) {
	rec.closing.Store(true)
	rec.stopOnce.Do(func() { close(rec.stop) })
	select {
	case <-rec.done:
	case <-ctx.Done():
		return rec.Info(), ctx.Err()
	}
	return rec.Info(), nil
}

// Done is closed when the recording has stopped (closed or failed).
func (rec *Recording) Done() <-chan struct{} { return rec.done }

// Info returns the current state of the recording.
func (rec *Recording) Info() Info {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.info
}

// ID returns the id the Sink gave to the current chapter (0 before
// Sink.Started).
func (rec *Recording) ID() int64 {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.id
}

// Err returns why the recording failed, or nil: the detailed error, for
// logs (Info.Error is the plain reason).
func (rec *Recording) Err() error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.failErr
}

package webrtc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

// Audio transcoding runs ffmpeg as a subprocess, once per stream: AAC to
// Opus for an Output's viewers (FLV in, Ogg out), Opus to AAC for a WHIP
// publisher's RTMP/FLV/HLS viewers (Ogg in, FLV out). See NOTES.md for the
// measurements behind the choice of a subprocess over cgo.

// transcodeQueue bounds the frames waiting for ffmpeg's stdin; when ffmpeg
// falls behind, frames are dropped rather than blocking the caller.
const transcodeQueue = 256

type tcFrame struct {
	ts   uint32 // ms (AAC in)
	pos  int64  // 48 kHz sample position (Opus in)
	body []byte
}

// transcoder is one ffmpeg process with a writer goroutine feeding its
// stdin from a bounded queue and a reader goroutine parsing its stdout.
type transcoder struct {
	cmd     *exec.Cmd
	in      chan tcFrame  // never closed: push may race with close
	quit    chan struct{} // closed by close: no more input
	stopped chan struct{} // closed when both goroutines and the process are done
	stop    sync.Once
	cancel  context.CancelFunc
	dropped atomic.Uint64
	log     *slog.Logger
}

// frames is what a transcoder's writer reads its input from: next blocks
// for a frame and reports false once the transcoder is closed; pending
// tells whether more frames are queued (to flush otherwise).
type frames struct {
	in   <-chan tcFrame
	quit <-chan struct{}
}

func (f frames) next() (tcFrame, bool) {
	select {
	case fr := <-f.in:
		return fr, true
	case <-f.quit:
		return tcFrame{}, false
	}
}

func (f frames) pending() bool { return len(f.in) > 0 }

func startFFmpeg(ctx context.Context, bin string, args []string, log *slog.Logger,
	write func(w io.Writer, in frames) error, read func(r io.Reader) error) (*transcoder, error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ffmpeg stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ffmpeg stdout: %w", err)
	}
	stderr := &limitedBuffer{max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	t := &transcoder{cmd: cmd, in: make(chan tcFrame, transcodeQueue), quit: make(chan struct{}),
		stopped: make(chan struct{}), cancel: cancel, log: log}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		err := write(stdin, frames{in: t.in, quit: t.quit})
		_ = stdin.Close()
		if err != nil && ctx.Err() == nil {
			log.Debug("webrtc: transcoder input", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		err := read(stdout)
		if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
			log.Warn("webrtc: transcoder output", "err", err)
		}
		_, _ = io.Copy(io.Discard, stdout)
		cancel() // output is over: stop the input side too
	}()
	go func() {
		wg.Wait()
		err := cmd.Wait()
		if err != nil && ctx.Err() == nil {
			log.Warn("webrtc: ffmpeg exited", "err", err, "stderr", stderr.String())
		}
		cancel()
		close(t.stopped)
	}()
	return t, nil
}

// push queues a frame without blocking; it reports false if the frame was
// dropped.
func (t *transcoder) push(f tcFrame) bool {
	select {
	case <-t.quit:
		return false
	default:
	}
	select {
	case t.in <- f:
		return true
	default:
		t.dropped.Add(1)
		return false
	}
}

// close stops feeding ffmpeg and, after a short drain, kills it. It does
// not wait; <-t.stopped tells when everything is gone.
func (t *transcoder) close() {
	t.stop.Do(func() {
		close(t.quit)
		go func() {
			select {
			case <-t.stopped:
			case <-time.After(2 * time.Second):
				t.cancel()
			}
		}()
	})
}

// done reports whether the process has ended.
func (t *transcoder) done() bool {
	select {
	case <-t.stopped:
		return true
	default:
		return false
	}
}

// lowDelayIn are ffmpeg input options that make it start decoding at once.
var lowDelayIn = []string{"-hide_banner", "-nostats", "-loglevel", "error",
	"-fflags", "+nobuffer", "-flags", "low_delay", "-probesize", "32", "-analyzeduration", "0"}

// startAACToOpus starts an AAC-to-Opus transcoder. asc is the FLV body of
// the AAC sequence header; frames are pushed as FLV AAC bodies with ms
// timestamps. out receives each Opus packet with the 48 kHz sample
// position of its first sample on the input timeline (input ms × 48).
func startAACToOpus(ctx context.Context, bin string, bitrate int, ascBody []byte, log *slog.Logger,
	out func(pos int64, pkt []byte)) (*transcoder, error) {
	args := append(append([]string{}, lowDelayIn...),
		"-f", "flv", "-i", "pipe:0", "-map", "0:a:0", "-vn",
		"-c:a", "libopus", "-b:a", strconv.Itoa(bitrate), "-ar", "48000", "-ac", "2",
		"-application", "lowdelay", "-frame_duration", "20",
		"-f", "ogg", "-page_duration", "1", "-flush_packets", "1", "pipe:1")
	var base atomic.Int64 // first input ms, set before the first frame is written
	base.Store(-1)
	write := func(w io.Writer, in frames) error {
		bw := bufio.NewWriterSize(w, 16<<10)
		if _, err := bw.Write(flv.FileHeader(true, false)); err != nil {
			return err
		}
		if _, err := bw.Write(flv.AppendTag(nil, flv.TagAudio, 0, ascBody)); err != nil {
			return err
		}
		var tag []byte
		for {
			f, ok := in.next()
			if !ok {
				break
			}
			if base.Load() < 0 {
				base.Store(int64(f.ts))
			}
			rel := int64(f.ts) - base.Load()
			if rel < 0 {
				continue
			}
			tag = flv.AppendTag(tag[:0], flv.TagAudio, uint32(rel), f.body)
			if _, err := bw.Write(tag); err != nil {
				return err
			}
			if !in.pending() {
				if err := bw.Flush(); err != nil {
					return err
				}
			}
		}
		return bw.Flush()
	}
	read := func(r io.Reader) error {
		or := newOggReader(r)
		preSkip := int64(-1)
		var durs []int64
		for {
			p, err := or.readPage()
			if err != nil {
				return err
			}
			if p.bos || preSkip < 0 {
				if len(p.packets) > 0 {
					h, err := parseOpusHead(p.packets[0])
					if err != nil {
						return fmt.Errorf("ffmpeg output: %w", err)
					}
					preSkip = int64(h.preSkip)
				}
				continue
			}
			if len(p.packets) == 0 || p.granule < 0 {
				continue
			}
			if len(p.packets[0]) >= 8 && string(p.packets[0][:8]) == "OpusTags" {
				continue
			}
			durs = durs[:0]
			total := int64(0)
			for _, pkt := range p.packets {
				d := opusDuration(pkt)
				durs = append(durs, d)
				total += d
			}
			start := p.granule - total - preSkip
			b := base.Load()
			for i, pkt := range p.packets {
				out(b*48+start, pkt)
				start += durs[i]
			}
		}
	}
	return startFFmpeg(ctx, bin, args, log, write, read)
}

// startOpusToAAC starts an Opus-to-AAC transcoder. Frames are pushed as
// raw Opus packets with their 48 kHz sample position; out receives FLV AAC
// bodies (the sequence header first) with ms timestamps on the timeline
// position/48.
func startOpusToAAC(ctx context.Context, bin string, bitrate int, channels int, log *slog.Logger,
	out func(ts uint32, body []byte)) (*transcoder, error) {
	args := append(append([]string{}, lowDelayIn...),
		"-f", "ogg", "-i", "pipe:0", "-map", "0:a:0",
		"-c:a", "aac", "-b:a", strconv.Itoa(bitrate), "-ar", "48000",
		"-f", "flv", "-flvflags", "no_duration_filesize", "-flush_packets", "1", "pipe:1")
	var base atomic.Int64
	base.Store(-1)
	const preSkip = 312
	write := func(w io.Writer, in frames) error {
		ow := &oggWriter{w: w, serial: 0x6d6f6661}
		if err := ow.writePacket(opusHead{channels: uint8(channels), preSkip: preSkip, inputSampleRate: 48000}.marshal(), 0, oggBOS); err != nil {
			return err
		}
		if err := ow.writePacket(opusTags(), 0, 0); err != nil {
			return err
		}
		last := int64(-1)
		for {
			f, ok := in.next()
			if !ok {
				return nil
			}
			pos := f.pos
			if base.Load() < 0 {
				base.Store(pos)
			}
			rel := pos - base.Load()
			end := rel + opusDuration(f.body)
			if end <= last {
				continue
			}
			last = end
			if err := ow.writePacket(f.body, end+preSkip, 0); err != nil {
				return err
			}
		}
	}
	read := func(r io.Reader) error {
		fr := flv.Reader{R: bufio.NewReaderSize(r, 16<<10)}
		for {
			tag, err := fr.ReadTag()
			if err != nil {
				return err
			}
			if tag.Type != flv.TagAudio {
				continue
			}
			b := base.Load()
			if b < 0 {
				b = 0
			}
			out(uint32(b/48)+tag.Timestamp, tag.Body)
		}
	}
	return startFFmpeg(ctx, bin, args, log, write, read)
}

// opusDuration returns the duration of an Opus packet in 48 kHz samples
// (RFC 6716 section 3.1), 0 if it cannot be read.
func opusDuration(pkt []byte) int64 {
	if len(pkt) == 0 {
		return 0
	}
	sizes := [32]int64{480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880,
		480, 960, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960}
	n := int64(1)
	switch pkt[0] & 3 {
	case 1, 2:
		n = 2
	case 3:
		if len(pkt) < 2 {
			return 0
		}
		n = int64(pkt[1] & 63)
	}
	return sizes[pkt[0]>>3] * n
}

// limitedBuffer keeps the first max bytes written to it (ffmpeg's stderr).
type limitedBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.max - len(l.b); n > 0 {
		l.b = append(l.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

package transcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
)

// stopWait is how long ffmpeg may take to finish once its input ended,
// before it is killed.
const stopWait = 5 * time.Second

// ffmpegArgs are ffmpeg's arguments for src and rends: FLV in on stdin,
// one decode, a split into one scale and one encoder per rendition, each
// out as FLV on file descriptor 3+i.
func ffmpegArgs(src source, rends []Rendition, threads int) []string {
	t := strconv.Itoa(threads)
	args := []string{"-hide_banner", "-loglevel", "error",
		// start from the first key frame at once: the stream's
		// configuration is in the FLV sequence headers
		"-analyzeduration", "500000", "-threads", t,
		"-f", "flv", "-i", "pipe:0"}
	var graph strings.Builder
	if len(rends) == 1 {
		fmt.Fprintf(&graph, "[0:v]scale=-2:%d[o0]", rends[0].Height)
	} else {
		fmt.Fprintf(&graph, "[0:v]split=%d", len(rends))
		for i := range rends {
			fmt.Fprintf(&graph, "[s%d]", i)
		}
		for i, r := range rends {
			fmt.Fprintf(&graph, ";[s%d]scale=-2:%d[o%d]", i, r.Height, i)
		}
	}
	args = append(args, "-filter_complex", graph.String(), "-filter_complex_threads", t)
	// key frames where the source has them, and only there (as long as
	// the source's GOP is under 20 s)
	gop := "600"
	if src.fps > 0 {
		gop = strconv.Itoa(max(1, int(src.fps*20)))
	}
	for i, r := range rends {
		kb := bitrate(r.Height)
		args = append(args, "-map", "[o"+strconv.Itoa(i)+"]", "-map", "0:a?",
			"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
			"-force_key_frames", "source", "-g", gop, "-sc_threshold", "0",
			"-b:v", strconv.Itoa(kb)+"k", "-maxrate", strconv.Itoa(kb)+"k", "-bufsize", strconv.Itoa(2*kb)+"k",
			"-threads", t)
		if src.audio == "aac" {
			args = append(args, "-c:a", "copy")
		} else {
			args = append(args, "-c:a", "aac", "-b:a", "128k")
		}
		args = append(args, "-f", "flv", "-flvflags", "no_duration_filesize", "pipe:"+strconv.Itoa(3+i))
	}
	return args
}

// runFFmpeg runs one ffmpeg for s until s ends (nil) or ffmpeg fails.
func (m *Manager) runFFmpeg(log *slog.Logger, s *hub.Stream, src source, rends []Rendition) error {
	ctx, cancel := context.WithCancel(m.ctx)
	defer cancel()

	readers := make([]*os.File, len(rends))
	writers := make([]*os.File, len(rends))
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := range rends {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(readers)
			closeAll(writers)
			return fmt.Errorf("transcode: pipe: %w", err)
		}
		readers[i], writers[i] = r, w
	}
	defer closeAll(readers)

	cmd := exec.Command(m.cfg.FFmpeg, ffmpegArgs(src, rends, m.cfg.Threads)...)
	cmd.ExtraFiles = writers
	stderr := &tail{max: 2048}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		closeAll(writers)
		return fmt.Errorf("transcode: stdin: %w", err)
	}
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		closeAll(writers)
		return fmt.Errorf("transcode: starting %s: %w", m.cfg.FFmpeg, err)
	}
	closeAll(writers) // ffmpeg holds them now: EOF when it exits
	names := make([]string, len(rends))
	for i, r := range rends {
		names[i] = r.Name
	}
	log.Info("transcode: ffmpeg started", "pid", cmd.Process.Pid, "renditions", strings.Join(names, ","),
		"source_height", src.height, "threads", m.cfg.Threads)

	exited := make(chan error, 1)
	procDone := make(chan struct{})
	go func() {
		err := cmd.Wait()
		close(procDone)
		exited <- err
	}()
	var lastOut atomic.Int64 // unix nanoseconds of ffmpeg's newest output
	lastOut.Store(time.Now().UnixNano())
	go m.watch(log, s, cmd, procDone, &lastOut)

	// the outputs, published into the hub
	var outs sync.WaitGroup
	for i, r := range rends {
		outs.Add(1)
		go func() {
			defer outs.Done()
			m.publish(ctx, log, s, StreamName(s.Name(), r), readers[i], cancel, &lastOut)
		}()
	}

	// the input, fed from the hub
	fed := make(chan error, 1)
	go func() {
		err := feed(ctx, s, stdin)
		stdin.Close()
		fed <- err
	}()

	var exitErr, feedErr error
	select {
	case exitErr = <-exited:
		cancel() // the feeder stops
		feedErr = <-fed
	case feedErr = <-fed:
		// the live ended (or ffmpeg stopped reading): ffmpeg finishes
		select {
		case exitErr = <-exited:
		case <-time.After(stopWait):
			cmd.Process.Kill() //nolint:errcheck
			exitErr = <-exited
		case <-m.ctx.Done():
			cmd.Process.Kill() //nolint:errcheck
			exitErr = <-exited
		}
	case <-m.ctx.Done():
		cmd.Process.Kill() //nolint:errcheck
		exitErr = <-exited
		feedErr = <-fed
	}
	outs.Wait()
	log.Info("transcode: ffmpeg stopped", "pid", cmd.Process.Pid, "exit", exitErr)
	switch {
	case ended(s), m.ctx.Err() != nil:
		return nil
	case exitErr != nil:
		return fmt.Errorf("ffmpeg: %w: %s", exitErr, stderr.String())
	case feedErr != nil && !errors.Is(feedErr, context.Canceled):
		return fmt.Errorf("feeding ffmpeg: %w", feedErr)
	default:
		return errors.New("ffmpeg ended before the live")
	}
}

// watch kills ffmpeg when it hangs: when it has not exited stopWait after
// its live ended (its input closed), or when it makes nothing for
// StallTimeout while the live goes on. It returns when ffmpeg has exited.
func (m *Manager) watch(log *slog.Logger, s *hub.Stream, cmd *exec.Cmd, procDone <-chan struct{}, lastOut *atomic.Int64) {
	stall := m.cfg.StallTimeout
	tick := time.NewTicker(max(stall/6, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-procDone:
			return
		case <-s.Done():
			select {
			case <-procDone:
			case <-time.After(stopWait):
				log.Warn("transcode: ffmpeg did not finish after its live ended, killing it", "pid", cmd.Process.Pid)
				cmd.Process.Kill() //nolint:errcheck
			}
			return
		case <-tick.C:
			idle := time.Since(time.Unix(0, lastOut.Load()))
			if idle > stall && s.Stats().Live {
				log.Warn("transcode: ffmpeg made nothing while its live went on, killing it", "pid", cmd.Process.Pid, "idle", idle.Round(time.Second))
				cmd.Process.Kill() //nolint:errcheck
				return
			}
		}
	}
}

// feed writes s to w as FLV from its newest key frame until s ends (nil)
// or ctx ends. The publisher never waits for it: when ffmpeg is too slow
// to keep up and the cursor falls a whole ring behind, it goes on from a
// newer key frame.
func feed(ctx context.Context, s *hub.Stream, w io.Writer) error {
	cur := s.NewCursor(hub.FromKey)
	var buf []byte
	started, needKey := false, true
	for {
		p, skipped, err := cur.Next(ctx)
		if errors.Is(err, hub.ErrStreamEnded) {
			return nil
		}
		if err != nil {
			return err
		}
		if skipped > 0 {
			s.Logger().Warn("transcode: ffmpeg fell behind the live, skipping to a key frame", "packets", skipped)
			needKey = true
			continue
		}
		if p.Header() {
			if started {
				buf = flv.AppendTag(buf[:0], p.Type(), p.Timestamp(), p.Body())
				if _, err := w.Write(buf); err != nil {
					return err
				}
			}
			continue
		}
		if needKey {
			if !p.Key() || p.Type() != flv.TagVideo {
				continue
			}
			needKey = false
		}
		buf = buf[:0]
		if !started {
			// the FLV header and the stream's configuration first
			started = true
			hs := s.Headers()
			if hs == nil {
				hs = &hub.Headers{}
			}
			buf = append(buf, flv.FileHeader(hs.Audio != nil, hs.Video != nil)...)
			for _, h := range []*hub.Packet{hs.Video, hs.Audio} {
				if h != nil {
					buf = flv.AppendTag(buf, h.Type(), p.Timestamp(), h.Body())
				}
			}
		}
		buf = flv.AppendTag(buf, p.Type(), p.Timestamp(), p.Body())
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
}

// publish reads one rendition's FLV from r and publishes it as the
// stream name until r ends. A rendition that cannot be published is read
// to its end all the same, so that ffmpeg never blocks on it.
func (m *Manager) publish(ctx context.Context, log *slog.Logger, src *hub.Stream, name string, r io.Reader, stop func(), lastOut *atomic.Int64) {
	defer io.Copy(io.Discard, r) //nolint:errcheck
	h := m.cfg.Hub
	fr := &flv.Reader{R: r}
	if err := fr.ReadHeader(); err != nil {
		if ctx.Err() == nil && !ended(src) {
			log.Warn("transcode: rendition output", "rendition", name, "err", err)
		}
		return
	}
	// the publisher is a process of this host
	c := h.NewClient(hub.ClientInfo{Protocol: Protocol, Remote: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0), Close: stop})
	defer h.RemoveClient(c)
	s, err := h.Publish(name, c)
	if err != nil {
		log.Warn("transcode: publishing a rendition", "rendition", name, "err", err)
		return
	}
	c.SetRole(hub.RolePublish, name)
	defer func() {
		if ended(src) || m.ctx.Err() != nil {
			h.UnpublishNow(s, c) // the live ended: so does its rendition
		} else {
			h.Unpublish(s, c) // ffmpeg failed: the next one takes it back
		}
	}()
	for {
		tag, err := fr.ReadTag()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				log.Warn("transcode: reading a rendition", "rendition", name, "err", err)
			}
			return
		}
		c.AddBytesIn(flv.TagHeaderSize + len(tag.Body) + flv.PrevTagSizeSize)
		if len(tag.Body) == 0 && tag.Type != flv.TagScript {
			continue
		}
		lastOut.Store(time.Now().UnixNano())
		if !s.WritePacketFrom(c, tag.Type, tag.Timestamp, tag.Body) {
			log.Warn("transcode: rendition taken by another publisher", "rendition", name)
			return
		}
	}
}

// tail keeps the last max bytes written to it (ffmpeg's errors).
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/mofang-live/mofang/media/flv"
)

const (
	// file names inside a recording directory
	initName     = "init.mp4"
	playlistName = "index.m3u8"

	videoTimescale = 90000
	jumpThreshold  = 10 * time.Second
	maxPending     = 1024
	aacSnap        = 50 * time.Millisecond
	// fragments are flushed at every video key frame, and at least this
	// often (audio-only) or when this large.
	maxFragmentDuration = time.Second
	maxFragmentBytes    = 8 << 20
)

func segmentName(n int) string { return fmt.Sprintf("seg%05d.m4s", n) }

// run is the writer goroutine of a recording.
func (rec *Recording) run() {
	defer close(rec.done)
	w := &writer{rec: rec, cfg: &rec.r.cfg, fs: rec.r.fs}
	for {
		if rec.failed.Load() {
			w.end(StatusFailed, rec.Err())
			return
		}
		select {
		case p := <-rec.queue:
			rec.queuedBytes.Add(-int64(len(p.body)))
			w.packet(p)
		case <-rec.stop:
			if rec.failed.Load() {
				continue
			}
			for drained := false; !drained && !rec.failed.Load(); {
				select {
				case p := <-rec.queue:
					rec.queuedBytes.Add(-int64(len(p.body)))
					w.packet(p)
				default:
					drained = true
				}
			}
			if rec.failed.Load() {
				continue
			}
			w.end(StatusDone, nil)
			return
		}
	}
}

type sample struct {
	fmp4.Sample
	dts int64 // in the track's timescale, from the chapter start
}

// chapter is one output directory: it ends when the codecs change.
type chapter struct {
	dir    string
	video  *videoTrack
	audio  *audioTrack
	vID    int
	aID    int
	inband [][]byte // parameter sets to send in band (same format, new params)
	start  time.Time

	t0      int64 // ms, chapter time zero (first key frame)
	begun   bool  // t0 set, segment open
	seg     io.WriteCloser
	segN    int
	segT    int64 // ms, start of the open segment
	segDurs []time.Duration
	maxDur  time.Duration
	written time.Duration // media time in the files (end of the last fragment)

	vFrag, aFrag   []*fmp4.Sample
	vBase, aBase   int64
	vPrev, aPrev   *sample
	vLast, aLast   uint32 // last sample durations
	fragBytes      int
	fragT          int64 // ms, start of the fragment (audio-only flushing)
	seq            uint32
	buf            seekablebuffer.Buffer // init.mp4
	frag           []byte                // the fragment being written
	size           int64
	lastT          int64 // ms, newest sample time
	ioErr          bool
	sinkID         int64
	sinkOK         bool
	unsupportedLog [2]bool
}

// writer turns packets into fMP4 files. Used by the writer goroutine only.
type writer struct {
	rec *Recording
	cfg *Config
	fs  FS

	vcfg    *videoTrack
	acfg    *audioTrack
	ch      *chapter
	pending []packet
	logged  [2]bool

	offset    int64
	lastOut   int64
	anyOut    bool
	lastTrack [2]int64
	anyTrack  [2]bool
	aacNext   int64
	aacValid  bool
}

func (w *writer) packet(p packet) {
	switch p.typ {
	case flv.TagVideo:
		v, err := flv.ParseVideoTag(p.body)
		if err != nil {
			return
		}
		if v.IsSequenceHeader() {
			c, err := parseVideo(v)
			if err != nil {
				if !w.logged[0] {
					w.logged[0] = true
					w.rec.r.log.Warn("record: video not recorded", "stream", w.rec.stream, "err", err)
				}
				return
			}
			w.setVideo(c)
			return
		}
		if v.PacketType != flv.VideoCodedFrames && v.PacketType != flv.VideoCodedFramesX || w.vcfg == nil {
			return
		}
		w.frame(p)
	case flv.TagAudio:
		a, err := flv.ParseAudioTag(p.body)
		if err != nil {
			return
		}
		if a.IsSequenceHeader() {
			c, err := parseAudio(a)
			if err != nil {
				if !w.logged[1] {
					w.logged[1] = true
					w.rec.r.log.Warn("record: audio not recorded", "stream", w.rec.stream, "err", err)
				}
				return
			}
			w.setAudio(c)
			return
		}
		if a.PacketType != flv.AudioCodedFrames || w.acfg == nil {
			return
		}
		w.frame(p)
	}
}

// setVideo takes a new video configuration: the same picture format goes
// on in the same file (new parameter sets in band), another ends the
// chapter.
func (w *writer) setVideo(c *videoTrack) {
	old := w.vcfg
	w.vcfg = c
	if w.ch == nil || old != nil && old.sameFormat(c) && old.sameParams(c) {
		return
	}
	if w.ch.video != nil && w.ch.video.sameFormat(c) {
		if c.fourCC == flv.FourCCHEVC {
			w.ch.inband = [][]byte{c.vps, c.sps, c.pps}
		} else {
			w.ch.inband = [][]byte{c.sps, c.pps}
		}
		return
	}
	w.end(StatusDone, nil)
}

func (w *writer) setAudio(c *audioTrack) {
	old := w.acfg
	w.acfg = c
	if w.ch == nil || old != nil && old.fourCC == c.fourCC && string(old.raw) == string(c.raw) {
		return
	}
	if w.ch.audio != nil && w.ch.audio.fourCC == c.fourCC && string(w.ch.audio.raw) == string(c.raw) {
		return
	}
	w.end(StatusDone, nil)
}

func (w *writer) frame(p packet) {
	if w.ch == nil {
		if len(w.pending) == maxPending {
			copy(w.pending, w.pending[1:])
			w.pending = w.pending[:maxPending-1]
		}
		w.pending = append(w.pending, p)
		span := time.Duration(int64(p.ts)-int64(w.pending[0].ts)) * time.Millisecond
		if (w.vcfg == nil || w.acfg == nil) && span < w.cfg.ProbeDuration {
			return
		}
		w.flushPending()
		return
	}
	w.write(p)
}

// flushPending starts a chapter and writes into it the packets held while
// the other track was awaited.
func (w *writer) flushPending() {
	if !w.startChapter() {
		return
	}
	pending := w.pending
	w.pending = nil
	for _, q := range pending {
		if w.rec.failed.Load() {
			return
		}
		w.write(q)
	}
}

// startChapter creates the directory and init.mp4 and tells the sink.
func (w *writer) startChapter() bool {
	now := time.Now()
	ch := &chapter{dir: newPath(w.rec.stream, now), video: w.vcfg, audio: w.acfg, start: now}
	var init fmp4.Init
	id := 1
	if ch.video != nil {
		ch.vID = id
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: id, TimeScale: videoTimescale, Codec: ch.video.codec()})
		id++
	}
	if ch.audio != nil {
		ch.aID = id
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: id, TimeScale: uint32(ch.audio.clockRate), Codec: ch.audio.codec})
	}
	w.ch = ch
	w.aacValid = false

	w.rec.mu.Lock()
	w.rec.info = Info{Stream: w.rec.stream, Path: ch.dir, Start: now, Status: StatusRecording}
	if ch.video != nil {
		w.rec.info.VideoCodec, w.rec.info.Width, w.rec.info.Height = ch.video.name(), ch.video.width, ch.video.height
	}
	if ch.audio != nil {
		w.rec.info.AudioCodec = ch.audio.name()
	}
	w.rec.id = 0
	w.rec.mu.Unlock()

	if err := w.fs.MkdirAll(ch.dir, 0o755); err != nil {
		w.startFailed(fmt.Errorf("create %s: %w", ch.dir, err))
		return false
	}
	ch.buf.Reset()
	if err := init.Marshal(&ch.buf); err != nil {
		w.startFailed(fmt.Errorf("encode init: %w", err))
		return false
	}
	if err := w.writeFile(path.Join(ch.dir, initName), ch.buf.Bytes()); err != nil {
		w.startFailed(err)
		return false
	}
	ch.size += int64(len(ch.buf.Bytes()))
	w.updateInfo(false)

	if sink := w.cfg.Sink; sink != nil {
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.SinkTimeout)
		sid, err := sink.Started(ctx, w.rec.Info())
		cancel()
		if err != nil {
			_ = w.fs.RemoveAll(ch.dir)
			w.ch = nil
			w.rec.r.log.Error("record: recording refused, not recorded", "stream", w.rec.stream, "err", err)
			w.rec.fail(fmt.Errorf("%w: %w", errSink, err))
			return false
		}
		ch.sinkID, ch.sinkOK = sid, true
		w.rec.mu.Lock()
		w.rec.id = sid
		w.rec.mu.Unlock()
		w.rec.r.track(sid, w.rec)
	}
	return true
}

// startFailed fails a recording whose first file could not be written (a
// full disk): the sink still hears of it, failed, so that the live has a
// recording row that says why; end removes what was made of its
// directory.
func (w *writer) startFailed(err error) {
	ch := w.ch
	ch.ioErr = true
	w.rec.r.log.Error("record: cannot start recording", "stream", w.rec.stream, "err", err)
	if sink := w.cfg.Sink; sink != nil {
		info := w.rec.Info()
		info.Status, info.Error, info.End = StatusFailed, Reason(err), time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.SinkTimeout)
		sid, serr := sink.Started(ctx, info)
		cancel()
		if serr != nil {
			w.rec.r.log.Error("record: failed recording not registered", "stream", w.rec.stream, "err", serr)
		} else {
			ch.sinkID, ch.sinkOK = sid, true
			w.rec.mu.Lock()
			w.rec.id = sid
			w.rec.mu.Unlock()
		}
	}
	w.rec.fail(err)
}

// writeFile writes a small file atomically (temporary name, then rename).
func (w *writer) writeFile(name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := w.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := w.fs.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// ioFail fails the recording after a write error: nothing more is written
// to the segment (it may be truncated); the playlist lists the complete ones.
func (w *writer) ioFail(err error) {
	if w.ch != nil {
		w.ch.ioErr = true
	}
	w.rec.r.log.Error("record: write failed, recording stopped", "stream", w.rec.stream, "err", err)
	w.rec.fail(err)
}

// timeline maps an input timestamp to the output timeline, rebasing jumps.
func (w *writer) timeline(track int, ts uint32) int64 {
	t := int64(ts) + w.offset
	if w.anyTrack[track] && (t < w.lastTrack[track] || t > w.lastOut+jumpThreshold.Milliseconds()) {
		w.offset += w.lastOut + 1 - t
		t = w.lastOut + 1
		if track == 1 {
			w.aacValid = false
		}
	}
	w.lastTrack[track], w.anyTrack[track] = t, true
	if !w.anyOut || t > w.lastOut {
		w.lastOut, w.anyOut = t, true
	}
	return t
}

func (w *writer) write(p packet) {
	ch := w.ch
	if p.typ == flv.TagVideo {
		if ch.video == nil {
			return
		}
		v, err := flv.ParseVideoTag(p.body)
		if err != nil || len(v.Data) == 0 {
			return
		}
		t := w.timeline(0, p.ts)
		key := v.IsKeyFrame()
		if !ch.begun {
			if !key {
				return
			}
			if !w.beginSegment(t) {
				return
			}
		}
		var params [][]byte
		if key && ch.inband != nil {
			params = ch.inband
		}
		payload, err := ch.video.avcc(v.Data, params)
		if err != nil {
			return
		}
		s := &sample{dts: (t - ch.t0) * videoTimescale / 1000}
		s.PTSOffset = v.CompositionTime * videoTimescale / 1000
		s.IsNonSyncSample = !key
		s.Payload = payload
		if ch.vPrev != nil {
			ch.vPrev.Duration = uint32(max(s.dts-ch.vPrev.dts, 0))
			ch.vLast = ch.vPrev.Duration
			w.appendVideo(ch.vPrev)
		}
		ch.vPrev = s
		ch.lastT = max(ch.lastT, t)
		if key || ch.fragBytes > maxFragmentBytes {
			w.flushFragment()
		}
		if key && time.Duration(t-ch.segT)*time.Millisecond >= w.cfg.SegmentDuration {
			w.rotate(t)
		}
		return
	}

	if ch.audio == nil {
		return
	}
	a, err := flv.ParseAudioTag(p.body)
	if err != nil || len(a.Data) == 0 {
		return
	}
	t := w.timeline(1, p.ts)
	if !ch.begun {
		if ch.video != nil || !w.beginSegment(t) {
			return // audio before the first key frame is dropped
		}
	}
	if t < ch.t0 {
		return
	}
	rate := int64(ch.audio.clockRate)
	dts := (t - ch.t0) * rate / 1000
	if ch.audio.fourCC == flv.FourCCMP4A {
		if w.aacValid && abs(dts-w.aacNext) < rate*aacSnap.Milliseconds()/1000 {
			dts = w.aacNext
		}
		w.aacNext, w.aacValid = dts+mpeg4audio.SamplesPerAccessUnit, true
	}
	s := &sample{dts: dts}
	s.Payload = a.Data
	if ch.aPrev != nil {
		ch.aPrev.Duration = uint32(max(s.dts-ch.aPrev.dts, 0))
		ch.aLast = ch.aPrev.Duration
		w.appendAudio(ch.aPrev)
	}
	ch.aPrev = s
	ch.lastT = max(ch.lastT, t)
	if ch.video == nil {
		if time.Duration(t-ch.fragT)*time.Millisecond >= maxFragmentDuration || ch.fragBytes > maxFragmentBytes {
			w.flushFragment()
			ch.fragT = t
		}
		if time.Duration(t-ch.segT)*time.Millisecond >= w.cfg.SegmentDuration {
			w.rotate(t)
		}
	}
}

func (w *writer) appendVideo(s *sample) {
	ch := w.ch
	if len(ch.vFrag) == 0 {
		ch.vBase = s.dts
	}
	ch.vFrag = append(ch.vFrag, &s.Sample)
	ch.fragBytes += len(s.Payload)
}

func (w *writer) appendAudio(s *sample) {
	ch := w.ch
	if len(ch.aFrag) == 0 {
		ch.aBase = s.dts
	}
	ch.aFrag = append(ch.aFrag, &s.Sample)
	ch.fragBytes += len(s.Payload)
}

// beginSegment opens the first segment at time t (ms).
func (w *writer) beginSegment(t int64) bool {
	ch := w.ch
	ch.t0, ch.segT, ch.fragT, ch.begun = t, t, t, true
	return w.openSegment()
}

func (w *writer) openSegment() bool {
	ch := w.ch
	ch.segN++
	f, err := w.fs.Create(path.Join(ch.dir, segmentName(ch.segN)))
	if err != nil {
		w.ioFail(fmt.Errorf("create segment: %w", err))
		return false
	}
	ch.seg = f
	return true
}

// rotate closes the open segment at time t (ms) and opens the next.
func (w *writer) rotate(t int64) {
	ch := w.ch
	if !w.closeSegment(time.Duration(t-ch.segT) * time.Millisecond) {
		return
	}
	ch.segT = t
	w.writePlaylist(false)
	w.updateInfo(false)
	w.openSegment()
}

func (w *writer) closeSegment(d time.Duration) bool {
	ch := w.ch
	if ch.seg == nil || ch.ioErr {
		return false
	}
	err := ch.seg.Close()
	ch.seg = nil
	if err != nil {
		w.ioFail(fmt.Errorf("close segment: %w", err))
		return false
	}
	ch.segDurs = append(ch.segDurs, d)
	ch.maxDur = max(ch.maxDur, d)
	return true
}

// flushFragment writes the samples with a known duration as one moof+mdat.
func (w *writer) flushFragment() {
	ch := w.ch
	if len(ch.vFrag) == 0 && len(ch.aFrag) == 0 || ch.seg == nil {
		return
	}
	ch.seq++
	part := fmp4.Part{SequenceNumber: ch.seq}
	var end time.Duration // of the fragment, on the chapter's timeline
	if len(ch.vFrag) > 0 {
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: ch.vID, BaseTime: uint64(ch.vBase), Samples: ch.vFrag})
		end = max(end, fragmentEnd(ch.vBase, ch.vFrag, videoTimescale))
	}
	if len(ch.aFrag) > 0 {
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: ch.aID, BaseTime: uint64(ch.aBase), Samples: ch.aFrag})
		end = max(end, fragmentEnd(ch.aBase, ch.aFrag, int64(ch.audio.clockRate)))
	}
	ch.vFrag, ch.aFrag, ch.fragBytes = nil, nil, 0
	var ok bool
	if ch.frag, ok = appendFragment(ch.frag[:0], &part); !ok {
		w.ioFail(errors.New("encode fragment: over 4 GiB"))
		return
	}
	n, err := ch.seg.Write(ch.frag)
	ch.size += int64(n)
	if err != nil {
		w.ioFail(fmt.Errorf("write segment %d: %w", ch.segN, err))
		return
	}
	ch.written = max(ch.written, end)
	w.updateInfo(false)
}

// fragmentEnd is the time the samples of a fragment end, from base (in
// the track's timescale).
func fragmentEnd(base int64, samples []*fmp4.Sample, timescale int64) time.Duration {
	for _, s := range samples {
		base += int64(s.Duration)
	}
	return ticks(base, timescale)
}

// ticks converts a time in a timescale to a duration.
func ticks(v, timescale int64) time.Duration {
	return time.Duration(v/timescale*int64(time.Second) + v%timescale*int64(time.Second)/timescale)
}

// writePlaylist rewrites index.m3u8: an EVENT playlist while recording, VOD
// with ENDLIST at the end.
func (w *writer) writePlaylist(final bool) {
	ch := w.ch
	b := playlist(ch.segDurs, max(ch.maxDur, w.cfg.SegmentDuration), final)
	if err := w.writeFile(path.Join(ch.dir, playlistName), b); err != nil && !ch.ioErr {
		w.ioFail(err)
	}
}

// playlist returns the HLS playlist of segments lasting durs (target is at
// least the longest): an EVENT playlist while recording, VOD with ENDLIST
// when final.
func playlist(durs []time.Duration, target time.Duration, final bool) []byte {
	var b strings.Builder
	for _, d := range durs {
		target = max(target, d)
	}
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:" + strconv.Itoa(max(int(math.Ceil(target.Seconds())), 1)) + "\n#EXT-X-MEDIA-SEQUENCE:0\n")
	if final {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	} else {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"" + initName + "\"\n")
	for i, d := range durs {
		b.WriteString("#EXTINF:" + strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + ",\n" + segmentName(i+1) + "\n")
	}
	if final {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// updateInfo publishes the chapter's figures: while recording, the media
// written so far (the open segment's fragments too); once final, the
// segments of the playlist.
func (w *writer) updateInfo(final bool) {
	ch := w.ch
	var d time.Duration
	for _, s := range ch.segDurs {
		d += s
	}
	if !final {
		d = max(d, ch.written)
	}
	w.rec.mu.Lock()
	w.rec.info.Duration = d
	w.rec.info.Size = ch.size
	w.rec.info.Segments = len(ch.segDurs)
	w.rec.mu.Unlock()
}

// end finishes the current chapter with status (done or failed).
func (w *writer) end(status Status, cause error) {
	if w.ch == nil && status == StatusDone && len(w.pending) > 0 && !w.rec.failed.Load() {
		// the stream ended while the other track was awaited: what came
		// is recorded, not dropped
		w.flushPending()
	}
	ch := w.ch
	w.pending = nil
	if ch == nil {
		if status == StatusFailed {
			w.rec.mu.Lock()
			w.rec.info.Status = StatusFailed
			if cause != nil {
				w.rec.info.Error = Reason(cause)
			}
			w.rec.info.End = time.Now()
			w.rec.mu.Unlock()
		}
		return
	}
	defer func() { w.ch = nil }()
	if ch.begun && !ch.ioErr {
		// the last samples get the duration of the ones before them
		if ch.vPrev != nil {
			ch.vPrev.Duration = cmp0(ch.vLast, videoTimescale/30)
			w.appendVideo(ch.vPrev)
		}
		if ch.aPrev != nil {
			ch.aPrev.Duration = cmp0(ch.aLast, mpeg4audio.SamplesPerAccessUnit)
			w.appendAudio(ch.aPrev)
		}
		end := ch.lastT
		if ch.vPrev != nil {
			end += int64(ch.vPrev.Duration) * 1000 / videoTimescale
		} else if ch.aPrev != nil {
			end += int64(ch.aPrev.Duration) * 1000 / int64(ch.audio.clockRate)
		}
		w.flushFragment()
		if !ch.ioErr {
			w.closeSegment(time.Duration(end-ch.segT) * time.Millisecond)
		}
	}
	if ch.seg != nil {
		ch.seg.Close()
		ch.seg = nil
	}
	if status == StatusFailed || ch.ioErr {
		status = StatusFailed
		if cause == nil {
			cause = w.rec.Err()
		}
	}
	if !ch.begun && ch.ioErr {
		// Nothing playable was written (the disk was full from the
		// start): no files are left.
		_ = w.fs.RemoveAll(ch.dir)
		ch.size = 0
	} else {
		w.writePlaylist(true)
	}
	w.updateInfo(true)
	w.rec.mu.Lock()
	w.rec.info.Status = status
	w.rec.info.End = time.Now()
	if cause != nil {
		w.rec.info.Error = Reason(cause)
	}
	info := w.rec.info
	w.rec.finished = append(w.rec.finished, info)
	w.rec.mu.Unlock()
	if ch.sinkOK {
		ctx, cancel := context.WithTimeout(context.Background(), w.cfg.SinkTimeout)
		w.cfg.Sink.Ended(ctx, ch.sinkID, info)
		cancel()
		w.rec.r.untrack(ch.sinkID, w.rec)
	}
}

func cmp0(v, def uint32) uint32 {
	if v == 0 {
		return def
	}
	return v
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

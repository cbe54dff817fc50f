package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

const (
	// maxInitBytes bounds the init segment Repair reads.
	maxInitBytes = 1 << 20
	// maxFragmentRead bounds one moof+mdat pair Repair reads: the writer
	// flushes at 8 MiB, plus one frame.
	maxFragmentRead = 64 << 20
)

// Repair finishes a recording that the server left unfinished by
// stopping without closing it (a SIGKILL, a power cut): p is its directory
// (Info.Path) under the recordings directory dir. Each segment is read
// fragment by fragment; a torn fragment at the end of the last one is cut
// off and a segment with no whole fragment removed; the playlist is
// rewritten from what is on disk and ended (VOD, #EXT-X-ENDLIST), so that
// players see the recording end where it stopped. The returned Info has
// Path, Duration and Segments (from the samples' durations), Size (the
// bytes of the files left) and End (the last write) set; Status is done
// when something playable is left, failed otherwise.
//
// Repair reads files as the writer makes them; it must not run on a
// recording being written.
func Repair(dir, p string) (Info, error) {
	info := Info{Path: p, Status: StatusFailed}
	if !ValidPath(p) {
		return info, fmt.Errorf("record: invalid recording path %q", p)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return info, fmt.Errorf("record: open recordings: %w", err)
	}
	defer root.Close()
	sub, err := root.OpenRoot(p)
	if err != nil {
		return info, fmt.Errorf("record: open %s: %w", p, err)
	}
	defer sub.Close()

	// Temporary files of an atomic write that did not finish.
	for _, name := range []string{initName + ".tmp", playlistName + ".tmp"} {
		if err := sub.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return info, fmt.Errorf("record: repair %s: %w", p, err)
		}
	}

	tracks, initSize, end, err := readInit(sub)
	if err != nil {
		return info, fmt.Errorf("record: repair %s: %w", p, err)
	}
	info.Size = initSize
	info.End = end

	var durs []time.Duration
	for n := 1; ; n++ {
		seg, err := repairSegment(sub, segmentName(n), tracks)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return info, fmt.Errorf("record: repair %s: %w", p, err)
		}
		if seg.size == 0 {
			// Nothing whole in it: it goes, with any after it.
			if err := removeFrom(sub, n); err != nil {
				return info, fmt.Errorf("record: repair %s: %w", p, err)
			}
			break
		}
		durs = append(durs, seg.duration)
		info.Duration += seg.duration
		info.Size += seg.size
		if seg.mod.After(info.End) {
			info.End = seg.mod
		}
		if seg.torn {
			// The file was cut: anything after it was not written in
			// order either.
			if err := removeFrom(sub, n+1); err != nil {
				return info, fmt.Errorf("record: repair %s: %w", p, err)
			}
			break
		}
	}
	info.Segments = len(durs)
	if err := writeFileRoot(sub, playlistName, playlist(durs, 0, true)); err != nil {
		return info, fmt.Errorf("record: repair %s: %w", p, err)
	}
	if len(durs) > 0 {
		info.Status = StatusDone
	}
	return info, nil
}

// trackInfo is what Repair needs of a track of the init segment.
type trackInfo struct {
	timescale int64
	video     bool
}

// readInit reads the init segment's tracks.
func readInit(root *os.Root) (map[int]trackInfo, int64, time.Time, error) {
	f, err := root.Open(initName)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxInitBytes))
	if err != nil {
		return nil, 0, time.Time{}, fmt.Errorf("read init: %w", err)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		return nil, 0, time.Time{}, fmt.Errorf("init segment: %w", err)
	}
	tracks := map[int]trackInfo{}
	for _, t := range init.Tracks {
		if t.TimeScale == 0 {
			return nil, 0, time.Time{}, fmt.Errorf("init segment: track %d has no timescale", t.ID)
		}
		_, h264 := t.Codec.(*fmp4.CodecH264)
		_, h265 := t.Codec.(*fmp4.CodecH265)
		tracks[t.ID] = trackInfo{timescale: int64(t.TimeScale), video: h264 || h265}
	}
	if len(tracks) == 0 {
		return nil, 0, time.Time{}, errors.New("init segment: no tracks")
	}
	return tracks, st.Size(), st.ModTime(), nil
}

// segmentRepair is what repairSegment found.
type segmentRepair struct {
	duration time.Duration
	size     int64 // after the cut; 0: no whole fragment
	torn     bool  // a torn or unreadable fragment was cut off
	mod      time.Time
}

// repairSegment checks a segment fragment by fragment, cuts it after the
// last whole one and measures it.
func repairSegment(root *os.Root, name string, tracks map[int]trackInfo) (segmentRepair, error) {
	var res segmentRepair
	f, err := root.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return res, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return res, err
	}
	if !st.Mode().IsRegular() {
		return res, fmt.Errorf("%s is not a file", name)
	}
	res.mod = st.ModTime()
	spans := map[int]*[2]int64{} // track: first start, last end (its timescale)
	good, err := scanFragments(f, st.Size(), func(p *fmp4.Part) {
		for _, t := range p.Tracks {
			if _, ok := tracks[t.ID]; !ok {
				continue
			}
			end := int64(t.BaseTime)
			for _, s := range t.Samples {
				end += int64(s.Duration)
			}
			if sp := spans[t.ID]; sp == nil {
				spans[t.ID] = &[2]int64{int64(t.BaseTime), end}
			} else {
				sp[1] = max(sp[1], end)
			}
		}
	})
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	if good < st.Size() {
		if err := f.Truncate(good); err != nil {
			return res, fmt.Errorf("cut %s: %w", name, err)
		}
		res.torn = true
		res.mod = time.Now()
	}
	res.size = good
	// The segment lasts as long as its video (the writer cuts segments at
	// video key frames), else its longest track.
	var video bool
	for id, sp := range spans {
		d := ticks(sp[1]-sp[0], tracks[id].timescale)
		switch v := tracks[id].video; {
		case v && !video:
			res.duration, video = d, true
		case v == video:
			res.duration = max(res.duration, d)
		}
	}
	return res, nil
}

// scanFragments reads the moof+mdat pairs of a segment of size bytes in
// order, calling part for each whole one, and returns where the last whole
// one ends. A torn, oversized or unreadable pair ends the scan there; only
// read errors are returned.
func scanFragments(r io.ReaderAt, size int64, part func(*fmp4.Part)) (int64, error) {
	var good int64
	for off := int64(0); off < size; {
		typ, boxSize, err := boxAt(r, off, size)
		if err != nil {
			return good, err
		}
		if boxSize == 0 {
			return good, nil // torn or invalid header
		}
		if typ != "moof" {
			if typ == "mdat" {
				return good, nil // data without its moof
			}
			off += boxSize // styp, sidx...: whole, kept
			good = off
			continue
		}
		mtyp, mdatSize, err := boxAt(r, off+boxSize, size)
		if err != nil {
			return good, err
		}
		total := boxSize + mdatSize
		if mtyp != "mdat" || mdatSize == 0 || total > maxFragmentRead {
			return good, nil
		}
		b := make([]byte, total)
		if _, err := r.ReadAt(b, off); err != nil {
			return good, fmt.Errorf("read fragment at %d: %w", off, err)
		}
		var ps fmp4.Parts
		if err := ps.Unmarshal(b); err != nil || len(ps) != 1 {
			return good, nil
		}
		part(ps[0])
		off += total
		good = off
	}
	return good, nil
}

// boxAt reads the header of the ISO BMFF box at off: its type and whole
// size, or size 0 when the header or the box does not fit in limit bytes.
func boxAt(r io.ReaderAt, off, limit int64) (string, int64, error) {
	var h [16]byte
	if limit-off < 8 {
		return "", 0, nil
	}
	n := int64(16)
	if limit-off < 16 {
		n = 8
	}
	if _, err := r.ReadAt(h[:n], off); err != nil && !errors.Is(err, io.EOF) {
		return "", 0, fmt.Errorf("read box at %d: %w", off, err)
	}
	size, hdr := int64(binary.BigEndian.Uint32(h[:4])), int64(8)
	if size == 1 {
		if n < 16 {
			return "", 0, nil
		}
		u := binary.BigEndian.Uint64(h[8:16])
		if u > uint64(limit) {
			return "", 0, nil
		}
		size, hdr = int64(u), 16
	}
	if size < hdr || size > limit-off {
		return "", 0, nil
	}
	return string(h[4:8]), size, nil
}

// removeFrom removes segment n and the ones after it.
func removeFrom(root *os.Root, n int) error {
	for ; ; n++ {
		err := root.Remove(segmentName(n))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// writeFileRoot writes a small file in root atomically (temporary name,
// then rename).
func writeFileRoot(root *os.Root, name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := root.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := root.Rename(tmp, name); err != nil {
		return err
	}
	return nil
}

package hls

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// The Low-Latency output is served from a snapshot: when a part of the
// leading track completes (a refresher goroutine waits for the
// preload-hinted part as a player would), every media playlist (full and
// delta), the multivariant playlist and the new parts and segments are
// read from gohlslib once and published as an immutable snapshot.
// Requests are answered from it without locks: the playlists are
// templates into which the player's query (session ID, sign) is put at
// the end of each URI, the files are shared byte slices written as they
// are. Blocking requests wait on the snapshot's done
// channel, closed when the next one is published: one broadcast per part.

// tmpl is a playlist rendered without a query, with the offsets at which
// a player's query goes (the end of each URI).
type tmpl struct {
	text []byte
	cuts []int
}

// makeTmpl finds the URIs of a playlist: URI="..." attributes and URI
// lines (except gohlslib's gap.mp4, which it never gives a query).
func makeTmpl(text []byte) tmpl {
	t := tmpl{text: text}
	off := 0
	for len(text) > 0 {
		line := text
		n := bytes.IndexByte(text, '\n')
		if n >= 0 {
			line, text = text[:n], text[n+1:]
		} else {
			text = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case len(line) == 0:
		case line[0] == '#':
			rest, base := line, off
			for {
				i := bytes.Index(rest, []byte(`URI="`))
				if i < 0 {
					break
				}
				j := bytes.IndexByte(rest[i+5:], '"')
				if j < 0 {
					break
				}
				t.cuts = append(t.cuts, base+i+5+j)
				rest, base = rest[i+5+j+1:], base+i+5+j+1
			}
		case string(line) != "gap.mp4":
			t.cuts = append(t.cuts, off+len(line))
		}
		if n < 0 {
			break
		}
		off += n + 1
	}
	return t
}

// size is the length of the playlist with query q ("" for none).
func (t *tmpl) size(q string) int {
	if q == "" {
		return len(t.text)
	}
	return len(t.text) + len(t.cuts)*(1+len(q))
}

// appendTo appends the playlist with query q to dst.
func (t *tmpl) appendTo(dst []byte, q string) []byte {
	if q == "" {
		return append(dst, t.text...)
	}
	prev := 0
	for _, c := range t.cuts {
		dst = append(dst, t.text[prev:c]...)
		dst = append(dst, '?')
		dst = append(dst, q...)
		prev = c
	}
	return append(dst, t.text[prev:]...)
}

// file is a part, segment or init file, served as it is.
type file struct {
	body   []byte
	ctype  []string // Content-Type header value (shared, not modified)
	cache  []string // Cache-Control
	length []string // Content-Length
	msn    uint64   // segment holding it; ^0 for init files
}

func newFile(h http.Header, body []byte, msn uint64) *file {
	return &file{
		body:   body,
		ctype:  []string{h.Get("Content-Type")},
		cache:  []string{h.Get("Cache-Control")},
		length: []string{strconv.Itoa(len(body))},
		msn:    msn,
	}
}

// mediaState is one media playlist (a stream: video or audio) at a point.
type mediaState struct {
	full, delta tmpl
	cache       []string // Cache-Control
	firstMSN    uint64   // media sequence of the first listed segment
	nextMSN     uint64   // segment being built
	segs        int      // segments listed
	lastParts   int      // parts of segment nextMSN-1
	nextPart    uint64   // parts of segment nextMSN so far (= hinted part index)
	hint        string   // preload-hinted part
}

// satisfied reports whether the playlist holds part p of segment msn, as
// gohlslib's hasPart: a part index past a segment's last part means the
// first part of the next segment.
func (st *mediaState) satisfied(msn, p uint64) bool {
	switch {
	case msn+1 < st.nextMSN:
		return true
	case msn+1 == st.nextMSN:
		return p < uint64(st.lastParts) || st.nextPart > 0
	case msn == st.nextMSN:
		return p < st.nextPart
	}
	return false
}

// inRange reports whether a blocking request for msn may be answered (or
// waited for) at all; gohlslib answers 400 otherwise.
func (st *mediaState) inRange(msn uint64) bool {
	return msn <= st.nextMSN+1 && msn+uint64(st.segs) >= st.nextMSN+1
}

// snapshot is the Low-Latency output of one generation at one part.
type snapshot struct {
	gen   *generation
	index tmpl
	media map[string]*mediaState
	files map[string]*file
	// hints is the set of the preload-hinted part names.
	hints map[string]bool
	done  chan struct{} // closed when the next snapshot is published
}

var (
	ctypeM3U8 = []string{"application/vnd.apple.mpegurl"}
	noCache   = []string{"no-cache"}
)

// bufPool holds playlist buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// render asks gohlslib for one of its files.
func render(g *generation, name, rawQuery string) (int, http.Header, []byte) {
	req, err := http.NewRequest(http.MethodGet, "/"+name, nil)
	if err != nil {
		return 0, nil, nil
	}
	req.URL.RawQuery = rawQuery
	w := renderPool.Get().(*bufferWriter)
	w.h, w.code = http.Header{}, 0
	w.buf.Reset()
	g.m.Handle(w, req)
	// the buffer grew by doublings and is used again; the snapshot keeps
	// an exact copy
	code, h, body := w.code, w.h, bytes.Clone(w.buf.Bytes())
	renderPool.Put(w)
	return code, h, body
}

// renderPool holds render's buffers.
var renderPool = sync.Pool{New: func() any { return new(bufferWriter) }}

// kickRefresh tells the refresher that the leading track got a frame.
func (m *Muxer) kickRefresh() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// runRefresher publishes snapshots until Close. While nobody plays it
// sleeps (the first request brings the snapshot up to date itself, see
// serveSnapshot); when a frame comes and someone plays, it publishes a
// snapshot and then follows gohlslib part by part (see follow).
func (m *Muxer) runRefresher() {
	for {
		select {
		case <-m.closedCh:
			// under rmu: a refresh on its way swaps (and closes) first
			m.rmu.Lock()
			if s := m.snap.Swap(nil); s != nil {
				close(s.done)
			}
			m.rmu.Unlock()
			return
		case <-m.kick:
		}
		if m.sessions.count() > 0 {
			m.refreshSync()
			m.follow()
		}
	}
}

// follow publishes a snapshot each time gohlslib completes a part, while
// someone plays: it asks gohlslib for the preload-hinted part of the
// leading playlist, which gohlslib answers when the part is complete (or
// its muxer closes), and then refreshes. The playlists change only when a
// part completes, so they are rendered once per part, not once per frame.
// It returns, to be kicked by frames again, when nobody plays, when the
// snapshot has no hint (not ready; a new generation coming), or when a
// completed part left the snapshot as it was.
func (m *Muxer) follow() {
	m.following.Store(true)
	defer m.following.Store(false)
	for m.sessions.count() > 0 {
		s := m.snap.Load()
		if s == nil {
			return
		}
		st := s.media[s.gen.leadName()]
		if st == nil || st.hint == "" {
			return
		}
		awaitPart(s.gen, st.hint)
		select {
		case <-m.closedCh:
			return
		default:
		}
		// not refreshSync: the frame that completed the part is counted
		// in written only after gohlslib returns, maybe after this
		m.rmu.Lock()
		w := m.written.Load()
		m.refresh()
		m.checked.Store(w)
		m.rmu.Unlock()
		if m.snap.Load() == s {
			return
		}
	}
}

// awaitPart returns when gohlslib has completed the part name (a preload
// hint), or its muxer closed.
func awaitPart(g *generation, name string) {
	req, err := http.NewRequest(http.MethodGet, "/"+name, nil)
	if err != nil {
		return
	}
	g.m.Handle(partWaiter{h: http.Header{}}, req)
}

// partWaiter is the ResponseWriter of awaitPart: it keeps nothing.
type partWaiter struct{ h http.Header }

func (w partWaiter) Header() http.Header       { return w.h }
func (partWaiter) WriteHeader(int)             {}
func (partWaiter) Write(b []byte) (int, error) { return len(b), nil }

// refreshSync brings the snapshot up to the frames written so far: a
// request made after WritePacket returned sees what it wrote.
func (m *Muxer) refreshSync() {
	m.rmu.Lock()
	defer m.rmu.Unlock()
	w := m.written.Load()
	if m.checked.Load() < w {
		m.refresh()
		m.checked.Store(w)
	}
}

// leadName is the leading media playlist of a generation (gohlslib names
// streams after the track index: video first when there is one).
func (g *generation) leadName() string {
	if g.video != nil {
		return "video1_stream.m3u8"
	}
	return "audio1_stream.m3u8"
}

func (g *generation) mediaNames() []string {
	if g.video != nil && g.audio != nil {
		return []string{"video1_stream.m3u8", "audio2_stream.m3u8"}
	}
	return []string{g.leadName()}
}

// refresh publishes a new snapshot if the leading playlist changed; m.rmu
// is held.
func (m *Muxer) refresh() {
	m.mu.Lock()
	g := m.gen
	ready := g != nil && g.ready && !m.closed
	m.mu.Unlock()
	if !ready {
		return
	}
	old := m.snap.Load()
	if old != nil && old.gen != g {
		old = nil
	}
	lead := g.leadName()
	code, h, text := render(g, lead, "")
	if code != http.StatusOK {
		return
	}
	if old != nil && bytes.Equal(text, old.media[lead].full.text) {
		return
	}
	first := uint64(0)
	s := &snapshot{
		gen:   g,
		media: make(map[string]*mediaState, 2),
		files: make(map[string]*file, 64),
		hints: make(map[string]bool, 2),
		done:  make(chan struct{}),
	}
	for _, name := range g.mediaNames() {
		if name != lead {
			if code, h, text = render(g, name, ""); code != http.StatusOK {
				return
			}
		}
		st, refs := parseMedia(text)
		st.full = makeTmpl(text)
		st.cache = []string{h.Get("Cache-Control")}
		if st.cache[0] == "" {
			st.cache = noCache
		}
		if d, ok := deriveDelta(text); ok {
			st.delta = makeTmpl(d)
		} else if code, _, d := render(g, name, "_HLS_skip=YES"); code == http.StatusOK {
			st.delta = makeTmpl(d)
		} else {
			st.delta = st.full
		}
		s.media[name] = st
		first = st.firstMSN
		if st.hint != "" {
			s.hints[st.hint] = true
		}
		for _, ref := range refs {
			if _, ok := s.files[ref.name]; ok {
				continue
			}
			if old != nil {
				if f := old.files[ref.name]; f != nil {
					s.files[ref.name] = f
					continue
				}
			}
			code, fh, body := render(g, ref.name, "")
			if code != http.StatusOK {
				continue
			}
			s.files[ref.name] = newFile(fh, body, ref.msn)
		}
	}
	if old != nil {
		// a hinted part that completed and left the listed parts between
		// two snapshots (refresher late by a segment) is still served
		for hint := range old.hints {
			if _, ok := s.files[hint]; ok || s.hints[hint] {
				continue // (gohlslib would block on a pending hint)
			}
			if code, fh, body := render(g, hint, ""); code == http.StatusOK {
				s.files[hint] = newFile(fh, body, old.media[lead].nextMSN)
			}
		}
	}
	addRenditionReports(s, g)
	if old != nil {
		// parts no longer listed stay fetchable while their segment is
		for name, f := range old.files {
			if _, ok := s.files[name]; !ok && f.msn >= first {
				s.files[name] = f
			}
		}
	}
	if old != nil && old.media[lead].nextMSN == s.media[lead].nextMSN {
		s.index = old.index
	} else if code, _, mv := render(g, "index.m3u8", ""); code == http.StatusOK {
		s.index = makeTmpl(mv)
	}
	prev := m.snap.Swap(s)
	if prev != nil {
		close(prev.done)
	}
}

// addRenditionReports appends to each media playlist an
// EXT-X-RENDITION-REPORT of every other one (its last part).
func addRenditionReports(s *snapshot, g *generation) {
	names := g.mediaNames()
	if len(names) < 2 {
		return
	}
	for _, name := range names {
		var rep []byte
		for _, other := range names {
			if other == name {
				continue
			}
			o := s.media[other]
			msn, part := o.nextMSN, int64(o.nextPart)-1
			if part < 0 {
				msn, part = o.nextMSN-1, int64(o.lastParts)-1
			}
			if part < 0 {
				continue
			}
			rep = append(rep, `#EXT-X-RENDITION-REPORT:URI="`...)
			rep = append(rep, other...)
			rep = append(rep, `",LAST-MSN=`...)
			rep = strconv.AppendUint(rep, msn, 10)
			rep = append(rep, ",LAST-PART="...)
			rep = strconv.AppendInt(rep, part, 10)
			rep = append(rep, '\n')
		}
		st := s.media[name]
		st.full = withReports(st.full, rep)
		st.delta = withReports(st.delta, rep)
	}
}

func withReports(t tmpl, rep []byte) tmpl {
	if len(rep) == 0 {
		return t
	}
	text := make([]byte, 0, len(t.text)+len(rep)+1)
	text = append(text, t.text...)
	if len(text) > 0 && text[len(text)-1] != '\n' {
		text = append(text, '\n')
	}
	text = append(text, rep...)
	return makeTmpl(text)
}

// fileRef is a file a media playlist names, with its segment.
type fileRef struct {
	name string
	msn  uint64
}

// parseMedia reads what the snapshot needs of a gohlslib media playlist
// rendered without a query.
func parseMedia(text []byte) (*mediaState, []fileRef) {
	st := &mediaState{}
	var refs []fileRef
	var pending []string // parts of the segment being listed
	segs := 0
	for _, line := range strings.Split(string(text), "\n") {
		line = strings.TrimSuffix(line, "\r")
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			v, _ := strconv.ParseUint(line[len("#EXT-X-MEDIA-SEQUENCE:"):], 10, 64)
			st.firstMSN = v
		case strings.HasPrefix(line, "#EXT-X-SKIP:SKIPPED-SEGMENTS="):
			v, _ := strconv.Atoi(line[len("#EXT-X-SKIP:SKIPPED-SEGMENTS="):])
			segs += v
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			if u := uriAttr(line); u != "" {
				refs = append(refs, fileRef{u, ^uint64(0)})
			}
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			if u := uriAttr(line); u != "" {
				pending = append(pending, u)
			}
		case strings.HasPrefix(line, "#EXT-X-PRELOAD-HINT:"):
			st.hint = uriAttr(line)
		case line != "" && line[0] != '#':
			msn := st.firstMSN + uint64(segs)
			for _, p := range pending {
				refs = append(refs, fileRef{p, msn})
			}
			st.lastParts = len(pending)
			pending = pending[:0]
			segs++
			if line != "gap.mp4" {
				refs = append(refs, fileRef{line, msn})
			}
		}
	}
	st.segs = segs
	st.nextMSN = st.firstMSN + uint64(segs)
	st.nextPart = uint64(len(pending))
	for _, p := range pending {
		refs = append(refs, fileRef{p, st.nextMSN})
	}
	return st, refs
}

// uriAttr returns the URI="..." attribute of a tag line.
func uriAttr(line string) string {
	i := strings.Index(line, `URI="`)
	if i < 0 {
		return ""
	}
	rest := line[i+5:]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

package hls

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// llQuery is what Handle needs of a request's query.
type llQuery struct {
	sid, msn, part, skip string
	msnN, partN          uint64 // msn and part parsed, by checkBlockingParams
	// rest is the query put into the URLs of the playlists served: the
	// request's, without the _HLS_ parameters (and with the session ID
	// when one is given out).
	rest string
}

// safeQueryByte reports whether c may appear in a query copied as it is
// into a playlist: no quote, comma, space or control byte can then break
// out of a URI.
func safeQueryByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '%' || c == '=' || c == '&' || c == '+'
}

// parseQuery reads a raw query without building url.Values. The first
// occurrence of a key counts, as url.Values.Get. A query with anything
// but plain bytes is decoded and encoded again (as gohlslib did).
func parseQuery(raw string) llQuery {
	var q llQuery
	for i := 0; i < len(raw); i++ {
		if !safeQueryByte(raw[i]) {
			return parseQuerySlow(raw)
		}
	}
	// rest is raw up to end while no pair was dropped (no copy: the
	// _HLS_ parameters are usually the last ones); built once a kept
	// pair follows a dropped one
	var rest []byte
	end, dropped := 0, false
	for pos := 0; pos < len(raw); {
		j := strings.IndexByte(raw[pos:], '&')
		if j < 0 {
			j = len(raw) - pos
		}
		pair := raw[pos : pos+j]
		start := pos
		pos += j + 1
		if pair == "" {
			dropped = true
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(pair, "%+") {
			dk, err1 := url.QueryUnescape(k)
			dv, err2 := url.QueryUnescape(v)
			if err1 != nil || err2 != nil {
				dropped = true // as url.ParseQuery: the pair is dropped
				continue
			}
			k, v = dk, dv
		}
		switch k {
		case SessionParam:
			if q.sid == "" {
				q.sid = v
			}
		case "_HLS_msn":
			if q.msn == "" {
				q.msn = v
			}
		case "_HLS_part":
			if q.part == "" {
				q.part = v
			}
		case "_HLS_skip":
			if q.skip == "" {
				q.skip = v
			}
		}
		if strings.HasPrefix(k, "_HLS_") {
			dropped = true
			continue
		}
		switch {
		case !dropped:
			end = start + len(pair)
		case rest == nil:
			rest = append(make([]byte, 0, len(raw)), raw[:end]...)
			if end > 0 {
				rest = append(rest, '&')
			}
			rest = append(rest, pair...)
		default:
			if len(rest) > 0 {
				rest = append(rest, '&')
			}
			rest = append(rest, pair...)
		}
	}
	if rest != nil {
		q.rest = string(rest)
	} else {
		q.rest = raw[:end]
	}
	return q
}

func parseQuerySlow(raw string) llQuery {
	v, _ := url.ParseQuery(raw)
	q := llQuery{sid: v.Get(SessionParam), msn: v.Get("_HLS_msn"), part: v.Get("_HLS_part"), skip: v.Get("_HLS_skip")}
	for k := range v {
		if strings.HasPrefix(k, "_HLS_") {
			delete(v, k)
		}
	}
	q.rest = v.Encode()
	return q
}

// withSession returns the query with the session parameter set to sid.
func (q *llQuery) withSession(sid string) string {
	rest := q.rest
	if strings.Contains(rest, SessionParam+"=") {
		v, _ := url.ParseQuery(rest)
		v.Del(SessionParam)
		rest = v.Encode()
	}
	if rest == "" {
		return SessionParam + "=" + sid
	}
	return rest + "&" + SessionParam + "=" + sid
}

// serveSnapshot answers a request of a Low-Latency generation from its
// snapshot; false if the snapshot does not know the file (gohlslib is
// then asked). n is the body bytes written.
func (m *Muxer) serveSnapshot(w http.ResponseWriter, r *http.Request, g *generation, file string, q *llQuery) (n int64, ok bool) {
	if !m.following.Load() && m.checked.Load() < m.written.Load() {
		m.refreshSync()
	}
	s := m.snap.Load()
	if s == nil || s.gen != g {
		return 0, false
	}
	if file == "index.m3u8" {
		if s.index.text == nil {
			return 0, false
		}
		return writePlaylist(w, r, &s.index, q.rest, nil), true
	}
	if st := s.media[file]; st != nil {
		if q.msn == "" {
			return writePlaylist(w, r, st.playlist(q), q.rest, st.cache), true
		}
		msn, part := q.msnN, q.partN // checked by Handle
		for {
			if !st.inRange(msn) {
				http.Error(w, "_HLS_msn out of range", http.StatusBadRequest)
				return 0, true
			}
			if st.satisfied(msn, part) {
				return writePlaylist(w, r, st.playlist(q), q.rest, st.cache), true
			}
			if s = m.wait(w, r, s, g); s == nil {
				return 0, true
			}
			if st = s.media[file]; st == nil {
				http.Error(w, "no such HLS file", http.StatusNotFound)
				return 0, true
			}
		}
	}
	for {
		if f := s.files[file]; f != nil {
			return writeFile(w, r, f), true
		}
		if !s.hints[file] {
			return 0, false
		}
		// the preload-hinted part: answered when complete
		if s = m.wait(w, r, s, g); s == nil {
			return 0, true
		}
	}
}

// playlist is the media playlist a request asks for: the delta update
// when it asks to skip (_HLS_skip=YES or v2), else the whole.
func (st *mediaState) playlist(q *llQuery) *tmpl {
	if q.skip == "YES" || q.skip == "v2" {
		return &st.delta
	}
	return &st.full
}

// wait waits for the snapshot after s, or for g to end. It returns nil
// when the request has been answered (404: closed, or g ended by a codec
// change: its names are gone) or is gone; else the snapshot to look at
// again (s itself when the generation only changed state).
func (m *Muxer) wait(w http.ResponseWriter, r *http.Request, s *snapshot, g *generation) *snapshot {
	m.mu.Lock()
	change, current := m.change, m.gen == g
	m.mu.Unlock()
	if current {
		select {
		case <-s.done:
		case <-change:
		case <-r.Context().Done():
			return nil
		case <-m.closedCh:
		}
	}
	m.mu.Lock()
	current = m.gen == g && !m.closed
	m.mu.Unlock()
	next := m.snap.Load()
	if !current || next == nil || next.gen != g {
		http.Error(w, "no such HLS file", http.StatusNotFound)
		return nil
	}
	return next
}

var indexCache = []string{"public, max-age=30"}

func writePlaylist(w http.ResponseWriter, r *http.Request, t *tmpl, q string, cache []string) int64 {
	if cache == nil {
		cache = indexCache
	}
	size := t.size(q)
	h := w.Header()
	h["Content-Type"] = ctypeM3U8
	h["Cache-Control"] = cache
	h["Content-Length"] = []string{strconv.Itoa(size)}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return 0
	}
	bp := bufPool.Get().(*[]byte)
	b := t.appendTo((*bp)[:0], q)
	n, _ := w.Write(b)
	*bp = b
	bufPool.Put(bp)
	return int64(n)
}

func writeFile(w http.ResponseWriter, r *http.Request, f *file) int64 {
	h := w.Header()
	h["Content-Type"] = f.ctype
	h["Cache-Control"] = f.cache
	h["Content-Length"] = f.length
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return 0
	}
	n, _ := w.Write(f.body)
	return int64(n)
}

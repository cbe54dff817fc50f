package record

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// Errors a Lookup returns to get 404 and 403 answers. Any error with a
// method HTTPStatus() int gets that status; other errors get 500.
var (
	ErrNotFound  = errors.New("record: recording not found")
	ErrForbidden = errors.New("record: access denied")
)

// Lookup returns the directory (Info.Path) of recording id, after checking
// that the request may read it (owner, room password...).
type Lookup func(r *http.Request, id int64) (dir string, err error)

// ValidPath reports whether p can be a recording directory as made by this
// package: relative, slash-separated, clean, no "." or ".." element, no
// backslash or NUL, at most 4 elements of [A-Za-z0-9._-].
func ValidPath(p string) bool {
	if p == "" || len(p) > 256 || p[0] == '/' || path.Clean(p) != p {
		return false
	}
	elems := strings.Split(p, "/")
	if len(elems) > 4 {
		return false
	}
	for _, e := range elems {
		if e == "" || e[0] == '.' {
			return false
		}
		for i := 0; i < len(e); i++ {
			c := e[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validFile reports whether name is a file of a recording.
func validFile(name string) bool {
	if name == initName || name == playlistName {
		return true
	}
	num, ok := strings.CutPrefix(name, "seg")
	if !ok {
		return false
	}
	num, ok = strings.CutSuffix(num, ".m4s")
	if !ok || len(num) < 5 || len(num) > 9 {
		return false
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return false
		}
	}
	return true
}

// Remove deletes a recording's directory (Info.Path). p is validated and
// the deletion confined to the recordings directory, symbolic links
// included. Removing a directory that does not exist is not an error.
func (r *Recorder) Remove(p string) error {
	if !ValidPath(p) {
		return fmt.Errorf("record: invalid recording path %q", p)
	}
	if err := r.fs.RemoveAll(p); err != nil {
		return fmt.Errorf("record: remove %s: %w", p, err)
	}
	return nil
}

// parseRequestPath splits "/<id>/<file>" or "/<id>.mp4".
func parseRequestPath(p string) (id int64, file string, ok bool) {
	p, ok = strings.CutPrefix(p, "/")
	if !ok {
		return 0, "", false
	}
	idStr, file, hasFile := strings.Cut(p, "/")
	if !hasFile {
		idStr, ok = strings.CutSuffix(p, ".mp4")
		if !ok {
			return 0, "", false
		}
		file = ""
	} else if !validFile(file) {
		return 0, "", false
	}
	if len(idStr) == 0 || len(idStr) > 18 || idStr[0] == '0' {
		return 0, "", false
	}
	for i := 0; i < len(idStr); i++ {
		if idStr[i] < '0' || idStr[i] > '9' {
			return 0, "", false
		}
	}
	id, err := strconv.ParseInt(idStr, 10, 64)
	return id, file, err == nil
}

// Handler serves recordings: "/<id>/index.m3u8", "/<id>/init.mp4",
// "/<id>/seg00001.m4s" (VOD HLS) and "/<id>.mp4" (the whole recording as
// one fragmented MP4, with Range support). Mount it with the prefix
// stripped: mux.Handle("/record/", http.StripPrefix("/record", h)).
// Names are checked against the fixed set above and files are opened
// through an os.Root on the recordings directory, so nothing outside it
// (by "..", encoded slashes, absolute paths or symbolic links) is read.
func (r *Recorder) Handler(lookup Lookup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if strings.Contains(req.URL.RawPath, "%") || strings.ContainsAny(req.URL.Path, "\\\x00") {
			http.Error(w, "invalid recording URL", http.StatusBadRequest)
			return
		}
		id, file, ok := parseRequestPath(req.URL.Path)
		if !ok {
			http.Error(w, "invalid recording URL", http.StatusBadRequest)
			return
		}
		dir, err := lookup(req, id)
		if err != nil {
			code := http.StatusInternalServerError
			var hs interface{ HTTPStatus() int }
			switch {
			case errors.As(err, &hs):
				code = hs.HTTPStatus()
			case errors.Is(err, ErrNotFound):
				code = http.StatusNotFound
			case errors.Is(err, ErrForbidden):
				code = http.StatusForbidden
			}
			http.Error(w, http.StatusText(code), code)
			return
		}
		if !ValidPath(dir) || r.dir == "" {
			http.Error(w, "recording not available", http.StatusNotFound)
			return
		}
		root, err := os.OpenRoot(r.dir)
		if err != nil {
			http.Error(w, "recordings not available", http.StatusInternalServerError)
			return
		}
		defer root.Close()
		sub, err := root.OpenRoot(dir)
		if err != nil {
			http.Error(w, "recording not found", http.StatusNotFound)
			return
		}
		defer sub.Close()
		if file == "" {
			serveMP4(w, req, sub, id)
			return
		}
		serveFile(w, req, sub, file)
	})
}

func contentType(file string) string {
	switch {
	case file == playlistName:
		return "application/vnd.apple.mpegurl"
	case strings.HasSuffix(file, ".m4s"):
		return "video/iso.segment"
	}
	return "video/mp4"
}

func serveFile(w http.ResponseWriter, req *http.Request, root *os.Root, file string) {
	f, err := root.Open(file)
	if err != nil {
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", contentType(file))
	if file == playlistName {
		w.Header().Set("Cache-Control", "no-cache")
		if q := req.URL.RawQuery; q != "" {
			// The files of the playlist need the same query (the sign
			// that admitted this request): carry it into their URLs.
			b, err := io.ReadAll(io.LimitReader(f, 16<<20))
			if err != nil {
				http.Error(w, "reading playlist", http.StatusInternalServerError)
				return
			}
			http.ServeContent(w, req, "", st.ModTime(), bytes.NewReader(playlistWithQuery(b, q)))
			return
		}
	}
	http.ServeContent(w, req, "", st.ModTime(), f)
}

// playlistWithQuery appends "?"+query to every URI of an HLS playlist:
// the segment lines and the URI attribute of EXT-X-MAP.
func playlistWithQuery(pl []byte, query string) []byte {
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(pl), "\n") {
		body := strings.TrimRight(line, "\r\n")
		end := line[len(body):]
		switch {
		case body == "":
		case !strings.HasPrefix(body, "#"):
			body += "?" + query
		case strings.HasPrefix(body, "#EXT-X-MAP:"):
			if i := strings.Index(body, `URI="`); i >= 0 {
				if j := strings.IndexByte(body[i+5:], '"'); j >= 0 {
					k := i + 5 + j
					body = body[:k] + "?" + query + body[k:]
				}
			}
		}
		out.WriteString(body)
		out.WriteString(end)
	}
	return out.Bytes()
}

// segmentsOf lists the segments of the playlist in root.
func segmentsOf(root *os.Root) (segs []string, final bool, err error) {
	f, err := root.Open(playlistName)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 8<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "#EXT-X-ENDLIST":
			final = true
		case line == "" || line[0] == '#':
		case validFile(line) && strings.HasSuffix(line, ".m4s"):
			segs = append(segs, line)
		default:
			return nil, false, fmt.Errorf("unexpected playlist line %q", line)
		}
	}
	return segs, final, sc.Err()
}

// serveMP4 serves init.mp4 followed by every segment of the playlist as
// one file.
func serveMP4(w http.ResponseWriter, req *http.Request, root *os.Root, id int64) {
	segs, _, err := segmentsOf(root)
	if err != nil {
		http.Error(w, "recording not found", http.StatusNotFound)
		return
	}
	names := append([]string{initName}, segs...)
	mr := &multiFile{}
	var mod time.Time
	for _, n := range names {
		f, err := root.Open(n)
		if err != nil {
			mr.Close()
			http.Error(w, "recording incomplete", http.StatusNotFound)
			return
		}
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			mr.Close()
			http.Error(w, "recording incomplete", http.StatusNotFound)
			return
		}
		if st.ModTime().After(mod) {
			mod = st.ModTime()
		}
		mr.files = append(mr.files, f)
		mr.sizes = append(mr.sizes, st.Size())
		mr.total += st.Size()
	}
	defer mr.Close()
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Disposition", `attachment; filename="record-`+strconv.FormatInt(id, 10)+`.mp4"`)
	http.ServeContent(w, req, "", mod, mr)
}

// multiFile is an io.ReadSeeker over files laid end to end.
type multiFile struct {
	files []*os.File
	sizes []int64
	total int64
	pos   int64
}

func (m *multiFile) Read(p []byte) (int, error) {
	if m.pos >= m.total {
		return 0, io.EOF
	}
	off := m.pos
	for i, f := range m.files {
		if off >= m.sizes[i] {
			off -= m.sizes[i]
			continue
		}
		n := min(int64(len(p)), m.sizes[i]-off)
		k, err := f.ReadAt(p[:n], off)
		m.pos += int64(k)
		if err == io.EOF && int64(k) == n {
			err = nil
		}
		if err == nil && k == 0 {
			err = io.ErrUnexpectedEOF
		}
		return k, err
	}
	return 0, io.EOF
}

func (m *multiFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += m.pos
	case io.SeekEnd:
		offset += m.total
	default:
		return 0, errors.New("invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("negative position")
	}
	m.pos = offset
	return offset, nil
}

func (m *multiFile) Close() {
	for _, f := range m.files {
		f.Close()
	}
}

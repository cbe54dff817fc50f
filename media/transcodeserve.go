package media

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media/hls"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/transcode"
)

// The quality ladder's place in the engine (media/transcode runs the
// transcoders): rendition streams, "<source>_480p", are published by the
// transcoder alone, authorized like their source, neither recorded nor
// reported as publishes of their own, and listed with their source in the
// HLS multivariant playlist /live/<source>/master.m3u8.

// Rendition is a rendition of a live being published now.
type Rendition = transcode.Output

// ParseLadder parses a quality ladder, "720p,480p,360p" (see
// Config.Transcode).
func ParseLadder(s string) ([]transcode.Rendition, error) { return transcode.ParseLadder(s) }

// MasterPlaylist is the file name of a stream's multivariant playlist
// listing the stream and its renditions: /live/<stream>/master.m3u8.
const MasterPlaylist = "master.m3u8"

// errReservedName refuses a client publishing to a rendition's name.
var errReservedName = hub.Refusal("reserved stream name: renditions are made by the server")

// isRendition reports whether name is a rendition's stream while the
// ladder is on; source is then its source stream.
func (e *Engine) isRendition(name string) (source string, ok bool) {
	if len(e.cfg.Transcode) == 0 {
		return "", false
	}
	source, _, ok = transcode.SourceOf(name)
	return source, ok
}

// Renditions returns the renditions of stream name being published now,
// from the highest; none when the ladder is off or the stream is not
// transcoded.
func (e *Engine) Renditions(name string) []Rendition {
	if e.tc == nil {
		return nil
	}
	return e.tc.Renditions(name)
}

// startTranscode starts the transcoder of a new stream of this node's
// publisher: not a rendition, not a relay, and one Config.TranscodeStream
// allows. Called by the hub with its lock held.
func (e *Engine) startTranscode(s *hub.Stream) {
	if e.tc == nil || !s.Owned() {
		return
	}
	if _, ok := e.isRendition(s.Name()); ok {
		return
	}
	if f := e.cfg.TranscodeStream; f != nil && !f(s.Name()) {
		return
	}
	e.tc.Start(s)
}

// renditionAuth refuses clients publishing to a rendition's name and
// authorizes a rendition's viewers as viewers of its source (the play
// sign of the source plays its renditions). Relays between nodes keep
// the rendition's name: their node credential is made for it.
type renditionAuth struct {
	e     *Engine
	inner Authorizer // nil: allow
}

func (a renditionAuth) AuthorizePublish(ctx context.Context, req AuthRequest) error {
	if _, ok := a.e.isRendition(req.Stream); ok {
		return errReservedName
	}
	if a.inner == nil {
		return nil
	}
	return a.inner.AuthorizePublish(ctx, req)
}

func (a renditionAuth) AuthorizePlay(ctx context.Context, req AuthRequest) error {
	if source, ok := a.e.isRendition(req.Stream); ok && req.Relay == "" {
		req.Stream = source
	}
	if a.inner == nil {
		return nil
	}
	return a.inner.AuthorizePlay(ctx, req)
}

// renditionEvents keeps renditions' publishes from the application: a
// rendition is part of its source's live. Their viewers are reported
// (with the rendition's stream name) when the sink hears of viewers.
type renditionEvents struct {
	e     *Engine
	inner EventSink
}

func (r renditionEvents) PublishStarted(ctx context.Context, s StreamInfo) {
	if _, ok := r.e.isRendition(s.Name); !ok {
		r.inner.PublishStarted(ctx, s)
	}
}

func (r renditionEvents) PublishStopped(ctx context.Context, s StreamInfo) {
	if _, ok := r.e.isRendition(s.Name); !ok {
		r.inner.PublishStopped(ctx, s)
	}
}

// renditionPlayEvents is renditionEvents of a sink that hears of viewers.
type renditionPlayEvents struct {
	renditionEvents
	plays PlayEventSink
}

func (r renditionPlayEvents) PlayStarted(ctx context.Context, p PlayInfo) {
	r.plays.PlayStarted(ctx, p)
}
func (r renditionPlayEvents) PlayStopped(ctx context.Context, p PlayInfo) {
	r.plays.PlayStopped(ctx, p)
}

// wrapForLadder puts the ladder's rules around the application's
// Authorizer and EventSink.
func (e *Engine) wrapForLadder(authz Authorizer, events EventSink) (Authorizer, EventSink) {
	authz = renditionAuth{e: e, inner: authz}
	if events != nil {
		re := renditionEvents{e: e, inner: events}
		if p, ok := events.(PlayEventSink); ok {
			events = renditionPlayEvents{renditionEvents: re, plays: p}
		} else {
			events = re
		}
	}
	return authz, events
}

// renditionWait is how long master.m3u8 waits for a rendition's first
// segment (a transcoder starts a second or two after its live).
const renditionWait = 3 * time.Second

// serveMaster serves /live/<name>/master.m3u8: a multivariant playlist
// of the stream and of every rendition of it with a segment, each as its
// own HLS muxer describes it (BANDWIDTH, RESOLUTION, CODECS), the
// request's sign carried into every URL. sk is the stream's.
func (e *Engine) serveMaster(w http.ResponseWriter, req *http.Request, name string, sk *sinks) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := req.URL.Query()
	q.Del("_HLS_msn")
	q.Del("_HLS_part")
	// one player session ID, given to each stream's muxer as it is
	// fetched (each counts its own sessions)
	q.Set(hls.SessionParam, newMasterSessionID())
	rawQuery := q.Encode()

	src, err := sk.hls.MultivariantPlaylist(req.Context(), rawQuery)
	if err != nil {
		if req.Context().Err() == nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "stream not ready", http.StatusServiceUnavailable)
		}
		return
	}
	rends := e.Renditions(name)
	lists := make([][]byte, 1+len(rends))
	prefixes := make([]string, 1+len(rends))
	lists[0] = src
	var wg sync.WaitGroup
	for i, r := range rends {
		prefixes[i+1] = "../" + url.PathEscape(r.Stream) + "/"
		s := e.hub.Stream(r.Stream)
		if s == nil {
			continue
		}
		rsk := e.sinksOf(s)
		if rsk == nil || rsk.hls == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(req.Context(), renditionWait)
			defer cancel()
			if b, err := rsk.hls.MultivariantPlaylist(ctx, rawQuery); err == nil {
				lists[i+1] = b
			}
		}()
	}
	wg.Wait()
	w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(mergeVariants(lists, prefixes)) //nolint:errcheck
}

// newMasterSessionID returns a fresh HLS session ID (random hex, as the
// muxer's own).
func newMasterSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	groupAttr = regexp.MustCompile(`(GROUP-ID|AUDIO)="([^"]*)"`)
	uriAttr   = regexp.MustCompile(`URI="([^"]*)"`)
)

// mergeVariants makes one multivariant playlist of several: the variants
// and media renditions of lists[i], its URIs prefixed with prefixes[i] and
// its groups renamed to be its own. Nil lists are left out.
func mergeVariants(lists [][]byte, prefixes []string) []byte {
	var out bytes.Buffer
	version := 0
	for _, l := range lists {
		for _, line := range bytes.Split(l, []byte("\n")) {
			if v, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("#EXT-X-VERSION:")); ok {
				if n, err := strconv.Atoi(string(v)); err == nil {
					version = max(version, n)
				}
			}
		}
	}
	out.WriteString("#EXTM3U\n")
	if version > 0 {
		fmt.Fprintf(&out, "#EXT-X-VERSION:%d\n", version)
	}
	out.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	for i, l := range lists {
		if l == nil {
			continue
		}
		suffix := "-" + strconv.Itoa(i)
		rename := func(line []byte) []byte {
			line = groupAttr.ReplaceAll(line, []byte(`$1="${2}`+suffix+`"`))
			return uriAttr.ReplaceAll(line, []byte(`URI="`+prefixes[i]+`$1"`))
		}
		out.WriteString("\n")
		uriNext := false
		for _, line := range bytes.Split(l, []byte("\n")) {
			line = bytes.TrimSpace(line)
			switch {
			case len(line) == 0:
			case bytes.HasPrefix(line, []byte("#EXT-X-MEDIA:")):
				out.Write(rename(line))
				out.WriteByte('\n')
			case bytes.HasPrefix(line, []byte("#EXT-X-STREAM-INF:")):
				out.Write(rename(line))
				out.WriteByte('\n')
				uriNext = true
			case line[0] == '#':
			case uriNext:
				out.WriteString(prefixes[i])
				out.Write(line)
				out.WriteByte('\n')
				uriNext = false
			}
		}
	}
	return out.Bytes()
}

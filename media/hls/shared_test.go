package hls

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
)

// getFull is get with the response's Content-Length checked against the
// body it came with.
func getFull(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return 0, ""
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
	}
	if res.StatusCode == 200 && res.ContentLength != int64(len(b)) {
		t.Errorf("GET %s: Content-Length %d, body %d bytes", url, res.ContentLength, len(b))
	}
	return res.StatusCode, string(b)
}

var reportRE = regexp.MustCompile(`#EXT-X-RENDITION-REPORT:URI="([^"]+)",LAST-MSN=(\d+),LAST-PART=(\d+)`)

// TestSharedPlaylists plays the LL-HLS output with many players at once:
// each gets the playlists with its own session in every URI, rendition
// reports and delta updates, the blocked requests are all answered when
// the part lands, every part body is whole (Content-Length), and the
// viewer count is the number of players.
func TestSharedPlaylists(t *testing.T) {
	tags := clipTags(t)
	split := len(tags) / 2
	m := newMuxer(t, Config{})
	srv := serve(t, m)
	feed(t, m, tags[:split], 0)
	base := srv.URL + "/live/test/"
	time.Sleep(50 * time.Millisecond)

	const players = 40
	type player struct{ uri, media string }
	ps := make([]player, players)
	for i := range ps {
		// a hostile sign must not break out of the URIs
		code, mv := getFull(t, base+"index.m3u8?sign=a%22%0Ab%2Cc")
		if code != 200 {
			t.Fatalf("index.m3u8: %d", code)
		}
		uri := mediaURI.FindString(mv)
		if uri == "" || !strings.Contains(uri, "sign=a%22%0Ab%2Cc") {
			t.Fatalf("media URI %q in\n%s", uri, mv)
		}
		code, media := getFull(t, base+uri)
		if code != 200 {
			t.Fatalf("%s: %d", uri, code)
		}
		ps[i] = player{uri, media}
	}
	if n := m.Viewers(); n != players {
		t.Errorf("%d viewers, want %d", n, players)
	}
	sid := func(uri string) string {
		_, after, _ := strings.Cut(uri, SessionParam+"=")
		return after[:16]
	}
	// the same playlist for all but the session
	for _, p := range ps[1:] {
		if strings.ReplaceAll(p.media, sid(p.uri), sid(ps[0].uri)) != ps[0].media {
			t.Errorf("playlists differ beyond the session:\n%s\n---\n%s", p.media, ps[0].media)
			break
		}
	}
	media := ps[0].media
	if strings.Contains(media, "\"\n") && strings.Count(media, `"`)%2 != 0 {
		t.Errorf("unbalanced quotes:\n%s", media)
	}
	var pl playlist.Media
	if err := pl.Unmarshal([]byte(media)); err != nil {
		t.Fatalf("parse: %v\n%s", err, media)
	}
	for _, u := range uris(media) {
		if u != "gap.mp4" && !strings.Contains(u, SessionParam+"="+sid(ps[0].uri)) {
			t.Errorf("URI %q lacks the session", u)
		}
	}

	// rendition report: the audio playlist's last part
	rep := reportRE.FindStringSubmatch(media)
	if rep == nil {
		t.Fatalf("no rendition report in\n%s", media)
	}
	code, audio := getFull(t, base+rep[1])
	if code != 200 || !strings.HasPrefix(rep[1], "audio2_stream.m3u8?") {
		t.Fatalf("%s: %d", rep[1], code)
	}
	_, amsn, apart := nextPart(t, audio)
	lastMSN, lastPart := amsn, apart-1
	if apart == 0 {
		var apl playlist.Media
		if err := apl.Unmarshal([]byte(audio)); err != nil {
			t.Fatal(err)
		}
		lastMSN, lastPart = amsn-1, len(apl.Segments[len(apl.Segments)-1].Parts)-1
	}
	if rep[2] != strconv.Itoa(lastMSN) || rep[3] != strconv.Itoa(lastPart) {
		t.Errorf("report %s/%s, audio playlist's last part %d/%d", rep[2], rep[3], lastMSN, lastPart)
	}

	// delta update
	code, delta := getFull(t, base+ps[0].uri+"&_HLS_skip=YES")
	if code != 200 || !strings.Contains(delta, "#EXT-X-SKIP:SKIPPED-SEGMENTS=") || !strings.Contains(delta, SessionParam+"="+sid(ps[0].uri)) {
		t.Errorf("delta: %d\n%s", code, delta)
	}

	// all players block on the next part, then fetch it
	hint, msn, part := nextPart(t, media)
	hintName := hint[:strings.IndexByte(hint, '?')]
	var wg sync.WaitGroup
	bodies := make([]string, players)
	lists := make([]string, players)
	for i, p := range ps {
		wg.Add(2)
		go func() {
			defer wg.Done()
			code, body := getFull(t, base+p.uri+"&_HLS_msn="+strconv.Itoa(msn)+"&_HLS_part="+strconv.Itoa(part))
			if code != 200 {
				t.Errorf("blocking reload: %d", code)
			}
			lists[i] = body
		}()
		go func() {
			defer wg.Done()
			code, body := getFull(t, base+hintName+"?"+SessionParam+"="+sid(p.uri))
			if code != 200 {
				t.Errorf("hinted part: %d", code)
			}
			bodies[i] = body
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if n := m.Viewers(); n != players {
		t.Errorf("%d viewers while blocked, want %d", n, players)
	}
	feed(t, m, tags[split:], 0)
	wg.Wait()
	for i := range ps {
		if !strings.Contains(lists[i], `URI="`+hintName+"?") {
			t.Errorf("player %d: the playlist does not list %s:\n%s", i, hintName, lists[i])
		}
		if bodies[i] == "" || bodies[i] != bodies[0] {
			t.Errorf("player %d: part of %d bytes, first player's %d", i, len(bodies[i]), len(bodies[0]))
		}
	}
	if n := m.Viewers(); n != players {
		t.Errorf("%d viewers after, want %d", n, players)
	}
}

// uris returns the URIs of a playlist (URI lines and URI attributes).
func uris(pl string) []string {
	var out []string
	for _, line := range strings.Split(pl, "\n") {
		switch {
		case line == "":
		case line[0] != '#':
			out = append(out, line)
		default:
			for _, m := range regexp.MustCompile(`URI="([^"]*)"`).FindAllStringSubmatch(line, -1) {
				out = append(out, m[1])
			}
		}
	}
	return out
}

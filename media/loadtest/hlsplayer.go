package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HLSPlayer plays one LL-HLS video playlist the way Apple's players do: a
// blocking playlist reload (until the playlist lists the part it has),
// then the part its preload hint names, which the server holds until it
// is complete; repeat.
type HLSPlayer struct {
	// Client makes the requests.
	Client *http.Client

	base     string // URL prefix of the playlist's files
	playlist string // media playlist URL

	mu      sync.Mutex
	parts   int
	bytes   uint64
	latency []time.Duration
}

// Open reads the multivariant playlist at index and picks its video
// playlist.
func (p *HLSPlayer) Open(ctx context.Context, index string) error {
	body, _, err := p.get(ctx, index)
	if err != nil {
		return err
	}
	p.base = index[:strings.LastIndex(index, "/")+1]
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "video") {
			p.playlist = p.base + strings.TrimSpace(line)
			return nil
		}
	}
	return errors.New("no video playlist in the multivariant playlist")
}

func (p *HLSPlayer) get(ctx context.Context, url string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), len(b), nil
}

// Run plays until ctx ends.
func (p *HLSPlayer) Run(ctx context.Context) {
	next := ""
	for ctx.Err() == nil {
		body, _, err := p.get(ctx, p.playlist+next)
		if err != nil {
			sleep(ctx, 200*time.Millisecond)
			next = ""
			continue
		}
		pl := parseLLPlaylist(body)
		if pl.hint == "" {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		asked := time.Now()
		_, n, err := p.get(ctx, p.base+pl.hint)
		if err != nil {
			next = ""
			continue
		}
		p.mu.Lock()
		p.parts++
		p.bytes += uint64(n)
		p.latency = append(p.latency, time.Since(asked))
		p.mu.Unlock()
		// The playlist listing the part just fetched: its hint is the next.
		next = fmt.Sprintf("&_HLS_msn=%d&_HLS_part=%d", pl.hintMSN, pl.hintPart)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// Reset zeroes the counts of parts, bytes and waits.
func (p *HLSPlayer) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.parts, p.bytes, p.latency = 0, 0, nil
}

// Results returns the parts and part bytes fetched since the last Reset,
// and how long each hinted part was waited for.
func (p *HLSPlayer) Results() (parts int, bytes uint64, waits []time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.parts, p.bytes, p.latency
}

// llPlaylist is what a player needs of an LL-HLS media playlist: the
// preload-hinted part and its position.
type llPlaylist struct {
	hint              string
	hintMSN, hintPart int
}

func parseLLPlaylist(body string) llPlaylist {
	var pl llPlaylist
	msn, partsInSeg := 0, 0
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			msn, _ = strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"))
		case strings.HasPrefix(line, "#EXT-X-PART:"):
			partsInSeg++
		case line != "" && !strings.HasPrefix(line, "#"):
			msn++ // a complete segment
			partsInSeg = 0
		case strings.HasPrefix(line, `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="`):
			pl.hint = strings.TrimSuffix(strings.TrimPrefix(line, `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="`), `"`)
			pl.hintMSN, pl.hintPart = msn, partsInSeg
		}
	}
	return pl
}

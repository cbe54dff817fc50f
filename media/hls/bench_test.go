package hls

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// discardWriter is a minimal ResponseWriter keeping the body of the last
// response (playlists are parsed, parts only counted).
type discardWriter struct {
	h    http.Header
	code int
	keep bool
	body bytes.Buffer
	n    int
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(c int)   { d.code = c }
func (d *discardWriter) Write(b []byte) (int, error) {
	if d.code == 0 {
		d.code = 200
	}
	if d.keep {
		d.body.Write(b)
	}
	d.n += len(b)
	return len(b), nil
}
func (d *discardWriter) reset(keep bool) {
	clear(d.h)
	d.code, d.keep, d.n = 0, keep, 0
	d.body.Reset()
}

// playlistState reads what a LL-HLS player needs from a media playlist:
// the next MSN and part index to block on, the preload hint, and the
// program date time of the newest part's end.
func playlistState(pl []byte) (msn, part int, hint string, partEnd time.Time) {
	var seq int
	var pdt time.Time
	var segs int
	var sinceSeg int
	var acc time.Duration
	for line := range bytes.Lines(pl) {
		line = bytes.TrimSpace(line)
		switch {
		case bytes.HasPrefix(line, []byte("#EXT-X-MEDIA-SEQUENCE:")):
			seq, _ = strconv.Atoi(string(line[22:]))
		case bytes.HasPrefix(line, []byte("#EXT-X-PROGRAM-DATE-TIME:")):
			pdt, _ = time.Parse(time.RFC3339Nano, string(line[25:]))
			acc = 0
		case bytes.HasPrefix(line, []byte("#EXTINF:")):
			segs++
			sinceSeg = 0
		case bytes.HasPrefix(line, []byte("#EXT-X-PART:")):
			sinceSeg++
			if i := bytes.Index(line, []byte("DURATION=")); i >= 0 {
				v := line[i+9:]
				if j := bytes.IndexByte(v, ','); j >= 0 {
					v = v[:j]
				}
				f, _ := strconv.ParseFloat(string(v), 64)
				acc += time.Duration(f * float64(time.Second))
			}
		case bytes.HasPrefix(line, []byte("#EXT-X-PRELOAD-HINT:")):
			if i := bytes.Index(line, []byte(`URI="`)); i >= 0 {
				v := line[i+5:]
				hint = string(v[:bytes.IndexByte(v, '"')])
			}
		}
	}
	if !pdt.IsZero() {
		partEnd = pdt.Add(acc)
	}
	return seq + segs, sinceSeg, hint, partEnd
}

// benchHLS runs viewers LL-HLS pollers (blocking playlist reload, then the
// preload-hinted part, as hls.js and AVPlayer do) against a muxer fed in
// real time with the test clip, for b.N parts (~200 ms each).
func benchHLS(b *testing.B, viewers int) {
	tags := clipTags(b)
	m, err := NewMuxer(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()

	// two seconds ahead so the playlist has content, then real time
	frames := loopFrames(tags, 200000)
	i := 0
	for ; frames[i].Timestamp < 2000; i++ {
		if err := m.WritePacket(frames[i].Type, frames[i].Timestamp, frames[i].Body); err != nil {
			b.Fatal(err)
		}
	}
	ntpBase := m.in.ntpBase
	wallBase := time.Now().Add(-2000 * time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	var parts atomic.Int64
	var latMu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup

	// first playlist, as a player gets it
	w0 := &discardWriter{h: http.Header{}}
	w0.reset(true)
	m.Handle(w0, &http.Request{Method: "GET", URL: &url.URL{Path: "/live/b/index.m3u8"}, RemoteAddr: "127.0.0.1:1", Header: http.Header{}}, "index.m3u8")
	mediaURI := string(mediaURI.Find(w0.body.Bytes()))
	mu, _ := url.Parse(mediaURI)

	for v := range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &discardWriter{h: http.Header{}}
			sid := strconv.Itoa(v + 1)
			sid = "00000000"[:8-len(sid)] + sid
			q := url.Values{SessionParam: {sid}}
			hdr := http.Header{"User-Agent": {"bench"}}
			req := func(path, rawQuery string) *http.Request {
				return (&http.Request{Method: "GET", URL: &url.URL{Path: "/live/b/" + path, RawQuery: rawQuery},
					RemoteAddr: "127.0.0.1:2", Header: hdr}).WithContext(ctx)
			}
			w.reset(true)
			m.Handle(w, req(mu.Path, q.Encode()), mu.Path)
			msn, part, hint, _ := playlistState(w.body.Bytes())
			for ctx.Err() == nil {
				q.Set("_HLS_msn", strconv.Itoa(msn))
				q.Set("_HLS_part", strconv.Itoa(part))
				w.reset(true)
				m.Handle(w, req(mu.Path, q.Encode()), mu.Path)
				got := time.Now()
				if w.code != 200 {
					if ctx.Err() == nil {
						b.Errorf("playlist: %d", w.code)
					}
					return
				}
				var end time.Time
				msn, part, hint, end = playlistState(w.body.Bytes())
				if v < 20 && !end.IsZero() {
					// the newest part ends at media time end; its last frame
					// was written at wallBase + (end - ntpBase)
					l := got.Sub(wallBase.Add(end.Sub(ntpBase)))
					latMu.Lock()
					lat = append(lat, l)
					latMu.Unlock()
				}
				hu, _ := url.Parse(hint)
				w.reset(false)
				m.Handle(w, req(hu.Path, hu.RawQuery), hu.Path)
				if w.code != 200 && ctx.Err() == nil {
					b.Errorf("part: %d", w.code)
					return
				}
				parts.Add(1)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // pollers connected

	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	parts.Store(0)
	latMu.Lock()
	lat = lat[:0]
	latMu.Unlock()
	b.ResetTimer()
	start := time.Now()
	t0 := frames[i].Timestamp
	wall0 := wallBase.Add(time.Duration(t0) * time.Millisecond)
	end := time.Duration(b.N) * 200 * time.Millisecond
	for ; i < len(frames); i++ {
		f := frames[i]
		at := wall0.Add(time.Duration(f.Timestamp-t0) * time.Millisecond)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if err := m.WritePacket(f.Type, f.Timestamp, f.Body); err != nil {
			b.Fatal(err)
		}
		if time.Since(start) >= end {
			break
		}
	}
	elapsed := time.Since(start)
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	b.StopTimer()
	cancel()
	m.Close()
	wg.Wait()

	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	served := parts.Load()
	b.ReportMetric(float64(served)/elapsed.Seconds()/float64(viewers), "parts/s/viewer")
	if served > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(served), "cpu-ns/part-served")
	}
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "cpu%")
	b.ReportMetric(1e3*cpu.Seconds()/elapsed.Seconds()/float64(viewers), "cpu-ms/viewer-s")
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "lat-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "lat-p99-ms")
	}
}

// BenchmarkLLHLS measures N LL-HLS players served by one muxer fed in real
// time: CPU per part served (blocking playlist + part, both parsed by the
// pollers in this process too), CPU per viewer, and part latency (time from
// the last frame of a part being written to a blocked player receiving the
// playlist that announces it; a part's first frame waits one part duration
// more, ~200 ms). One op is one ~200 ms part: use -benchtime 25x (5 s).
func BenchmarkLLHLS(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 5000} {
		b.Run("viewers="+strconv.Itoa(n), func(b *testing.B) { benchHLS(b, n) })
	}
}

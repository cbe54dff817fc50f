package hls

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

// loopFrames returns the clip looped (sequence headers once) up to n tags.
func loopFrames(tags []flv.Tag, n int) []flv.Tag {
	var frames []flv.Tag
	for loop := uint32(0); len(frames) < n; loop++ {
		for _, t := range tags {
			if loop > 0 && (t.Type == flv.TagVideo || t.Type == flv.TagAudio) && t.Body[1] == 0 || t.Type == flv.TagScript {
				continue
			}
			t.Timestamp += loop * 6000
			frames = append(frames, t)
		}
	}
	return frames
}

// reqBench is a muxer fed a few seconds of the clip, and its media
// playlist as a player got it.
type reqBench struct {
	m      *Muxer
	frames []flv.Tag
	i      int
	media  string // media playlist name
	query  string // a player's query: session ID and sign
}

func newReqBench(b *testing.B) *reqBench {
	tags := clipTags(b)
	m := newMuxer(b, Config{})
	rb := &reqBench{m: m, frames: loopFrames(tags, 400000)}
	rb.feedUntil(3000)
	time.Sleep(50 * time.Millisecond) // the muxer settles
	w := &discardWriter{h: http.Header{}}
	w.reset(true)
	m.Handle(w, rb.req("index.m3u8", "sign=0123456789abcdef0123456789abcdef"), "index.m3u8")
	u, err := url.Parse(string(mediaURI.Find(w.body.Bytes())))
	if err != nil || u.Path == "" {
		b.Fatalf("no media playlist: %q", w.body.String())
	}
	rb.media, rb.query = u.Path, u.RawQuery
	return rb
}

func (rb *reqBench) feedUntil(ms uint32) {
	for ; rb.i < len(rb.frames) && rb.frames[rb.i].Timestamp < ms; rb.i++ {
		rb.feedOne()
	}
}

func (rb *reqBench) feedOne() {
	f := rb.frames[rb.i%len(rb.frames)]
	_ = rb.m.WritePacket(f.Type, f.Timestamp, f.Body)
}

func (rb *reqBench) req(file, rawQuery string) *http.Request {
	return &http.Request{Method: "GET", URL: &url.URL{Path: "/live/b/" + file, RawQuery: rawQuery},
		RemoteAddr: "127.0.0.1:2", Header: http.Header{"User-Agent": {"bench"}}}
}

func (rb *reqBench) playlist(b *testing.B) []byte {
	w := &discardWriter{h: http.Header{}}
	w.reset(true)
	rb.m.Handle(w, rb.req(rb.media, rb.query), rb.media)
	if w.code != 200 {
		b.Fatalf("playlist: %d", w.code)
	}
	return w.body.Bytes()
}

var partURI = regexp.MustCompile(`#EXT-X-PART:[^\n]*URI="([^"?]+)`)

// BenchmarkPartGET is one player's GET of a complete part (a listed one).
func BenchmarkPartGET(b *testing.B) {
	rb := newReqBench(b)
	all := partURI.FindAllSubmatch(rb.playlist(b), -1)
	if len(all) == 0 {
		b.Fatal("no part listed")
	}
	part := string(all[len(all)-1][1])
	w := &discardWriter{h: http.Header{}}
	r := rb.req(part, rb.query)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w.reset(false)
		rb.m.Handle(w, r, part)
		if w.code != 200 || w.n == 0 {
			b.Fatalf("part: %d, %d bytes", w.code, w.n)
		}
	}
	b.SetBytes(int64(w.n))
}

// BenchmarkPlaylistGET is one player's non-blocking media playlist GET.
func BenchmarkPlaylistGET(b *testing.B) {
	rb := newReqBench(b)
	w := &discardWriter{h: http.Header{}}
	r := rb.req(rb.media, rb.query)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w.reset(false)
		rb.m.Handle(w, r, rb.media)
		if w.code != 200 {
			b.Fatalf("playlist: %d", w.code)
		}
	}
	b.SetBytes(int64(w.n))
}

// BenchmarkBlockingReload is N players blocked on the next part (blocking
// playlist reload with _HLS_msn/_HLS_part) and the same N on its preload
// hint: one op is the part landing (frames fed until it completes) and
// all 2N requests answered. allocs/request and cpu-ns/request are the
// process's allocations and CPU time (getrusage) during the op over 2N;
// they include the feeding (gohlslib's muxing of ~6 frames).
func BenchmarkBlockingReload(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run("waiters="+strconv.Itoa(n), func(b *testing.B) { benchBlocking(b, n) })
	}
}

func benchBlocking(b *testing.B, n int) {
	rb := newReqBench(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var allocs uint64
	var ms0, ms1 runtime.MemStats
	var ru0, ru1 syscall.Rusage
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		msn, part, hint, _ := playlistState(rb.playlist(b))
		hu, _ := url.Parse(hint)
		q := rb.query + "&_HLS_msn=" + strconv.Itoa(msn) + "&_HLS_part=" + strconv.Itoa(part)
		var started, answered sync.WaitGroup
		var bad atomic.Int64
		var done atomic.Int64
		for v := range 2 * n {
			started.Add(1)
			answered.Add(1)
			file, rq := rb.media, q
			if v%2 == 1 {
				file, rq = hu.Path, hu.RawQuery
			}
			r := rb.req(file, rq).WithContext(ctx)
			w := &discardWriter{h: http.Header{}}
			w.reset(true)
			go func() {
				defer answered.Done()
				started.Done()
				rb.m.Handle(w, r, file)
				if w.code != 200 {
					if bad.Add(1) == 1 {
						b.Logf("%s?%s: %d %s", file, rq, w.code, w.body.String())
					}
				}
				done.Add(1)
			}()
		}
		started.Wait()
		for range 20 {
			runtime.Gosched()
		}
		runtime.ReadMemStats(&ms0)
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		b.StartTimer()
		// frames at 30 times real time (a frame a ms), so that the
		// waiters keep up as players would
		for done.Load() < int64(2*n) {
			rb.feedOne() // feedUntil left rb.i on the first frame not fed
			rb.i++
			if done.Load() < int64(2*n) {
				time.Sleep(time.Millisecond)
			}
		}
		answered.Wait()
		b.StopTimer()
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		runtime.ReadMemStats(&ms1)
		allocs += ms1.Mallocs - ms0.Mallocs
		cpu += time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		if bad.Load() > 0 {
			b.Fatalf("%d requests not answered 200", bad.Load())
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(allocs)/float64(b.N)/float64(2*n), "allocs/request")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(2*n), "cpu-ns/request")
}

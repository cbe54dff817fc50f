// Package loadtest is a fan-out load generator for the media engine: it
// publishes a clip at real time with ffmpeg, opens viewers over RTMP and
// HTTP-FLV in steps, and reports per step the viewers connected, time to
// first frame, viewers that fell behind or were dropped, and the server's
// CPU and memory (read from /proc for a server PID).
//
// Run the server pinned to one core and the load on another, e.g.
//
//	taskset -c 0 server & taskset -c 1 fanout -pid $!
package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a run.
type Options struct {
	// RTMPAddr is the server's RTMP host:port.
	RTMPAddr string
	// HTTPBase is the base URL of the server's HTTP-FLV handler, e.g.
	// "http://127.0.0.1:8080" (viewers GET HTTPBase+"/live/<stream>.flv").
	HTTPBase string
	// Stream is the stream name (default "bench").
	Stream string
	// Query is appended to every URL (e.g. "sign=..."), without "?".
	Query string
	// Clip is the file ffmpeg publishes in a loop at real time.
	Clip string
	// FFmpeg is the ffmpeg binary (default "ffmpeg").
	FFmpeg string
	// GoPublisher publishes the clip with this package's Publisher
	// instead of an ffmpeg process (ffmpeg still remuxes it once).
	GoPublisher bool
	// Steps are the total viewer counts to reach, in order (default 100, 500, 1000).
	Steps []int
	// FLVShare is the fraction of viewers that use HTTP-FLV, the rest use
	// RTMP (0: RTMP only, 1: HTTP-FLV only, 0.5: half and half).
	FLVShare float64
	// StepDuration is how long each step is measured once its viewers are
	// connected (default 10 s).
	StepDuration time.Duration
	// ConnectConcurrency bounds parallel connection attempts (default 100).
	ConnectConcurrency int
	// ServerPID, if set, is the server process whose CPU and RSS are reported.
	ServerPID int
	// StatsURL, if set, returns JSON with ReadersFellBehind and
	// ReadersDropped counters (media.Counters); used for the fell-behind column.
	StatsURL string
	// Out receives the human-readable report (default os.Stdout).
	Out io.Writer
	// MaxDuration bounds the whole run (default 10 min).
	MaxDuration time.Duration
}

func (o *Options) setDefaults() {
	if o.Stream == "" {
		o.Stream = "bench"
	}
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if len(o.Steps) == 0 {
		o.Steps = []int{100, 500, 1000}
	}
	if o.FLVShare < 0 {
		o.FLVShare = 0
	}
	if o.FLVShare > 1 {
		o.FLVShare = 1
	}
	if o.StepDuration <= 0 {
		o.StepDuration = 10 * time.Second
	}
	if o.ConnectConcurrency <= 0 {
		o.ConnectConcurrency = 100
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 10 * time.Minute
	}
}

// StepResult holds the figures of one step.
type StepResult struct {
	Viewers           int           // viewers asked for
	Connected         int           // viewers receiving media at the end of the step
	RTMP, FLV         int           // connected viewers per protocol
	Failed            int           // connection attempts that failed in this step
	TTFFP50           time.Duration // time to first video frame of this step's new viewers
	TTFFP99           time.Duration
	FellBehind        uint64  // server: skips to a newer key frame during the step
	Dropped           uint64  // server drops + viewers disconnected during the step
	CPUPercent        float64 // server CPU, % of one core
	RSSBytes          uint64  // server resident memory at the end of the step
	CPUMsPerViewerSec float64
	BytesPerViewerSec float64 // media bytes received per viewer per second
	KiBPerViewer      float64 // server memory grown since the start, per connected viewer
}

// Run runs the steps and returns their results.
func Run(ctx context.Context, o Options) ([]StepResult, error) {
	o.setDefaults()
	ctx, cancel := context.WithTimeout(ctx, o.MaxDuration)
	defer cancel()
	if o.Clip == "" {
		return nil, errors.New("loadtest: no clip")
	}
	q := ""
	if o.Query != "" {
		q = "?" + o.Query
	}

	stopPub, err := o.publish(ctx, "rtmp://"+o.RTMPAddr+"/live/"+o.Stream+q)
	if err != nil {
		return nil, err
	}
	defer stopPub()
	// let the publisher connect and fill a GOP.
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	vctx, vcancel := context.WithCancel(ctx)
	defer vcancel()
	var viewers []*viewer
	var wg sync.WaitGroup
	defer func() {
		vcancel()
		for _, v := range viewers {
			v.close()
		}
		wg.Wait()
	}()

	fmt.Fprintf(o.Out, "%8s %9s %6s %6s %6s %9s %9s %6s %7s %7s %9s %12s %10s %10s\n",
		"viewers", "connected", "rtmp", "flv", "failed", "ttff_p50", "ttff_p99", "behind", "dropped",
		"cpu%", "rss_MiB", "cpu_ms/v·s", "KiB/viewer", "kbit/s/v")
	var results []StepResult
	baseRSS := uint64(0)
	if o.ServerPID > 0 {
		baseRSS, _ = procRSS(o.ServerPID)
	}
	nFLV := 0
	for _, target := range o.Steps {
		if target < len(viewers) {
			continue
		}
		res := StepResult{Viewers: target}
		// connect the new viewers
		var mu sync.Mutex
		var ttffs []time.Duration
		sem := make(chan struct{}, o.ConnectConcurrency)
		var cwg sync.WaitGroup
		var failed atomic.Int64
		for i := len(viewers); i < target; i++ {
			useFLV := float64(nFLV) < o.FLVShare*float64(i+1)
			if useFLV {
				nFLV++
			}
			v := &viewer{flv: useFLV}
			viewers = append(viewers, v)
			sem <- struct{}{}
			cwg.Add(1)
			go func() {
				defer cwg.Done()
				defer func() { <-sem }()
				var err error
				if v.flv {
					err = v.dialFLV(vctx, o.HTTPBase+"/live/"+o.Stream+".flv"+q)
				} else {
					err = v.dialRTMP(vctx, "rtmp://"+o.RTMPAddr+"/live/"+o.Stream+q)
				}
				if err != nil {
					failed.Add(1)
					return
				}
				mu.Lock()
				ttffs = append(ttffs, v.ttff)
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					v.drain()
				}()
			}()
		}
		cwg.Wait()
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
		res.Failed = int(failed.Load())
		sort.Slice(ttffs, func(i, j int) bool { return ttffs[i] < ttffs[j] })
		res.TTFFP50, res.TTFFP99 = percentile(ttffs, 0.50), percentile(ttffs, 0.99)

		// measure
		fb0, dr0 := o.counters()
		cpu0, _ := procCPU(o.ServerPID)
		bytes0 := totalBytes(viewers)
		lost0 := lostCount(viewers)
		t0 := time.Now()
		select {
		case <-time.After(o.StepDuration):
		case <-ctx.Done():
			return results, ctx.Err()
		}
		elapsed := time.Since(t0)
		cpu1, _ := procCPU(o.ServerPID)
		fb1, dr1 := o.counters()
		bytes1 := totalBytes(viewers)
		res.FellBehind = fb1 - fb0
		res.Dropped = dr1 - dr0
		if o.StatsURL == "" {
			res.Dropped = uint64(lostCount(viewers) - lost0)
		}
		for _, v := range viewers {
			if v.alive() {
				res.Connected++
				if v.flv {
					res.FLV++
				} else {
					res.RTMP++
				}
			}
		}
		if o.ServerPID > 0 {
			cpuMs := float64(cpu1-cpu0) / float64(time.Millisecond)
			res.CPUPercent = cpuMs / float64(elapsed.Milliseconds()) * 100
			res.RSSBytes, _ = procRSS(o.ServerPID)
			if res.Connected > 0 {
				res.CPUMsPerViewerSec = cpuMs / (float64(res.Connected) * elapsed.Seconds())
			}
		}
		if res.Connected > 0 {
			res.BytesPerViewerSec = float64(bytes1-bytes0) / float64(res.Connected) / elapsed.Seconds()
		}
		if res.Connected > 0 && res.RSSBytes > baseRSS {
			res.KiBPerViewer = float64(res.RSSBytes-baseRSS) / float64(res.Connected) / 1024
		}
		fmt.Fprintf(o.Out, "%8d %9d %6d %6d %6d %9s %9s %6d %7d %7.1f %9.1f %12.3f %10.1f %10.0f\n",
			res.Viewers, res.Connected, res.RTMP, res.FLV, res.Failed,
			res.TTFFP50.Round(100*time.Microsecond), res.TTFFP99.Round(100*time.Microsecond),
			res.FellBehind, res.Dropped, res.CPUPercent, float64(res.RSSBytes)/(1<<20),
			res.CPUMsPerViewerSec, res.KiBPerViewer, res.BytesPerViewerSec*8/1000)
		results = append(results, res)
	}
	return results, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func totalBytes(vs []*viewer) uint64 {
	var n uint64
	for _, v := range vs {
		n += v.bytes.Load()
	}
	return n
}

func lostCount(vs []*viewer) int {
	n := 0
	for _, v := range vs {
		if v.lost.Load() {
			n++
		}
	}
	return n
}

// counters reads the server's fell-behind and dropped counters.
func (o *Options) counters() (uint64, uint64) {
	if o.StatsURL == "" {
		return 0, 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.StatsURL, nil)
	if err != nil {
		return 0, 0
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer res.Body.Close()
	var c struct {
		ReadersFellBehind uint64
		ReadersDropped    uint64
	}
	if json.NewDecoder(res.Body).Decode(&c) != nil {
		return 0, 0
	}
	return c.ReadersFellBehind, c.ReadersDropped
}

// publish starts the clip's publisher at real time in a loop, and returns
// the function that stops it.
func (o *Options) publish(ctx context.Context, url string) (func(), error) {
	if o.GoPublisher {
		clip, err := LoadClip(ctx, o.FFmpeg, o.Clip)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			p := &Publisher{URL: url, Clip: clip}
			if err := p.Run(ctx); err != nil {
				fmt.Fprintf(o.Out, "publisher: %v\n", err)
			}
		}()
		return func() { cancel(); <-done }, nil
	}
	pub := exec.CommandContext(ctx, o.FFmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-re", "-stream_loop", "-1", "-i", o.Clip, "-c", "copy", "-f", "flv", url)
	var pubErr strings.Builder
	pub.Stderr = &pubErr
	if err := pub.Start(); err != nil {
		return nil, fmt.Errorf("start ffmpeg: %w", err)
	}
	return func() {
		pub.Process.Kill() //nolint:errcheck
		pub.Wait()         //nolint:errcheck
	}, nil
}

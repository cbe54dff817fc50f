package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Room is one live room of a many-rooms run: where its publisher sends
// and where its viewers play.
type Room struct {
	// PublishURL is the RTMP URL the room's Publisher sends to.
	PublishURL string
	// RTMPURL, FLVURL and HLSURL are its playback URLs (HLSURL is the
	// multivariant playlist).
	RTMPURL, FLVURL, HLSURL string
}

// RoomsOptions configures RunRooms.
type RoomsOptions struct {
	// Rooms are the rooms available; step n uses the first n.
	Rooms []Room
	// Clip is what every room's publisher sends.
	Clip *Clip
	// Steps are the room counts to reach, in order (default 50, 100, 200).
	Steps []int
	// RTMP, FLV and HLS are how many viewers of each protocol every room
	// gets (default 4, 4, 2).
	RTMP, FLV, HLS int
	// StepDuration is how long each step is measured (default 10 s).
	StepDuration time.Duration
	// ServerPID is the server process whose CPU and memory are read.
	ServerPID int
	// Out receives the report (default os.Stdout).
	Out io.Writer
	// MaxDuration bounds the whole run (default 15 min).
	MaxDuration time.Duration
}

// RoomsStep holds the figures of one step of RunRooms.
type RoomsStep struct {
	Rooms      int     // rooms live
	Publishing int     // publishers still sending at the end of the step
	Viewers    int     // viewers asked for
	Failed     int     // viewers that could not start
	Served     int     // viewers that got ≥ 90% of the clip's bitrate in the step
	CPUPercent float64 // server CPU, % of one core
	RSSBytes   uint64  // server resident memory at the end of the step
	KiBPerRoom float64 // server memory grown since the start, per room
	// IdlePercentPerRoom is, for the first step only, the server's CPU per
	// live room before any viewer joins (HLS muxing and recording on, if
	// the server has them on), % of one core.
	IdlePercentPerRoom float64
}

// roomViewer is one viewer of a many-rooms run.
type roomViewer struct {
	v    *viewer    // RTMP or HTTP-FLV
	hls  *HLSPlayer // or LL-HLS
	last uint64     // bytes at the start of the step
}

func (rv *roomViewer) bytes() uint64 {
	if rv.hls != nil {
		_, b, _ := rv.hls.Results()
		return b
	}
	return rv.v.bytes.Load()
}

// RunRooms publishes the clip to more and more rooms at once, each with a
// few viewers over RTMP, HTTP-FLV and LL-HLS, and reports per step the
// viewers served and the server's CPU and memory per room.
func RunRooms(ctx context.Context, o RoomsOptions) ([]RoomsStep, error) {
	if o.Clip == nil {
		return nil, errors.New("loadtest: no clip")
	}
	if len(o.Steps) == 0 {
		o.Steps = []int{50, 100, 200}
	}
	if o.RTMP == 0 && o.FLV == 0 && o.HLS == 0 {
		o.RTMP, o.FLV, o.HLS = 4, 4, 2
	}
	if o.StepDuration <= 0 {
		o.StepDuration = 10 * time.Second
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 15 * time.Minute
	}
	for _, n := range o.Steps {
		if n > len(o.Rooms) {
			return nil, fmt.Errorf("loadtest: step of %d rooms, only %d rooms given", n, len(o.Rooms))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.MaxDuration)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var viewers []*roomViewer
	defer func() {
		stop()
		for _, rv := range viewers {
			if rv.v != nil {
				rv.v.close()
			}
		}
		wg.Wait()
	}()

	// what a viewer must get in a step to count as served.
	var clipBytes, videoBytes uint64
	for _, f := range o.Clip.Frames {
		clipBytes += uint64(len(f.Payload))
		if f.Video {
			videoBytes += uint64(len(f.Payload))
		}
	}
	rate := float64(clipBytes) / o.Clip.Duration.Seconds()
	videoRate := float64(videoBytes) / o.Clip.Duration.Seconds()

	hlsClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1 << 16, DisableCompression: true}}
	var publishing atomic.Int64
	var pubErrs atomic.Int64
	published := 0
	fmt.Fprintf(o.Out, "%6s %6s %8s %7s %7s %8s %7s %9s %11s %11s %12s\n",
		"rooms", "pubs", "viewers", "failed", "served", "served%", "cpu%", "rss_MiB", "cpu%/room", "KiB/room", "idle%/room")
	var results []RoomsStep
	baseRSS, _ := procRSS(o.ServerPID)
	for si, n := range o.Steps {
		res := RoomsStep{Rooms: n}
		for ; published < n; published++ {
			p := &Publisher{URL: o.Rooms[published].PublishURL, Clip: o.Clip}
			wg.Add(1)
			publishing.Add(1)
			go func() {
				defer wg.Done()
				defer publishing.Add(-1)
				if err := p.Run(runCtx); err != nil && pubErrs.Add(1) <= 3 {
					fmt.Fprintf(o.Out, "publisher: %v\n", err)
				}
			}()
		}
		// a few segments, so that HLS players find a playlist.
		if err := wait(ctx, 3*time.Second); err != nil {
			return results, err
		}
		if si == 0 {
			cpu0, _ := procCPU(o.ServerPID)
			t0 := time.Now()
			if err := wait(ctx, o.StepDuration); err != nil {
				return results, err
			}
			cpu1, _ := procCPU(o.ServerPID)
			res.IdlePercentPerRoom = (cpu1 - cpu0).Seconds() / time.Since(t0).Seconds() * 100 / float64(n)
		}
		// this step's viewers: those of the rooms that have none yet.
		first := len(viewers) / max(1, o.RTMP+o.FLV+o.HLS)
		var failed atomic.Int64
		sem := make(chan struct{}, 50)
		var cwg sync.WaitGroup
		for r := first; r < n; r++ {
			room := o.Rooms[r]
			for k := 0; k < o.RTMP+o.FLV+o.HLS; k++ {
				rv := &roomViewer{}
				switch {
				case k < o.RTMP:
					rv.v = &viewer{}
				case k < o.RTMP+o.FLV:
					rv.v = &viewer{flv: true}
				default:
					rv.hls = &HLSPlayer{Client: hlsClient}
				}
				viewers = append(viewers, rv)
				sem <- struct{}{}
				cwg.Add(1)
				go func() {
					defer cwg.Done()
					defer func() { <-sem }()
					var err error
					switch {
					case rv.hls != nil:
						err = rv.hls.Open(runCtx, room.HLSURL)
					case rv.v.flv:
						err = rv.v.dialFLV(runCtx, room.FLVURL)
					default:
						err = rv.v.dialRTMP(runCtx, room.RTMPURL)
					}
					if err != nil {
						failed.Add(1)
						return
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						if rv.hls != nil {
							rv.hls.Run(runCtx)
						} else {
							rv.v.drain()
						}
					}()
				}()
			}
		}
		cwg.Wait()
		res.Viewers = len(viewers)
		res.Failed = int(failed.Load())
		if err := wait(ctx, 2*time.Second); err != nil { // settle
			return results, err
		}
		for _, rv := range viewers {
			rv.last = rv.bytes()
		}
		cpu0, _ := procCPU(o.ServerPID)
		t0 := time.Now()
		if err := wait(ctx, o.StepDuration); err != nil {
			return results, err
		}
		el := time.Since(t0)
		cpu1, _ := procCPU(o.ServerPID)
		res.RSSBytes, _ = procRSS(o.ServerPID)
		res.Publishing = int(publishing.Load())
		for _, rv := range viewers {
			want := rate
			if rv.hls != nil {
				want = videoRate
			}
			if float64(rv.bytes()-rv.last) >= 0.9*want*el.Seconds() {
				res.Served++
			}
		}
		res.CPUPercent = (cpu1 - cpu0).Seconds() / el.Seconds() * 100
		if res.RSSBytes > baseRSS {
			res.KiBPerRoom = float64(res.RSSBytes-baseRSS) / float64(n) / 1024
		}
		idle := "-"
		if si == 0 {
			idle = fmt.Sprintf("%.3f", res.IdlePercentPerRoom)
		}
		fmt.Fprintf(o.Out, "%6d %6d %8d %7d %7d %8.1f %7.1f %9.1f %11.3f %11.0f %12s\n",
			n, res.Publishing, res.Viewers, res.Failed, res.Served, float64(res.Served)/float64(max(1, res.Viewers))*100,
			res.CPUPercent, float64(res.RSSBytes)/(1<<20), res.CPUPercent/float64(n), res.KiBPerRoom, idle)
		results = append(results, res)
	}
	return results, nil
}

func wait(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

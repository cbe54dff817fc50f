package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media/loadtest"
)

// benchHLS measures the Low-Latency HLS output: the service (CPU 0) gets
// the test clip from ffmpeg, and N players on this process poll as LL-HLS
// players do: a playlist reload (blocking until it lists the part they
// have) and then the part the preload hint names, which the server holds
// until it is complete. It reports the parts each player gets a second
// (5 for 200 ms parts when nobody falls behind) and how long a hinted
// part was waited for: under load, a server that is late shows there.
func benchHLS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench hls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	steps := fs.String("players", "100,1000,2500", "player counts to reach, in order")
	step := fs.Duration("step", 10*time.Second, "measuring time of each step")
	clipPath := fs.String("clip", "testdata/clip.mp4", "clip to publish")
	if err := fs.Parse(args); err != nil {
		return err
	}
	counts, err := parseSteps(*steps)
	if err != nil {
		return fmt.Errorf("bench hls: %w", err)
	}
	srv, err := startBenchServer(ctx, stderr, 0)
	if err != nil {
		return err
	}
	defer srv.close()
	room, err := srv.createRoom()
	if err != nil {
		return err
	}
	stopPublish, err := publish(ctx, *clipPath, room.Publish.URL)
	if err != nil {
		return err
	}
	defer stopPublish()
	index := "http://" + srv.http + "/live/" + room.StreamName + "/index.m3u8?sign=" + room.Publish.Sign
	time.Sleep(3 * time.Second) // a few segments

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1 << 16, DisableCompression: true}}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var players []*loadtest.HLSPlayer
	var wg sync.WaitGroup
	fmt.Fprintf(stdout, "mofang bench hls: service on CPU 0, LL-HLS players on this process\n")
	fmt.Fprintf(stdout, "%8s %8s %10s %12s %12s %8s %9s %14s\n", "players", "failed", "parts/s/p", "hint_wait50", "hint_wait99", "cpu%", "rss_MiB", "cpu_ms/p·s")
	for _, n := range counts {
		failed := 0
		for len(players) < n {
			p := &loadtest.HLSPlayer{Client: client}
			if err := p.Open(runCtx, index); err != nil {
				failed++
				if failed > n/10+5 {
					return fmt.Errorf("players fail to start: %w", err)
				}
				continue
			}
			players = append(players, p)
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.Run(runCtx)
			}()
		}
		time.Sleep(2 * time.Second) // settle
		for _, p := range players {
			p.Reset()
		}
		cpu0, _ := procCPU(srv.pid())
		t0 := time.Now()
		time.Sleep(*step)
		el := time.Since(t0)
		cpu1, _ := procCPU(srv.pid())
		rss, _ := procRSS(srv.pid())
		var parts int
		var lat []time.Duration
		for _, p := range players {
			n, _, l := p.Results()
			parts += n
			lat = append(lat, l...)
		}
		slices.Sort(lat)
		pct := func(q float64) time.Duration {
			if len(lat) == 0 {
				return 0
			}
			return lat[min(len(lat)-1, int(float64(len(lat))*q))].Round(time.Millisecond)
		}
		cpu := (cpu1 - cpu0).Seconds() / el.Seconds()
		fmt.Fprintf(stdout, "%8d %8d %10.2f %12v %12v %8.1f %9.1f %14.3f\n", len(players), failed,
			float64(parts)/el.Seconds()/float64(len(players)), pct(0.5), pct(0.99), cpu*100, float64(rss)/(1<<20),
			cpu*1000/float64(len(players)))
	}
	cancel()
	wg.Wait()
	return nil
}

// Command fanout is the fan-out load generator (package loadtest): it
// publishes a clip at real time and opens RTMP and HTTP-FLV viewers in steps.
//
//	taskset -c 0 go run ./media/examples/server &
//	taskset -c 1 go run ./media/examples/fanout -pid $(pgrep -n server) -steps 100,500,1000
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/mofang-live/mofang/media/loadtest"
)

func main() {
	var o loadtest.Options
	flag.StringVar(&o.RTMPAddr, "rtmp", "127.0.0.1:1935", "server RTMP address")
	flag.StringVar(&o.HTTPBase, "http", "http://127.0.0.1:8080", "server HTTP base URL")
	flag.StringVar(&o.StatsURL, "stats", "http://127.0.0.1:8080/stats", "server counters URL (empty: none)")
	flag.StringVar(&o.Stream, "stream", "bench", "stream name")
	flag.StringVar(&o.Query, "query", "", "query added to URLs (e.g. sign=...)")
	flag.StringVar(&o.Clip, "clip", "testdata/clip.mp4", "clip to publish")
	flag.IntVar(&o.ServerPID, "pid", 0, "server PID for CPU and RSS")
	flag.Float64Var(&o.FLVShare, "flv", 0.5, "share of HTTP-FLV viewers (0..1)")
	flag.DurationVar(&o.StepDuration, "step", 10*time.Second, "measure time per step")
	flag.BoolVar(&o.GoPublisher, "go-publisher", false, "publish with the load tool's Go RTMP publisher instead of ffmpeg")
	steps := flag.String("steps", "100,500,1000", "viewer counts")
	flag.Parse()
	for _, s := range strings.Split(*steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			log.Fatalf("bad step %q", s)
		}
		o.Steps = append(o.Steps, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := loadtest.Run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

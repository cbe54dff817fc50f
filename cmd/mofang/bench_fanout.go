package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/mofang-live/mofang/media/loadtest"
)

// benchFanout measures the media fan-out: the service (pinned to CPU 0)
// gets a 720p30 2.5 Mbit/s stream from ffmpeg and N viewers over RTMP
// and HTTP-FLV from this process (run it on CPU 1: make bench does).
func benchFanout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	steps := fs.String("steps", "500,1000,2500,5000", "viewer counts to reach, in order")
	flvShare := fs.Float64("flv", 0.5, "share of viewers on HTTP-FLV (the rest on RTMP)")
	step := fs.Duration("step", 10*time.Second, "measuring time of each step")
	goPub := fs.Bool("go-publisher", false, "publish with the load tool's Go RTMP publisher instead of ffmpeg")
	clipPath := fs.String("clip", "", "clip to publish (default: a 720p30 2.5 Mbit/s clip made from testdata/clip.mp4)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	counts, err := parseSteps(*steps)
	if err != nil {
		return fmt.Errorf("bench fanout: %w", err)
	}
	dir, err := os.MkdirTemp("", "mofang-bench-fanout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *clipPath == "" {
		*clipPath = filepath.Join(dir, "clip720.mp4")
		mk := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", "testdata/clip.mp4",
			"-vf", "scale=1280:720", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "2400k", "-maxrate", "2500k", "-bufsize", "5000k",
			"-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k", *clipPath)
		if out, err := mk.CombinedOutput(); err != nil {
			return fmt.Errorf("making the 720p clip (run from the repository root): %v: %s", err, out)
		}
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
	fmt.Fprintf(stdout, "mofang bench fanout: service on CPU 0, viewers on this process, %.0f%% of them on HTTP-FLV\n", *flvShare*100)
	_, err = loadtest.Run(ctx, loadtest.Options{
		RTMPAddr:     srv.rtmp,
		HTTPBase:     "http://" + srv.http,
		Stream:       room.StreamName,
		Query:        "sign=" + room.Publish.Sign,
		Clip:         *clipPath,
		GoPublisher:  *goPub,
		Steps:        counts,
		FLVShare:     *flvShare,
		StepDuration: *step,
		ServerPID:    srv.pid(),
		Out:          stdout,
	})
	return err
}

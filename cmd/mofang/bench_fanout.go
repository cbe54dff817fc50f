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
	nms := fs.String("nms", "", "folder holding node_modules/node-media-server (npm install node-media-server@2.7.4): run the same load against it, with seed 001's config, and print the ratios")
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
	opts := loadtest.Options{
		Clip:         *clipPath,
		GoPublisher:  *goPub,
		Steps:        counts,
		FLVShare:     *flvShare,
		StepDuration: *step,
		Out:          stdout,
	}
	mine := opts
	mine.RTMPAddr, mine.HTTPBase = srv.rtmp, "http://"+srv.http
	mine.Stream, mine.Query = room.StreamName, "sign="+room.Publish.Sign
	mine.ServerPID = srv.pid()
	ours, err := loadtest.Run(ctx, mine)
	srv.close() // free CPU 0 for the peer
	if err != nil || *nms == "" {
		return err
	}

	peer, err := startNMS(ctx, *nms, dir, stderr)
	if err != nil {
		return err
	}
	defer peer.close()
	fmt.Fprintf(stdout, "\nNode-Media-Server (%s) on CPU 0, the same load\n", peer.version)
	theirs := opts
	theirs.RTMPAddr, theirs.HTTPBase = peer.rtmp, "http://"+peer.http
	theirs.Stream, theirs.Query = "bench", peer.sign("/live/bench")
	theirs.ServerPID = peer.pid()
	nmsRes, err := loadtest.Run(ctx, theirs)
	if err != nil {
		return fmt.Errorf("bench fanout against Node-Media-Server: %w", err)
	}
	fmt.Fprintf(stdout, "\nmofang against Node-Media-Server %s, this run (ratio < 1: mofang uses less)\n", peer.version)
	fmt.Fprintf(stdout, "%8s %10s %10s %12s %12s %7s %12s %12s %7s\n", "viewers", "conn_mf", "conn_nms",
		"cpu_ms/v·s", "nms", "ratio", "KiB/viewer", "nms", "ratio")
	for i := range min(len(ours), len(nmsRes)) {
		m, n := ours[i], nmsRes[i]
		fmt.Fprintf(stdout, "%8d %10d %10d %12.3f %12.3f %7.2f %12.1f %12.1f %7.2f\n", m.Viewers, m.Connected, n.Connected,
			m.CPUMsPerViewerSec, n.CPUMsPerViewerSec, ratioOf(m.CPUMsPerViewerSec, n.CPUMsPerViewerSec),
			m.KiBPerViewer, n.KiBPerViewer, ratioOf(m.KiBPerViewer, n.KiBPerViewer))
	}
	return nil
}

// ratioOf is a/b, or 0 when b is 0.
func ratioOf(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

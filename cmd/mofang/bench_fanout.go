package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mofang-live/mofang/media/loadtest"
	"github.com/mofang-live/mofang/rpc/token"
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
	clipPath := fs.String("clip", "", "clip to publish (default: a 720p30 2.5 Mbit/s clip made from testdata/clip.mp4)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var counts []int
	for _, f := range strings.Split(*steps, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("bench fanout: bad step %q", f)
		}
		counts = append(counts, n)
	}
	self, err := os.Executable()
	if err != nil {
		return err
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

	const secret = "bench-jwt-secret-0123456789abcdef0123"
	dsn := "sqlite:" + filepath.Join(dir, "bench.db")
	owner, _, err := seedRoomUsers(ctx, dsn, 0)
	if err != nil {
		return err
	}
	issuer, err := token.NewIssuer([]byte(secret), time.Hour)
	if err != nil {
		return err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	rtmpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	srv := exec.CommandContext(ctx, "taskset", "-c", "0", self, "serve", "--http", httpAddr, "--rtmp", rtmpAddr, "--rtsp", "", "--rtsp-udp", "",
		"--db", dsn, "--data", dir, "--jwt-secret", secret, "--log-level", "warn", "--public-host", "127.0.0.1")
	srv.Stderr = stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("starting server: %w", err)
	}
	defer func() {
		srv.Process.Signal(os.Interrupt)
		srv.Wait()
	}()
	if err := waitListening(ctx, httpAddr); err != nil {
		return err
	}
	tok, _, _ := issuer.Issue(owner)
	var room struct {
		Result struct {
			Errno int `json:"errno"`
			Data  struct {
				StreamName string `json:"stream_name"`
				Publish    struct {
					Sign string `json:"sign"`
				} `json:"publish"`
			} `json:"data"`
		} `json:"result"`
	}
	if err := postJSON("http://"+httpAddr+"/", tok, `{"jsonrpc":"2.0","id":1,"method":"Live.stream","params":{"room_name":"fanout"}}`, &room); err != nil || room.Result.Errno != 1000 {
		return fmt.Errorf("creating the room: errno %d, %v", room.Result.Errno, err)
	}
	fmt.Fprintf(stdout, "mofang bench fanout: service on CPU 0, viewers on this process, %.0f%% of them on HTTP-FLV\n", *flvShare*100)
	_, err = loadtest.Run(ctx, loadtest.Options{
		RTMPAddr:     rtmpAddr,
		HTTPBase:     "http://" + httpAddr,
		Stream:       room.Result.Data.StreamName,
		Query:        "sign=" + room.Result.Data.Publish.Sign,
		Clip:         *clipPath,
		Steps:        counts,
		FLVShare:     *flvShare,
		StepDuration: *step,
		ServerPID:    srv.Process.Pid,
		Out:          stdout,
	})
	return err
}

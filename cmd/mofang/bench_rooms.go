package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"

	"time"

	"github.com/mofang-live/mofang/media/loadtest"
)

// benchRooms measures many small rooms at once, the cost of a platform:
// the service runs pinned to CPU 0 with its defaults (LL-HLS muxing and
// recording on), and this process publishes the test clip to every room
// with the load tool's Go publisher and plays each room with a few
// viewers over RTMP, HTTP-FLV and LL-HLS. It reports per step the viewers
// served (≥ 90% of the clip's bitrate), the server's CPU and memory per
// room, and, before the first viewers join, the CPU of a room nobody
// watches.
func benchRooms(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench rooms", flag.ContinueOnError)
	fs.SetOutput(stderr)
	steps := fs.String("rooms", "50,100,200", "room counts to reach, in order")
	rtmp := fs.Int("rtmp", 4, "RTMP viewers per room")
	flvN := fs.Int("flv", 4, "HTTP-FLV viewers per room")
	hls := fs.Int("hls", 2, "LL-HLS players per room")
	step := fs.Duration("step", 10*time.Second, "measuring time of each step")
	clipPath := fs.String("clip", "testdata/clip.mp4", "clip every room publishes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	counts, err := parseSteps(*steps)
	if err != nil {
		return fmt.Errorf("bench rooms: %w", err)
	}
	n := slices.Max(counts)
	clip, err := loadtest.LoadClip(ctx, "ffmpeg", *clipPath)
	if err != nil {
		return fmt.Errorf("bench rooms: %w", err)
	}
	srv, err := startBenchServer(ctx, stderr, n)
	if err != nil {
		return err
	}
	defer srv.close()
	rooms := make([]loadtest.Room, 0, n)
	for i, uid := range srv.users[:n] {
		r, err := srv.createRoomOf(uid, fmt.Sprintf("room%d", i))
		if err != nil {
			return err
		}
		q := "?sign=" + r.Publish.Sign
		rooms = append(rooms, loadtest.Room{
			PublishURL: "rtmp://" + srv.rtmp + "/live/" + r.StreamName + q,
			RTMPURL:    "rtmp://" + srv.rtmp + "/live/" + r.StreamName + q,
			FLVURL:     "http://" + srv.http + "/live/" + r.StreamName + ".flv" + q,
			HLSURL:     "http://" + srv.http + "/live/" + r.StreamName + "/index.m3u8" + q,
		})
	}
	fmt.Fprintf(stdout, "mofang bench rooms: service on CPU 0 with its defaults (LL-HLS, recording), Go publishers and %d RTMP + %d FLV + %d LL-HLS viewers per room on this process\n",
		*rtmp, *flvN, *hls)
	_, err = loadtest.RunRooms(ctx, loadtest.RoomsOptions{
		Rooms: rooms, Clip: clip, Steps: counts, RTMP: *rtmp, FLV: *flvN, HLS: *hls,
		StepDuration: *step, ServerPID: srv.pid(), Out: stdout,
	})
	return err
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
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
	nms := fs.String("nms", "", "folder holding node_modules/node-media-server (npm install node-media-server@2.7.4): run the same rooms against it with seed 001's config (no HLS there: its LL-HLS players become HTTP-FLV viewers) and print the ratios")
	debug := fs.String("debug-addr", "", "pprof address for the server, to profile it during the run")
	bare := fs.Bool("bare", false, "run the service without LL-HLS and recording, as Node-Media-Server's stock config runs (LL-HLS players become HTTP-FLV viewers)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	counts, err := parseSteps(*steps)
	if err != nil {
		return fmt.Errorf("bench rooms: %w", err)
	}
	extra := []string{"--debug-addr", *debug}
	if *bare {
		extra = append(extra, "--hls", "off", "--record-dir", "")
		*flvN += *hls
		*hls = 0
	}
	n := slices.Max(counts)
	clip, err := loadtest.LoadClip(ctx, "ffmpeg", *clipPath)
	if err != nil {
		return fmt.Errorf("bench rooms: %w", err)
	}
	srv, err := startBenchServer(ctx, stderr, n, extra...)
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
	setup := "with its defaults (LL-HLS, recording)"
	if *bare {
		setup = "without LL-HLS and recording (--bare)"
	}
	fmt.Fprintf(stdout, "mofang bench rooms: service on CPU 0 %s, Go publishers and %d RTMP + %d FLV + %d LL-HLS viewers per room on this process\n",
		setup, *rtmp, *flvN, *hls)
	ours, err := loadtest.RunRooms(ctx, loadtest.RoomsOptions{
		Rooms: rooms, Clip: clip, Steps: counts, RTMP: *rtmp, FLV: *flvN, HLS: *hls,
		StepDuration: *step, ServerPID: srv.pid(), Out: stdout,
	})
	srv.close() // free CPU 0 for the peer
	if err != nil || *nms == "" {
		return err
	}

	tmp, err := os.MkdirTemp("", "mofang-bench-rooms-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	peer, err := startNMS(ctx, *nms, tmp, io.Discard)
	if err != nil {
		return err
	}
	defer peer.close()
	peerRooms := make([]loadtest.Room, n)
	for i := range peerRooms {
		path := fmt.Sprintf("/live/room%d", i)
		q := "?" + peer.sign(path)
		peerRooms[i] = loadtest.Room{
			PublishURL: "rtmp://" + peer.rtmp + path + q,
			RTMPURL:    "rtmp://" + peer.rtmp + path + q,
			FLVURL:     "http://" + peer.http + path + ".flv" + q,
		}
	}
	fmt.Fprintf(stdout, "\nNode-Media-Server %s on CPU 0 with seed 001's config (no HLS, no recording): %d RTMP + %d FLV viewers per room\n",
		peer.version, *rtmp, *flvN+*hls)
	theirs, err := loadtest.RunRooms(ctx, loadtest.RoomsOptions{
		Rooms: peerRooms, Clip: clip, Steps: counts, RTMP: *rtmp, FLV: *flvN + *hls,
		StepDuration: *step, ServerPID: peer.pid(), Out: stdout,
	})
	if err != nil {
		return fmt.Errorf("bench rooms against Node-Media-Server: %w", err)
	}
	fmt.Fprintf(stdout, "\nmofang (%s) against Node-Media-Server %s (neither), this run (ratio < 1: mofang uses less)\n", setup, peer.version)
	fmt.Fprintf(stdout, "%6s %10s %10s %10s %10s %7s %10s %10s %7s\n", "rooms", "served_mf", "served_nms", "cpu%/room", "nms", "ratio", "KiB/room", "nms", "ratio")
	for i := range min(len(ours), len(theirs)) {
		m, t := ours[i], theirs[i]
		fmt.Fprintf(stdout, "%6d %9.1f%% %9.1f%% %10.3f %10.3f %7.2f %10.0f %10.0f %7.2f\n", m.Rooms,
			pct(m.Served, m.Viewers), pct(t.Served, t.Viewers),
			m.CPUPercent/float64(m.Rooms), t.CPUPercent/float64(t.Rooms), ratioOf(m.CPUPercent, t.CPUPercent),
			m.KiBPerRoom, t.KiBPerRoom, ratioOf(m.KiBPerRoom, t.KiBPerRoom))
	}
	if len(ours) > 0 && len(theirs) > 0 {
		fmt.Fprintf(stdout, "idle cost per room (no viewers): mofang %.3f%% of a core, Node-Media-Server %.3f%% (ratio %.2f)\n",
			ours[0].IdlePercentPerRoom, theirs[0].IdlePercentPerRoom, ratioOf(ours[0].IdlePercentPerRoom, theirs[0].IdlePercentPerRoom))
	}
	return nil
}

// pct is a/b in percent.
func pct(a, b int) float64 { return float64(a) / float64(max(1, b)) * 100 }

package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"

	"github.com/mofang-live/mofang/media/webrtc/client"
)

// benchWebRTC measures the WebRTC output: the service (pinned to CPU 0)
// gets a 720p30 2.5 Mbit/s stream over WHIP from this process, and N WHEP
// viewers from this process (run it on CPU 1: make bench does) read and
// decrypt it. Every video frame the publisher sends carries an SEI NAL
// unit with its number and send time, so that viewers count the frames
// they get and one viewer alone measures the glass-to-glass latency
// (publisher's WriteSample to the last packet of the frame at the viewer).
func benchWebRTC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench webrtc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	steps := fs.String("viewers", "50,200,500", "viewer counts to reach, in order")
	step := fs.Duration("step", 10*time.Second, "measuring time of each step")
	latency := fs.Duration("latency", 5*time.Second, "time the latency is measured with one viewer (0: not measured)")
	clipPath := fs.String("clip", "testdata/clip.mp4", "clip to make the 720p30 stream from")
	mediamtx := fs.String("mediamtx", "", "path of a mediamtx binary to run the same load against, in the same run (built from its source)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	counts, err := parseSteps(*steps)
	if err != nil {
		return fmt.Errorf("bench webrtc: %w", err)
	}
	dir, err := os.MkdirTemp("", "mofang-bench-webrtc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	h264Path, oggPath := filepath.Join(dir, "clip.h264"), filepath.Join(dir, "clip.ogg")
	for _, a := range [][]string{
		{"-i", *clipPath, "-an", "-vf", "scale=1280:720,fps=30", "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0",
			"-preset", "veryfast", "-b:v", "2400k", "-maxrate", "2500k", "-bufsize", "5000k",
			"-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-f", "h264", h264Path},
		{"-i", *clipPath, "-vn", "-c:a", "libopus", "-b:a", "64k", "-ar", "48000", "-ac", "2", "-page_duration", "1", "-f", "ogg", oggPath},
	} {
		mk := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, a...)...)
		if out, err := mk.CombinedOutput(); err != nil {
			return fmt.Errorf("making the WHIP input (run from the repository root): %v: %s", err, out)
		}
	}
	aus, err := readAccessUnits(h264Path)
	if err != nil {
		return err
	}
	ogg, err := os.ReadFile(oggPath)
	if err != nil {
		return err
	}

	api, err := client.NewAPI(true)
	if err != nil {
		return err
	}
	in := webrtcInput{aus: aus, ogg: ogg, counts: counts, step: *step, latency: *latency}
	fmt.Fprintf(stdout, "mofang bench webrtc: server on CPU 0, WHIP publisher and WHEP viewers on this process, 720p30 %.2f Mbit/s + Opus\n",
		float64(totalBytes(aus))*8/(float64(len(aus))/30)/1e6)

	srv, err := startBenchServer(ctx, stderr, 0)
	if err != nil {
		return err
	}
	room, err := srv.createRoom()
	if err != nil {
		srv.close()
		return err
	}
	base := "http://" + srv.http + "/live/" + room.StreamName
	ours, err := runWebRTCTarget(ctx, api, webrtcTarget{name: "mofang", whip: base + "/whip?sign=" + room.Publish.Sign,
		whep: base + "/whep?sign=" + room.Publish.Sign, pid: srv.pid()}, in, stdout, stderr)
	srv.close()
	if err != nil {
		return err
	}
	if *mediamtx == "" {
		fmt.Fprintf(stdout, "\n(no peer: --mediamtx PATH runs the same load against mediamtx)\n")
		return nil
	}
	peer, err := startMediaMTX(ctx, *mediamtx, stderr)
	if err != nil {
		return fmt.Errorf("mediamtx: %w", err)
	}
	theirs, err := runWebRTCTarget(ctx, api, webrtcTarget{name: "mediamtx", whip: peer.base + "/bench/whip", whep: peer.base + "/bench/whep", pid: peer.pid()}, in, stdout, stderr)
	peer.close()
	if err != nil {
		return err
	}
	printWebRTCRatios(stdout, ours, theirs)
	return nil
}

// webrtcInput is the load of a bench webrtc run: the frames and the
// audio to publish, the viewer steps, how long each step and the latency
// are measured.
type webrtcInput struct {
	aus           []accessUnit
	ogg           []byte
	counts        []int
	step, latency time.Duration
}

// webrtcTarget is a WHIP/WHEP server under load: its publish and play
// URLs and its process.
type webrtcTarget struct {
	name, whip, whep string
	pid              int
}

// webrtcResult is what one server did under the load.
type webrtcResult struct {
	latencyP50 time.Duration
	rows       []webrtcRow
}

// webrtcRow is one step of the load.
type webrtcRow struct {
	viewers, failed              int
	ttffP50, ttffP99             time.Duration
	packets, frames, fps, cpu    float64 // percent, percent, per viewer, percent of a core
	rssMiB, cpuMsPerViewerS, kib float64
}

// runWebRTCTarget publishes the stream to t over WHIP, measures the
// latency with one viewer, then adds WHEP viewers step by step.
func runWebRTCTarget(ctx context.Context, api *webrtc.API, t webrtcTarget, in webrtcInput, stdout, stderr io.Writer) (webrtcResult, error) {
	var res webrtcResult
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	pub, err := client.Publish(pctx, client.PublisherConfig{URL: t.whip, API: api})
	pcancel()
	if err != nil {
		return res, fmt.Errorf("%s: WHIP publish: %w", t.name, err)
	}
	defer pub.Close()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var frames atomic.Uint64 // video frames sent
	var sendErr atomic.Pointer[error]
	var swg sync.WaitGroup
	swg.Add(2)
	go func() {
		defer swg.Done()
		if err := sendStamped(runCtx, pub.Video, in.aus, &frames); err != nil && runCtx.Err() == nil {
			sendErr.Store(&err)
		}
	}()
	go func() {
		defer swg.Done()
		for runCtx.Err() == nil {
			if err := client.SendOgg(runCtx, pub.Audio, bytes.NewReader(in.ogg)); err != nil && runCtx.Err() == nil {
				sendErr.Store(&err)
				return
			}
		}
	}()
	defer swg.Wait()
	defer cancel()

	fmt.Fprintf(stdout, "\n%s:\n", t.name)
	// The stream is up when a first viewer gets a frame.
	var first *stampedViewer
	for deadline := time.Now().Add(20 * time.Second); ; {
		// A server may answer 404 until the publisher's tracks are set up.
		first, err = playStamped(runCtx, api, t.whep, false)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return res, fmt.Errorf("%s: first WHEP viewer: %w", t.name, err)
	}
	for deadline := time.Now().Add(20 * time.Second); first.frames.Load() == 0; {
		if time.Now().After(deadline) {
			first.p.Close()
			return res, fmt.Errorf("%s: the first WHEP viewer got no frame in 20 s", t.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	first.p.Close()

	if in.latency > 0 {
		v, err := playStamped(runCtx, api, t.whep, true)
		if err != nil {
			return res, fmt.Errorf("%s: latency viewer: %w", t.name, err)
		}
		time.Sleep(time.Second) // the first GOP's burst is not latency
		v.mu.Lock()
		v.lat = v.lat[:0]
		v.mu.Unlock()
		time.Sleep(in.latency)
		v.mu.Lock()
		lat := slices.Clone(v.lat)
		v.mu.Unlock()
		v.p.Close()
		slices.Sort(lat)
		if len(lat) == 0 {
			fmt.Fprintf(stdout, "glass-to-glass WHIP in -> WHEP out, 1 viewer: no stamped frame arrived\n\n")
		} else {
			res.latencyP50 = pctDur(lat, 0.5)
			fmt.Fprintf(stdout, "glass-to-glass WHIP in -> WHEP out, 1 viewer, %d frames: p50 %v, p99 %v, max %v\n\n", len(lat),
				pctDur(lat, 0.5), pctDur(lat, 0.99), lat[len(lat)-1].Round(100*time.Microsecond))
		}
	}

	time.Sleep(time.Second) // the sessions closed above are gone
	rss0, _ := procRSS(t.pid)
	fmt.Fprintf(stdout, "%8s %7s %9s %9s %9s %8s %6s %7s %9s %12s %11s\n", "viewers", "failed", "ttff_p50", "ttff_p99",
		"packets%", "frames%", "fps/v", "cpu%", "rss_MiB", "cpu_ms/v·s", "KiB/viewer")
	var viewers []*stampedViewer
	defer func() {
		var cwg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, v := range viewers {
			cwg.Add(1)
			sem <- struct{}{}
			go func() {
				defer cwg.Done()
				defer func() { <-sem }()
				v.p.Close()
			}()
		}
		cwg.Wait()
	}()
	for _, n := range in.counts {
		if p := sendErr.Load(); p != nil {
			return res, fmt.Errorf("%s: WHIP publisher: %w", t.name, *p)
		}
		failed := 0
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := len(viewers); i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				v, err := playStamped(runCtx, api, t.whep, false)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if failed == 0 {
						fmt.Fprintln(stderr, "bench webrtc: viewer:", err)
					}
					failed++
					return
				}
				viewers = append(viewers, v)
			}()
		}
		wg.Wait()
		if len(viewers) == 0 {
			return res, fmt.Errorf("%s: no WHEP viewer connected", t.name)
		}
		// Every viewer's first frame, then the GOP bursts are over.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if !slices.ContainsFunc(viewers, func(v *stampedViewer) bool { return v.p.FirstVideo() < 0 }) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(2 * time.Second)
		snap0 := make([]viewerCounts, len(viewers))
		for i, v := range viewers {
			snap0[i] = v.counts()
		}
		cpu0, _ := procCPU(t.pid)
		t0 := time.Now()
		select {
		case <-time.After(in.step):
		case <-ctx.Done():
			return res, ctx.Err()
		}
		el := time.Since(t0)
		cpu1, _ := procCPU(t.pid)
		rss, _ := procRSS(t.pid)
		var got, want, gotFrames, wantFrames uint64
		var ttff []time.Duration
		for i, v := range viewers {
			c := v.counts()
			got += c.packets - snap0[i].packets
			want += c.expected - snap0[i].expected
			gotFrames += c.frames - snap0[i].frames
			wantFrames += c.framesSpanned - snap0[i].framesSpanned
			if d := v.p.FirstVideo(); d >= 0 {
				ttff = append(ttff, d)
			}
		}
		slices.Sort(ttff)
		nv := float64(len(viewers))
		cpu := (cpu1 - cpu0).Seconds() / el.Seconds()
		row := webrtcRow{viewers: len(viewers), failed: failed, ttffP50: pctDur(ttff, 0.5), ttffP99: pctDur(ttff, 0.99),
			packets: 100 * ratio(got, want), frames: 100 * ratio(gotFrames, wantFrames), fps: float64(gotFrames) / el.Seconds() / nv,
			cpu: cpu * 100, rssMiB: float64(rss) / (1 << 20), cpuMsPerViewerS: cpu * 1000 / nv, kib: float64(rss-rss0) / 1024 / nv}
		res.rows = append(res.rows, row)
		fmt.Fprintf(stdout, "%8d %7d %9v %9v %9.2f %8.2f %6.1f %7.1f %9.1f %12.3f %11.0f\n", row.viewers, row.failed,
			row.ttffP50, row.ttffP99, row.packets, row.frames, row.fps, row.cpu, row.rssMiB, row.cpuMsPerViewerS, row.kib)
	}
	fmt.Fprintf(stdout, "\npackets%%: RTP packets received / sequence numbers spanned, per viewer, summed; frames%%: stamped frames received / frame numbers spanned\n"+
		"(a viewer that falls behind skips to a key frame: seen in frames%%, not packets%%); fps/v: frames a viewer got a second;\n"+
		"ttff: WHEP POST to first video packet; KiB/viewer: server RSS growth since before the first viewer / viewers\n")
	return res, nil
}

// printWebRTCRatios prints ours against the peer's, step by step, from
// the same run.
func printWebRTCRatios(w io.Writer, ours, theirs webrtcResult) {
	fmt.Fprintf(w, "\nmofang / mediamtx, same run (below 1: mofang uses less):\n%8s %14s %14s %12s %12s %10s %10s\n",
		"viewers", "cpu_ms/v·s", "ratio", "KiB/viewer", "ratio", "packets%", "ttff_p50")
	for i := range min(len(ours.rows), len(theirs.rows)) {
		o, t := ours.rows[i], theirs.rows[i]
		fmt.Fprintf(w, "%8d %6.3f/%-7.3f %14.2f %5.0f/%-6.0f %12.2f %4.1f/%-5.1f %4v/%v\n", o.viewers,
			o.cpuMsPerViewerS, t.cpuMsPerViewerS, o.cpuMsPerViewerS/t.cpuMsPerViewerS, o.kib, t.kib, o.kib/t.kib,
			o.packets, t.packets, o.ttffP50.Round(time.Millisecond), t.ttffP50.Round(time.Millisecond))
	}
	if ours.latencyP50 > 0 && theirs.latencyP50 > 0 {
		fmt.Fprintf(w, "glass-to-glass p50: mofang %v, mediamtx %v\n", ours.latencyP50, theirs.latencyP50)
	}
}

// mediaMTX is a mediamtx process serving WHIP and WHEP on loopback,
// pinned to CPU 0 as our server is.
type mediaMTX struct {
	base string // http://127.0.0.1:port
	dir  string
	cmd  *exec.Cmd
}

func (m *mediaMTX) pid() int { return m.cmd.Process.Pid }

func (m *mediaMTX) close() {
	m.cmd.Process.Kill()
	m.cmd.Wait()
	os.RemoveAll(m.dir)
}

// startMediaMTX runs the mediamtx binary at bin with WebRTC alone on, no
// authentication, its candidates on 127.0.0.1.
func startMediaMTX(ctx context.Context, bin string, stderr io.Writer) (*mediaMTX, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	udpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mofang-bench-mediamtx-")
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`logLevel: warn
rtsp: false
rtmp: false
hls: false
srt: false
moq: false
api: false
webrtc: true
webrtcAddress: %s
webrtcLocalUDPAddress: %s
webrtcIPsFromInterfaces: false
webrtcAdditionalHosts: [127.0.0.1]
paths:
  all_others:
`, httpAddr, udpAddr)
	path := filepath.Join(dir, "mediamtx.yml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	m := &mediaMTX{base: "http://" + httpAddr, dir: dir}
	m.cmd = exec.CommandContext(ctx, "taskset", "-c", "0", bin, path)
	m.cmd.Dir = dir
	m.cmd.Stdout = stderr
	m.cmd.Stderr = stderr
	if err := m.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	if err := waitListening(ctx, httpAddr); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func pctDur(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(float64(len(s))*q))].Round(100 * time.Microsecond)
}

// accessUnit is one frame of the Annex-B input: its non-VCL NAL units
// (start codes included) and its VCL NAL unit.
type accessUnit struct {
	pre, vcl []byte
}

func totalBytes(aus []accessUnit) (n int) {
	for _, au := range aus {
		n += len(au.pre) + len(au.vcl)
	}
	return n
}

// readAccessUnits reads an Annex-B H.264 stream with one slice a frame.
func readAccessUnits(path string) ([]accessUnit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hr, err := h264reader.NewReader(f)
	if err != nil {
		return nil, err
	}
	var aus []accessUnit
	var pre []byte
	for {
		nal, err := hr.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		unit := append([]byte{0, 0, 0, 1}, nal.Data...)
		if nal.UnitType != h264reader.NalUnitTypeCodedSliceIdr && nal.UnitType != h264reader.NalUnitTypeCodedSliceNonIdr {
			pre = append(pre, unit...)
			continue
		}
		aus = append(aus, accessUnit{pre: pre, vcl: unit})
		pre = nil
	}
	if len(aus) == 0 || !bytes.Contains(aus[0].pre, []byte{0, 0, 0, 1, 0x67}) {
		return nil, fmt.Errorf("%s: no frames, or no SPS before the first", path)
	}
	return aus, nil
}

// stampUUID marks the bench's SEI (user_data_unregistered); it and the
// hex digits after it hold no zero byte, so no emulation prevention.
var stampUUID = []byte("mofang-bench-rtc")

const stampLen = 16 + 16 + 16 // UUID, frame number, send time (hex)

// stampSEI returns an SEI NAL unit (Annex-B) with frame number n and the
// send time t.
func stampSEI(n uint64, t time.Time) []byte {
	b := make([]byte, 0, 4+3+stampLen+1)
	b = append(b, 0, 0, 0, 1, 6, 5, stampLen)
	b = append(b, stampUUID...)
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], n)
	b = hex.AppendEncode(b, v[:])
	binary.BigEndian.PutUint64(v[:], uint64(t.UnixNano()))
	b = hex.AppendEncode(b, v[:])
	return append(b, 0x80)
}

// parseStamp reads a stamp SEI NAL unit (without start code).
func parseStamp(nal []byte) (n uint64, sent time.Time, ok bool) {
	if len(nal) < 3+stampLen || nal[0]&0x1f != 6 || nal[1] != 5 || nal[2] != stampLen || !bytes.Equal(nal[3:19], stampUUID) {
		return 0, time.Time{}, false
	}
	var v [16]byte
	if _, err := hex.Decode(v[:], nal[19:3+stampLen]); err != nil {
		return 0, time.Time{}, false
	}
	return binary.BigEndian.Uint64(v[:8]), time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))), true
}

// stampOf finds a stamp in an H.264 RTP payload: a single NAL unit, in a
// STAP-A, or at the start of an FU-A.
func stampOf(payload []byte) (uint64, time.Time, bool) {
	if len(payload) < 2 {
		return 0, time.Time{}, false
	}
	switch payload[0] & 0x1f {
	case 6:
		return parseStamp(payload)
	case 24: // STAP-A
		for p := payload[1:]; len(p) >= 2; {
			size := int(binary.BigEndian.Uint16(p))
			if size > len(p)-2 {
				break
			}
			if n, t, ok := parseStamp(p[2 : 2+size]); ok {
				return n, t, true
			}
			p = p[2+size:]
		}
	case 28: // FU-A: the start fragment holds the SEI's header
		if payload[1]&0x80 != 0 && payload[1]&0x1f == 6 {
			nal := append([]byte{payload[0]&0xe0 | 6}, payload[2:]...)
			return parseStamp(nal)
		}
	}
	return 0, time.Time{}, false
}

// sendStamped writes the access units to track in real time, in a loop
// until ctx ends, each with a stamp SEI before its slice.
func sendStamped(ctx context.Context, track *webrtc.TrackLocalStaticSample, aus []accessUnit, frames *atomic.Uint64) error {
	const frame = time.Second / 30
	next := time.Now()
	var buf []byte
	for n := uint64(0); ; n++ {
		au := aus[n%uint64(len(aus))]
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
		buf = append(append(append(buf[:0], au.pre...), stampSEI(n, time.Now())...), au.vcl...)
		if err := track.WriteSample(media.Sample{Data: buf, Duration: frame}); err != nil {
			return fmt.Errorf("write video sample: %w", err)
		}
		frames.Add(1)
		next = next.Add(frame)
	}
}

// stampedViewer is a WHEP player counting what it gets.
type stampedViewer struct {
	p *client.Player

	packets  atomic.Uint64    // RTP packets, both kinds
	extHigh  [2]atomic.Uint64 // highest extended sequence number per kind
	frames   atomic.Uint64    // stamped frames
	lastN    atomic.Uint64    // highest frame number seen, plus one
	mu       sync.Mutex
	lat      []time.Duration // with latency: stamp to the frame's marker packet
	withLat  bool
	stampTS  uint32
	stampAt  time.Time
	stamped  bool
	seqState [2]struct {
		started bool
		cycles  uint64
		last    uint16
	}
}

type viewerCounts struct{ packets, expected, frames, framesSpanned uint64 }

func (v *stampedViewer) counts() viewerCounts {
	return viewerCounts{packets: v.packets.Load(), expected: v.extHigh[0].Load() + v.extHigh[1].Load(), frames: v.frames.Load(), framesSpanned: v.lastN.Load()}
}

// playStamped starts a WHEP viewer; with latency it records, for every
// stamped frame, the time from the stamp to its last packet.
func playStamped(ctx context.Context, api *webrtc.API, url string, latency bool) (*stampedViewer, error) {
	v := &stampedViewer{withLat: latency}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := client.Play(pctx, client.PlayerConfig{URL: url, API: api, OnPacket: v.onPacket})
	if err != nil {
		return nil, err
	}
	v.p = p
	return v, nil
}

// onPacket runs on the goroutine of the packet's track: each kind's state
// is its own.
func (v *stampedViewer) onPacket(kind string, pkt *rtp.Packet) {
	v.packets.Add(1)
	i := 0
	if kind == "audio" {
		i = 1
	}
	s := &v.seqState[i]
	if !s.started {
		s.started, s.last = true, pkt.SequenceNumber
		v.extHigh[i].Store(uint64(pkt.SequenceNumber))
	} else if d := pkt.SequenceNumber - s.last; d != 0 && d < 0x8000 {
		if pkt.SequenceNumber < s.last {
			s.cycles += 1 << 16
		}
		s.last = pkt.SequenceNumber
		v.extHigh[i].Store(s.cycles + uint64(pkt.SequenceNumber))
	}
	if i != 0 {
		return
	}
	if n, sent, ok := stampOf(pkt.Payload); ok {
		v.frames.Add(1)
		if n+1 > v.lastN.Load() {
			v.lastN.Store(n + 1)
		}
		v.stampTS, v.stampAt, v.stamped = pkt.Timestamp, sent, true
	}
	if v.withLat && v.stamped && pkt.Marker && pkt.Timestamp == v.stampTS {
		d := time.Since(v.stampAt)
		v.stamped = false
		v.mu.Lock()
		if len(v.lat) < 100000 {
			v.lat = append(v.lat, d)
		}
		v.mu.Unlock()
	}
}

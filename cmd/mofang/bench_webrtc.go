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

	srv, err := startBenchServer(ctx, stderr, 0)
	if err != nil {
		return err
	}
	defer srv.close()
	room, err := srv.createRoom()
	if err != nil {
		return err
	}
	base := "http://" + srv.http + "/live/" + room.StreamName
	whip, whep := base+"/whip?sign="+room.Publish.Sign, base+"/whep?sign="+room.Publish.Sign
	api, err := client.NewAPI(true)
	if err != nil {
		return err
	}

	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	pub, err := client.Publish(pctx, client.PublisherConfig{URL: whip, API: api})
	pcancel()
	if err != nil {
		return fmt.Errorf("WHIP publish: %w", err)
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
		if err := sendStamped(runCtx, pub.Video, aus, &frames); err != nil && runCtx.Err() == nil {
			sendErr.Store(&err)
		}
	}()
	go func() {
		defer swg.Done()
		for runCtx.Err() == nil {
			if err := client.SendOgg(runCtx, pub.Audio, bytes.NewReader(ogg)); err != nil && runCtx.Err() == nil {
				sendErr.Store(&err)
				return
			}
		}
	}()
	defer swg.Wait()
	defer cancel()

	fmt.Fprintf(stdout, "mofang bench webrtc: service on CPU 0, WHIP publisher and WHEP viewers on this process, 720p30 %.2f Mbit/s + Opus\n",
		float64(totalBytes(aus))*8/(float64(len(aus))/30)/1e6)
	// The stream is up when a first viewer gets a frame.
	first, err := playStamped(runCtx, api, whep, false)
	if err != nil {
		return fmt.Errorf("first WHEP viewer: %w", err)
	}
	for deadline := time.Now().Add(20 * time.Second); first.frames.Load() == 0; {
		if time.Now().After(deadline) {
			first.p.Close()
			return errors.New("the first WHEP viewer got no frame in 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	first.p.Close()

	if *latency > 0 {
		v, err := playStamped(runCtx, api, whep, true)
		if err != nil {
			return fmt.Errorf("latency viewer: %w", err)
		}
		time.Sleep(time.Second) // the first GOP's burst is not latency
		v.mu.Lock()
		v.lat = v.lat[:0]
		v.mu.Unlock()
		time.Sleep(*latency)
		v.mu.Lock()
		lat := slices.Clone(v.lat)
		v.mu.Unlock()
		v.p.Close()
		slices.Sort(lat)
		if len(lat) == 0 {
			fmt.Fprintf(stdout, "glass-to-glass WHIP in -> WHEP out, 1 viewer: no stamped frame arrived\n\n")
		} else {
			fmt.Fprintf(stdout, "glass-to-glass WHIP in -> WHEP out, 1 viewer, %d frames: p50 %v, p99 %v, max %v\n\n", len(lat),
				pctDur(lat, 0.5), pctDur(lat, 0.99), lat[len(lat)-1].Round(100*time.Microsecond))
		}
	}

	time.Sleep(time.Second) // the sessions closed above are gone
	rss0, _ := procRSS(srv.pid())
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
	for _, n := range counts {
		if p := sendErr.Load(); p != nil {
			return fmt.Errorf("WHIP publisher: %w", *p)
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
				v, err := playStamped(runCtx, api, whep, false)
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
			return errors.New("no WHEP viewer connected")
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
		cpu0, _ := procCPU(srv.pid())
		t0 := time.Now()
		select {
		case <-time.After(*step):
		case <-ctx.Done():
			return ctx.Err()
		}
		el := time.Since(t0)
		cpu1, _ := procCPU(srv.pid())
		rss, _ := procRSS(srv.pid())
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
		fmt.Fprintf(stdout, "%8d %7d %9v %9v %9.2f %8.2f %6.1f %7.1f %9.1f %12.3f %11.0f\n", len(viewers), failed,
			pctDur(ttff, 0.5), pctDur(ttff, 0.99), 100*ratio(got, want), 100*ratio(gotFrames, wantFrames), float64(gotFrames)/el.Seconds()/nv,
			cpu*100, float64(rss)/(1<<20), cpu*1000/nv, float64(rss-rss0)/1024/nv)
	}
	fmt.Fprintf(stdout, "\npackets%%: RTP packets received / sequence numbers spanned, per viewer, summed; frames%%: stamped frames received / frame numbers spanned\n"+
		"(a viewer that falls behind skips to a key frame: seen in frames%%, not packets%%); fps/v: frames a viewer got a second;\n"+
		"ttff: WHEP POST to first video packet; KiB/viewer: server RSS growth since before the first viewer / viewers\n")
	return nil
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

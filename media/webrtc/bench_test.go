package webrtc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/webrtc/client"
)

// The WHEP load benchmark: one 720p30 2.5 Mbit/s stream fed in real time,
// N pion viewers in a child process (so the server's CPU can be read
// alone) that read and decrypt everything.
//
//	go test -run XXX -bench BenchmarkWHEPViewers -benchtime 10x ./media/webrtc/
//	WEBRTC_BENCH_VIEWERS=1000 WEBRTC_BENCH_SERVER_CPUS=0 WEBRTC_BENCH_CLIENT_CPUS=1 \
//	    go test -run XXX -bench BenchmarkWHEPViewers -benchtime 10x ./media/webrtc/
//
// b.N is the measured time in seconds, after every viewer is connected.

// clip720 is a 720p30 2.5 Mbit/s H.264 (no B-frames) + AAC FLV.
func clip720(t testing.TB) string {
	return testFile(t, "clip720.flv", "-i", "IN", "-vf", "scale=1280:720", "-c:v", "libx264", "-preset", "veryfast",
		"-b:v", "2400k", "-maxrate", "2500k", "-bufsize", "5000k", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0",
		"-bf", "0", "-c:a", "aac", "-b:a", "128k", "-f", "flv", "OUT")
}

// feedLoop feeds tags in real time, over and over, until ctx is done.
func feedLoop(ctx context.Context, out *Output, tags []flv.Tag) {
	start := time.Now()
	var base uint32
	last := tags[len(tags)-1].Timestamp + 33
	for ctx.Err() == nil {
		for _, tag := range tags {
			if base > 0 && (tag.Type == flv.TagScript || isSequenceHeader(tag)) {
				continue
			}
			ts := base + tag.Timestamp
			if d := time.Until(start.Add(time.Duration(ts) * time.Millisecond)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return
				}
			}
			out.WritePacket(tag.Type, ts, tag.Body)
		}
		base += last
	}
}

func isSequenceHeader(tag flv.Tag) bool {
	switch tag.Type {
	case flv.TagVideo:
		v, err := flv.ParseVideoTag(tag.Body)
		return err == nil && v.IsSequenceHeader()
	case flv.TagAudio:
		a, err := flv.ParseAudioTag(tag.Body)
		return err == nil && a.IsSequenceHeader()
	}
	return false
}

// viewerReport is what the viewer process prints.
type viewerReport struct {
	Connected int             `json:"connected"`
	Failed    int             `json:"failed"`
	TTFF      []time.Duration `json:"ttff"`
	Packets   uint64          `json:"packets"`
	Bytes     uint64          `json:"bytes"`
	CPU       time.Duration   `json:"cpu"`
	Seconds   float64         `json:"seconds"`
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func BenchmarkWHEPViewers(b *testing.B) {
	viewers := envInt("WEBRTC_BENCH_VIEWERS", 100)
	if os.Getenv("WEBRTC_BENCH_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 4096
	}
	tags := readTags(b, clip720(b))
	// a ring of 1024 video packets (4 s at this rate) is full after the
	// warm-up, so its memory is not counted as the viewers'
	srv := newTestServer(b, Config{TranscodeIdle: time.Minute, VideoRing: 1024})
	out := srv.NewOutput(OutputConfig{Name: "bench"})
	defer out.Close()
	url := newHTTPFront(b, srv).addOutput("bench", out)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go feedLoop(ctx, out, tags)
	time.Sleep(5 * time.Second)

	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)

	secs := b.N
	args := []string{os.Args[0], "-test.run=^TestViewerProcess$"}
	if cpus := os.Getenv("WEBRTC_BENCH_CLIENT_CPUS"); cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "WEBRTC_VIEWER_URL="+url, "WEBRTC_VIEWER_N="+strconv.Itoa(viewers),
		"WEBRTC_VIEWER_SECONDS="+strconv.Itoa(secs))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// the child prints "ready" when every viewer is connected, then the
	// report when the measured time is over
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var rep viewerReport
	var ru0, ru1 syscall.Rusage
	var t0 time.Time
	var sent0 uint64
	var mReady runtime.MemStats
	var mEnd runtime.MemStats
	var elapsed time.Duration
	var sent uint64
	sentNow := func() (n uint64) {
		for _, st := range out.Stats() {
			n += st.PacketsSent
		}
		return n
	}
	b.ResetTimer()
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "ready":
			runtime.GC()
			runtime.ReadMemStats(&mReady)
			b.Logf("%d goroutines with %d viewers", runtime.NumGoroutine(), out.Viewers())
			if path := os.Getenv("WEBRTC_BENCH_HEAPPROFILE"); path != "" {
				if f, err := os.Create(path); err == nil {
					_ = pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			if path := os.Getenv("WEBRTC_BENCH_CPUPROFILE"); path != "" {
				if f, err := os.Create(path); err == nil {
					_ = pprof.StartCPUProfile(f)
					defer f.Close()
				}
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			t0 = time.Now()
			sent0 = sentNow()
		case len(line) > 7 && line[:7] == "report ":
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			pprof.StopCPUProfile()
			runtime.ReadMemStats(&mEnd)
			elapsed = time.Since(t0)
			sent = sentNow() - sent0
			if err := json.Unmarshal([]byte(line[7:]), &rep); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if err := cmd.Wait(); err != nil {
		b.Fatalf("viewer process: %v", err)
	}
	// the next run starts with no session left from this one
	for deadline := time.Now().Add(30 * time.Second); out.Viewers() > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if t0.IsZero() || rep.Connected == 0 {
		b.Fatalf("viewers never got ready: %+v", rep)
	}
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()) - time.Duration(ru0.Utime.Nano()+ru0.Stime.Nano())
	perViewer := float64(mReady.HeapInuse+mReady.StackInuse-m0.HeapInuse-m0.StackInuse) / float64(rep.Connected)
	slices.Sort(rep.TTFF)
	b.ReportMetric(float64(rep.Connected), "viewers")
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "server-cpu%")
	b.ReportMetric(1e3*cpu.Seconds()/elapsed.Seconds()/float64(rep.Connected), "cpu-ms/viewer-s")
	b.ReportMetric(perViewer/1024, "KiB/viewer")
	b.Logf("server sent %d packets in %v, viewers received %d in %.1f s", sent, elapsed, rep.Packets, rep.Seconds)
	if sent > 0 {
		b.ReportMetric(100*float64(rep.Packets)/float64(sent), "received%")
		b.ReportMetric(float64(mEnd.Mallocs-mReady.Mallocs)/float64(sent), "allocs/packet-sent")
	}
	b.ReportMetric(float64(rep.Bytes)*8/rep.Seconds/float64(rep.Connected)/1e6, "Mbit/s/viewer")
	if n := len(rep.TTFF); n > 0 {
		b.ReportMetric(float64(rep.TTFF[n/2].Milliseconds()), "ttff-p50-ms")
		b.ReportMetric(float64(rep.TTFF[n*99/100].Milliseconds()), "ttff-p99-ms")
	}
	b.ReportMetric(1e3*rep.CPU.Seconds()/rep.Seconds/float64(rep.Connected), "client-cpu-ms/viewer-s")
	if rep.Failed > 0 {
		b.Logf("%d viewers failed to connect", rep.Failed)
	}
}

// TestViewerProcess is the viewer side of BenchmarkWHEPViewers, run as a
// child process; it is skipped otherwise.
func TestViewerProcess(t *testing.T) {
	url := os.Getenv("WEBRTC_VIEWER_URL")
	if url == "" {
		t.Skip("only run by BenchmarkWHEPViewers")
	}
	n := envInt("WEBRTC_VIEWER_N", 10)
	secs := envInt("WEBRTC_VIEWER_SECONDS", 5)
	api, err := client.NewAPI(true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+5*time.Minute)
	defer cancel()
	var mu sync.Mutex
	var players []*client.Player
	rep := viewerReport{}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
			defer pcancel()
			p, err := client.Play(pctx, client.PlayerConfig{URL: url, API: api})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rep.Failed++
				fmt.Fprintln(os.Stderr, "viewer:", err)
				return
			}
			players = append(players, p)
		}()
	}
	wg.Wait()
	// wait for the first frame of every viewer
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range players {
		for p.FirstVideo() < 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(time.Second) // GOP bursts over
	count := func() (pk, by uint64) {
		for _, p := range players {
			v, a, vb, ab := p.Packets()
			pk += v + a
			by += vb + ab
		}
		return
	}
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	p0, b0 := count()
	t0 := time.Now()
	fmt.Println("ready")
	time.Sleep(time.Duration(secs) * time.Second)
	p1, b1 := count()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	rep.Seconds = time.Since(t0).Seconds()
	rep.Packets, rep.Bytes = p1-p0, b1-b0
	rep.CPU = time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()) - time.Duration(ru0.Utime.Nano()+ru0.Stime.Nano())
	rep.Connected = len(players)
	for _, p := range players {
		rep.TTFF = append(rep.TTFF, p.FirstVideo())
	}
	b, _ := json.Marshal(rep)
	fmt.Println("report " + string(b))
	var cwg sync.WaitGroup
	for _, p := range players {
		cwg.Add(1)
		sem <- struct{}{}
		go func() {
			defer cwg.Done()
			defer func() { <-sem }()
			p.Close()
		}()
	}
	cwg.Wait()
}

// BenchmarkStaticRTPFanout measures the alternative to the Output's ring:
// pion's TrackLocalStaticRTP bound to every viewer, whose WriteRTP encrypts
// and sends to each binding in the caller's goroutine. ns/op is how long
// the stream's goroutine is held per RTP packet with
// WEBRTC_BENCH_VIEWERS (default 50) viewers.
func BenchmarkStaticRTPFanout(b *testing.B) {
	n := envInt("WEBRTC_BENCH_VIEWERS", 50)
	srv := newTestServer(b, Config{})
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "bench")
	if err != nil {
		b.Fatal(err)
	}
	api, err := client.NewAPI(true)
	if err != nil {
		b.Fatal(err)
	}
	for range n {
		cpc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			b.Fatal(err)
		}
		defer cpc.Close()
		cpc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
			}
		})
		connected := make(chan struct{})
		var once sync.Once
		cpc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateConnected {
				once.Do(func() { close(connected) })
			}
		})
		if _, err := cpc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			b.Fatal(err)
		}
		offer, _ := cpc.CreateOffer(nil)
		g := webrtc.GatheringCompletePromise(cpc)
		_ = cpc.SetLocalDescription(offer)
		<-g
		spc, err := srv.newPeerConnection(false)
		if err != nil {
			b.Fatal(err)
		}
		defer spc.Close()
		if err := spc.SetRemoteDescription(*cpc.LocalDescription()); err != nil {
			b.Fatal(err)
		}
		if _, err := spc.AddTrack(track); err != nil {
			b.Fatal(err)
		}
		answer, _ := spc.CreateAnswer(nil)
		g = webrtc.GatheringCompletePromise(spc)
		_ = spc.SetLocalDescription(answer)
		<-g
		if err := cpc.SetRemoteDescription(*spc.LocalDescription()); err != nil {
			b.Fatal(err)
		}
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			b.Fatal("not connected")
		}
	}
	time.Sleep(500 * time.Millisecond) // senders bound
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96}, Payload: make([]byte, 1188)}
	pkt.Payload[0] = 1 // a non-IDR slice NAL unit
	b.ResetTimer()
	for i := range b.N {
		pkt.SequenceNumber = uint16(i)
		pkt.Timestamp = uint32(i / 8 * 3000)
		if err := track.WriteRTP(pkt); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/viewer-packet")
}

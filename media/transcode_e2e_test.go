package media

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// needLibx264 skips t, saying why, when ffmpeg cannot encode H.264.
func needLibx264(t *testing.T) {
	t.Helper()
	needFFmpeg(t)
	out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output()
	if err != nil || !bytes.Contains(out, []byte(" libx264 ")) {
		t.Skipf("SKIP: this ffmpeg has no libx264 encoder (%v): the quality ladder cannot run here", err)
	}
}

// clip540 makes a 960x540 copy of the test clip with a key frame every
// second, so that a ladder of 480p and 360p applies to it.
func clip540(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "clip540.mp4")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", testClip(t),
		"-vf", "scale=-2:540", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "copy", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("making the 540p clip: %v: %s", err, b)
	}
	return out
}

// transcoders returns the PIDs of this process's children that are
// transcoders (ffmpeg with a scale filter), sorted.
func transcoders(t *testing.T) []int {
	t.Helper()
	me := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		st, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		f := statFields(st)
		if len(f) < 2 || f[1] != strconv.Itoa(me) || f[0] == "Z" {
			continue
		}
		cmdline, _ := os.ReadFile(d + "/cmdline")
		if bytes.Contains(cmdline, []byte("ffmpeg")) && bytes.Contains(cmdline, []byte("scale=-2:")) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
}

// statFields are the fields of /proc/<pid>/stat after the command's name:
// state, ppid, ... (utime is [11], stime [12]).
func statFields(st []byte) []string {
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(st[i+1:]))
}

// cpuTicks is the CPU time (user + system, clock ticks) of pid.
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("reading the transcoder's stat: %v", err)
	}
	f := statFields(st)
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func probeVideo(t *testing.T, url string) mediatest.ProbeStream {
	t.Helper()
	p := mediatest.Probe(t, url)
	v, ok := p.Stream("video")
	if !ok {
		t.Fatalf("%s: no video stream: %+v", url, p.Streams)
	}
	if _, ok := p.Stream("audio"); !ok {
		t.Errorf("%s: no audio stream: %+v", url, p.Streams)
	}
	return v
}

// TestQualityLadder: a live of 960x540 with the ladder 480p,360p,1080p
// gets 480p and 360p renditions (1080p is above it) that play over
// HTTP-FLV and HLS at their sizes with the source's sign, listed in the
// multivariant playlist; rendition names cannot be published; a killed
// ffmpeg is started again; with transcode-max 1 a second live plays at
// source quality alone; ending the live stops its ffmpeg.
func TestQualityLadder(t *testing.T) {
	needLibx264(t)
	clip := clip540(t)
	ladder, err := ParseLadder("480p,360p,1080p")
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, Config{Authorizer: &mediatest.SignAuth{}, PublisherGrace: -1,
		Transcode: ladder, TranscodeMax: 1, TranscodeThreads: 1})
	srv := newFLVServer(t, e)
	publish := func(name string) *mediatest.Proc {
		return startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip, "-c", "copy", "-f", "flv", rtmpURL(e, "/live/"+name+"?sign=good"))
	}

	pubA := publish("a")
	waitFor(t, 30*time.Second, "the renditions of a", func() bool { return len(e.Renditions("a")) == 2 })
	rends := e.Renditions("a")
	want := []struct {
		stream        string
		width, height int
	}{{"a_480p", 854, 480}, {"a_360p", 640, 360}}
	for i, w := range want {
		if r := rends[i]; r.Stream != w.stream || r.Height != w.height || r.Width != w.width {
			t.Errorf("rendition %d: %+v, want %+v", i, r, w)
		}
	}
	if e.hub.Stream("a_1080p") != nil {
		t.Error("a 1080p rendition of a 540p live")
	}

	// each rendition plays at its size, over HTTP-FLV and HLS, with the
	// source's sign, and not without
	for _, w := range want {
		for _, u := range []string{srv.URL + "/live/" + w.stream + ".flv?sign=good", srv.URL + "/live/" + w.stream + "/index.m3u8?sign=good"} {
			v := probeVideo(t, u)
			if v.CodecName != "h264" || v.Width != w.width || v.Height != w.height {
				t.Errorf("%s: video %+v, want h264 %dx%d", u, v, w.width, w.height)
			}
		}
		if code := httpStatus(t, srv.URL+"/live/"+w.stream+".flv"); code != http.StatusForbidden {
			t.Errorf("%s without a sign: HTTP %d, want 403", w.stream, code)
		}
	}

	// the multivariant playlist lists the source and both renditions
	res, err := http.Get(srv.URL + "/live/a/master.m3u8?sign=good")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	master := string(body)
	if res.StatusCode != http.StatusOK || strings.Count(master, "#EXT-X-STREAM-INF:") != 3 {
		t.Fatalf("master.m3u8: HTTP %d, want 3 variants:\n%s", res.StatusCode, master)
	}
	for _, s := range []string{"RESOLUTION=960x540", "RESOLUTION=854x480", "RESOLUTION=640x360", "BANDWIDTH=", `CODECS="avc1.`,
		"../a_480p/", "../a_360p/", "sign=good"} {
		if !strings.Contains(master, s) {
			t.Errorf("master.m3u8 lacks %q:\n%s", s, master)
		}
	}
	t.Logf("master.m3u8:\n%s", master)
	if strings.Contains(master, "1080") {
		t.Errorf("master.m3u8 lists a 1080p rendition:\n%s", master)
	}
	p := mediatest.Probe(t, srv.URL+"/live/a/master.m3u8?sign=good")
	heights := map[int]bool{}
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			heights[s.Height] = true
		}
	}
	if !heights[540] || !heights[480] || !heights[360] || len(heights) != 3 {
		t.Errorf("ffprobe of master.m3u8: video heights %v, want 540, 480 and 360", heights)
	}

	// a client cannot publish to a rendition's name
	pubC := publish("c_360p")
	pubC.WaitExit(t, 20*time.Second)
	if e.hub.Stream("c_360p") != nil {
		t.Error("a client published c_360p, a rendition's name")
	}

	// the CPU of the transcoder (one decode of 540p30, two scales and
	// encodes), from /proc
	pids := transcoders(t)
	if len(pids) != 1 {
		t.Fatalf("transcoders: %v, want one", pids)
	}
	pid := pids[0]
	t0, c0 := time.Now(), cpuTicks(t, pid)
	time.Sleep(4 * time.Second)
	c1, el := cpuTicks(t, pid), time.Since(t0)
	t.Logf("CPU of the transcoder (540p30 source → 480p + 360p, 1 thread each): %.0f%% of one core "+
		"(utime+stime of /proc/%d/stat: %d ticks of 10 ms in %v)", float64(c1-c0)*10/float64(el.Milliseconds())*100, pid, c1-c0, el.Round(time.Millisecond))

	// a crashed ffmpeg is started again and its renditions come back
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a new transcoder", func() bool {
		ps := transcoders(t)
		return len(ps) == 1 && ps[0] != pid
	})
	pid = transcoders(t)[0]
	waitFor(t, 30*time.Second, "the renditions back", func() bool { return len(e.Renditions("a")) == 2 })
	if v := probeVideo(t, srv.URL+"/live/a_360p.flv?sign=good"); v.Height != 360 {
		t.Errorf("a_360p after the restart: %+v", v)
	}

	// transcode-max 1: a second live gets no transcoder and plays at
	// source quality
	publish("b")
	waitLive(t, e, "b")
	waitFor(t, 10*time.Second, "b's video size", func() bool { st, _ := e.Stream("b"); return st.Height > 0 })
	time.Sleep(time.Second) // the transcoder's decision follows the size at once
	if r := e.Renditions("b"); len(r) != 0 || e.hub.Stream("b_480p") != nil || e.hub.Stream("b_360p") != nil {
		t.Errorf("b has renditions %v beyond transcode-max 1", r)
	}
	if ps := transcoders(t); len(ps) != 1 {
		t.Errorf("transcoders: %v, want one (a's)", ps)
	}
	if v := probeVideo(t, srv.URL+"/live/b.flv?sign=good"); v.Height != 540 {
		t.Errorf("b: %+v, want its 540p source", v)
	}

	// the live ends: its ffmpeg and renditions go
	pubA.Kill()
	waitFor(t, 15*time.Second, "the transcoder to exit", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return os.IsNotExist(err) && len(transcoders(t)) == 0
	})
	waitFor(t, 5*time.Second, "the renditions to end", func() bool {
		return e.hub.Stream("a_480p") == nil && e.hub.Stream("a_360p") == nil && len(e.Renditions("a")) == 0
	})
}

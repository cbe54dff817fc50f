package transcode

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// TestHungFFmpegRestartedThenGivenUp: an "ffmpeg" that reads nothing and
// makes nothing is killed after StallTimeout, started again MaxRestarts
// times, then given up, the live going on at source quality; none of its
// processes is left.
func TestHungFFmpegRestartedThenGivenUp(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	fake := filepath.Join(dir, "ffmpeg")
	// records its PID, then hangs without reading its input
	script := "#!/bin/sh\necho $$ >> " + pids + "\nexec sleep 600\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{Logger: mediatest.Logger(t), PublisherGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ladder, _ := ParseLadder("240p")
	m, err := New(Config{Hub: h, Renditions: ladder, FFmpeg: fake, MaxRestarts: 2, StallTimeout: 500 * time.Millisecond, Logger: mediatest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pub := mediatest.PublishClip(t, h, "live")
	mediatest.WaitLive(t, h, "live")
	m.Start(h.Stream("live"))

	started := func() []int {
		b, _ := os.ReadFile(pids)
		var out []int
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			out = append(out, n)
		}
		return out
	}
	// 1 start + 2 restarts (1 s and 2 s apart), then given up
	mediatest.WaitFor(t, 20*time.Second, "three starts", func() bool { return len(started()) == 3 })
	mediatest.WaitFor(t, 10*time.Second, "the manager to give up", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.jobs) == 0
	})
	time.Sleep(3500 * time.Millisecond) // longer than the next backoff
	if n := len(started()); n != 3 {
		t.Errorf("%d starts, want 3 (MaxRestarts 2)", n)
	}
	for _, pid := range started() {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("fake ffmpeg %d still running", pid)
		}
	}
	if h.Stream("live_240p") != nil {
		t.Error("a rendition without a transcoder")
	}
	if s := h.Stream("live"); s == nil || !s.Stats().Live {
		t.Error("the live did not go on")
	}
	pub.Kill()
}

package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestRunSmall(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("ffmpeg is required (make test installs it): %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	clip := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "clip.mp4")

	e := startEngine(t)
	mux := http.NewServeMux()
	mux.Handle("/live/", e.HTTPHandler())
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(e.Counters()) //nolint:errcheck
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, goPub := range []bool{false, true} {
		name := "ffmpeg"
		if goPub {
			name = "go"
		}
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := Run(ctx, Options{
				RTMPAddr:     e.RTMPAddr().String(),
				HTTPBase:     srv.URL,
				StatsURL:     srv.URL + "/stats",
				Clip:         clip,
				GoPublisher:  goPub,
				Steps:        []int{2, 6},
				FLVShare:     0.5,
				StepDuration: time.Second,
				ServerPID:    os.Getpid(),
				Out:          &out,
			})
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 2 || res[1].Connected != 6 || res[1].RTMP != 3 || res[1].FLV != 3 || res[1].TTFFP50 <= 0 || res[1].TTFFP50 > 2*time.Second {
				t.Errorf("results %+v", res)
			}
			if res[1].BytesPerViewerSec < 10000 || res[1].RSSBytes == 0 {
				t.Errorf("results %+v", res[1])
			}
			if !strings.Contains(out.String(), "ttff_p50") {
				t.Error("no header in the report")
			}
		})
	}
}

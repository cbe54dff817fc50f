package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
)

// testdataDir holds files made from testdata/clip.mp4 once per test run.
var testdataDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "webrtc-test-")
	if err != nil {
		panic(err)
	}
	testdataDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var makeOnce sync.Map // file name -> *sync.Once

// needFFmpeg skips the test when ffmpeg or ffprobe is missing.
func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed", b)
		}
	}
}

// testFile makes (once) a file of testdataDir with ffmpeg args that read
// ../../testdata/clip.mp4 ("IN") and write the file ("OUT").
func testFile(t testing.TB, name string, args ...string) string {
	t.Helper()
	needFFmpeg(t)
	out := filepath.Join(testdataDir, name)
	v, _ := makeOnce.LoadOrStore(name, &sync.Once{})
	v.(*sync.Once).Do(func() {
		full := []string{"-hide_banner", "-loglevel", "error", "-y"}
		for _, a := range args {
			switch a {
			case "IN":
				a = filepath.Join("..", "..", "testdata", "clip.mp4")
			case "OUT":
				a = out
			}
			full = append(full, a)
		}
		if b, err := exec.Command("ffmpeg", full...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", full, err, b)
		}
	})
	if _, err := os.Stat(out); err != nil {
		t.Fatalf("test file %s: %v", name, err)
	}
	return out
}

// clipNoB is the test clip as FLV, H.264 without B-frames + AAC.
func clipNoB(t testing.TB) string {
	return testFile(t, "nob.flv", "-i", "IN", "-c:v", "libx264", "-bf", "0", "-g", "30", "-preset", "veryfast",
		"-c:a", "copy", "-f", "flv", "OUT")
}

// clipB is the test clip as FLV as it is: H.264 main with B-frames + AAC.
func clipB(t testing.TB) string {
	return testFile(t, "b.flv", "-i", "IN", "-c", "copy", "-f", "flv", "OUT")
}

// readTags reads every tag of an FLV file.
func readTags(t testing.TB, path string) []flv.Tag {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := flv.Reader{R: f}
	var tags []flv.Tag
	for {
		tag, err := r.ReadTag()
		if errors.Is(err, io.EOF) {
			return tags
		}
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		tags = append(tags, tag)
	}
}

// feed writes tags to out at real time (speed 1) or faster, from the
// caller's goroutine, until they end or ctx is done.
func feed(ctx context.Context, out *Output, tags []flv.Tag, speed float64) {
	start := time.Now()
	for _, tag := range tags {
		at := start.Add(time.Duration(float64(tag.Timestamp) / speed * float64(time.Millisecond)))
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		}
		out.WritePacket(tag.Type, tag.Timestamp, tag.Body)
	}
}

// testLogger logs to the test at debug level with WEBRTC_DEBUG set.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("WEBRTC_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newTestServer starts a Server on loopback.
func newTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.UDPAddress == "" {
		cfg.UDPAddress = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// httpFront serves /live/<name>/whep and /live/<name>/whep/<id> for the
// outputs given, and /live/<name>/whip for inputs made by newHandler.
type httpFront struct {
	srv     *Server
	mu      sync.Mutex
	outputs map[string]*Output
	inputs  map[string]func() InputHandler
	ts      *httptest.Server
}

func newHTTPFront(t testing.TB, srv *Server) *httpFront {
	f := &httpFront{srv: srv, outputs: map[string]*Output{}, inputs: map[string]func() InputHandler{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/live/{name}/whep", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		out := f.outputs[r.PathValue("name")]
		f.mu.Unlock()
		if out == nil {
			http.NotFound(w, r)
			return
		}
		srv.ServeWHEP(w, r, out)
	})
	mux.HandleFunc("/live/{name}/whip", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		nh := f.inputs[r.PathValue("name")]
		f.mu.Unlock()
		if nh == nil {
			http.NotFound(w, r)
			return
		}
		srv.ServeWHIP(w, r, nh(), InputOptions{})
	})
	mux.HandleFunc("/live/{name}/{kind}/{id}", func(w http.ResponseWriter, r *http.Request) {
		srv.ServeSession(w, r, r.PathValue("id"))
	})
	f.ts = httptest.NewServer(mux)
	t.Cleanup(f.ts.Close)
	return f
}

func (f *httpFront) addOutput(name string, out *Output) string {
	f.mu.Lock()
	f.outputs[name] = out
	f.mu.Unlock()
	return f.ts.URL + "/live/" + name + "/whep"
}

func (f *httpFront) addInput(name string, nh func() InputHandler) string {
	f.mu.Lock()
	f.inputs[name] = nh
	f.mu.Unlock()
	return f.ts.URL + "/live/" + name + "/whip"
}

// probeStream is what ffprobe says of a file's streams.
type probeStream struct {
	CodecName    string `json:"codec_name"`
	CodecType    string `json:"codec_type"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	NbReadFrames string `json:"nb_read_frames"`
	SampleRate   string `json:"sample_rate"`
	Channels     int    `json:"channels"`
}

func ffprobe(t testing.TB, args ...string) []probeStream {
	t.Helper()
	full := append([]string{"-v", "error", "-count_frames", "-show_entries",
		"stream=codec_name,codec_type,width,height,nb_read_frames,sample_rate,channels", "-of", "json"}, args...)
	b, err := exec.Command("ffprobe", full...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("ffprobe %v: %v", args, err)
	}
	var res struct {
		Streams []probeStream `json:"streams"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	return res.Streams
}

// decodeErrors runs ffmpeg's decoder over a file and returns what it
// complains about.
func decodeErrors(t testing.TB, args ...string) string {
	t.Helper()
	full := append(append([]string{"-hide_banner", "-v", "error"}, args...), "-f", "null", "-")
	b, _ := exec.Command("ffmpeg", full...).CombinedOutput()
	return strings.TrimSpace(string(b))
}

package httpflv

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// newTestHub returns a hub logging to the test log, closed at the end of
// the test.
func newTestHub(t testing.TB, cfg hub.Config) *hub.Hub {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = mediatest.Logger(t)
	}
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// newFLVServer serves the streams of h at /live/<name>.flv.
func newFLVServer(t testing.TB, h *hub.Hub, cfg Config) *httptest.Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = mediatest.Logger(t)
	}
	fh := New(h, cfg)
	mux := http.NewServeMux()
	mux.Handle("/live/", fh)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(fh.Close)
	return srv
}

type denyAll struct{}

func (denyAll) AuthorizePublish(context.Context, hub.AuthRequest) error {
	return hub.Refusal("invalid sign")
}

func (denyAll) AuthorizePlay(context.Context, hub.AuthRequest) error {
	return hub.Refusal("invalid sign")
}

func TestHTTPFLVPlay(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h := newTestHub(t, hub.Config{})
	srv := newFLVServer(t, h, Config{})
	mediatest.PublishClip(t, h, "room2")
	mediatest.WaitLive(t, h, "room2")

	ss, err := mediatest.ProbeStreams(t, srv.URL+"/live/room2.flv")
	if err != nil {
		t.Fatal(err)
	}
	mediatest.CheckClipStreams(t, ss)
}

// TestHTTPFLVFirstFrame checks the response head and that a reader joining
// mid-stream gets metadata, sequence headers and a key frame at once.
func TestHTTPFLVFirstFrame(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h := newTestHub(t, hub.Config{})
	srv := newFLVServer(t, h, Config{})
	mediatest.PublishClip(t, h, "room3")
	mediatest.WaitLive(t, h, "room3")
	time.Sleep(1500 * time.Millisecond) // mid-GOP (GOP is 1 s)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/live/room3.flv?sign=x", nil)
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
		res.Header.Get("Content-Type") != "video/x-flv" || len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
		t.Fatalf("response %d %v %v", res.StatusCode, res.Header, res.TransferEncoding)
	}
	fr := &flv.Reader{R: res.Body}
	var order []string
	var firstKey time.Duration
	for len(order) < 6 {
		tag, err := fr.ReadTag()
		if err != nil {
			t.Fatal(err)
		}
		switch tag.Type {
		case flv.TagScript:
			order = append(order, "meta")
		case flv.TagAudio:
			a, err := flv.ParseAudioTag(tag.Body)
			if err != nil {
				t.Fatal(err)
			}
			if a.IsSequenceHeader() {
				order = append(order, "aseq")
			} else {
				order = append(order, "audio")
			}
		case flv.TagVideo:
			v, err := flv.ParseVideoTag(tag.Body)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case v.IsSequenceHeader():
				order = append(order, "vseq")
			case v.IsKeyFrame():
				order = append(order, "key")
				if firstKey == 0 {
					firstKey = time.Since(start)
				}
			default:
				order = append(order, "inter")
			}
		}
	}
	t.Logf("first tags %v, first key frame after %v", order, firstKey)
	if strings.Join(order[:4], ",") != "meta,vseq,aseq,key" {
		t.Errorf("first tags %v, want meta,vseq,aseq,key", order)
	}
	if firstKey == 0 || firstKey > 500*time.Millisecond {
		t.Errorf("first key frame after %v", firstKey)
	}
	if !fr.HasVideo || !fr.HasAudio {
		t.Errorf("FLV header flags audio=%v video=%v", fr.HasAudio, fr.HasVideo)
	}
}

func TestHTTPFLVErrors(t *testing.T) {
	h := newTestHub(t, hub.Config{Authorizer: denyAll{}})
	srv := newFLVServer(t, h, Config{})
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/live/nosuch.flv?sign=secret", http.StatusForbidden},
		{"GET", "/live/bad%2Fname.flv", http.StatusNotFound},
		{"GET", "/live/x.mp4", http.StatusNotFound},
		{"OPTIONS", "/live/x.flv", http.StatusNoContent},
		{"POST", "/live/x.flv", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != c.code {
			t.Errorf("%s %s: %d %q, want %d", c.method, c.path, res.StatusCode, body, c.code)
		}
		if res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s %s: no CORS header", c.method, c.path)
		}
		if strings.Contains(string(body), "secret") {
			t.Errorf("body leaks the query: %q", body)
		}
	}

	h2 := newTestHub(t, hub.Config{})
	srv2 := newFLVServer(t, h2, Config{})
	res, err := http.Get(srv2.URL + "/live/nosuch.flv")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown stream: %d", res.StatusCode)
	}
}

// TestSlowReader opens a reader that never reads: the publisher and a
// normal reader are not slowed down and the slow one is dropped.
func TestSlowReader(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h := newTestHub(t, hub.Config{ReaderQueue: 64, RingSize: 512})
	srv := newFLVServer(t, h, Config{WriteTimeout: 2 * time.Second, SocketSendBuffer: 32 << 10})
	mediatest.PublishClip(t, h, "slow")
	mediatest.WaitLive(t, h, "slow")

	// the slow reader: tiny receive buffer, never reads.
	addr := strings.TrimPrefix(srv.URL, "http://")
	d := net.Dialer{Control: nil}
	slow, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.(*net.TCPConn).SetReadBuffer(4096) //nolint:errcheck
	if _, err := slow.Write([]byte("GET /live/slow.flv HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}

	// a normal reader, counting bytes.
	res, err := http.Get(srv.URL + "/live/slow.flv")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got := make(chan int64, 1)
	started := time.Now()
	go func() {
		n, _ := io.Copy(io.Discard, io.LimitReader(res.Body, 1<<30))
		got <- n
	}()

	mediatest.WaitFor(t, 20*time.Second, "slow reader dropped", func() bool {
		return h.Counters().ReadersDropped >= 1
	})
	st := h.Stream("slow").Stats()
	if st.ReaderCount != 1 || st.Readers[hub.ProtocolHTTPFLV] != 1 {
		t.Errorf("readers after drop: %+v", st.Readers)
	}
	if !st.Live || st.BitrateIn < 100000 {
		t.Errorf("publisher slowed down: %+v", st)
	}
	time.Sleep(time.Second) // the normal reader goes on after the drop
	res.Body.Close()
	n := <-got
	// at the publisher's rate all along, less the start's few tenths of
	// a second (the drop's timing moves with the machine's load).
	if want := float64(st.BitrateIn) / 8 * (time.Since(started).Seconds() - 0.5) * 0.8; float64(n) < want {
		t.Errorf("normal reader got only %d bytes in %v, want %.0f at %d bit/s", n, time.Since(started).Round(time.Millisecond), want, st.BitrateIn)
	}
	t.Logf("normal reader got %d bytes; counters %+v", n, h.Counters())
}

// TestHTTPFLVOverHTTP2 covers the path for servers that cannot hijack the
// connection (HTTP/2): the stream goes through the ResponseWriter.
func TestHTTPFLVOverHTTP2(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h := newTestHub(t, hub.Config{})
	fh := New(h, Config{Logger: mediatest.Logger(t)})
	defer fh.Close()
	mux := http.NewServeMux()
	mux.Handle("/live/", fh)
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	mediatest.PublishClip(t, h, "h2")
	mediatest.WaitLive(t, h, "h2")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/live/h2.flv", nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("proto %s, headers %v", res.Proto, res.Header)
	}
	fr := &flv.Reader{R: res.Body}
	var video, key int
	for video < 10 {
		tag, err := fr.ReadTag()
		if err != nil {
			t.Fatal(err)
		}
		if tag.Type == flv.TagVideo {
			v, _ := flv.ParseVideoTag(tag.Body)
			if v.IsKeyFrame() {
				key++
			}
			video++
		}
	}
	if key == 0 {
		t.Error("no key frame")
	}
	st := h.Stream("h2").Stats()
	if st.Readers[hub.ProtocolHTTPFLV] != 1 {
		t.Errorf("readers %v", st.Readers)
	}
}

func FuzzParseHTTPFLVPath(f *testing.F) {
	f.Add("/live/room.flv")
	f.Add("room.flv")
	f.Add("/live/.flv")
	f.Fuzz(func(t *testing.T, p string) {
		name, err := parsePath(p)
		if err == nil && !hub.ValidStreamName(name) {
			t.Fatalf("accepted %q", name)
		}
	})
}

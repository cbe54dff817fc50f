package media

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
)

func newFLVServer(t testing.TB, e *Engine) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/live/", e.HTTPHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPFLVPlay(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{})
	srv := newFLVServer(t, e)
	publishClip(t, rtmpURL(e, "/live/room2"))
	waitLive(t, e, "room2")

	ss, err := ffprobe(t, srv.URL+"/live/room2.flv")
	if err != nil {
		t.Fatal(err)
	}
	checkClipStreams(t, ss)
}

// TestHTTPFLVFirstFrame checks the response head and that a reader joining
// mid-stream gets metadata, sequence headers and a key frame at once.
func TestHTTPFLVFirstFrame(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{})
	srv := newFLVServer(t, e)
	publishClip(t, rtmpURL(e, "/live/room3"))
	waitLive(t, e, "room3")
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
	e := newTestEngine(t, Config{Authorizer: denyAll{}})
	srv := newFLVServer(t, e)
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

	e2 := newTestEngine(t, Config{})
	srv2 := newFLVServer(t, e2)
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
	needFFmpeg(t)
	e := newTestEngine(t, Config{WriteTimeout: 2 * time.Second, ReaderQueue: 64, RingSize: 512, SocketSendBuffer: 32 << 10})
	srv := newFLVServer(t, e)
	publishClip(t, rtmpURL(e, "/live/slow"))
	waitLive(t, e, "slow")

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
	go func() {
		n, _ := io.Copy(io.Discard, io.LimitReader(res.Body, 1<<30))
		got <- n
	}()

	waitFor(t, 20*time.Second, "slow reader dropped", func() bool {
		return e.Counters().ReadersDropped >= 1
	})
	st, _ := e.Stream("slow")
	if st.ReaderCount != 1 || st.Readers[ProtocolHTTPFLV] != 1 {
		t.Errorf("readers after drop: %+v", st.Readers)
	}
	if !st.Live || st.BitrateIn < 100000 {
		t.Errorf("publisher slowed down: %+v", st)
	}
	res.Body.Close()
	n := <-got
	if n < 200000 {
		t.Errorf("normal reader got only %d bytes", n)
	}
	t.Logf("normal reader got %d bytes; counters %+v", n, e.Counters())
}

// TestHTTPFLVOverHTTP2 covers the path for servers that cannot hijack the
// connection (HTTP/2): the stream goes through the ResponseWriter.
func TestHTTPFLVOverHTTP2(t *testing.T) {
	needFFmpeg(t)
	e := newTestEngine(t, Config{})
	mux := http.NewServeMux()
	mux.Handle("/live/", e.HTTPHandler())
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	publishClip(t, rtmpURL(e, "/live/h2"))
	waitLive(t, e, "h2")

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
	st, _ := e.Stream("h2")
	if st.Readers[ProtocolHTTPFLV] != 1 {
		t.Errorf("readers %v", st.Readers)
	}
}

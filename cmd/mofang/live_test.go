package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mofang-live/mofang/store"
)

// freePort returns a free loopback TCP port.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required (make test installs it): %v", tool, err)
		}
	}
}

// clip is the test clip: 640x360 H.264 + AAC.
func clip(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "clip.mp4")
}

// startFFmpeg runs ffmpeg with args until the test ends.
func startFFmpeg(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin"}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// probe runs ffprobe on url and returns the codecs and size it sees.
func probe(t *testing.T, url string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-hide_banner", "-loglevel", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json"}, extra...)
	out, err := exec.CommandContext(ctx, "ffprobe", append(args, url)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var r struct {
		Streams []struct {
			Codec  string `json:"codec_name"`
			Width  int    `json:"width"`
			Height int    `json:"height"`
		} `json:"streams"`
	}
	json.Unmarshal(out, &r)
	var parts []string
	for _, s := range r.Streams {
		if s.Width > 0 {
			parts = append(parts, fmt.Sprintf("%s %dx%d", s.Codec, s.Width, s.Height))
		} else {
			parts = append(parts, s.Codec)
		}
	}
	// Containers order their tracks differently: compare video first.
	slices.SortFunc(parts, func(a, b string) int { return strings.Compare(b, a) })
	return strings.Join(parts, ", ")
}

// get returns the body of a 200 response to GET url.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// probeDuration returns the duration ffprobe reads of a media URL.
func probeDuration(t *testing.T, url string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-hide_banner", "-loglevel", "error", "-show_entries", "format=duration",
		"-of", "default=nw=1:nk=1", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var d float64
	fmt.Sscanf(strings.TrimSpace(string(out)), "%g", &d)
	return d
}

type listItem struct {
	Name          string `json:"name"`
	Status        bool   `json:"status"`
	ClientsNumber int    `json:"clients_number"`
	RoomStatus    int    `json:"room_status"`
	User          struct {
		IP string `json:"ip"`
	} `json:"user"`
}

// roomState returns the room of a stream as Live.stream.list shows it.
func roomState(t *testing.T, url, tok, stream string) listItem {
	t.Helper()
	r := rpcCall(t, url, tok, "Live.stream.list", map[string]any{})
	b, _ := json.Marshal(r["stream_list"])
	var items []listItem
	json.Unmarshal(b, &items)
	for _, it := range items {
		if it.Name == stream {
			return it
		}
	}
	t.Fatalf("stream %s not listed", stream)
	return listItem{}
}

// eventually polls cond for up to d.
// makeAdmin makes the user called name an admin in the SQLite database of
// the service whose data folder is data.
func makeAdmin(t *testing.T, data, name string) {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(data, "mofang.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetAdmin(context.Background(), u.ID, true); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLiveEndToEnd is the whole path a MoFang user takes: a room created
// through Live.stream, ffmpeg publishing to its signed RTMP URL, viewers
// over RTMP and HTTP-FLV, and Live.stream.list following all of it.
func TestLiveEndToEnd(t *testing.T) {
	needFFmpeg(t)
	rtmpPort, rtspPort := freePort(t), freePort(t)
	data := t.TempDir()
	logs := &syncBuffer{}
	url, stop := startServeLogs(t, data, logs, "--rtmp", fmt.Sprintf("127.0.0.1:%d", rtmpPort),
		"--rtsp", fmt.Sprintf("127.0.0.1:%d", rtspPort), "--public-host", "127.0.0.1", "--log-level", "debug")
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	httpHost := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/")
	for _, path := range []string{"healthz", "readyz"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/%s: HTTP %d", path, resp.StatusCode)
		}
	}

	reg := rpcCall(t, url, "", "User.register", map[string]any{"username": "streamer", "password": "streamer-pass"})
	tok := reg["data"].(map[string]any)["access_token"].(string)
	room := rpcCall(t, url, tok, "Live.stream", map[string]any{"room_name": "e2e"})["data"].(map[string]any)
	stream := room["stream_name"].(string)
	pub := room["publish"].(map[string]any)
	publishURL := pub["url"].(string)
	if !strings.HasPrefix(publishURL, fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s?sign=", rtmpPort, stream)) {
		t.Fatalf("publish URL %q", publishURL)
	}

	// Refused publishers: no sign, a forged sign, an unknown stream.
	base := fmt.Sprintf("rtmp://127.0.0.1:%d/live/", rtmpPort)
	for name, u := range map[string]string{
		"no sign":        base + stream,
		"wrong sign":     base + stream + "?sign=4102444800-00000000000000000000000000000000",
		"unknown stream": base + "room_nobody?sign=" + pub["sign"].(string),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip(t),
			"-t", "2", "-c", "copy", "-f", "flv", u).CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut {
			t.Fatalf("%s: publish was not refused promptly (err %v): %s", name, err, out)
		}
	}
	if st := roomState(t, url, tok, stream); st.Status {
		t.Fatal("a refused publisher made the room live")
	}

	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", publishURL)
	// The room's stored status follows the stream's start a moment later.
	eventually(t, 15*time.Second, "room live", func() bool {
		st := roomState(t, url, tok, stream)
		return st.Status && st.RoomStatus == 1
	})
	st := roomState(t, url, tok, stream)
	if st.User.IP != "127.0.0.1" || st.ClientsNumber != 0 || st.RoomStatus != 1 {
		t.Fatalf("live room: %+v", st)
	}

	read := rpcCall(t, url, tok, "Live.stream.read", map[string]any{"room_id": room["room_id"]})["data"].(map[string]any)
	play := read["play"].(map[string]any)
	flv := play["flv"].(string)
	if !strings.HasPrefix(flv, "http://127.0.0.1:"+strings.Split(httpHost, ":")[1]+"/live/"+stream+".flv?sign=") {
		t.Fatalf("flv URL %q", flv)
	}
	rtsp := play["rtsp"].(string)
	if !strings.HasPrefix(rtsp, fmt.Sprintf("rtsp://127.0.0.1:%d/live/%s?sign=", rtspPort, stream)) {
		t.Fatalf("rtsp URL %q", rtsp)
	}
	for proto, u := range map[string]string{"rtmp": play["rtmp"].(string), "http-flv": flv, "rtsp": rtsp} {
		var extra []string
		if proto == "rtsp" {
			extra = []string{"-rtsp_transport", "tcp"}
		}
		if got := probe(t, u, extra...); got != "h264 640x360, aac" {
			t.Fatalf("ffprobe over %s sees %q", proto, got)
		}
	}

	// Four viewers: two over RTMP, one over HTTP-FLV, one over RTSP.
	var viewers []*exec.Cmd
	for _, args := range [][]string{{"-i", play["rtmp"].(string)}, {"-i", play["rtmp"].(string)}, {"-i", flv}, {"-rtsp_transport", "tcp", "-i", rtsp}} {
		viewers = append(viewers, startFFmpeg(t, append(args, "-c", "copy", "-f", "null", "-")...))
	}
	eventually(t, 10*time.Second, "4 viewers counted", func() bool { return roomState(t, url, tok, stream).ClientsNumber == 4 })

	// The admin view agrees with the list and with what is connected.
	makeAdmin(t, data, "streamer")
	var streams struct {
		Data struct {
			Streams []struct {
				Name        string         `json:"name"`
				Live        bool           `json:"live"`
				ReaderCount int            `json:"reader_count"`
				Readers     map[string]int `json:"readers"`
				VideoCodec  string         `json:"video_codec"`
				Width       int            `json:"width"`
				Publisher   struct {
					IP       string `json:"ip"`
					Protocol string `json:"protocol"`
				} `json:"publisher"`
			} `json:"streams"`
		} `json:"data"`
	}
	remarshal(t, rpcCall(t, url, tok, "Admin.stream.list", map[string]any{}), &streams)
	if len(streams.Data.Streams) != 1 {
		t.Fatalf("Admin.stream.list: %+v", streams)
	}
	as := streams.Data.Streams[0]
	if as.Name != stream || !as.Live || as.ReaderCount != 4 || as.Readers["rtmp"] != 2 || as.Readers["http-flv"] != 1 ||
		as.Readers["rtsp"] != 1 || as.VideoCodec != "h264" || as.Width != 640 || as.Publisher.IP != "127.0.0.1" || as.Publisher.Protocol != "rtmp" {
		t.Fatalf("Admin.stream.list stream: %+v", as)
	}
	var clients struct {
		Data struct {
			Clients []struct {
				ID       string `json:"id"`
				Role     string `json:"role"`
				Protocol string `json:"protocol"`
			} `json:"clients"`
		} `json:"data"`
	}
	remarshal(t, rpcCall(t, url, tok, "Admin.client.list", map[string]any{"stream": stream}), &clients)
	roles := map[string]int{}
	for _, c := range clients.Data.Clients {
		roles[c.Role+"/"+c.Protocol]++
	}
	if len(clients.Data.Clients) != 5 || roles["publish/rtmp"] != 1 || roles["play/rtmp"] != 2 || roles["play/http-flv"] != 1 || roles["play/rtsp"] != 1 {
		t.Fatalf("Admin.client.list: %v", roles)
	}
	for _, v := range viewers {
		v.Process.Kill()
		v.Wait()
	}
	start := time.Now()
	eventually(t, 2*time.Second, "viewers gone", func() bool { return roomState(t, url, tok, stream).ClientsNumber == 0 })
	t.Logf("viewers gone from the list %v after they were killed", time.Since(start).Round(time.Millisecond))

	// Low-Latency HLS: ffprobe plays the live playlist; a player counts
	// as a viewer while it fetches and stops counting a few seconds after.
	hlsURL := play["hls"].(string)
	if got := probe(t, hlsURL); got != "h264 640x360, aac" {
		t.Fatalf("ffprobe over HLS sees %q", got)
	}
	// index.m3u8 lists the media playlist, which has the parts.
	mediaPlaylist := ""
	for _, line := range strings.Split(get(t, hlsURL), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			mediaPlaylist = strings.TrimSpace(line)
			break
		}
	}
	hlsBase := hlsURL[:strings.LastIndex(hlsURL, "/")+1]
	if pl := get(t, hlsBase+mediaPlaylist); !strings.Contains(pl, "#EXT-X-PART:") || !strings.Contains(pl, "#EXT-X-PRELOAD-HINT") {
		t.Fatalf("LL-HLS media playlist %s:\n%s", mediaPlaylist, pl)
	}
	if n := roomState(t, url, tok, stream).ClientsNumber; n < 1 {
		t.Fatalf("HLS players counted: %d", n)
	}
	eventually(t, 10*time.Second, "HLS players gone", func() bool { return roomState(t, url, tok, stream).ClientsNumber == 0 })

	// Metrics parse as Prometheus text and follow the traffic.
	metrics := scrape(t, url+"metrics")
	if metrics["mofang_media_bytes_total"] <= 0 || metrics["mofang_rpc_calls_total"] < 10 || metrics["mofang_media_streams"] != 1 {
		t.Fatalf("metrics: bytes %v, calls %v, streams %v", metrics["mofang_media_bytes_total"], metrics["mofang_rpc_calls_total"], metrics["mofang_media_streams"])
	}

	// A banned room's publisher is cut off and cannot come back.
	roomID := room["room_id"]
	if r := rpcCall(t, url, tok, "Admin.room.ban", map[string]any{"room_id": roomID}); r["errno"] != float64(1000) {
		t.Fatalf("ban: %v", r)
	}
	eventually(t, 5*time.Second, "banned room not live", func() bool { return !roomState(t, url, tok, stream).Status })

	// The publish session that the ban ended was recorded: its row is
	// right and ffprobe plays its replay, over HLS and as one MP4.
	var recs struct {
		Data struct {
			Records []struct {
				ID       int64   `json:"id"`
				Status   string  `json:"status"`
				Duration float64 `json:"duration"`
				Width    int     `json:"width"`
				HLS      string  `json:"hls"`
				MP4      string  `json:"mp4"`
			} `json:"records"`
		} `json:"data"`
	}
	eventually(t, 15*time.Second, "recording finished", func() bool {
		remarshal(t, rpcCall(t, url, tok, "Live.record.list", map[string]any{"room_id": room["room_id"]}), &recs)
		return len(recs.Data.Records) == 1 && recs.Data.Records[0].Status == "complete"
	})
	rec := recs.Data.Records[0]
	if rec.Width != 640 || rec.Duration < 2 {
		t.Fatalf("recording row: %+v", rec)
	}
	for _, u := range []string{rec.HLS, rec.MP4} {
		if got := probe(t, u); got != "h264 640x360, aac" {
			t.Fatalf("ffprobe of the replay %s sees %q", u, got)
		}
		if d := probeDuration(t, u); d < rec.Duration-1.1 || d > rec.Duration+1.1 {
			t.Fatalf("replay %s lasts %.2f s, the row says %.2f s", u, d, rec.Duration)
		}
	}
	if resp, err := http.Get(strings.Split(rec.MP4, "?")[0]); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("replay without a sign: HTTP %d, want 403", resp.StatusCode)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip(t),
		"-t", "2", "-c", "copy", "-f", "flv", publishURL).CombinedOutput()
	cancel()
	if err == nil {
		t.Fatalf("a banned room took a publisher: %s", out)
	}
	if r := rpcCall(t, url, tok, "Admin.room.unban", map[string]any{"room_id": roomID}); r["errno"] != float64(1000) {
		t.Fatalf("unban: %v", r)
	}
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", publishURL)
	eventually(t, 15*time.Second, "live again after unban", func() bool { return roomState(t, url, tok, stream).Status })
	// Kicking the stream ends it at once.
	if r := rpcCall(t, url, tok, "Admin.stream.kick", map[string]any{"stream": stream}); r["errno"] != float64(1000) {
		t.Fatalf("kick: %v", r)
	}
	eventually(t, 5*time.Second, "kicked stream not live", func() bool { return !roomState(t, url, tok, stream).Status })

	// A stopped room takes no publisher.
	if r := rpcCall(t, url, tok, "Live.stream.status", map[string]any{"room_id": roomID, "type": "stop"}); r["errno"] != float64(1000) {
		t.Fatalf("stop: %v", r)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 15*time.Second)
	out, err = exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", clip(t),
		"-t", "2", "-c", "copy", "-f", "flv", publishURL).CombinedOutput()
	cancel()
	if err == nil || !strings.Contains(string(out), "ended") {
		t.Fatalf("a stopped room took a publisher (err %v): %s", err, out)
	}

	// Shutting down (what SIGTERM does) during a publish: the service
	// ends within its bound, the room is left not live and the recording
	// is complete and playable.
	reg2 := rpcCall(t, url, "", "User.register", map[string]any{"username": "second", "password": "second-pass"})
	tok2 := reg2["data"].(map[string]any)["access_token"].(string)
	room2 := rpcCall(t, url, tok2, "Live.stream", map[string]any{"room_name": "until shutdown"})["data"].(map[string]any)
	stream2 := room2["stream_name"].(string)
	startFFmpeg(t, "-re", "-stream_loop", "-1", "-i", clip(t), "-c", "copy", "-f", "flv", room2["publish"].(map[string]any)["url"].(string))
	eventually(t, 15*time.Second, "second room live", func() bool { return roomState(t, url, tok2, stream2).Status })
	time.Sleep(3 * time.Second) // record a few seconds
	start = time.Now()
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	stopped = true
	if d := time.Since(start); d > 12*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	st2, err := store.Open(context.Background(), "sqlite:"+filepath.Join(data, "mofang.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	r2, err := st2.RoomByName(context.Background(), stream2)
	if err != nil || r2.Status != store.RoomIdle {
		t.Fatalf("room after shutdown: status %d, %v; want not started", r2.Status, err)
	}
	records, _, err := st2.Records(context.Background(), r2.ID, 0, 10)
	if err != nil || len(records) != 1 || records[0].Status != store.RecordComplete || records[0].DurationMS < 2000 {
		t.Fatalf("recording of the live cut by the shutdown: %+v, %v\nlogs:\n%s", records, err, logs.String())
	}
	playlist := filepath.Join(data, "recordings", filepath.FromSlash(records[0].Path), "index.m3u8")
	if got := probe(t, playlist, "-allowed_extensions", "ALL"); got != "h264 640x360, aac" {
		t.Fatalf("ffprobe of the recording on disk sees %q", got)
	}
	if d := probeDuration(t, playlist); d < float64(records[0].DurationMS)/1000-1.1 {
		t.Fatalf("recording on disk lasts %.2f s, the row says %d ms", d, records[0].DurationMS)
	}

	// No secret reached the logs: passwords, tokens, signs.
	text := logs.String()
	if !strings.Contains(text, stream) {
		t.Fatalf("the logs do not mention the stream at all:\n%s", text)
	}
	for name, secret := range map[string]string{
		"password": "streamer-pass", "access token": tok, "publish sign": pub["sign"].(string),
		"play sign": play["sign"].(string), "sign param": "sign=",
	} {
		if strings.Contains(text, secret) {
			t.Errorf("the logs hold the %s", name)
		}
	}
}

// remarshal decodes a generic result into out.
func remarshal(t *testing.T, v any, out any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// scrape reads Prometheus text from url and sums each family's samples.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics are not Prometheus text: %v", err)
	}
	sums := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			switch {
			case m.Counter != nil:
				sums[name] += m.Counter.GetValue()
			case m.Gauge != nil:
				sums[name] += m.Gauge.GetValue()
			}
		}
	}
	return sums
}

// syncBuffer is a bytes.Buffer safe for the service's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

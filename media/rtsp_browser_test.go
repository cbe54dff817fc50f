package media

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// mpegtsJS is the mpegts.js the pages bundle, installed by `npm ci` in
// cmd/mofang/web; the test is skipped without it.
func mpegtsJS(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "cmd", "mofang", "web", "node_modules", "mpegts.js", "dist", "mpegts.js")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("the browser test needs mpegts.js (cd cmd/mofang/web && npm ci): %v", err)
	}
	return p
}

// chromium is Debian's chromium, or $MOFANG_CHROMIUM.
func chromium(t *testing.T) string {
	t.Helper()
	p := os.Getenv("MOFANG_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("the browser test needs Chromium (apt-get install chromium, or set MOFANG_CHROMIUM): %v", err)
	}
	return p
}

// playerPage plays /live/<name>.flv with mpegts.js, as the pages do, and
// keeps its errors in window.errs.
const playerPage = `<!doctype html><meta charset=utf-8>
<video id=v muted playsinline></video>
<script src="/mpegts.js"></script>
<script>
window.errs = [];
const v = document.getElementById('v');
v.addEventListener('error', () => errs.push('media element: ' + (v.error && v.error.code + ' ' + v.error.message)));
const p = mpegts.createPlayer({type: 'flv', isLive: true, hasVideo: false, hasAudio: true,
	url: location.origin + '/live/%s.flv'}, {enableStashBuffer: false});
p.on(mpegts.Events.ERROR, (type, detail, info) => errs.push('mpegts.js: ' + type + ' ' + detail + ' ' + JSON.stringify(info)));
p.attachMediaElement(v);
p.load();
v.play().catch(e => errs.push('play: ' + e));
window.player = p;
</script>`

// TestRTSPOpusBrowser plays Opus published over RTSP in Chromium over
// HTTP-FLV with mpegts.js (the pages' player): the audio must decode and
// play with the right sample rate and channels.
func TestRTSPOpusBrowser(t *testing.T) {
	needFFmpeg(t)
	js := mpegtsJS(t)
	browser := chromium(t)
	e := newTestEngine(t, Config{})
	publishOpusRTSP(t, e, "opusweb", 2)

	mux := http.NewServeMux()
	mux.Handle("/live/", e.HTTPHandler())
	mux.HandleFunc("/mpegts.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, js) })
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, playerPage, "opusweb")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
	)
	defer cancelAlloc()
	tctx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	chromedp.ListenTarget(tctx, func(ev any) {
		switch ev := ev.(type) {
		case *cdpruntime.EventExceptionThrown:
			t.Logf("page exception: %s", ev.ExceptionDetails.Error())
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.APITypeError || ev.Type == cdpruntime.APITypeWarning {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				t.Logf("console %s: %s", ev.Type, strings.Join(parts, " "))
			}
		}
	})
	if err := chromedp.Run(tctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("starting %s: %v", browser, err)
	}

	type state struct {
		Time     float64  `json:"time"`
		Decoded  int      `json:"decoded"`
		Rate     int      `json:"rate"`
		Channels int      `json:"channels"`
		Errs     []string `json:"errs"`
	}
	var st state
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := chromedp.Run(tctx, chromedp.Evaluate(`({time: v.currentTime, decoded: v.webkitAudioDecodedByteCount || 0,
			rate: (player.mediaInfo && player.mediaInfo.audioSampleRate) || 0,
			channels: (player.mediaInfo && player.mediaInfo.audioChannelCount) || 0, errs: errs})`, &st))
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Errs) > 0 {
			t.Fatalf("playback failed: %+v", st)
		}
		if st.Time > 2 && st.Decoded > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not playing after 30 s: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st.Rate != 48000 || st.Channels != 2 {
		t.Errorf("player sees %d Hz, %d channels; want 48000 Hz, 2 channels", st.Rate, st.Channels)
	}
}

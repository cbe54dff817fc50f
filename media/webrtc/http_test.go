package webrtc

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/mofang-live/mofang/media/flv"
	"github.com/mofang-live/mofang/media/webrtc/client"
)

// makeOffer returns a complete recvonly (or sendonly) offer for the given
// codecs, made by pion.
func makeOffer(t testing.TB, dir webrtc.RTPTransceiverDirection, codecs ...webrtc.RTPCodecParameters) string {
	t.Helper()
	me := &webrtc.MediaEngine{}
	kinds := map[webrtc.RTPCodecType]bool{}
	for _, c := range codecs {
		kind := webrtc.RTPCodecTypeVideo
		if strings.HasPrefix(c.MimeType, "audio/") {
			kind = webrtc.RTPCodecTypeAudio
		}
		if err := me.RegisterCodec(c, kind); err != nil {
			t.Fatal(err)
		}
		kinds[kind] = true
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if kinds[k] {
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
				t.Fatal(err)
			}
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

var (
	codecVP8 = webrtc.RTPCodecParameters{PayloadType: 96,
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}
	codecH264 = webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}}
	codecOpus = webrtc.RTPCodecParameters{PayloadType: 111,
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}}
	codecPCMU = webrtc.RTPCodecParameters{PayloadType: 0,
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}}
)

// feedStart feeds the first second of a clip at once, so the output knows
// its codecs and has a key frame.
func feedStart(out *Output, tags []flv.Tag) {
	for _, tag := range tags {
		if tag.Timestamp > 1000 {
			return
		}
		out.WritePacket(tag.Type, tag.Timestamp, tag.Body)
	}
}

func post(t testing.TB, url, contentType, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestWHEPRefusals: garbage, wrong content type, too large, no usable
// codec and a B-frame stream get clear 4xx answers and leave nothing
// behind.
func TestWHEPRefusals(t *testing.T) {
	srv := newTestServer(t, Config{})
	front := newHTTPFront(t, srv)
	good := srv.NewOutput(OutputConfig{Name: "good"})
	defer good.Close()
	feedStart(good, readTags(t, clipNoB(t)))
	bframes := srv.NewOutput(OutputConfig{Name: "b"})
	defer bframes.Close()
	feedStart(bframes, readTags(t, clipB(t)))
	goodURL := front.addOutput("good", good)
	bURL := front.addOutput("b", bframes)

	if good.HasBFrames() {
		t.Error("the clip re-encoded with -bf 0 is reported with B-frames")
	}
	if !bframes.HasBFrames() {
		t.Error("the clip with B-frames is not reported so")
	}

	offer := makeOffer(t, webrtc.RTPTransceiverDirectionRecvonly, codecH264, codecOpus)
	for _, c := range []struct {
		name, url, ctype, body string
		code                   int
		want                   string
	}{
		{"garbage", goodURL, "application/sdp", "hello, world", 400, "invalid SDP offer"},
		{"empty", goodURL, "application/sdp", "", 400, "invalid SDP offer"},
		{"no fingerprint", goodURL, "application/sdp", dropLines(offer, "a=fingerprint"), 400, "fingerprint"},
		{"no ufrag", goodURL, "application/sdp", dropLines(offer, "a=ice-ufrag"), 400, "ice-ufrag"},
		{"wrong type", goodURL, "text/plain", offer, 415, "application/sdp"},
		{"too large", goodURL, "application/sdp", offer + strings.Repeat("a=x-pad:0\r\n", MaxOfferSize/10), 413, "larger"},
		{"VP8 only", goodURL, "application/sdp", makeOffer(t, webrtc.RTPTransceiverDirectionRecvonly, codecVP8), 422, "H.264"},
		{"PCMU only", goodURL, "application/sdp", makeOffer(t, webrtc.RTPTransceiverDirectionRecvonly, codecPCMU), 422, "no usable codec"},
		{"B-frames", bURL, "application/sdp", offer, 409, "bframes=0"},
	} {
		resp, body := post(t, c.url, c.ctype, c.body)
		if resp.StatusCode != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, resp.StatusCode, strings.TrimSpace(body), c.code, c.want)
		}
	}
	// the same through the library API, with typed errors
	for _, c := range []struct {
		out   *Output
		offer string
		want  error
	}{
		{good, "v=0\r\ngarbage", ErrBadOffer},
		{good, makeOffer(t, webrtc.RTPTransceiverDirectionRecvonly, codecVP8), ErrNoCodec},
		{bframes, offer, ErrBFrames},
	} {
		_, _, err := c.out.NewSession(context.Background(), c.offer, netip.AddrPort{})
		if !errors.Is(err, c.want) {
			t.Errorf("NewSession: %v, want %v", err, c.want)
		}
	}
	if n := srv.Sessions(); n != 0 {
		t.Errorf("%d sessions left after refusals", n)
	}
	// a player with H.264 and Opus gets the good stream
	resp, body := post(t, goodURL, "application/sdp", offer)
	if resp.StatusCode != 201 || !strings.HasPrefix(resp.Header.Get("Location"), "/live/good/whep/") ||
		resp.Header.Get("ETag") == "" || !strings.Contains(body, "a=sendonly") {
		t.Errorf("good offer: %d Location %q ETag %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("ETag"))
	}
}

func dropLines(sdp, prefix string) string {
	var out []string
	for _, l := range strings.Split(sdp, "\r\n") {
		if !strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\r\n")
}

// TestWHIPRefusals: an offer that sends nothing usable is refused.
func TestWHIPRefusals(t *testing.T) {
	srv := newTestServer(t, Config{})
	front := newHTTPFront(t, srv)
	url := front.addInput("pub", func() InputHandler { return &flvHandler{closed: make(chan struct{})} })
	for _, c := range []struct {
		name, body string
		code       int
	}{
		{"garbage", "\x00\x01garbage", 400},
		{"VP8 only", makeOffer(t, webrtc.RTPTransceiverDirectionSendonly, codecVP8), 422},
		{"receive only", makeOffer(t, webrtc.RTPTransceiverDirectionRecvonly, codecH264, codecOpus), 422},
	} {
		resp, body := post(t, url, "application/sdp", c.body)
		if resp.StatusCode != c.code {
			t.Errorf("%s: %d %q, want %d", c.name, resp.StatusCode, strings.TrimSpace(body), c.code)
		}
	}
	if n := srv.Sessions(); n != 0 {
		t.Errorf("%d sessions left after refusals", n)
	}
}

// TestSessionResource: DELETE of an unknown id or of a session under
// another stream's URL is 404; PATCH takes trickle fragments (204), refuses
// garbage (400), ICE restarts (422) and a stale ETag (412); OPTIONS
// answers CORS and the ICE servers.
func TestSessionResource(t *testing.T) {
	srv := newTestServer(t, Config{ICEServers: []ICEServer{
		{URLs: []string{"stun:stun.example.net:3478"}},
		{URLs: []string{"turn:turn.example.net:3478?transport=udp"}, Username: "u", Credential: "p"},
	}})
	front := newHTTPFront(t, srv)
	out := srv.NewOutput(OutputConfig{Name: "s"})
	defer out.Close()
	feedStart(out, readTags(t, clipNoB(t)))
	url := front.addOutput("s", out)
	other := srv.NewOutput(OutputConfig{Name: "other"})
	defer other.Close()
	front.addOutput("other", other)

	offer := makeOffer(t, webrtc.RTPTransceiverDirectionRecvonly, codecH264, codecOpus)
	resp, _ := post(t, url, "application/sdp", offer)
	if resp.StatusCode != 201 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	loc := front.ts.URL + resp.Header.Get("Location")
	etag := resp.Header.Get("ETag")
	id := loc[strings.LastIndex(loc, "/")+1:]
	if links := resp.Header.Values("Link"); len(links) != 2 ||
		links[0] != `<stun:stun.example.net:3478>; rel="ice-server"` ||
		!strings.Contains(links[1], `username="u"; credential="p"; credential-type="password"`) {
		t.Errorf("Link headers %q", links)
	}

	req := func(method, u, ctype, body string, hdr ...string) int {
		r, _ := http.NewRequest(method, u, strings.NewReader(body))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		resp, _ := do(t, r)
		return resp.StatusCode
	}
	ufrag := sdpLine(offer, "a=ice-ufrag:")
	cand := "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"
	for _, c := range []struct {
		name, method, url, ctype, body string
		hdr                            []string
		code                           int
	}{
		{"options", "OPTIONS", loc, "", "", nil, 204},
		{"patch candidate", "PATCH", loc, ContentTypeSDPFrag, "a=mid:0\r\n" + cand, []string{"If-Match", etag}, 204},
		{"patch end", "PATCH", loc, ContentTypeSDPFrag, "a=end-of-candidates\r\n", nil, 204},
		{"patch mdns", "PATCH", loc, ContentTypeSDPFrag, "a=candidate:1 1 udp 2130706431 abc-def.local 40000 typ host\r\n", nil, 204},
		{"patch garbage", "PATCH", loc, ContentTypeSDPFrag, "\x00garbage\r\n", nil, 400},
		{"patch bad candidate", "PATCH", loc, ContentTypeSDPFrag, "a=candidate:1 1 udp x 127.0.0.1 40000 typ host\r\n", nil, 400},
		{"patch restart", "PATCH", loc, ContentTypeSDPFrag, "a=ice-ufrag:ABCD\r\na=ice-pwd:0123456789012345678901\r\n" + cand, []string{"If-Match", "*"}, 422},
		{"patch same ufrag", "PATCH", loc, ContentTypeSDPFrag, ufrag + "\r\na=ice-pwd:0123456789012345678901\r\n" + cand, nil, 204},
		{"patch stale etag", "PATCH", loc, ContentTypeSDPFrag, cand, []string{"If-Match", `"nope"`}, 412},
		{"patch wrong type", "PATCH", loc, "application/sdp", cand, nil, 415},
		{"get", "GET", loc, "", "", nil, 405},
		{"delete unknown", "DELETE", url + "/0123456789abcdef0123456789abcdef", "", "", nil, 404},
		{"delete under another stream", "DELETE", front.ts.URL + "/live/other/whep/" + id, "", "", nil, 404},
		{"delete", "DELETE", loc, "", "", nil, 200},
		{"delete again", "DELETE", loc, "", "", nil, 404},
		{"patch after delete", "PATCH", loc, ContentTypeSDPFrag, cand, nil, 404},
	} {
		if code := req(c.method, c.url, c.ctype, c.body, c.hdr...); code != c.code {
			t.Errorf("%s: %d, want %d", c.name, code, c.code)
		}
	}
	if n := srv.Sessions(); n != 0 {
		t.Errorf("%d sessions left", n)
	}
	// OPTIONS on the endpoint: CORS, Accept-Post, the ICE servers
	r, _ := http.NewRequest(http.MethodOptions, url, nil)
	resp, _ = do(t, r)
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		resp.Header.Get("Accept-Post") != "application/sdp" || len(resp.Header.Values("Link")) != 2 {
		t.Errorf("OPTIONS: %d %v", resp.StatusCode, resp.Header)
	}
}

// sdpLine returns the first line of sdp starting with prefix.
func sdpLine(sdp, prefix string) string {
	for _, l := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestTrickle: a player that sends its candidates in a PATCH after the
// offer plays.
func TestTrickle(t *testing.T) {
	srv := newTestServer(t, Config{})
	out := srv.NewOutput(OutputConfig{Name: "t"})
	defer out.Close()
	url := newHTTPFront(t, srv).addOutput("t", out)
	tags := readTags(t, clipNoB(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go feed(ctx, out, tags, 1)
	p, err := client.Play(ctx, client.PlayerConfig{URL: url, Trickle: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if v, a, _, _ := p.Packets(); v > 50 && a > 10 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	v, a, _, _ := p.Packets()
	t.Fatalf("received %d video and %d audio packets", v, a)
}

package srt

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/internal/mediatest"
)

// The publishers of these tests are ffmpeg over SRT, or mediatest.Publish
// (an RTMP publisher's messages, published in process) for the readers'
// tests; readers are ffprobe and ffmpeg over SRT, or gosrt's client.

// probeSRT reads url with ffprobe; a live MPEG-TS needs only a second of
// analysis (ffprobe's default is 5 s).
func probeSRT(t testing.TB, url string) ([]mediatest.ProbeStream, error) {
	t.Helper()
	return mediatest.ProbeStreams(t, url, "-analyzeduration", "1000000")
}

// srtClients returns the SRT clients of h with that role.
func srtClients(h *hub.Hub, role hub.Role) []hub.ClientStats {
	var out []hub.ClientStats
	for _, c := range h.Clients() {
		if c.Protocol == hub.ProtocolSRT && c.Role == role {
			out = append(out, c)
		}
	}
	return out
}

// TestSRTPublishAndRead publishes the clip over SRT with ffmpeg, as OBS
// does, and reads it back over SRT with ffprobe.
func TestSRTPublishAndRead(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	auth := &mediatest.SignAuth{}
	h, s := newTestEnv(t, hub.Config{Authorizer: auth}, Config{})
	mediatest.StartFFmpeg(t, "-re", "-stream_loop", "-1", "-i", mediatest.ClipPath(t), "-c", "copy",
		"-f", "mpegts", srtURL(s, "publish:srtin?sign=good"))
	mediatest.WaitLive(t, h, "srtin")
	if req := auth.Last(); req.Protocol != hub.ProtocolSRT || req.Stream != "srtin" || !req.RemoteIP.IsLoopback() {
		t.Errorf("auth request %+v", req)
	}
	st := h.Stream("srtin").Stats()
	if st.Protocol != hub.ProtocolSRT || st.VideoCodec != "h264" || st.AudioCodec != "aac" || st.Width != 640 || st.Height != 360 {
		t.Errorf("stats %+v", st)
	}
	if pubs := srtClients(h, hub.RolePublish); len(pubs) != 1 || pubs[0].Path != "/live/srtin" || pubs[0].BytesIn < st.BytesIn {
		t.Errorf("SRT publishers %+v (stream received %d bytes)", pubs, st.BytesIn)
	}
	ss, err := probeSRT(t, srtURL(s, "read:srtin?sign=good"))
	if err != nil {
		t.Fatal(err)
	}
	mediatest.CheckClipStreams(t, ss)
}

// TestSRTH265Opus publishes H.265 and Opus over SRT with SRS's stream ID
// and reads them back over SRT.
func TestSRTH265Opus(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h, s := newTestEnv(t, hub.Config{}, Config{})
	mediatest.StartFFmpeg(t, "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:log-level=error",
		"-c:a", "libopus", "-ac", "2", "-f", "mpegts", srtURL(s, "#!::r=live/hevc,m=publish"))
	mediatest.WaitFor(t, 20*time.Second, "H.265 stream", func() bool {
		st := h.Stream("hevc")
		return st != nil && st.Stats().VideoCodec == "h265" && st.Stats().AudioCodec == "opus" && st.LastKey() != nil
	})
	if st := h.Stream("hevc").Stats(); st.Width != 320 || st.Height != 240 || st.AudioChannels != 2 {
		t.Errorf("stats %+v", st)
	}
	ss, err := probeSRT(t, srtURL(s, "#!::r=live/hevc,m=request"))
	if err != nil {
		t.Fatal(err)
	}
	var video, audio bool
	for _, st := range ss {
		switch st.CodecType {
		case "video":
			video = st.CodecName == "hevc" && st.Width == 320 && st.Height == 240
		case "audio":
			audio = st.CodecName == "opus"
		}
	}
	if !video || !audio {
		t.Errorf("streams %+v: want hevc 320x240 and opus", ss)
	}
}

// TestSRTReaders plays one stream to several SRT readers: one output
// muxes it, each reader is a client counted in the stream's readers,
// the bytes sent are counted, a kicked reader leaves.
func TestSRTReaders(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	// a killed ffmpeg says nothing: it is gone after ReadTimeout.
	h, s := newTestEnv(t, hub.Config{}, Config{ReadTimeout: 2 * time.Second})
	mediatest.PublishClip(t, h, "fan")
	mediatest.WaitLive(t, h, "fan")
	var procs []*mediatest.Proc
	for _, id := range []string{"read:fan", "read:live/fan", "#!::r=live/fan"} {
		procs = append(procs, mediatest.StartFFmpeg(t, "-i", srtURL(s, id), "-c", "copy", "-f", "null", "-"))
	}
	st := h.Stream("fan")
	mediatest.WaitFor(t, 10*time.Second, "3 SRT readers receiving", func() bool {
		rs := srtClients(h, hub.RolePlay)
		if len(rs) != 3 {
			return false
		}
		for _, r := range rs {
			if r.BytesOut < 50000 {
				return false
			}
		}
		return st.Stats().Readers[hub.ProtocolSRT] == 3
	})
	s.mu.Lock()
	outs := len(s.outs)
	s.mu.Unlock()
	if outs != 1 {
		t.Errorf("%d outputs for one stream", outs)
	}
	var sent uint64
	for _, r := range srtClients(h, hub.RolePlay) {
		sent += r.BytesOut
	}
	// the clients' counts are gosrt's, of the packets sent, with their
	// headers; the output's, of the bytes written to them.
	if b := s.BytesSent(st); b < sent*9/10 || b > sent*11/10 {
		t.Errorf("output sent %d bytes; its readers got %d", b, sent)
	}
	if !h.KickClient(srtClients(h, hub.RolePlay)[0].ID) {
		t.Fatal("kick failed")
	}
	mediatest.WaitFor(t, 5*time.Second, "a reader kicked", func() bool {
		return st.Stats().Readers[hub.ProtocolSRT] == 2 && len(srtClients(h, hub.RolePlay)) == 2
	})
	for _, p := range procs {
		p.Kill()
	}
	mediatest.WaitFor(t, 10*time.Second, "readers gone", func() bool {
		return st.Stats().Readers[hub.ProtocolSRT] == 0 && len(srtClients(h, hub.RolePlay)) == 0
	})
	// a reader of gosrt's gets MPEG-TS packets at once (the cached GOP).
	c, err := dial(s, "read:fan")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil || n < tsPacketSize || n%tsPacketSize != 0 || buf[0] != tsSyncByte {
		t.Fatalf("read %d bytes (% x...), %v", n, buf[:min(n, 4)], err)
	}
}

// TestSRTRefusals rejects callers as RTMP refuses them, each with its
// rejection code, and counts every refusal.
func TestSRTRefusals(t *testing.T) {
	mediatest.NeedFFmpeg(t)
	h, s := newTestEnv(t, hub.Config{Authorizer: &mediatest.SignAuth{}}, Config{})
	mediatest.PublishClip(t, h, "taken")
	mediatest.WaitLive(t, h, "taken")
	before := h.Counters().ClientsRefused
	cases := []struct {
		id   string
		code gosrt.RejectionReason
	}{
		{"nonsense", gosrt.REJX_BAD_REQUEST},
		{"publish:other/x?sign=good", gosrt.REJX_BAD_REQUEST},
		{"publish:fresh?sign=bad", gosrt.REJX_FORBIDDEN},
		{"publish:fresh", gosrt.REJX_FORBIDDEN},
		{"#!::r=live/taken,m=request,sign=bad", gosrt.REJX_FORBIDDEN},
		{"read:nosuch?sign=good", gosrt.REJX_NOTFOUND},
		{"publish:taken?sign=good", gosrt.REJX_CONFLICT},
	}
	for _, c := range cases {
		conn, err := dial(s, c.id)
		if conn != nil {
			conn.Close()
		}
		if !rejectedWith(err, c.code) {
			t.Errorf("%q: %v, want rejection %d", c.id, err, c.code)
		}
	}
	conf := gosrt.DefaultConfig()
	conf.StreamId, conf.Passphrase = "read:taken?sign=good", "a passphrase"
	if conn, err := gosrt.Dial("srt", s.Addr().String(), conf); !rejectedWith(err, gosrt.REJ_UNSECURE) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("encrypted caller: %v", err)
	}
	// what a streamer sees: ffmpeg fails at once.
	p := mediatest.StartFFmpeg(t, "-re", "-i", mediatest.ClipPath(t), "-c", "copy", "-f", "mpegts", srtURL(s, "publish:fresh?sign=bad"))
	if out := p.WaitExit(t, 10*time.Second); p.Err == nil {
		t.Errorf("ffmpeg published with a bad sign: %s", out)
	}
	if got, want := h.Counters().ClientsRefused-before, uint64(len(cases)+2); got != want {
		t.Errorf("%d refusals counted, want %d", got, want)
	}
	if st := h.Stream("taken").Stats(); !st.Live || st.Protocol != hub.ProtocolRTMP {
		t.Errorf("the stream's publisher affected: %+v", st)
	}
	if h.Stream("fresh") != nil {
		t.Error("a refused publisher made a stream")
	}
	mediatest.WaitFor(t, 2*time.Second, "refused clients released", func() bool {
		for _, c := range h.Clients() {
			if c.Protocol == hub.ProtocolSRT {
				return false
			}
		}
		return true
	})
}

// blockAuth holds every request until release is closed.
type blockAuth struct {
	calls   atomic.Int32
	release chan struct{}
}

func (a *blockAuth) wait(ctx context.Context) error {
	a.calls.Add(1)
	select {
	case <-a.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *blockAuth) AuthorizePublish(ctx context.Context, _ hub.AuthRequest) error {
	return a.wait(ctx)
}
func (a *blockAuth) AuthorizePlay(ctx context.Context, _ hub.AuthRequest) error { return a.wait(ctx) }

// TestSRTPendingCap rejects the requests of an address over its cap of
// requests waiting for their authorization, and accepts it again once
// they are answered.
func TestSRTPendingCap(t *testing.T) {
	auth := &blockAuth{release: make(chan struct{})}
	h, s := newTestEnv(t, hub.Config{Authorizer: auth, AuthTimeout: 20 * time.Second}, Config{MaxPendingPerIP: 2})
	dialSlow := func(id string) (gosrt.Conn, error) {
		conf := gosrt.DefaultConfig()
		conf.StreamId, conf.ConnectionTimeout = id, 15*time.Second
		return gosrt.Dial("srt", s.Addr().String(), conf)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() {
			conn, err := dialSlow("publish:p" + string(rune('a'+i)))
			if conn != nil {
				defer conn.Close()
			}
			errs[i] = err
		})
	}
	mediatest.WaitFor(t, 10*time.Second, "two requests waiting", func() bool { return auth.calls.Load() == 2 })
	before := h.Counters().ClientsRefused
	if conn, err := dial(s, "publish:pc"); !rejectedWith(err, gosrt.REJX_OVERLOAD) {
		if conn != nil {
			conn.Close()
		}
		t.Errorf("third request: %v, want rejection %d", err, gosrt.REJX_OVERLOAD)
	}
	if got := h.Counters().ClientsRefused - before; got != 1 {
		t.Errorf("%d refusals counted, want 1", got)
	}
	close(auth.release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d waiting for its authorization: %v", i, err)
		}
	}
	conn, err := dial(s, "publish:pd")
	if err != nil {
		t.Fatalf("after the cap: %v", err)
	}
	conn.Close()
}

// TestSRTPublisherTimeouts closes publishers that send nothing, or
// send no MPEG-TS program, within the read timeout and the admission
// deadline.
func TestSRTPublisherTimeouts(t *testing.T) {
	h, s := newTestEnv(t, hub.Config{PublisherGrace: -1}, Config{ReadTimeout: 300 * time.Millisecond})
	ended := func(name string) func() bool {
		return func() bool { return h.Stream(name) == nil && len(srtClients(h, hub.RolePublish)) == 0 }
	}
	silent, err := dial(s, "publish:silent")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	mediatest.WaitFor(t, 5*time.Second, "silent publisher closed", ended("silent"))

	junk, err := dial(s, "publish:junk")
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := junk.Write(make([]byte, 100)); err != nil {
					return
				}
			}
		}
	}()
	mediatest.WaitFor(t, 3*time.Second, "junk publishing", func() bool { return h.Stream("junk") != nil })
	mediatest.WaitFor(t, 5*time.Second, "publisher without MPEG-TS closed", ended("junk"))
}

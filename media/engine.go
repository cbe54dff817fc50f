// Package media is the embedded media engine of MoFang Live. It wires the
// stream hub (media/hub: streams, GOP cache, non-blocking fan-out, clients,
// stats, auth, events) to one server per protocol (media/rtmp,
// media/rtsp, media/srt, media/httpflv) and to the sinks each stream feeds (media/hls,
// media/record), and serves HTTP-FLV, HLS and WebRTC (WHEP/WHIP,
// media/webrtc) under one handler.
//
// Data moves one way, publisher → stream → readers. Each media message is
// framed once per output format and the bytes are shared by every reader of
// that format; readers write them with one writev per batch.
package media

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/media/forward"
	"github.com/mofang-live/mofang/media/hls"
	"github.com/mofang-live/mofang/media/httpflv"
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/record"
	"github.com/mofang-live/mofang/media/relay"
	"github.com/mofang-live/mofang/media/rtmp"
	"github.com/mofang-live/mofang/media/rtsp"
	"github.com/mofang-live/mofang/media/srt"
	"github.com/mofang-live/mofang/media/thumb"
	"github.com/mofang-live/mofang/media/transcode"
	"github.com/mofang-live/mofang/media/webrtc"
)

// Config configures an Engine. Zero values take the documented defaults.
type Config struct {
	// RTMPAddress is the RTMP listen address (default ":1935").
	RTMPAddress string
	// DisableRTMP turns the RTMP listener off.
	DisableRTMP bool
	// RTMPSAddress is the RTMPS (RTMP over TLS) listen address; empty:
	// no RTMPS. It needs TLS.
	RTMPSAddress string
	// TLS is the certificate configuration of RTMPS.
	TLS *tls.Config
	// ProxyProtocolFrom are the peers (L4 load balancers) whose RTMP,
	// RTMPS and RTSP connections may start with a PROXY protocol v1/v2
	// header that gives the client's address; others' are plain.
	ProxyProtocolFrom []netip.Prefix
	// RTSPAddress is the RTSP listen address (default ":8554").
	RTSPAddress string
	// DisableRTSP turns the RTSP listener off.
	DisableRTSP bool
	// RTSPUDPRTPAddress and RTSPUDPRTCPAddress are the UDP addresses of
	// RTSP's UDP transport; their ports must be consecutive, RTP's even
	// (default ":8000" and ":8001"). Set DisableRTSPUDP for TCP only.
	RTSPUDPRTPAddress  string
	RTSPUDPRTCPAddress string
	DisableRTSPUDP     bool
	// SRTAddress is the SRT (UDP) listen address (default ":8890").
	// DisableSRT turns SRT off.
	SRTAddress string
	DisableSRT bool

	// WebRTCUDPAddress is the one UDP address of every WebRTC session's
	// media, WHEP viewers and WHIP publishers (default ":8189").
	// WebRTCTCPAddress, if set, is a TCP address for ICE over TCP, for
	// networks that block UDP. DisableWebRTC turns WebRTC off: the WHEP
	// and WHIP endpoints answer 404.
	WebRTCUDPAddress string
	WebRTCTCPAddress string
	DisableWebRTC    bool
	// WebRTCPublicIPs are the server's public addresses behind a 1:1 NAT,
	// announced to WebRTC peers next to the local ones.
	WebRTCPublicIPs []string
	// ICEServers are the STUN/TURN servers handed to WHIP/WHEP clients
	// (Link headers); the server itself needs none.
	ICEServers []ICEServer

	// PublisherGrace is how long a stream whose publisher dropped waits,
	// readers attached, for a publisher to take it back (default 10 s;
	// negative: end at once).
	PublisherGrace time.Duration

	// Authorizer decides who may publish and play; nil allows everything.
	Authorizer Authorizer
	// Events hears of publishes starting and stopping, and of viewers
	// when it is a PlayEventSink too; may be nil.
	Events EventSink
	// Logger receives the engine's logs (default slog.Default()); the
	// engine adds no "component" attribute of its own.
	Logger *slog.Logger

	// ReadTimeout bounds every read of a publisher and the handshake and
	// commands of every connection (default 10 s). An RTMP connection must
	// also ask to publish or play within 3 ReadTimeouts of its accept; an
	// RTMP player is pinged every ReadTimeout and dropped when silent for
	// 6 ReadTimeouts.
	ReadTimeout time.Duration
	// WriteTimeout bounds every write to a client; a reader whose write
	// does not finish in time is dropped as too slow (default 10 s). The
	// deadline is moved lazily: a write has between 3/4 of it and all.
	WriteTimeout time.Duration
	// AuthTimeout bounds each Authorizer call (default 5 s).
	AuthTimeout time.Duration
	// MaxPendingPerIP is how many RTMP connections one IP address may hold
	// that have not been admitted to publish or play yet (handshake and
	// commands), and how many SRT connection requests it may have waiting
	// for their authorization; more are closed, or rejected, at once
	// (default 16; negative: no limit).
	MaxPendingPerIP int

	// RingSize is the number of packets kept per stream, the GOP cache and
	// the bound of every reader's queue; rounded up to a power of two
	// (default 1024, about 13 s of 30 fps video with AAC).
	RingSize int
	// ReaderQueue is how many packets a reader may lag before it skips to
	// the newest key frame (default 256).
	ReaderQueue int
	// MaxReaderSkips is how many skips within 30 s a reader is allowed
	// before it is disconnected (default 3).
	MaxReaderSkips int
	// SocketSendBuffer, if positive, sets the kernel send buffer (SO_SNDBUF)
	// of every client connection. A small buffer makes a stuck reader
	// visible sooner and bounds kernel memory per viewer (default 0: the
	// kernel's autotuning).
	SocketSendBuffer int
	// HLS is the HLS output of every stream at /live/<name>/index.m3u8:
	// "lowlatency" (default: Low-Latency HLS with fMP4 parts), "fmp4",
	// "mpegts", or "off".
	HLS string
	// RecordDir is where publish sessions are recorded (fMP4 segments);
	// empty: nothing is recorded.
	RecordDir string
	// Record, if set, tells whether a stream is recorded (the room's
	// setting); nil records every stream. It may block briefly (a
	// database read); it is called off the media path.
	Record func(stream string) bool
	// Recordings hears of recordings starting and ending.
	Recordings record.Sink
	// RecordSegment is the minimum duration of a recording's segments
	// (default 4 s).
	RecordSegment time.Duration

	// WriteCoalesce spaces a reader's writes by this much, so that several
	// packets go out in one write. The system call per write dominates the
	// cost of a viewer, so this divides CPU per viewer by the number of
	// packets merged, at the price of up to that much latency (default
	// 200 ms; negative: write each packet at once). A new reader's first
	// write (headers and GOP) is never delayed; see hub.Config.WriteCoalesce.
	WriteCoalesce time.Duration

	// Cluster is the service this node is part of: a publish of a stream
	// new to this node claims it there (refused as a second publisher when
	// another node's publisher has it, as unavailable when the cluster
	// cannot tell), and a viewer of a stream another node publishes gets
	// it through one relay per stream from that node (media/relay). nil:
	// the node runs alone (cluster.NewLocal, closed with the engine).
	Cluster cluster.Cluster
	// RelayQuery, if set, returns what a relay of this node adds to the
	// query of its request for stream to the node that publishes it: a
	// node credential, which that node's Authorizer checks (the request
	// has AuthRequest.Relay set).
	RelayQuery func(stream string) url.Values
	// RelayLinger is how long a relay stays after the last local viewer
	// of its stream left (default 5 s).
	RelayLinger time.Duration
	// RelayWait is how long a viewer of a stream published on another
	// node waits for the relay to bring it (default 3 s).
	RelayWait time.Duration

	// Thumbnails configures the JPEG of each live stream's newest key
	// frame at /live/<name>/thumb.jpg, made by ffmpeg on demand (see
	// media/thumb; zero fields take its defaults). DisableThumbnails
	// turns it off: the URL answers 404.
	Thumbnails        thumb.Config
	DisableThumbnails bool
	// Transcode is the quality ladder (ParseLadder): every live of this
	// node's publishers is transcoded by one ffmpeg into the renditions
	// lower than itself, published as "<stream>_480p" etc. (see
	// media/transcode); empty: off. Such names are then refused to
	// publishers and played with their source's authorization.
	Transcode []transcode.Rendition
	// TranscodeMax is how many lives are transcoded at once (default 1);
	// TranscodeThreads the threads of each ffmpeg's decoder, filters and
	// each encoder (default 2); FFmpeg the ffmpeg binary (default
	// "ffmpeg" in PATH).
	TranscodeMax     int
	TranscodeThreads int
	FFmpeg           string
	// TranscodeStream, if set, tells whether a live is transcoded (a
	// room's, not a call's); nil: every live. It is called with the
	// hub's lock held: it must not block.
	TranscodeStream func(stream string) bool
	// Forward, if its Targets is set, restreams the streams this node
	// publishes to their destinations (see media/forward); Hub and
	// Framer are set by the engine.
	Forward forward.Config
}

// setDefaults sets the engine's own defaults; the hub and the servers
// set those of their settings (the same as documented above).
func (c *Config) setDefaults() {
	if c.RTMPAddress == "" {
		c.RTMPAddress = ":1935"
	}
	if c.RTSPAddress == "" {
		c.RTSPAddress = ":8554"
	}
	if c.SRTAddress == "" {
		c.SRTAddress = ":8890"
	}
	if c.DisableRTSPUDP {
		c.RTSPUDPRTPAddress, c.RTSPUDPRTCPAddress = "", ""
	} else if c.RTSPUDPRTPAddress == "" && c.RTSPUDPRTCPAddress == "" {
		c.RTSPUDPRTPAddress, c.RTSPUDPRTCPAddress = ":8000", ":8001"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxPendingPerIP == 0 {
		c.MaxPendingPerIP = 16
	}
	if c.HLS == "" {
		c.HLS = "lowlatency"
	}
}

// Engine is the media engine. Create it with New, then Start it.
type Engine struct {
	cfg Config
	log *slog.Logger
	hub *hub.Hub
	flv *httpflv.Handler

	// ctx ends with Close: the RTMP and SRT servers' sessions derive from it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the RTMP and SRT servers, until their sessions end

	mu      sync.Mutex
	started bool
	closed  bool
	rtmp    *rtmp.Server
	rtmps   *rtmp.Server
	rtsp    *rtsp.Server
	srt     *srt.Server
	rtc     *webrtc.Server
	rtcs    rtcState

	closeDone chan struct{} // closed when Close has finished

	recorder  *record.Recorder // nil: no recording
	sinksWG   sync.WaitGroup   // streams' HLS and recording feeders
	sinks     sync.Map         // *hub.Stream → *sinks
	hlsAuth   authCache
	thumbs    *thumb.Maker // nil: thumbnails off
	thumbAuth authCache

	cluster     cluster.Cluster
	clusterSelf string // this node's ID
	ownCluster  bool   // made by New: closed by Close
	claims      *claims
	relays      *relay.Manager

	tc       *transcode.Manager // nil: no quality ladder
	forwards *forward.Manager   // nil: no restreaming
}

// New returns an engine configured by cfg. It opens nothing; call Start.
func New(cfg Config) (*Engine, error) {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		cfg:       cfg,
		log:       cfg.Logger,
		ctx:       ctx,
		cancel:    cancel,
		closeDone: make(chan struct{}),
		cluster:   cfg.Cluster,
	}
	if e.cluster == nil {
		e.cluster = cluster.NewLocal(cluster.Node{ID: "local"})
		e.ownCluster = true
	}
	e.clusterSelf = e.cluster.Self().ID
	e.claims = newClaims(e, e.cluster)
	fail := func(err error) (*Engine, error) {
		cancel()
		if e.ownCluster {
			e.cluster.Close() //nolint:errcheck
		}
		return nil, err
	}
	authz, events := cfg.Authorizer, cfg.Events
	if len(cfg.Transcode) > 0 {
		ffmpeg := cfg.FFmpeg
		if ffmpeg == "" {
			ffmpeg = "ffmpeg"
		}
		path, err := exec.LookPath(ffmpeg)
		if err != nil {
			return fail(fmt.Errorf("the quality ladder (transcode) needs ffmpeg: %w", err))
		}
		cfg.FFmpeg = path
		e.cfg.FFmpeg = path
		authz, events = e.wrapForLadder(authz, events)
	}
	h, err := hub.New(hub.Config{
		PublisherGrace: cfg.PublisherGrace,
		RingSize:       cfg.RingSize,
		ReaderQueue:    cfg.ReaderQueue,
		MaxReaderSkips: cfg.MaxReaderSkips,
		WriteCoalesce:  cfg.WriteCoalesce,
		AuthTimeout:    cfg.AuthTimeout,
		Authorizer:     authz,
		Events:         events,
		Logger:         cfg.Logger,
		OnStreamStart: func(s *hub.Stream) {
			e.startSinks(s)
			e.startTranscode(s)
			if e.forwards != nil {
				e.forwards.Start(s)
			}
		},
		Claims: e.claims,
		// e.relays is set below, before any reader can ask
		OnMissingStream:   func(name string) bool { return e.relays.Start(name) },
		MissingStreamWait: cfg.RelayWait,
	})
	if err != nil {
		return fail(err)
	}
	if cfg.HLS != "off" {
		if _, err := hls.ParseVariant(cfg.HLS); err != nil {
			h.Close()
			return fail(fmt.Errorf("HLS variant: %w", err))
		}
	}
	if cfg.RecordDir != "" {
		rec, err := record.New(record.Config{Dir: cfg.RecordDir, Sink: cfg.Recordings, SegmentDuration: cfg.RecordSegment, Logger: cfg.Logger})
		if err != nil {
			h.Close()
			return fail(fmt.Errorf("recorder: %w", err))
		}
		e.recorder = rec
	}
	e.hub = h
	if len(cfg.Transcode) > 0 {
		tc, err := transcode.New(transcode.Config{
			Hub: h, Renditions: cfg.Transcode, MaxLives: cfg.TranscodeMax,
			Threads: cfg.TranscodeThreads, FFmpeg: cfg.FFmpeg, Logger: cfg.Logger,
		})
		if err != nil {
			h.Close()
			return fail(err)
		}
		e.tc = tc
	}
	e.relays = relay.New(relay.Config{
		Hub:    h,
		Self:   e.clusterSelf,
		Lookup: e.relaySource,
		Query:  cfg.RelayQuery,
		Linger: cfg.RelayLinger,
		Logger: cfg.Logger,
	})
	if !cfg.DisableThumbnails {
		tc := cfg.Thumbnails
		if tc.Logger == nil {
			tc.Logger = cfg.Logger
		}
		e.thumbs = thumb.New(tc)
	}
	if cfg.Forward.Targets != nil {
		fc := cfg.Forward
		fc.Hub, fc.Framer = h, rtmp.Framer()
		if fc.Logger == nil {
			fc.Logger = cfg.Logger
		}
		e.forwards = forward.New(fc)
	}
	e.flv = httpflv.New(h, httpflv.Config{WriteTimeout: cfg.WriteTimeout, SocketSendBuffer: cfg.SocketSendBuffer, Logger: cfg.Logger})
	return e, nil
}

// Start opens the listeners and returns once they listen. ctx bounds the
// engine's lifetime like Close does.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if e.started {
		return errors.New("media engine already started")
	}
	rtmpCfg := rtmp.Config{
		Address:           e.cfg.RTMPAddress,
		ReadTimeout:       e.cfg.ReadTimeout,
		WriteTimeout:      e.cfg.WriteTimeout,
		MaxPendingPerIP:   e.cfg.MaxPendingPerIP,
		SocketSendBuffer:  e.cfg.SocketSendBuffer,
		ProxyProtocolFrom: e.cfg.ProxyProtocolFrom,
		Logger:            e.log,
	}
	if !e.cfg.DisableRTMP {
		s, err := rtmp.New(e.hub, rtmpCfg)
		if err != nil {
			return err
		}
		e.rtmp = s
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			s.Serve(e.ctx)
		}()
	}
	if e.cfg.RTMPSAddress != "" {
		if e.cfg.TLS == nil {
			e.closeServersLocked()
			return errors.New("RTMPS needs a TLS configuration")
		}
		c := rtmpCfg
		c.Address, c.TLS = e.cfg.RTMPSAddress, e.cfg.TLS
		s, err := rtmp.New(e.hub, c)
		if err != nil {
			e.closeServersLocked()
			return fmt.Errorf("RTMPS: %w", err)
		}
		e.rtmps = s
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			s.Serve(e.ctx)
		}()
	}
	if !e.cfg.DisableRTSP {
		s, err := rtsp.New(e.hub, rtsp.Config{
			Address:        e.cfg.RTSPAddress,
			UDPRTPAddress:  e.cfg.RTSPUDPRTPAddress,
			UDPRTCPAddress: e.cfg.RTSPUDPRTCPAddress,
			ReadTimeout:    e.cfg.ReadTimeout,
			WriteTimeout:   e.cfg.WriteTimeout,
			Logger:         e.log,

			ProxyProtocolFrom: e.cfg.ProxyProtocolFrom,
		})
		if err != nil {
			e.closeServersLocked()
			return err
		}
		e.rtsp = s
	}
	if !e.cfg.DisableSRT {
		s, err := srt.New(e.hub, srt.Config{
			Address:         e.cfg.SRTAddress,
			ReadTimeout:     e.cfg.ReadTimeout,
			MaxPendingPerIP: e.cfg.MaxPendingPerIP,
			Logger:          e.log,
		})
		if err != nil {
			e.closeServersLocked()
			return err
		}
		e.srt = s
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			s.Serve(e.ctx)
		}()
	}
	if !e.cfg.DisableWebRTC {
		s, err := webrtc.New(webrtc.Config{
			UDPAddress: e.cfg.WebRTCUDPAddress,
			TCPAddress: e.cfg.WebRTCTCPAddress,
			PublicIPs:  e.cfg.WebRTCPublicIPs,
			ICEServers: e.cfg.ICEServers,
			Logger:     e.log,
		})
		if err != nil {
			e.closeServersLocked()
			return err
		}
		e.rtc = s
	}
	e.started = true
	if ctx != nil && ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				e.Close() //nolint:errcheck
			case <-e.ctx.Done():
			}
		}()
	}
	e.log.Info("media engine started", "rtmp", e.rtmpAddrLocked(), "rtsp", e.rtspAddrLocked(), "srt", e.srtAddrLocked(), "webrtc", e.webRTCAddrLocked())
	return nil
}

// closeServersLocked closes the servers a failed Start had opened.
func (e *Engine) closeServersLocked() {
	if e.rtmp != nil {
		e.rtmp.Close() //nolint:errcheck
		e.rtmp = nil
	}
	if e.rtmps != nil {
		e.rtmps.Close() //nolint:errcheck
		e.rtmps = nil
	}
	if e.rtsp != nil {
		e.rtsp.Close()
		e.rtsp = nil
	}
	if e.srt != nil {
		e.srt.Close() //nolint:errcheck
		e.srt = nil
	}
}

// Close stops the listeners and closes every session. It waits for them
// to finish for up to 5 s, and for recordings to be finalized for up to
// 20 s. A Close while another runs (the Start context ending, say) waits
// for that one.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.closeDone
		return nil
	}
	e.closed = true
	defer close(e.closeDone)
	rtmp, rtmps, rtsp, srt, rtc := e.rtmp, e.rtmps, e.rtsp, e.srt, e.rtc
	e.mu.Unlock()

	e.cancel()
	e.flv.Close()
	if e.thumbs != nil {
		e.thumbs.Close()
	}
	var err error
	if rtmp != nil {
		err = rtmp.Close()
	}
	if rtmps != nil {
		rtmps.Close() //nolint:errcheck
	}
	if rtsp != nil {
		rtsp.Close()
	}
	if srt != nil {
		srt.Close() //nolint:errcheck
	}
	if rtc != nil {
		// ends every WHEP and WHIP session (WHIP publishers unpublish)
		rtc.Close() //nolint:errcheck
	}
	// relays stop pulling (their streams end with the hub)
	e.relays.Close()
	// transcoders stop (their ffmpeg is killed)
	if e.tc != nil {
		e.tc.Close()
	}
	if e.forwards != nil {
		e.forwards.Close()
	}
	// ends every stream (their PublishStopped is delivered) and
	// disconnects every client.
	e.hub.Close()
	// the claims of the streams that ended are given up
	e.claims.close(5 * time.Second)
	if e.ownCluster {
		e.cluster.Close() //nolint:errcheck
	}

	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		e.rtcs.wg.Wait() // WHEP outputs' feeders and sessions' clients
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		e.log.Warn("media engine: sessions still running after close")
	}
	// Let the streams' HLS and recordings finish: a recording is
	// finalized (its playlist closed, its row updated) here.
	sinksDone := make(chan struct{})
	go func() {
		e.sinksWG.Wait()
		close(sinksDone)
	}()
	select {
	case <-sinksDone:
	case <-time.After(20 * time.Second):
		e.log.Warn("media engine: recordings still finishing after close")
	}
	if e.recorder != nil {
		e.recorder.Close()
	}
	return err
}

// RTMPAddr returns the bound RTMP address, or nil if RTMP is not listening.
func (e *Engine) RTMPAddr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rtmpAddrLocked()
}

func (e *Engine) rtmpAddrLocked() net.Addr {
	if e.rtmp == nil {
		return nil
	}
	return e.rtmp.Addr()
}

// RTMPSAddr returns the bound RTMPS address, or nil if RTMPS is not
// listening.
func (e *Engine) RTMPSAddr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rtmps == nil {
		return nil
	}
	return e.rtmps.Addr()
}

// RTSPAddr returns the bound RTSP (TCP) address, or nil if RTSP is not listening.
func (e *Engine) RTSPAddr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rtspAddrLocked()
}

func (e *Engine) rtspAddrLocked() net.Addr {
	if e.rtsp == nil {
		return nil
	}
	return e.rtsp.Addr()
}

// SRTAddr returns the bound SRT (UDP) address, or nil if SRT is not listening.
func (e *Engine) SRTAddr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.srtAddrLocked()
}

func (e *Engine) srtAddrLocked() net.Addr {
	if e.srt == nil {
		return nil
	}
	return e.srt.Addr()
}

// WebRTCAddr returns the bound WebRTC UDP address, or nil if WebRTC is
// off (or listens on every interface through several sockets).
func (e *Engine) WebRTCAddr() net.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.webRTCAddrLocked()
}

func (e *Engine) webRTCAddrLocked() net.Addr {
	if e.rtc == nil {
		return nil
	}
	return e.rtc.UDPAddr()
}

// HTTPHandler returns the handler of GET /live/<name>.flv (HTTP-FLV),
// /live/<name>/<file> (HLS: index.m3u8, its playlists, segments and
// parts), and WebRTC: POST /live/<name>/whep (WHEP) and /live/<name>/whip
// (WHIP) with an SDP offer, OPTIONS of both, and PATCH, DELETE and
// OPTIONS of the sessions they create, /live/<name>/whep/<id> and
// /live/<name>/whip/<id>; and GET /live/<name>/thumb.jpg, the stream's
// thumbnail. It also accepts the paths with the "/live/"
// prefix stripped.
func (e *Engine) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if name, kind, id, ok := splitWebRTCPath(req.URL.Path); ok {
			e.serveWebRTC(w, req, name, kind, id)
			return
		}
		if !strings.HasSuffix(req.URL.Path, ".flv") {
			if name, file, ok := splitHLSPath(req.URL.Path); ok && file == thumbFile {
				e.serveThumb(w, req, name)
				return
			} else if ok {
				e.serveHLS(w, req, name, file)
				return
			}
		}
		e.flv.ServeHTTP(w, req)
	})
}

// KickStream disconnects the publisher of stream name and ends the stream at
// once, without grace: its readers are disconnected and PublishStopped is
// reported. It returns false if there is no such stream.
func (e *Engine) KickStream(name string) bool { return e.hub.KickStream(name) }

// KickClient disconnects the client with that ID (see ClientStats.ID). A
// publisher kicked this way may come back within the grace period; use
// KickStream to end a stream. It returns false if there is no such client.
func (e *Engine) KickClient(id string) bool { return e.hub.KickClient(id) }

// Counters returns engine-wide totals.
func (e *Engine) Counters() Counters { return e.hub.Counters() }

// Clients returns every connected client, sorted by connection time.
func (e *Engine) Clients() []ClientStats { return e.hub.Clients() }

// Streams returns the stats of every stream, sorted by name. Streams in
// their grace period are included with Live and Publishing false.
func (e *Engine) Streams() []StreamStats {
	ss := e.hub.List()
	out := make([]StreamStats, 0, len(ss))
	for _, s := range ss {
		out = append(out, e.streamStats(s))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stream returns the stats of the stream called name (without "/live/").
func (e *Engine) Stream(name string) (StreamStats, bool) {
	s := e.hub.Stream(name)
	if s == nil {
		return StreamStats{}, false
	}
	return e.streamStats(s), true
}

// streamStats adds what the RTSP and SRT servers, the HLS and the WHEP
// sessions sent to a stream's stats, and what its WHEP output knows of
// B-frames.
func (e *Engine) streamStats(s *hub.Stream) StreamStats {
	st := s.Stats()
	e.mu.Lock()
	rtsp, srt := e.rtsp, e.srt
	e.mu.Unlock()
	if rtsp != nil {
		st.BytesOut += rtsp.BytesSent(s)
	}
	if srt != nil {
		st.BytesOut += srt.BytesSent(s)
	}
	if sk := e.sinksOf(s); sk != nil {
		st.BytesOut += sk.hlsBytesOut.Load()
	}
	st.BytesOut += e.rtcBytesOut(s)
	st.BFrames = st.BFrames || e.rtcBFrames(s)
	return st
}

// Forwards returns the restreaming manager, nil when Config.Forward has
// no Targets.
func (e *Engine) Forwards() *forward.Manager { return e.forwards }

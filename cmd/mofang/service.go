package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/cmd/mofang/web"
	"github.com/mofang-live/mofang/images"
	"github.com/mofang-live/mofang/internal/connlimit"
	"github.com/mofang-live/mofang/internal/livesession"
	"github.com/mofang-live/mofang/internal/realip"
	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/roomhub"
	"github.com/mofang-live/mofang/rpc/token"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
)

// service is the whole running program: the store, the API, the media
// engine and the HTTP listener.
type service struct {
	cfg     config
	log     *slog.Logger
	store   *store.Store
	api     *rpc.Server
	engine  *media.Engine
	http    *http.Server
	signer  *urlsign.Signer
	metrics http.Handler
	hooks   *hooks        // the operator's webhooks; nil: none
	ready   chan struct{} // closed once every listener is up
	parts   *clusterParts // the node's cluster (Local when alone)
	lives   *livesession.Tracker

	retentionDays  int
	retentionBytes int64
	connsPerIP     int            // cap on HTTP connections per address, 0: none
	tls            *tlsSetup      // nil: plain HTTP (tls.go)
	trusted        []netip.Prefix // reverse proxies whose X-Forwarded-For is believed
	images         *images.Store  // uploaded avatars and covers (uploads.go)
}

// openStore opens the database named by dsn.
func openStore(ctx context.Context, dsn string) (*store.Store, error) {
	return store.Open(ctx, dsn)
}

// newService opens and migrates the store and builds the API and the
// media engine.
func newService(ctx context.Context, cfg config, log *slog.Logger) (*service, error) {
	jwtSecret, err := cfg.secret(cfg.JWTSecret, "jwt.secret")
	if err != nil {
		return nil, fmt.Errorf("jwt secret: %w", err)
	}
	signSecret, err := cfg.secret(cfg.SignSecret, "sign.secret")
	if err != nil {
		return nil, fmt.Errorf("sign secret: %w", err)
	}
	fwd, err := newForwardParts(cfg, signSecret)
	if err != nil {
		return nil, err
	}
	tokens, err := token.NewIssuer(jwtSecret, cfg.TokenTTL)
	if err != nil {
		return nil, err
	}
	signer, err := urlsign.New(signSecret)
	if err != nil {
		return nil, err
	}
	var ports rpc.Ports
	for _, p := range []struct {
		addr string
		port *int
	}{{cfg.HTTPAddr, &ports.HTTP}, {cfg.RTMPAddr, &ports.RTMP}, {cfg.RTSPAddr, &ports.RTSP}, {cfg.SRTAddr, &ports.SRT}} {
		if *p.port, err = port(p.addr); err != nil {
			return nil, err
		}
	}

	if err := cfg.checkClusterDB(); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg.dbDSN())
	if err != nil {
		return nil, err
	}
	applied, err := st.Migrate(ctx)
	if err != nil {
		st.Close()
		return nil, err
	}
	log.Info("database ready", "dialect", st.Dialect(), "migrations_applied", applied)
	// Nothing is published before the engine starts, whatever a crash
	// left in the database. In a cluster the other nodes' rooms are
	// live: reconcileRooms ends those no node publishes.
	if cfg.Cluster == "" {
		if n, err := st.EndLiveRooms(ctx); err != nil {
			st.Close()
			return nil, err
		} else if n > 0 {
			log.Info("rooms left live by the last run set to not started", "rooms", n)
		}
	}
	parts, err := openCluster(ctx, &cfg, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	closeAll := func() {
		parts.close()
		st.Close()
	}

	if err := repairRecords(ctx, st, cfg.recordDir(), log); err != nil {
		closeAll()
		return nil, err
	}
	days, maxBytes, err := cfg.retention()
	if err != nil {
		closeAll()
		return nil, err
	}
	connsPerIP, err := cfg.connsPerIP()
	if err != nil {
		closeAll()
		return nil, err
	}
	ice, err := cfg.iceServers()
	if err != nil {
		closeAll()
		return nil, err
	}
	publicIPs, err := cfg.publicIPs()
	if err != nil {
		closeAll()
		return nil, err
	}
	var mediaICE []media.ICEServer
	var callICE []rpc.ICEServer
	for _, s := range ice {
		mediaICE = append(mediaICE, media.ICEServer{URLs: []string{s.URL}, Username: s.Username, Credential: s.Credential})
		callICE = append(callICE, rpc.ICEServer{URLs: []string{s.URL}, Username: s.Username, Credential: s.Credential})
	}
	hs, err := cfg.hookSettings()
	if err != nil {
		closeAll()
		return nil, err
	}
	hk, err := newHooks(hs, st, log.With("component", "webhook"))
	if err != nil {
		closeAll()
		return nil, err
	}
	gate, err := newGate(hs, log.With("component", "hook"))
	if err != nil {
		closeAll()
		return nil, err
	}
	tlsSet, err := cfg.tlsSetup()
	if err != nil {
		closeAll()
		return nil, err
	}
	trusted, err := cfg.trustedProxies()
	if err != nil {
		closeAll()
		return nil, err
	}
	proxyFrom, err := cfg.proxyProtocolFrom()
	if err != nil {
		closeAll()
		return nil, err
	}
	private := &apiStreams{} // the API's, once it exists
	var onRoomEvent func(int64, roomhub.Event)
	if hk.roomsSelected() {
		onRoomEvent = hk.roomEvent
	}
	pending, err := cfg.rtmpPendingPerIP()
	if err != nil {
		closeAll()
		return nil, err
	}
	publicURLs, err := cfg.publicURLs()
	if err != nil {
		closeAll()
		return nil, err
	}
	thumbs, thumbsOff, err := cfg.thumbnails()
	if err != nil {
		closeAll()
		return nil, err
	}
	ladder, transcodeMax, transcodeThreads, err := cfg.ladder()
	if err != nil {
		closeAll()
		return nil, err
	}
	lives := newLives(cfg, st, parts, log, hk.events(roomEvents{store: st, log: log.With("component", "rooms"), private: private, cluster: parts.cluster}))
	auth := mediaAuth{store: st, signer: signer, private: private}
	// The operator's hook is asked after our own rules.
	var authz media.Authorizer = auth
	if gate != nil {
		authz = gatedAuth{next: auth, gate: gate}
	}
	mcfg := media.Config{
		MaxPendingPerIP:   pending,
		HLS:               cfg.HLS,
		RecordDir:         cfg.recordDir(),
		Record:            recordsOn(st, log),
		Recordings:        recordRows{store: st, log: log, hooks: hk},
		RTMPAddress:       cfg.RTMPAddr,
		DisableRTMP:       cfg.RTMPAddr == "",
		RTMPSAddress:      cfg.RTMPSAddr,
		ProxyProtocolFrom: proxyFrom,
		RTSPAddress:       cfg.RTSPAddr,
		DisableRTSP:       cfg.RTSPAddr == "",
		DisableRTSPUDP:    cfg.RTSPUDP == "",
		SRTAddress:        cfg.SRTAddr,
		DisableSRT:        cfg.SRTAddr == "",
		DisableWebRTC:     cfg.WebRTCAddr == "",
		// WebRTC: the UDP port of every session's media, ICE over TCP,
		// the public addresses, the STUN/TURN servers for clients.
		WebRTCUDPAddress: cfg.WebRTCAddr,
		WebRTCTCPAddress: cfg.WebRTCTCPAddr,
		WebRTCPublicIPs:  publicIPs,
		ICEServers:       mediaICE,
		PublisherGrace:   cfg.Grace,
		WriteCoalesce:    offIfZero(cfg.WriteCoalesce),
		Authorizer:       authz,
		Cluster:          parts.cluster,
		RelayQuery:       auth.RelayQuery,
		Forward:          fwd.mediaConfig(cfg, st, log.With("component", "forward")),
		Events:           lives,
		Logger:           log.With("component", "media"),

		Thumbnails:        thumbs,
		DisableThumbnails: thumbsOff,
		// the quality ladder: rooms' lives only, not calls' or guests'
		Transcode:        ladder,
		TranscodeMax:     transcodeMax,
		TranscodeThreads: transcodeThreads,
		FFmpeg:           cfg.TranscodeFFmpeg,
		TranscodeStream:  func(name string) bool { return !rpc.IsPrivateStream(name) },
	}
	if cfg.RTSPUDP != "" {
		mcfg.RTSPUDPRTPAddress = cfg.RTSPUDP
		if mcfg.RTSPUDPRTCPAddress, err = rtcpAddr(cfg.RTSPUDP); err != nil {
			closeAll()
			return nil, err
		}
	}
	if tlsSet != nil {
		mcfg.TLS = tlsSet.config
	}
	engine, err := media.New(mcfg)
	if err != nil {
		closeAll()
		return nil, err
	}

	s := &service{cfg: cfg, log: log, store: st, engine: engine, signer: signer, ready: make(chan struct{}), parts: parts, hooks: hk, lives: lives,
		retentionDays: days, retentionBytes: maxBytes, connsPerIP: connsPerIP, tls: tlsSet, trusted: trusted}
	if s.images, err = cfg.openImages(ctx, st); err != nil {
		closeAll()
		return nil, err
	}
	m := newMetrics(s)
	var live rpc.LiveStats = liveStats{engine}
	admin := mediaAdmin{engine: engine}
	if parts.shared {
		live = clusterLive{parts.cluster}
		admin.cluster = parts.cluster
	}
	words, err := cfg.wordFilter()
	if err != nil {
		closeAll()
		return nil, err
	}
	s.api, err = rpc.New(rpc.Config{
		WordFilter:      words,
		Store:           st,
		Tokens:          tokens,
		Signer:          signer,
		Live:            live,
		Cluster:         parts.cluster,
		Rooms:           parts.rooms,
		Limiter:         parts.limiter,
		Media:           admin,
		RecordFiles:     recordFiles(engine),
		Forwards:        fwd.rpcConfig(engine),
		PublicHost:      cfg.PublicHost,
		PublicURLs:      publicURLs,
		Ports:           ports,
		DisableWebRTC:   cfg.WebRTCAddr == "",
		Thumbnails:      !thumbsOff,
		Renditions:      renditionsOf(engine, parts.cluster, ladder),
		TLS:             tlsSet != nil,
		AllowRecharge:   cfg.AllowRecharge,
		ShowPublisherIP: cfg.ShowPublisherIP,
		CallTimeout:     offIfZero(cfg.CallTimeout),
		Calls:           rpc.CallLimits{ICEServers: callICE},
		Limits: rpc.Limits{
			SocketsPerIP: offIfZero(connsPerIP), // websockets are HTTP connections too
			AuthTimeout:  offIfZero(cfg.AuthTimeout),
			BodyTimeout:  offIfZero(cfg.BodyTimeout),
		},
		ObserveCall: m.observeCall,
		OnRoomEvent: onRoomEvent,
		Version:     version,
		Logger:      log.With("component", "rpc"),
	})
	if err != nil {
		closeAll()
		return nil, err
	}
	private.set(s.api)
	// Commands from the other nodes (kicks, room re-entries) run here.
	parts.cluster.HandleCommands(func(c cluster.Command) {
		if !s.api.RunCommand(c) {
			log.Warn("cluster command not understood", "kind", c.Kind)
		}
	})
	if hk != nil {
		hk.api.Store(s.api)
	}
	m.reg.MustRegister(forwardCollector{engine})
	s.metrics = m.handler()
	// No ReadTimeout or WriteTimeout: HTTP-FLV, HLS's blocking reloads
	// and websockets live long. Headers have ReadHeaderTimeout, API
	// bodies rpc's BodyTimeout, idle keep-alive connections IdleTimeout,
	// and one address holds at most connsPerIP connections (run).
	s.http = &http.Server{
		Handler:           (&realip.Resolver{Trusted: trusted}).Handler(s.routes()),
		ReadHeaderTimeout: cfg.HeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// routes is the HTTP listener's mux. The base URL is both the API (POST,
// OPTIONS, websocket upgrades) and the pages (GET).
func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	pages := web.Handler()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && ((r.Method != http.MethodGet && r.Method != http.MethodHead) || r.Header.Get("Upgrade") != "") {
			s.api.ServeHTTP(w, r)
			return
		}
		pages.ServeHTTP(w, r)
	})
	mux.Handle("/live/", s.engine.HTTPHandler())
	if rec := s.engine.Recorder(); rec != nil {
		mux.Handle("/record/", http.StripPrefix("/record", rec.Handler(recordLookup(s.store, s.signer))))
	}
	mux.Handle("GET /metrics", s.metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.uploadRoutes(mux)
	return mux
}

// readyz answers 200 once every listener is up and while the database
// answers, 503 otherwise.
func (s *service) readyz(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.ready:
	default:
		http.Error(w, "starting", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness: database unreachable", "err", err)
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		return
	}
	// Without its cluster a node serves what it has, but new publishers
	// and cross-node rooms are refused: not ready for more.
	if err := s.parts.err(); err != nil {
		http.Error(w, "cluster unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// run serves until ctx ends, then shuts down within cfg.ShutdownWait:
// no new connections, in-flight calls finished, websockets told, streams
// closed and rooms set not live.
func (s *service) run(ctx context.Context) error {
	defer s.store.Close()
	// The cluster goes last: the engine releases its claims when it
	// closes, the API's rooms are done after its shutdown.
	defer s.parts.close()
	// The engine is closed below, in order, not by ctx ending.
	if err := s.engine.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("media engine: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		s.engine.Close()
		return fmt.Errorf("http listener: %w", err)
	}
	if s.connsPerIP > 0 {
		// A trusted proxy carries many clients: rpc counts those by the
		// address it forwards.
		ln = connlimit.New(s.connsPerIP).ListenerExcept(ln, s.refusedConn(), func(ip netip.Addr) bool { return realip.Contains(s.trusted, ip) })
	}
	if s.tls != nil {
		// Outermost: HTTP-FLV's hijacked connection is the *tls.Conn.
		ln = tls.NewListener(ln, s.tls.config)
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go s.reloadOnSIGHUP(ctx, hup)
	}
	s.log.Info("listening", "http", ln.Addr().String(), "tls", s.tls != nil, "rtmps", addrString(s.engine.RTMPSAddr()), "rtmp", addrString(s.engine.RTMPAddr()), "rtsp", addrString(s.engine.RTSPAddr()), "srt", addrString(s.engine.SRTAddr()), "webrtc", s.cfg.WebRTCAddr, "version", version)
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()
	if s.cfg.DebugAddr != "" {
		dbg := &http.Server{Addr: s.cfg.DebugAddr, Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := dbg.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("debug listener", "err", err)
			}
		}()
		defer dbg.Close()
	}
	go s.hooks.run(ctx)
	go s.api.RunScheduleSweep(ctx) // scheduled lives passed unused: missed
	go s.importImages(ctx)
	go s.lives.Run(ctx, s.viewers)
	if rec := s.engine.Recorder(); rec != nil {
		go retention(ctx, s.store, rec, s.retentionDays, s.retentionBytes, s.log.With("component", "retention"))
	}
	if s.parts.shared {
		go reportToCluster(ctx, s.parts.cluster, s.engine, s.api)
		go reconcileRooms(ctx, s.parts.cluster, s.store, s.log.With("component", "cluster"))
	}
	close(s.ready)

	select {
	case err := <-errc:
		s.engine.Close()
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	start := time.Now()
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownWait)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownWait)
	defer cancel()
	var errs []error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.http.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}()
	if err := s.api.Shutdown(shutdownCtx); err != nil {
		errs = append(errs, err)
	}
	if err := s.engine.Close(); err != nil {
		errs = append(errs, fmt.Errorf("media engine: %w", err))
	}
	<-done
	// The engine's last events (publishes and plays stopped) are queued:
	// the webhooks get a moment to deliver them.
	s.hooks.close(webhookShutdownWait)
	// The engine is closed: nothing is live any more here. In a cluster
	// the other nodes' rooms stay live; this node's streams ended with
	// the engine (their rooms set back by roomEvents).
	if !s.parts.shared {
		endCtx, endCancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer endCancel()
		if _, err := s.store.EndLiveRooms(endCtx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Error("shutdown", "err", err, "took", time.Since(start))
		return err
	}
	s.log.Info("stopped", "took", time.Since(start))
	return nil
}

// reloadOnSIGHUP reads the certificate files again on every SIGHUP until
// ctx ends.
func (s *service) reloadOnSIGHUP(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.tls.reload(s.log)
		}
	}
}

// refusedConn returns what the HTTP listener calls for each connection
// over the per-address cap: a warning at most every 10 s, with how many
// were refused since the last, so that a flood does not flood the log.
func (s *service) refusedConn() func(netip.Addr) {
	var mu sync.Mutex
	var last time.Time
	refused := 0
	return func(ip netip.Addr) {
		mu.Lock()
		defer mu.Unlock()
		refused++
		if time.Since(last) < 10*time.Second {
			return
		}
		s.log.Warn("HTTP connections refused: too many from one address", "ip", ip, "refused", refused, "cap", s.connsPerIP)
		last, refused = time.Now(), 0
	}
}

// webhookShutdownWait bounds the delivery of the webhooks left at
// shutdown.
const webhookShutdownWait = 2 * time.Second

// offIfZero maps a setting's 0 ("none") to the API's negative "none"
// (its 0 means "the default").
func offIfZero[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// addrString prints a listener address, "off" for none.
func addrString(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// debugMux serves Go's profiles.
func debugMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// recordFiles lets the API delete recordings' files; nil without a
// recorder.
func recordFiles(e *media.Engine) rpc.RecordFiles {
	if rec := e.Recorder(); rec != nil {
		return rec
	}
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/token"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
)

// service is the whole running program: the store, the API and the
// listeners.
type service struct {
	cfg   config
	log   *slog.Logger
	store *store.Store
	api   *rpc.Server
	http  *http.Server
}

// openStore opens the database named by dsn.
func openStore(ctx context.Context, dsn string) (*store.Store, error) {
	return store.Open(ctx, dsn)
}

// newService opens and migrates the store and builds the API.
func newService(ctx context.Context, cfg config, log *slog.Logger) (*service, error) {
	jwtSecret, err := cfg.secret(cfg.JWTSecret, "jwt.secret")
	if err != nil {
		return nil, fmt.Errorf("jwt secret: %w", err)
	}
	signSecret, err := cfg.secret(cfg.SignSecret, "sign.secret")
	if err != nil {
		return nil, fmt.Errorf("sign secret: %w", err)
	}
	tokens, err := token.NewIssuer(jwtSecret, cfg.TokenTTL)
	if err != nil {
		return nil, err
	}
	signer, err := urlsign.New(signSecret)
	if err != nil {
		return nil, err
	}
	httpPort, err := port(cfg.HTTPAddr)
	if err != nil {
		return nil, err
	}
	rtmpPort, err := port(cfg.RTMPAddr)
	if err != nil {
		return nil, err
	}
	rtspPort, err := port(cfg.RTSPAddr)
	if err != nil {
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

	api, err := rpc.New(rpc.Config{
		Store:         st,
		Tokens:        tokens,
		Signer:        signer,
		PublicHost:    cfg.PublicHost,
		Ports:         rpc.Ports{HTTP: httpPort, RTMP: rtmpPort, RTSP: rtspPort},
		AllowRecharge: cfg.AllowRecharge,
		Logger:        log.With("component", "rpc"),
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	s := &service{cfg: cfg, log: log, store: st, api: api}
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// routes is the HTTP listener's mux.
func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/{$}", s.api)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	return mux
}

// run serves until ctx ends, then shuts down within a bounded time.
func (s *service) run(ctx context.Context) error {
	defer s.store.Close()
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	s.log.Info("listening", "http", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if err := s.http.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := s.api.Shutdown(shutdownCtx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.log.Info("stopped")
	return nil
}

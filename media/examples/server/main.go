// Command server runs the media engine alone: RTMP, RTSP and HTTP-FLV, with
// the engine counters as JSON at /stats and stream stats at /streams. It is
// the server side of the fan-out benchmark (see ../fanout).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // profiles at /debug/pprof/ on the HTTP address
	"os"
	"os/signal"
	"syscall"

	"github.com/mofang-live/mofang/media"
)

func main() {
	rtmpAddr := flag.String("rtmp", "127.0.0.1:1935", "RTMP listen address")
	rtspAddr := flag.String("rtsp", "127.0.0.1:8554", "RTSP listen address")
	httpAddr := flag.String("http", "127.0.0.1:8080", "HTTP-FLV listen address")
	coalesce := flag.Duration("coalesce", 0, "reader write coalescing delay (0: engine default, negative: off)")
	verbose := flag.Bool("v", false, "debug logs")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	e, err := media.New(media.Config{
		RTMPAddress:    *rtmpAddr,
		RTSPAddress:    *rtspAddr,
		DisableRTSPUDP: true,
		DisableSRT:     true,
		Logger:         logger,
		WriteCoalesce:  *coalesce,
		// the load tool's viewers all come from one loopback address.
		MaxPendingPerIP: -1,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := e.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	mux := http.NewServeMux()
	mux.Handle("/debug/pprof/", http.DefaultServeMux)
	mux.Handle("/live/", e.HTTPHandler())
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(e.Counters()) //nolint:errcheck
	})
	mux.HandleFunc("/streams", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(e.Streams()) //nolint:errcheck
	})
	srv := &http.Server{Addr: *httpAddr, Handler: mux}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	logger.Info("HTTP-FLV listening", "addr", *httpAddr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

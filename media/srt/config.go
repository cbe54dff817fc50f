package srt

import (
	"log/slog"
	"time"
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Address is the UDP listen address (default ":8890").
	Address string
	// ReadTimeout bounds the silence of a peer (no packet at all, SRT's
	// keepalives included) and of a publisher (no media); a publisher
	// must also send its MPEG-TS program map within 3 ReadTimeouts of
	// being accepted (default 10 s).
	ReadTimeout time.Duration
	// MaxPendingPerIP is how many connection requests one IP address may
	// have waiting for their authorization; more are rejected at once
	// (default 16; negative: no limit).
	MaxPendingPerIP int
	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Address == "" {
		c.Address = ":8890"
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.MaxPendingPerIP == 0 {
		c.MaxPendingPerIP = 16
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

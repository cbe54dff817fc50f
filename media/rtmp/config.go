package rtmp

import (
	"crypto/tls"
	"log/slog"
	"net/netip"
	"time"
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Address is the listen address (default ":1935").
	Address string
	// ReadTimeout bounds every read of a publisher and the handshake and
	// commands of every connection (default 10 s). A connection must also
	// ask to publish or play within 3 ReadTimeouts of its accept; a player
	// is pinged every ReadTimeout and dropped when silent for 6
	// ReadTimeouts.
	ReadTimeout time.Duration
	// WriteTimeout bounds every write to a client; a player whose write
	// does not finish in time is dropped as too slow (default 10 s). The
	// deadline is moved lazily: a write has between 3/4 of it and all.
	WriteTimeout time.Duration
	// MaxPendingPerIP is how many connections one IP address may hold
	// that have not been admitted to publish or play yet (handshake and
	// commands); more are closed at once (default 16; negative: no limit).
	MaxPendingPerIP int
	// SocketSendBuffer, if positive, sets the kernel send buffer
	// (SO_SNDBUF) of every connection.
	SocketSendBuffer int
	// TLS, if set, makes the server RTMPS: every connection is TLS.
	TLS *tls.Config
	// ProxyProtocolFrom are the peers whose connections may start with a
	// PROXY protocol header (v1 or v2) giving the client's address; other
	// peers' connections are plain (internal/proxyhdr).
	ProxyProtocolFrom []netip.Prefix
	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Address == "" {
		c.Address = ":1935"
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

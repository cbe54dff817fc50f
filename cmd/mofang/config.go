package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// config is the service's configuration. Each field has a flag and a
// MOFANG_* environment variable; a flag given on the command line wins over
// the environment, which wins over the default.
type config struct {
	HTTPAddr   string
	RTMPAddr   string
	RTSPAddr   string
	DB         string
	DataDir    string
	JWTSecret  string
	SignSecret string
	PublicHost string
	TokenTTL   time.Duration
	LogFormat  string
	LogLevel   string
	// AllowRecharge lets every user add coins to their own account.
	AllowRecharge bool
}

// bindFlags defines the flags of c on fs, with defaults taken from the
// environment where set.
func (c *config) bindFlags(fs *flag.FlagSet) {
	str := func(p *string, name, env, def, usage string) {
		fs.StringVar(p, name, envOr(env, def), usage+" (env "+env+")")
	}
	str(&c.HTTPAddr, "http", "MOFANG_HTTP_ADDR", ":8080", "HTTP listen address: JSON-RPC at /, HTTP-FLV and HLS under /live/")
	str(&c.RTMPAddr, "rtmp", "MOFANG_RTMP_ADDR", ":1935", "RTMP listen address")
	str(&c.RTSPAddr, "rtsp", "MOFANG_RTSP_ADDR", ":8554", "RTSP listen address")
	str(&c.DataDir, "data", "MOFANG_DATA_DIR", "data", "folder for the embedded database and generated secrets")
	str(&c.DB, "db", "MOFANG_DB", "", "database: sqlite:PATH, or mysql://user:pass@tcp(host:3306)/db, or a plain MySQL DSN (default sqlite:<data>/mofang.db)")
	str(&c.JWTSecret, "jwt-secret", "MOFANG_JWT_SECRET", "", "secret that signs access tokens, 32+ bytes (default: generated and kept in <data>/jwt.secret)")
	str(&c.SignSecret, "sign-secret", "MOFANG_SIGN_SECRET", "", "secret that signs media URLs, 16+ bytes (default: generated and kept in <data>/sign.secret)")
	str(&c.PublicHost, "public-host", "MOFANG_PUBLIC_HOST", "", "host name put into stream URLs (default: the host the client used)")
	str(&c.LogFormat, "log-format", "MOFANG_LOG_FORMAT", "text", "log format: text or json")
	str(&c.LogLevel, "log-level", "MOFANG_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	ttl, err := time.ParseDuration(envOr("MOFANG_TOKEN_TTL", "2h"))
	if err != nil {
		ttl = 2 * time.Hour
	}
	fs.DurationVar(&c.TokenTTL, "token-ttl", ttl, "lifetime of access tokens (env MOFANG_TOKEN_TTL)")
	fs.BoolVar(&c.AllowRecharge, "allow-recharge", envOr("MOFANG_ALLOW_RECHARGE", "") == "1",
		"let every user add coins to their own account with User.coin.recharge: for development (env MOFANG_ALLOW_RECHARGE=1)")
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// dbDSN returns the database DSN, defaulting to a file in the data folder.
func (c *config) dbDSN() string {
	if c.DB != "" {
		return c.DB
	}
	return "sqlite:" + filepath.Join(c.DataDir, "mofang.db")
}

// secret returns the configured secret, or the one kept in the data folder
// under file, generating it on first use.
func (c *config) secret(configured, file string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	path := filepath.Join(c.DataDir, file)
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if s == "" {
			return nil, fmt.Errorf("secret file %s is empty", path)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading secret: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data folder: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("generating secret: %w", err)
	}
	s := hex.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process made it first: use theirs.
			return c.secret("", file)
		}
		return nil, fmt.Errorf("writing secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing secret: %w", err)
	}
	return []byte(s), nil
}

// logger builds the service's logger.
func (c *config) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.LogLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", c.LogFormat)
}

// port returns the port of a listen address, for URLs.
func port(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("listen address %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 0, fmt.Errorf("listen address %q: bad port", addr)
	}
	return n, nil
}

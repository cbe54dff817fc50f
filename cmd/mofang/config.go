package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/media/thumb"
	"github.com/mofang-live/mofang/media/transcode"
	"github.com/mofang-live/mofang/rpc"
)

// config is the service's configuration. Each setting has a flag, a
// MOFANG_* environment variable and a key of the YAML config file (the
// flag's name); a flag given on the command line wins over the
// environment, which wins over the file, which wins over the default.
type config struct {
	File          string
	HTTPAddr      string
	RTMPAddr      string
	RTSPAddr      string
	RTSPUDP       string
	SRTAddr       string
	WebRTCAddr    string
	WebRTCTCPAddr string
	WebRTCIPs     string
	ICEServers    string
	DB            string
	DataDir       string
	JWTSecret     string
	SignSecret    string
	PublicHost    string
	// The public bases of the media URLs handed out (publicURLs).
	PublicHTTPURL, PublicRTMPURL, PublicRTSPURL, PublicSRTURL string
	TokenTTL                                                  time.Duration
	LogFormat                                                 string
	LogLevel                                                  string
	AllowRecharge                                             bool
	Grace                                                     time.Duration
	// WriteCoalesce spaces a media viewer's writes (media.Config).
	WriteCoalesce time.Duration
	ShutdownWait  time.Duration
	DebugAddr     string
	HLS           string
	RecordDir     string
	RecordDays    string
	RecordMaxGB   string
	CallTimeout   time.Duration
	ConnsPerIP    string
	RTMPPending   string
	HeaderTimeout time.Duration
	BodyTimeout   time.Duration
	AuthTimeout   time.Duration
	SampleEvery   time.Duration // viewer samples of a live (livesession)
	// ShowPublisherIP shows every user publishers' full addresses
	// (rpc.Config.ShowPublisherIP).
	ShowPublisherIP bool
	// WordFilter and WordFilterMode are the server's word list for
	// comments (wordfilter.go).
	WordFilter, WordFilterMode string
	// ForwardMax is the number of restreaming destinations a room may
	// have; ForwardPrivate lets them be on private or local addresses
	// (forward.go).
	ForwardMax     string
	ForwardPrivate bool
	// Cluster is the Redis URL of the cluster this node joins (empty:
	// the node runs alone); NodeID and NodeURL name this node in it.
	Cluster string
	NodeID  string
	NodeURL string
	// The operator's hooks (hooks.go): webhook URLs, their secret and
	// events; the synchronous publish/play hook, its timeout and what a
	// failure of it means.
	WebhookURLs   string
	WebhookSecret string
	WebhookEvents string
	HookURL       string
	HookTimeout   time.Duration
	HookDefault   string
	// TLS (tls.go): a certificate and key, or ACME, for HTTPS/WSS on the
	// HTTP listener and RTMPS on its own; the trusted reverse proxies and
	// PROXY protocol senders.
	TLSCert, TLSKey       string
	RTMPSAddr             string
	ACMEDomain, ACMEEmail string
	TrustedProxies        string
	ProxyProtocolFrom     string
	// Thumbnails (media/thumb): how long a picture is served, how many
	// ffmpeg decodes run at once (0: off), which ffmpeg.
	ThumbInterval time.Duration
	ThumbDecodes  string
	ThumbFFmpeg   string
	// The quality ladder (media/transcode): the renditions, how many
	// lives at once, ffmpeg's threads, which ffmpeg.
	Transcode        string
	TranscodeMax     string
	TranscodeThreads string
	TranscodeFFmpeg  string

	// ImageMaxBytes caps an uploaded avatar or cover (uploads.go).
	ImageMaxBytes string
}

// setting is one configurable value.
type setting struct {
	name, env, def, usage string
	str                   *string
	dur                   *time.Duration
	flag                  *bool
}

// settings lists every setting of c, in the order `config print` shows
// them.
func (c *config) settings() []setting {
	return []setting{
		{name: "http", env: "MOFANG_HTTP_ADDR", def: ":8080", str: &c.HTTPAddr, usage: "HTTP listen address: JSON-RPC and pages at /, HTTP-FLV under /live/, /metrics, /healthz, /readyz"},
		{name: "rtmp", env: "MOFANG_RTMP_ADDR", def: ":1935", str: &c.RTMPAddr, usage: "RTMP listen address (empty: off)"},
		{name: "rtsp", env: "MOFANG_RTSP_ADDR", def: ":8554", str: &c.RTSPAddr, usage: "RTSP listen address (empty: off)"},
		{name: "rtsp-udp", env: "MOFANG_RTSP_UDP", def: ":8000", str: &c.RTSPUDP, usage: "RTSP's UDP transport: the RTP address, RTCP on the next port (empty: TCP only)"},
		{name: "srt-addr", env: "MOFANG_SRT_ADDR", def: ":8890", str: &c.SRTAddr, usage: "SRT listen address (UDP): MPEG-TS publishing and playback, stream ID publish:<stream>?sign=... or read:<stream>?sign=... (empty: off)"},
		{name: "webrtc-addr", env: "MOFANG_WEBRTC_ADDR", def: ":8189", str: &c.WebRTCAddr, usage: "UDP address of every WebRTC session's media (WHEP playback, WHIP publishing at /live/<stream>/whep and /whip on the HTTP port; empty: WebRTC off)"},
		{name: "webrtc-tcp-addr", env: "MOFANG_WEBRTC_TCP_ADDR", def: "", str: &c.WebRTCTCPAddr, usage: "TCP address for WebRTC's ICE over TCP, for networks that block UDP (empty: off)"},
		{name: "webrtc-public-ip", env: "MOFANG_WEBRTC_PUBLIC_IP", def: "", str: &c.WebRTCIPs, usage: "the server's public IP addresses behind a 1:1 NAT, comma-separated, announced to WebRTC peers"},
		{name: "ice-server", env: "MOFANG_ICE_SERVER", def: "", str: &c.ICEServers, usage: "STUN/TURN servers handed to WebRTC clients and callers, comma-separated: stun:host:port, turn:user:password@host:port?transport=udp"},
		{name: "data", env: "MOFANG_DATA_DIR", def: "data", str: &c.DataDir, usage: "folder for the embedded database and generated secrets"},
		{name: "db", env: "MOFANG_DB", def: "", str: &c.DB, usage: "database: sqlite:PATH, or mysql://user:pass@tcp(host:3306)/db, or a plain MySQL DSN (default sqlite:<data>/mofang.db)"},
		{name: "jwt-secret", env: "MOFANG_JWT_SECRET", def: "", str: &c.JWTSecret, usage: "secret that signs access tokens, 32+ bytes (default: generated and kept in <data>/jwt.secret)"},
		{name: "sign-secret", env: "MOFANG_SIGN_SECRET", def: "", str: &c.SignSecret, usage: "secret that signs media URLs, 16+ bytes (default: generated and kept in <data>/sign.secret)"},
		{name: "public-host", env: "MOFANG_PUBLIC_HOST", def: "", str: &c.PublicHost, usage: "host name put into stream URLs (default: the host the client used)"},
		{name: "public-http-url", env: "MOFANG_PUBLIC_HTTP_URL", def: "", str: &c.PublicHTTPURL, usage: "base of the HTTP media URLs handed out (HTTP-FLV, HLS, WHIP, WHEP, thumbnails, replays) behind a proxy, e.g. https://live.example.com or https://example.com/mofang (default: http(s)://<public-host>:<HTTP port>)"},
		{name: "public-rtmp-url", env: "MOFANG_PUBLIC_RTMP_URL", def: "", str: &c.PublicRTMPURL, usage: "RTMP server of the publish and play URLs handed out behind a balancer, e.g. rtmp://live.example.com:1935/live or rtmps://live.example.com/live (default: rtmp://<public-host>:<RTMP port>/live)"},
		{name: "public-rtsp-url", env: "MOFANG_PUBLIC_RTSP_URL", def: "", str: &c.PublicRTSPURL, usage: "base of the RTSP play URLs handed out behind a balancer, e.g. rtsp://live.example.com:554 (default: rtsp://<public-host>:<RTSP port>)"},
		{name: "public-srt-url", env: "MOFANG_PUBLIC_SRT_URL", def: "", str: &c.PublicSRTURL, usage: "host:port of the SRT URLs handed out behind a balancer, e.g. live.example.com:8890 (default: <public-host>:<SRT port>)"},
		{name: "hls", env: "MOFANG_HLS", def: "lowlatency", str: &c.HLS, usage: "HLS output at /live/<stream>/index.m3u8: lowlatency, fmp4, mpegts or off"},
		{name: "record-dir", env: "MOFANG_RECORD_DIR", def: "<data>/recordings", str: &c.RecordDir, usage: "where lives are recorded (rooms can turn it off); empty: no recording"},
		{name: "image-max-bytes", env: "MOFANG_IMAGE_MAX_BYTES", def: "2097152", str: &c.ImageMaxBytes, usage: "largest avatar or room cover upload in bytes; pictures are kept in the database"},
		{name: "record-days", env: "MOFANG_RECORD_DAYS", def: "0", str: &c.RecordDays, usage: "delete recordings older than this many days (0: keep)"},
		{name: "record-max-gb", env: "MOFANG_RECORD_MAX_GB", def: "0", str: &c.RecordMaxGB, usage: "delete the oldest recordings beyond this many GB in all (0: no limit)"},
		{name: "token-ttl", env: "MOFANG_TOKEN_TTL", def: "2h", dur: &c.TokenTTL, usage: "lifetime of access tokens"},
		{name: "publisher-grace", env: "MOFANG_PUBLISHER_GRACE", def: "10s", dur: &c.Grace, usage: "how long a stream whose publisher dropped waits for it to come back, viewers kept"},
		{name: "write-coalesce", env: "MOFANG_WRITE_COALESCE", def: "200ms", dur: &c.WriteCoalesce, usage: "RTMP and HTTP-FLV viewers (and restreaming pushes, and relays between nodes) get their packets merged into one write this often: fewer system calls per viewer for up to this much more latency (0: each packet at once; a new viewer's first write is never delayed)"},
		{name: "live-sample-interval", env: "MOFANG_LIVE_SAMPLE_INTERVAL", def: "5s", dur: &c.SampleEvery, usage: "how often the viewers of a live are sampled for its host's statistics"},
		{name: "shutdown-timeout", env: "MOFANG_SHUTDOWN_TIMEOUT", def: "10s", dur: &c.ShutdownWait, usage: "longest a graceful shutdown (SIGTERM) may take"},
		{name: "call-timeout", env: "MOFANG_CALL_TIMEOUT", def: "5s", dur: &c.CallTimeout, usage: "deadline of an API request or batch; a database that does not answer within it gives errno 1021 (0: none)"},
		{name: "conns-per-ip", env: "MOFANG_CONNS_PER_IP", def: "256", str: &c.ConnsPerIP, usage: "HTTP connections (players and websockets included) one IP address may hold at once (0: no cap)"},
		{name: "rtmp-pending-per-ip", env: "MOFANG_RTMP_PENDING_PER_IP", def: "16", str: &c.RTMPPending, usage: "RTMP connections one IP address may hold before they publish or play, and SRT connection requests it may have waiting for their authorization (0: no cap)"},
		{name: "http-header-timeout", env: "MOFANG_HTTP_HEADER_TIMEOUT", def: "10s", dur: &c.HeaderTimeout, usage: "longest an HTTP request's headers may take to arrive (0: no limit)"},
		{name: "http-body-timeout", env: "MOFANG_HTTP_BODY_TIMEOUT", def: "15s", dur: &c.BodyTimeout, usage: "longest an API POST's body may take to arrive (0: no limit)"},
		{name: "ws-auth-timeout", env: "MOFANG_WS_AUTH_TIMEOUT", def: "30s", dur: &c.AuthTimeout, usage: "how long a websocket opened without a valid token stays open (0: until it closes)"},
		{name: "cluster", env: "MOFANG_CLUSTER", def: "", str: &c.Cluster, usage: "Redis URL of the cluster this node joins, e.g. redis://10.0.0.9:6379/0: every node on one Redis and one MySQL database acts as one service (empty: this node runs alone)"},
		{name: "node-id", env: "MOFANG_NODE_ID", def: "", str: &c.NodeID, usage: "this node's name in the cluster (default: host name and HTTP port)"},
		{name: "node-url", env: "MOFANG_NODE_URL", def: "", str: &c.NodeURL, usage: "where the other nodes of the cluster reach this node's HTTP port for its streams, e.g. http://10.0.0.5:8080 (default: http://<host name>:<HTTP port>)"},
		{name: "tls-cert", env: "MOFANG_TLS_CERT", def: "", str: &c.TLSCert, usage: "TLS certificate file (PEM, full chain): the HTTP listener serves HTTPS and WSS; read again on SIGHUP"},
		{name: "tls-key", env: "MOFANG_TLS_KEY", def: "", str: &c.TLSKey, usage: "TLS private key file (PEM) of tls-cert"},
		{name: "rtmps-addr", env: "MOFANG_RTMPS_ADDR", def: "", str: &c.RTMPSAddr, usage: "RTMPS (RTMP over TLS) listen address, e.g. :443 or :1936; needs tls-cert or acme-domain (empty: off)"},
		{name: "acme-domain", env: "MOFANG_ACME_DOMAIN", def: "", str: &c.ACMEDomain, usage: "domains to get certificates for from Let's Encrypt (ACME TLS-ALPN-01: the HTTP listener must be reachable on port 443), comma-separated; certificates kept in <data>/acme"},
		{name: "acme-email", env: "MOFANG_ACME_EMAIL", def: "", str: &c.ACMEEmail, usage: "contact e-mail given to the ACME CA"},
		{name: "trusted-proxies", env: "MOFANG_TRUSTED_PROXIES", def: "", str: &c.TrustedProxies, usage: "reverse proxies (CIDRs or addresses, comma-separated) whose X-Forwarded-For / X-Real-IP give the client's address on the HTTP listener; others' headers are ignored"},
		{name: "proxy-protocol-from", env: "MOFANG_PROXY_PROTOCOL_FROM", def: "", str: &c.ProxyProtocolFrom, usage: "load balancers (CIDRs or addresses, comma-separated) that may open RTMP, RTMPS and RTSP connections with a PROXY protocol v1/v2 header giving the client's address; others' connections are plain"},
		{name: "transcode", env: "MOFANG_TRANSCODE", def: "", str: &c.Transcode, usage: "quality ladder, e.g. 720p,480p,360p: each live is transcoded by ffmpeg (libx264) into the renditions lower than itself, played as <stream>_480p and listed in /live/<stream>/master.m3u8 (empty: off)"},
		{name: "transcode-max", env: "MOFANG_TRANSCODE_MAX", def: "1", str: &c.TranscodeMax, usage: "how many lives are transcoded at once; a live beyond it plays at its source quality only"},
		{name: "transcode-threads", env: "MOFANG_TRANSCODE_THREADS", def: "2", str: &c.TranscodeThreads, usage: "threads of each transcoder's decoder, filters and each encoder"},
		{name: "transcode-ffmpeg", env: "MOFANG_TRANSCODE_FFMPEG", def: "ffmpeg", str: &c.TranscodeFFmpeg, usage: "the ffmpeg (with libx264) that transcodes, a path or a name in PATH; with transcode set, the service does not start without it"},
		{name: "debug-addr", env: "MOFANG_DEBUG_ADDR", def: "", str: &c.DebugAddr, usage: "listen address of Go's pprof profiles, e.g. 127.0.0.1:6060 (empty: off; never expose it)"},
		{name: "log-format", env: "MOFANG_LOG_FORMAT", def: "text", str: &c.LogFormat, usage: "log format: text or json"},
		{name: "log-level", env: "MOFANG_LOG_LEVEL", def: "info", str: &c.LogLevel, usage: "log level: debug, info, warn or error"},
		{name: "allow-recharge", env: "MOFANG_ALLOW_RECHARGE", def: "false", flag: &c.AllowRecharge, usage: "let every user add coins to their own account with User.coin.recharge: for development"},
		{name: "webhook-url", env: "MOFANG_WEBHOOK_URL", def: "", str: &c.WebhookURLs, usage: "comma-separated http(s) URLs that get a signed JSON POST for every selected event (see webhook-events; empty: none)"},
		{name: "webhook-secret", env: "MOFANG_WEBHOOK_SECRET", def: "", str: &c.WebhookSecret, usage: "secret (16+ bytes) of the HMAC-SHA256 in every webhook's and hook's MoFang-Signature header; required with webhook-url or hook-url"},
		{name: "webhook-events", env: "MOFANG_WEBHOOK_EVENTS", def: defaultWebhookEvents, str: &c.WebhookEvents, usage: "comma-separated events sent to webhook-url: publish.start, publish.stop, play.start, play.stop, record.done, room.comment, room.gift, room.like, room.join, room.leave, room.cohost; publish.*, play.*, room.* or * for all"},
		{name: "hook-url", env: "MOFANG_HOOK_URL", def: "", str: &c.HookURL, usage: "http(s) URL asked, before a publisher or viewer is admitted, whether it may: a signed POST {action, stream, protocol, ip, params} answered 200 {\"allow\": true} or {\"allow\": false, \"reason\": \"...\"} (empty: none)"},
		{name: "hook-timeout", env: "MOFANG_HOOK_TIMEOUT", def: "2s", dur: &c.HookTimeout, usage: "longest hook-url may take to answer"},
		{name: "hook-default", env: "MOFANG_HOOK_DEFAULT", def: "deny", str: &c.HookDefault, usage: "allow or deny the client when hook-url fails, times out or answers something else than 200 with JSON"},
		{name: "thumb-interval", env: "MOFANG_THUMB_INTERVAL", def: "10s", dur: &c.ThumbInterval, usage: "how long a live stream's thumbnail (/live/<stream>/thumb.jpg) is served before a request makes a new one from its newest key frame"},
		{name: "thumb-decodes", env: "MOFANG_THUMB_DECODES", def: "2", str: &c.ThumbDecodes, usage: "thumbnail decodes (ffmpeg processes) that may run at once, across every stream (0: thumbnails off)"},
		{name: "thumb-ffmpeg", env: "MOFANG_THUMB_FFMPEG", def: "ffmpeg", str: &c.ThumbFFmpeg, usage: "the ffmpeg that decodes thumbnails, a path or a name in PATH (missing: thumbnails answer 503, logged once)"},

		{name: "word-filter", env: "MOFANG_WORD_FILTER", def: "", str: &c.WordFilter, usage: "words no room's comments may hold, whatever their case: a file of one word per line (# starts a comment line), or a comma-separated list; rooms add their own (Live.room.mod.words)"},
		{name: "word-filter-mode", env: "MOFANG_WORD_FILTER_MODE", def: "mask", str: &c.WordFilterMode, usage: "what word-filter's words do to a comment: mask (each character becomes *) or refuse (errno 1037)"},
		{name: "forward-max", env: "MOFANG_FORWARD_MAX", def: "5", str: &c.ForwardMax, usage: "restreaming destinations (Live.forward.add) a room may have (0: restreaming off)"},
		{name: "forward-private", env: "MOFANG_FORWARD_PRIVATE", def: "false", flag: &c.ForwardPrivate, usage: "let restreaming destinations be on loopback, private or link-local addresses (default: public addresses only)"},
		{name: "show-publisher-ip", env: "MOFANG_SHOW_PUBLISHER_IP", def: "false", flag: &c.ShowPublisherIP, usage: "show every logged-in user the full address of rooms' publishers, as MoFang did (default: owner and admins only, others see 203.0.113.x)"},
	}
}

// secretSettings are never printed.
var secretSettings = map[string]bool{"jwt-secret": true, "sign-secret": true, "webhook-secret": true}

// generatedSecrets are the secrets made and kept in the data folder when
// not set.
var generatedSecrets = map[string]bool{"jwt-secret": true, "sign-secret": true}

// loadConfig builds the configuration from args, the environment and the
// config file named by --config or MOFANG_CONFIG. It returns the flag set
// (for the command's own flags, already parsed) and the remaining args.
func loadConfig(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*config, *flag.FlagSet, error) {
	c := &config{}
	c.File = envOr("MOFANG_CONFIG", "")
	if f, ok := flagValue(args, "config"); ok {
		c.File = f
	}
	file := map[string]string{}
	if c.File != "" {
		var err error
		if file, err = readConfigFile(c.File, c.settings()); err != nil {
			return nil, nil, err
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.File, "config", c.File, "YAML config file whose keys are these flags' names (env MOFANG_CONFIG)")
	for _, s := range c.settings() {
		def := s.def
		if v, ok := file[s.name]; ok {
			def = v
		}
		def = envOr(s.env, def)
		usage := s.usage + " (env " + s.env + ")"
		switch {
		case s.str != nil:
			fs.StringVar(s.str, s.name, def, usage)
		case s.dur != nil:
			d, err := time.ParseDuration(def)
			if err != nil {
				return nil, nil, fmt.Errorf("setting %s: %q is not a duration", s.name, def)
			}
			fs.DurationVar(s.dur, s.name, d, usage)
		case s.flag != nil:
			b, err := strconv.ParseBool(def)
			if err != nil {
				return nil, nil, fmt.Errorf("setting %s: %q is not true or false", s.name, def)
			}
			fs.BoolVar(s.flag, s.name, b, usage)
		}
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	return c, fs, nil
}

// flagValue finds the value of --name or -name in args, before parsing.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, p := range []string{"--" + name, "-" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// readConfigFile reads a YAML file of setting names and values.
func readConfigFile(path string, settings []setting) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.name] = true
	}
	out := map[string]string{}
	for k, v := range raw {
		if !known[k] {
			return nil, fmt.Errorf("config file %s: unknown setting %q", path, k)
		}
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool, int, float64:
			out[k] = fmt.Sprint(v)
		case nil:
			out[k] = ""
		default:
			return nil, fmt.Errorf("config file %s: setting %q must be a single value", path, k)
		}
	}
	return out, nil
}

// print writes the effective configuration as a YAML config file, with
// secrets left out.
func (c *config) print(w io.Writer) {
	fmt.Fprintln(w, "# MoFang Live configuration in effect (flags > environment > file > defaults)")
	for _, s := range c.settings() {
		var v string
		switch {
		case s.str != nil:
			v = strconv.Quote(*s.str)
		case s.dur != nil:
			v = s.dur.String()
		case s.flag != nil:
			v = strconv.FormatBool(*s.flag)
		}
		switch s.name {
		case "ice-server":
			v = strconv.Quote(maskICECredentials(*s.str))
		case "webhook-url", "hook-url":
			v = strconv.Quote(redactURLs(*s.str))
		}
		if secretSettings[s.name] {
			switch {
			case *s.str == "" && generatedSecrets[s.name]:
				fmt.Fprintf(w, "# %s: generated and kept in %s\n", s.name, filepath.Join(c.DataDir, strings.ReplaceAll(s.name, "-secret", ".secret")))
			case *s.str == "":
				fmt.Fprintf(w, "# %s: not set\n", s.name)
			default:
				fmt.Fprintf(w, "# %s: set (not shown)\n", s.name)
			}
			continue
		}
		fmt.Fprintf(w, "%s: %s  # %s\n", s.name, v, s.usage)
	}
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// recordDir returns the recordings folder ("" for none).
func (c *config) recordDir() string {
	if c.RecordDir == "<data>/recordings" {
		return filepath.Join(c.DataDir, "recordings")
	}
	return c.RecordDir
}

// retention returns the recording retention limits.
func (c *config) retention() (days int, maxBytes int64, err error) {
	days, err = strconv.Atoi(c.RecordDays)
	if err != nil || days < 0 {
		return 0, 0, fmt.Errorf("record-days %q: want a whole number of days", c.RecordDays)
	}
	gb, err := strconv.ParseFloat(c.RecordMaxGB, 64)
	if err != nil || gb < 0 {
		return 0, 0, fmt.Errorf("record-max-gb %q: want a number of GB", c.RecordMaxGB)
	}
	return days, int64(gb * (1 << 30)), nil
}

// ladder returns the quality ladder's settings (no rendition: off).
func (c *config) ladder() (rends []transcode.Rendition, maxLives, threads int, err error) {
	rends, err = media.ParseLadder(c.Transcode)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("transcode: %w", err)
	}
	maxLives, err = strconv.Atoi(c.TranscodeMax)
	if err != nil || maxLives < 1 {
		return nil, 0, 0, fmt.Errorf("transcode-max %q: want a whole number from 1", c.TranscodeMax)
	}
	threads, err = strconv.Atoi(c.TranscodeThreads)
	if err != nil || threads < 1 || threads > 64 {
		return nil, 0, 0, fmt.Errorf("transcode-threads %q: want a whole number from 1 to 64", c.TranscodeThreads)
	}
	if c.TranscodeFFmpeg == "" {
		return nil, 0, 0, errors.New("transcode-ffmpeg: want a path or a program name")
	}
	return rends, maxLives, threads, nil
}

// connsPerIP returns the cap on HTTP connections per address (0: none).
func (c *config) connsPerIP() (int, error) {
	n, err := strconv.Atoi(c.ConnsPerIP)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("conns-per-ip %q: want a whole number (0: no cap)", c.ConnsPerIP)
	}
	return n, nil
}

// rtmpPendingPerIP returns the cap on RTMP connections per address not
// yet admitted, as media.Config takes it (negative: none).
func (c *config) rtmpPendingPerIP() (int, error) {
	n, err := strconv.Atoi(c.RTMPPending)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("rtmp-pending-per-ip %q: want a whole number (0: no cap)", c.RTMPPending)
	}
	if n == 0 {
		return -1, nil
	}
	return n, nil
}

// publicURLs checks the public-*-url settings and returns them in the
// normal form rpc.PublicURLs documents; a bad one fails the start.
func (c *config) publicURLs() (rpc.PublicURLs, error) {
	var p rpc.PublicURLs
	var err error
	if p.HTTP, err = publicBase("public-http-url", c.PublicHTTPURL, []string{"http", "https"}, true); err != nil {
		return p, err
	}
	if p.RTMP, err = publicBase("public-rtmp-url", c.PublicRTMPURL, []string{"rtmp", "rtmps"}, false); err != nil {
		return p, err
	}
	if p.RTMP != "" {
		p.RTMP += "/live"
	}
	if p.RTSP, err = publicBase("public-rtsp-url", c.PublicRTSPURL, []string{"rtsp", "rtsps"}, false); err != nil {
		return p, err
	}
	if v := strings.TrimPrefix(strings.TrimSpace(c.PublicSRTURL), "srt://"); v != "" {
		host, port, err := net.SplitHostPort(v)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || strings.ContainsAny(host, "/?#@ ") || perr != nil || n < 1 || n > 65535 {
			return p, fmt.Errorf("public-srt-url %q: want host:port, e.g. live.example.com:8890", c.PublicSRTURL)
		}
		p.SRT = net.JoinHostPort(host, port)
	}
	return p, nil
}

// publicBase checks one public URL setting: one of schemes, a host, an
// optional port, no user, query or fragment; a path only where
// pathPrefix (the HTTP one, behind a proxy's location), else nothing or
// "/live", the one RTMP and RTSP application. It returns the URL without
// its path's trailing slash (and, without pathPrefix, without "/live").
func publicBase(name, v string, schemes []string, pathPrefix bool) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", name, v, err)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return "", fmt.Errorf("%s %q: want a %s:// URL", name, v, strings.Join(schemes, ":// or "))
	}
	if u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		form := "[/live]"
		if pathPrefix {
			form = "[/path]"
		}
		return "", fmt.Errorf("%s %q: want %s://host[:port]%s, without user, query or fragment", name, v, u.Scheme, form)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%s %q: bad port", name, v)
		}
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if !pathPrefix {
		if path != "" && path != "/live" {
			return "", fmt.Errorf("%s %q: the path can only be /live (the service's one application)", name, v)
		}
		path = ""
	}
	return u.Scheme + "://" + u.Host + path, nil
}

// thumbnails returns the thumbnail settings as the media engine takes
// them; off when thumb-decodes is 0.
func (c *config) thumbnails() (cfg thumb.Config, off bool, err error) {
	n, err := strconv.Atoi(c.ThumbDecodes)
	if err != nil || n < 0 {
		return cfg, false, fmt.Errorf("thumb-decodes %q: want a whole number (0: thumbnails off)", c.ThumbDecodes)
	}
	if c.ThumbInterval < time.Second {
		return cfg, false, fmt.Errorf("thumb-interval %v: want 1s or more", c.ThumbInterval)
	}
	if c.ThumbFFmpeg == "" {
		return cfg, false, errors.New("thumb-ffmpeg: want a path or a program name")
	}
	return thumb.Config{FFmpeg: c.ThumbFFmpeg, Interval: c.ThumbInterval, MaxDecodes: n}, n == 0, nil
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

// logger builds the service's logger, writing to w.
func (c *config) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", c.LogLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", c.LogFormat)
}

// rtcpAddr returns the address after an RTP address: RTCP's.
func rtcpAddr(rtp string) (string, error) {
	host, p, err := net.SplitHostPort(rtp)
	if err != nil {
		return "", fmt.Errorf("rtsp-udp %q: %w", rtp, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n%2 != 0 {
		return "", fmt.Errorf("rtsp-udp %q: the RTP port must be even", rtp)
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1)), nil
}

// port returns the port of a listen address, for URLs; 0 for none.
func port(addr string) (int, error) {
	if addr == "" {
		return 0, nil
	}
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

// iceServers parses the ice-server setting: comma-separated stun:, turn:
// or turns: URLs; a TURN URL may carry its long-term credentials before
// the host, turn:user:password@host:port.
func (c *config) iceServers() ([]iceServer, error) {
	var out []iceServer
	for _, f := range strings.Split(c.ICEServers, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		scheme, rest, ok := strings.Cut(f, ":")
		if !ok || (scheme != "stun" && scheme != "turn" && scheme != "turns") || rest == "" {
			return nil, fmt.Errorf("ice-server %q: want stun:, turn: or turns: URLs", maskICECredentials(f))
		}
		s := iceServer{URL: f}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if scheme == "stun" {
				return nil, fmt.Errorf("ice-server %q: a STUN server takes no credentials", maskICECredentials(f))
			}
			user, pass, ok := strings.Cut(rest[:at], ":")
			if !ok || user == "" {
				return nil, fmt.Errorf("ice-server %q: credentials must be user:password@", maskICECredentials(f))
			}
			s.URL, s.Username, s.Credential = scheme+":"+rest[at+1:], user, pass
		}
		out = append(out, s)
	}
	return out, nil
}

// iceServer is one parsed ice-server entry.
type iceServer struct {
	URL, Username, Credential string
}

// maskICECredentials hides the passwords of an ice-server setting.
func maskICECredentials(v string) string {
	parts := strings.Split(v, ",")
	for i, f := range parts {
		if at := strings.LastIndex(f, "@"); at >= 0 {
			if scheme, rest, ok := strings.Cut(f[:at], ":"); ok {
				user, _, _ := strings.Cut(rest, ":")
				parts[i] = scheme + ":" + user + ":***" + f[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// publicIPs parses the webrtc-public-ip setting.
func (c *config) publicIPs() ([]string, error) {
	var out []string
	for _, f := range strings.Split(c.WebRTCIPs, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if net.ParseIP(f) == nil {
			return nil, fmt.Errorf("webrtc-public-ip %q: not an IP address", f)
		}
		out = append(out, f)
	}
	return out, nil
}

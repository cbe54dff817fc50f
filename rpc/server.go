// Package rpc is MoFang Live's API: one JSON-RPC 2.0 endpoint with MoFang's
// method names ("Live.stream", "Live.stream.list", ...), params and result
// shapes ({"errno": 1000, "errmsg": "ok", ...}), authenticated by a JWT in
// "Authorization: jwt <token>".
//
// Calls come as HTTP POSTs to the base URL or as messages on a websocket
// opened on the same URL. Both go through the envelope (envelope.go),
// which implements the JSON-RPC 2.0 specification in full (version check,
// named and positional params, ids echoed byte for byte, notifications
// never answered, standard error codes with HTTP 200, batch and body
// limits) and calls the methods. The websocket also carries room events
// (comments, likes, gifts, presence) as "Live.room.events" notifications,
// encoded once per batch and shared by every connection in the room.
//
// The API speaks the wire format of github.com/filecoin-project/go-jsonrpc,
// so its Go client works against both transports (see MethodName), room
// events included (see RoomEvents). Its
// server is not used: measured with "mofang bench rpc", handing POST calls
// to its HandleRequest kept the cheapest call at 0.31 of a raw net/http
// handler's rate (direct dispatch: 0.68), and its websocket marshals every
// pushed value per connection with no bound on a slow reader, where room
// events must be encoded once and slow sockets dropped.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/internal/connlimit"
	"github.com/mofang-live/mofang/rpc/roomhub"
	"github.com/mofang-live/mofang/rpc/token"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/rpc/wordfilter"
	"github.com/mofang-live/mofang/store"
)

// LiveStats tells which streams are live. The media engine implements it;
// Live.stream.list merges it with the rooms in the store.
type LiveStats interface {
	// LiveStream reports the state of a stream by name; ok is false when
	// nothing is publishing it.
	LiveStream(name string) (s LiveStream, ok bool)
	// LiveStreamNames lists the streams being published now.
	LiveStreamNames() []string
}

// LiveStream is the state of a stream being published.
type LiveStream struct {
	Clients     int    // readers of every protocol
	PublisherIP string // the publisher's address
	// BFrames is true when the stream's video has B-frames, which WebRTC
	// (WHEP) viewers cannot play; Warning then tells the publisher how to
	// turn them off.
	BFrames bool
	Warning string
}

// Rendition is a lower-quality copy of a live stream, published as a
// stream of its own and played with the live's play sign.
type Rendition struct {
	Name   string // "480p"
	Stream string // "<stream>_480p"
	Width  int    // 0 when unknown
	Height int
}

// nothingLive is the LiveStats of a server without a media engine.
type nothingLive struct{}

func (nothingLive) LiveStream(string) (LiveStream, bool) { return LiveStream{}, false }
func (nothingLive) LiveStreamNames() []string            { return nil }

// Ports are where the media engine listens, for the URLs the API hands out.
type Ports struct {
	HTTP int // HTTP-FLV and HLS
	RTMP int
	RTSP int
	// SRT is the SRT (UDP) port; 0: SRT is off, no srt URLs.
	SRT int
}

// PublicURLs are the bases of the media URLs the API hands out, each
// already checked and in its normal form (see the fields); "" keeps the
// default.
type PublicURLs struct {
	// HTTP is the base of the URLs on the HTTP port (HTTP-FLV, HLS, WHIP,
	// WHEP, thumbnails, replays): "https://live.example.com" or with a
	// path prefix, "https://example.com/mofang", no trailing slash.
	HTTP string
	// RTMP is the RTMP server of publish and play URLs (OBS's "Server"):
	// "rtmp://host:port/live" or "rtmps://host:port/live".
	RTMP string
	// RTSP is the base of RTSP play URLs: "rtsp://host:port" (or
	// rtsps://); "/live/<stream>" follows.
	RTSP string
	// SRT is the host:port of SRT URLs (shown while SRT is on).
	SRT string
}

// Config is what a Server needs.
type Config struct {
	Store  *store.Store
	Tokens *token.Issuer
	Signer *urlsign.Signer
	// Live reports live streams; nil means nothing is ever live.
	Live LiveStats
	// PublicHost is the host name put into media URLs. Empty means the
	// host the client used to reach the API.
	PublicHost string
	Ports      Ports
	// PublicURLs, where set, are the bases of the media URLs handed out,
	// for clients that reach the service through a proxy or a balancer
	// on other names, ports or schemes; each replaces PublicHost and the
	// port for its protocol. Empty fields keep the URLs made from
	// PublicHost (or the caller's host) and Ports.
	PublicURLs PublicURLs
	// DisableWebRTC leaves the WHIP and WHEP URLs out of Live.stream and
	// Live.stream.read (the media engine serves no WebRTC). WHIP and WHEP
	// are served on Ports.HTTP.
	DisableWebRTC bool
	// Thumbnails says the media engine serves /live/<stream>/thumb.jpg:
	// Live.stream.list gives live rooms without a cover their thumbnail
	// (thumb), Live.stream.read its signed URL (play.thumb).
	Thumbnails bool
	// Renditions, if set, lists the renditions of a live stream (the
	// quality ladder, media/transcode), from the highest: Live.stream.read
	// gives their play URLs. nil: none.
	Renditions func(stream string) []Rendition
	// TLS says that Ports.HTTP serves HTTPS: HTTP-FLV, HLS, WHIP, WHEP
	// and replay URLs say https (port 443 left out).
	TLS bool
	// RefreshTTL is how long a refresh token lives (default 30 days).
	RefreshTTL time.Duration
	// PublishSignTTL and PlaySignTTL are how long media URL signs live
	// (defaults 24 hours and 6 hours). A room's own stream key does not
	// expire (see Live.stream.key.reset); PublishSignTTL is the life of
	// the publish signs of calls' streams.
	PublishSignTTL time.Duration
	PlaySignTTL    time.Duration
	// MaxBodyBytes limits a POST body (default 1 MiB).
	MaxBodyBytes int64
	// CallTimeout is the deadline of one message's calls: a POST's
	// request or batch, or one websocket message (default 5 s; negative:
	// none). Every database query of the calls runs under it; a call
	// whose database does not answer in time gets errno 1021.
	CallTimeout time.Duration
	// BcryptCost is the cost of password hashes (default 10).
	BcryptCost int
	// AllowRecharge lets every user add coins to their own account with
	// User.coin.recharge: for development. Admins always may.
	AllowRecharge bool
	Limits        Limits
	// Auth tunes the limits on password guessing (logins, room
	// passwords, registrations) and how long an account's state is
	// cached; zero fields take defaults (see AuthLimits).
	Auth AuthLimits
	// ShowPublisherIP shows every logged-in user the full address of a
	// room's publisher (owner) in Live.stream.list and Live.stream.read,
	// as MoFang did. Off (the default), only the owner and admins see it;
	// others get it masked (203.0.113.x, an IPv6 /48).
	ShowPublisherIP bool
	// Media serves the Admin methods; nil means no media engine.
	Media MediaAdmin
	// RecordFiles removes the files of deleted recordings.
	RecordFiles RecordFiles
	// Forwards is restreaming (Live.forward.*).
	Forwards ForwardConfig
	// ObserveCall, if set, hears of every call: its method ("(unknown)"
	// for names not registered), duration, and whether it answered a
	// JSON-RPC error. For metrics; it must be fast.
	ObserveCall func(method string, d time.Duration, failed bool)
	// Calls tunes 1:1 calls (Live.call.*) and co-hosts (Live.cohost.*):
	// the STUN/TURN servers handed to callers, how long an invitation
	// rings, and the limits on invitations and signalling; zero fields
	// take defaults (see CallLimits).
	Calls CallLimits
	// OnRoomEvent, if set, hears of every event this node publishes in a
	// room (comment, like, gift, join, leave, cohost), as the room's
	// members get it, with its seq: for the operator's webhooks. It is
	// called on the path of the call that made the event: it must return
	// at once (see roomhub.Hub.Observe).
	OnRoomEvent func(roomID int64, ev roomhub.Event)
	// Version is reported by Admin.server.stats.
	Version string
	Logger  *slog.Logger

	// Cluster is this node's share of the service: the other nodes, their
	// streams and clients, and commands to them (Admin kicks and bans
	// that find nothing here). Nil means a node alone (cluster.NewLocal),
	// which the Server runs commands for itself; otherwise whoever set
	// Cluster.HandleCommands passes the API's commands to RunCommand.
	Cluster cluster.Cluster
	// Rooms carries room events and presence between the nodes; nil
	// means this node alone (cluster.NewLocalRooms). The Server sets its
	// HandleVanished.
	Rooms cluster.Rooms
	// Limiter keeps the per-user limits of room actions (comments,
	// likes, gifts, invitations, signalling) for every node; nil means
	// this node alone (cluster.NewLocalLimiter). When it cannot be
	// reached, the node's own limiter stands in.
	Limiter cluster.Limiter

	// WordFilter is the server's word list, checked on every room's
	// comments with the room's own (Live.room.mod.words); nil: none.
	WordFilter *wordfilter.List
	// Followers tells who follows a room's owner, for followers-only
	// chat; nil: the store's follows (User.follow).
	Followers Followers
	// Schedules tunes scheduled lives (Live.schedule.*): their windows,
	// how far ahead and how many; zero fields take defaults.
	Schedules ScheduleLimits
	// Now is the clock of scheduled lives (default time.Now): tests move
	// it.
	Now func() time.Time
}

// Limits keep rooms usable and connections bounded. Zero fields take the
// defaults in brackets.
type Limits struct {
	MaxCommentLen   int           // characters in a comment [200]
	Comments        Rate          // per user [burst 5, then 1 every 500ms]
	Likes           Rate          // per user [burst 20, then 1 every 100ms]
	Gifts           Rate          // per user [burst 10, then 1 every 200ms]
	RoomsPerSocket  int           // rooms one websocket may join [5]
	SendQueue       int           // messages queued for one websocket before it is dropped [64]
	MaxMessageBytes int64         // largest websocket message read [64 KiB]
	EventInterval   time.Duration // shortest time between two sweeps of a room's events: a socket gets about one message per interval at most [50ms]
	ModActions      Rate          // moderation actions per user, owners' and admins' too [burst 20, then 1 every 1s]

	// Costly methods (bcrypt: User.login, User.register, User.refresh)
	// are limited per message and per client address; calls beyond get
	// errno 1003 without running.
	CostlyPerBatch int  // costly calls one message may make [5]
	Costly         Rate // costly calls per IP [burst 10, then 1 every 500ms]

	SlowCall     time.Duration // a websocket message running this long no longer holds up the next [2s]
	SocketCalls  int           // messages of one websocket running at once, the next waiting [4]
	SocketsPerIP int           // websockets open at once from one IP, negative: no cap [128]
	AuthTimeout  time.Duration // how long a websocket without a valid token stays open, negative: for good [30s]
	BodyTimeout  time.Duration // longest the body of a POST may take to arrive, negative: no limit [15s]
}

func (l *Limits) setDefaults() {
	setDefault(&l.MaxCommentLen, 200)
	setDefault(&l.Comments, Rate{Every: 500 * time.Millisecond, Burst: 5})
	setDefault(&l.Likes, Rate{Every: 100 * time.Millisecond, Burst: 20})
	setDefault(&l.Gifts, Rate{Every: 200 * time.Millisecond, Burst: 10})
	setDefault(&l.RoomsPerSocket, 5)
	setDefault(&l.SendQueue, 64)
	setDefault(&l.MaxMessageBytes, 64<<10)
	setDefault(&l.EventInterval, 50*time.Millisecond)
	setDefault(&l.ModActions, Rate{Every: time.Second, Burst: 20})
	setDefault(&l.CostlyPerBatch, 5)
	setDefault(&l.Costly, Rate{Every: 500 * time.Millisecond, Burst: 10})
	setDefault(&l.SlowCall, 2*time.Second)
	setDefault(&l.SocketCalls, 4)
	setDefault(&l.SocketsPerIP, 128)
	setDefault(&l.AuthTimeout, 30*time.Second)
	setDefault(&l.BodyTimeout, 15*time.Second)
}

// Server is the JSON-RPC endpoint. It is an http.Handler for the base URL.
type Server struct {
	cfg     Config
	log     *slog.Logger
	methods map[string]*method
	guard   *attemptGuard
	limiter *limiter
	sockets *connlimit.Limiter // websockets per IP
	rooms   *roomhub.Hub
	started time.Time

	// writeBuffers lend websockets a buffer while they write.
	writeBuffers *sync.Pool

	unknownCalls callCounter

	connsMu      sync.Mutex
	conns        map[*wsConn]struct{}
	shuttingDown bool
	slowSockets  atomic.Uint64

	ownCluster       bool          // cfg.Cluster was made by New: close it at Shutdown
	limiterFallbacks atomic.Uint64 // room action limits the cluster could not check

	userSockets userSockets // websockets in rooms, by user
	calls       callBook    // 1:1 calls
	cohosts     cohostBook  // co-host sessions, invitations and requests

	notifySockets notifySockets // every logged-in websocket, by user: live notices
}

// now is the clock of scheduled lives.
func (s *Server) now() time.Time { return s.cfg.Now() }

// New returns a Server with every MoFang method registered.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Tokens == nil || cfg.Signer == nil {
		return nil, errors.New("rpc: Config needs Store, Tokens and Signer")
	}
	if cfg.Live == nil {
		cfg.Live = nothingLive{}
	}
	if cfg.Media == nil {
		cfg.Media = noMedia{}
	}
	if cfg.RecordFiles == nil {
		cfg.RecordFiles = noFiles{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&cfg.RefreshTTL, 30*24*time.Hour)
	setDefault(&cfg.PublishSignTTL, 24*time.Hour)
	setDefault(&cfg.PlaySignTTL, 6*time.Hour)
	setDefault(&cfg.MaxBodyBytes, 1<<20)
	setDefault(&cfg.CallTimeout, 5*time.Second)
	setDefault(&cfg.BcryptCost, 10)
	setDefault(&cfg.Ports.HTTP, 8080)
	setDefault(&cfg.Ports.RTMP, 1935)
	setDefault(&cfg.Ports.RTSP, 8554)
	cfg.Limits.setDefaults()
	cfg.Calls.setDefaults()
	cfg.Schedules.setDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ownCluster := cfg.Cluster == nil
	if ownCluster {
		cfg.Cluster = cluster.NewLocal(cluster.Node{ID: "local"})
	}
	if cfg.Rooms == nil {
		cfg.Rooms = cluster.NewLocalRooms()
	}
	if cfg.Limiter == nil {
		cfg.Limiter = cluster.NewLocalLimiter()
	}
	if cfg.Followers == nil {
		cfg.Followers = cfg.Store // User.follow's follows
	}

	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		methods: map[string]*method{},
		guard:   newAttemptGuard(5, time.Minute),
		limiter: newLimiter(),
		sockets: connlimit.New(cfg.Limits.SocketsPerIP),
		rooms:   roomhub.New(cfg.Limits.EventInterval, cfg.Rooms),
		conns:   map[*wsConn]struct{}{},
		started: time.Now(),

		ownCluster: ownCluster,

		writeBuffers: newWriteBuffers(),
	}
	cfg.Rooms.HandleVanished(s.rooms.Vanished)
	if ownCluster {
		cfg.Cluster.HandleCommands(func(c cluster.Command) { s.RunCommand(c) })
	}
	if cfg.OnRoomEvent != nil {
		s.rooms.Observe(cfg.OnRoomEvent)
	}
	for _, api := range []struct {
		namespace string
		impl      any
	}{
		{"Server", &serverAPI{s}},
		{"User", &userAPI{s}},
		{"Live", &liveAPI{s}},
		{"Live", &callAPI{s}},
		{"Live", &cohostAPI{s}},
		{"Live", &modAPI{s}},
		{"User", &followAPI{s}},
		{"Live", &scheduleAPI{s}},
		{"Gift", &giftAPI{s}},
		{"Admin", &adminAPI{s}},
		{"rpc", &discoverAPI{s}},
	} {
		if err := s.Register(api.namespace, api.impl); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Register adds the exported methods of api under namespace: Go method
// StreamList of namespace Live is called as "Live.stream.list". Every method
// must be func(context.Context, Params) (Result, error) with Params a struct
// whose json tags name the params in positional order. Register is for
// start-up, before the Server serves.
func (s *Server) Register(namespace string, api any) error {
	ms, err := describe(namespace, api)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if _, dup := s.methods[m.name]; dup {
			return fmt.Errorf("rpc: method %s registered twice", m.name)
		}
		s.methods[m.name] = m
	}
	return nil
}

// Alias makes alias another name of the registered method original.
func (s *Server) Alias(alias, original string) error {
	m, ok := s.methods[original]
	if !ok {
		return fmt.Errorf("rpc: alias %s of unknown method %s", alias, original)
	}
	s.methods[alias] = m
	return nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// CallCounts returns the calls and errors of every registered method.
func (s *Server) CallCounts() map[string]CallCounts {
	out := make(map[string]CallCounts, len(s.methods)+1)
	for name, m := range s.methods {
		if name != m.name {
			continue // an alias
		}
		out[name] = CallCounts{Calls: m.counts.calls.Load(), Errors: m.counts.errors.Load()}
	}
	out["(unknown)"] = CallCounts{Calls: s.unknownCalls.calls.Load(), Errors: s.unknownCalls.errors.Load()}
	return out
}

// Websockets tells how many websockets are open.
func (s *Server) Websockets() int {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	return len(s.conns)
}

// RoomStats returns the counters of the room event fan-out.
func (s *Server) RoomStats() roomhub.Stats { return s.rooms.Stats() }

// LimiterFallbacks counts the limits of room actions that the cluster's
// Limiter could not check, which this node's own limiter checked instead.
func (s *Server) LimiterFallbacks() uint64 { return s.limiterFallbacks.Load() }

// Methods lists the names of the registered methods, sorted.
func (s *Server) Methods() []string { return s.methodNames() }

// ServeHTTP answers POSTs to the endpoint; OPTIONS for CORS preflights.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.serveWS(w, r)
		return
	}
	switch r.Method {
	case http.MethodPost:
		s.servePOST(w, r)
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Allow", "POST, OPTIONS")
		http.Error(w, "the JSON-RPC endpoint takes POST", http.StatusMethodNotAllowed)
	}
}

// caller is who sent the HTTP request or opened the websocket: its
// credentials, its address and the host it used.
type caller struct {
	token string
	ip    string
	host  string
	lang  lang // of errmsg, from Accept-Language (lang.go)
}

type callerKey struct{}

func withCaller(ctx context.Context, c *caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

func callerOf(ctx context.Context) *caller {
	if c, ok := ctx.Value(callerKey{}).(*caller); ok {
		return c
	}
	return &caller{}
}

// newCaller reads who sent r. The token may come in the URL ("?token=")
// only when upgrading to a websocket (urlToken), which browsers cannot
// give headers; elsewhere URLs end up in logs and histories.
func (s *Server) newCaller(r *http.Request, urlToken bool) *caller {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	return &caller{token: bearer(r, urlToken), ip: ip, host: r.Host, lang: langOf(r.Header.Get("Accept-Language"))}
}

// bearer returns the token of "Authorization: jwt <token>" (MoFang's form)
// or "Bearer <token>", or, when urlToken, of a "token" query param.
func bearer(r *http.Request, urlToken bool) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
		if ok && (strings.EqualFold(scheme, "jwt") || strings.EqualFold(scheme, "bearer")) {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	if urlToken {
		return r.URL.Query().Get("token")
	}
	return ""
}

// errLogin is returned by userID when the caller must log in again.
var errLogin = errors.New("rpc: not logged in")

// userID returns the id of the logged-in caller, or errLogin. The token is
// checked on every call (the issuer remembers verified tokens), so a
// websocket outliving its token is refused from then on.
func (s *Server) userID(ctx context.Context) (int64, error) {
	c := callerOf(ctx)
	if c.token == "" {
		return 0, errLogin
	}
	id, err := s.cfg.Tokens.Verify(c.token)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errLogin, err)
	}
	return id, nil
}

// mediaHost is the host name for media URLs given to the caller.
func (s *Server) mediaHost(ctx context.Context) string {
	if s.cfg.PublicHost != "" {
		return s.cfg.PublicHost
	}
	host := callerOf(ctx).host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" || strings.ContainsAny(host, "/?#@ \\") {
		return "localhost"
	}
	return host
}

package webrtc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
)

// ICEServer is a STUN or TURN server offered to clients (in the Link
// headers of WHIP/WHEP responses, RFC 9725 section 4.4). The server itself
// never uses them: it has a public address (Config.PublicIPs) and answers
// as ICE-lite.
type ICEServer struct {
	// URLs are stun:, turn: or turns: URIs.
	URLs []string
	// Username and Credential are the TURN long-term credentials.
	Username, Credential string
}

// Config configures a Server. Zero values take the defaults shown.
type Config struct {
	// UDPAddress is the one UDP address every session's media uses
	// (default ":8189"). A host of 0.0.0.0 or :: (or none) listens on every
	// interface; a loopback host also announces loopback candidates.
	UDPAddress string
	// TCPAddress, if set, is a TCP address for ICE over TCP (RFC 6544),
	// for networks that block UDP. Off by default.
	TCPAddress string
	// PublicIPs are the server's public addresses behind a 1:1 NAT,
	// announced as host candidates next to the local ones.
	PublicIPs []string
	// ICEServers are handed to clients in Link headers.
	ICEServers []ICEServer

	// ConnectTimeout bounds the time from the answer to an established
	// DTLS connection; a session that has not connected by then is closed
	// and its resources freed (default 10 s).
	ConnectTimeout time.Duration
	// ICEDisconnectedTimeout and ICEFailedTimeout: a connected session
	// whose peer goes silent is disconnected after the first and closed
	// after both (defaults 5 s and 10 s). ICEKeepaliveInterval is how
	// often an idle connection is kept alive (default 2 s).
	ICEDisconnectedTimeout time.Duration
	ICEFailedTimeout       time.Duration
	ICEKeepaliveInterval   time.Duration

	// VideoRing and AudioRing are the number of RTP packets an Output
	// keeps per track (powers of two; defaults 4096 and 512). They bound
	// the key frame cache new viewers start from, the packets a lost one
	// can be resent from (NACK) and how far a viewer may fall behind.
	VideoRing, AudioRing int
	// ViewerLag is how many video packets a viewer may be behind the
	// stream before it skips to the newest key frame (default 1024).
	ViewerLag int

	// FFmpeg is the ffmpeg binary used to transcode AAC to Opus for
	// viewers and Opus to AAC for WHIP publishers (default "ffmpeg" in
	// PATH).
	FFmpeg string
	// TranscodeIdle is how long an Output's AAC-to-Opus transcoder keeps
	// running after its last viewer left (default 10 s).
	TranscodeIdle time.Duration
	// OpusBitrate is the bit rate of Opus made from AAC (default 96 kbit/s);
	// AACBitrate that of AAC made from Opus (default 128 kbit/s).
	OpusBitrate, AACBitrate int

	// Logger receives the server's logs (default slog.Default()); pion's
	// own logs go to it at debug level.
	Logger *slog.Logger
}

func (c *Config) setDefaults() error {
	if c.UDPAddress == "" {
		c.UDPAddress = ":8189"
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ICEDisconnectedTimeout <= 0 {
		c.ICEDisconnectedTimeout = 5 * time.Second
	}
	if c.ICEFailedTimeout <= 0 {
		c.ICEFailedTimeout = 10 * time.Second
	}
	if c.ICEKeepaliveInterval <= 0 {
		c.ICEKeepaliveInterval = 2 * time.Second
	}
	if c.VideoRing == 0 {
		c.VideoRing = 4096
	}
	if c.AudioRing == 0 {
		c.AudioRing = 512
	}
	for _, n := range []int{c.VideoRing, c.AudioRing} {
		if n < 64 || n&(n-1) != 0 {
			return fmt.Errorf("webrtc: ring size %d is not a power of two of at least 64", n)
		}
	}
	if c.ViewerLag <= 0 {
		c.ViewerLag = 1024
	}
	if c.ViewerLag > c.VideoRing/2 {
		c.ViewerLag = c.VideoRing / 2
	}
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.TranscodeIdle <= 0 {
		c.TranscodeIdle = 10 * time.Second
	}
	if c.OpusBitrate <= 0 {
		c.OpusBitrate = 96000
	}
	if c.AACBitrate <= 0 {
		c.AACBitrate = 128000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for _, ip := range c.PublicIPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("webrtc: public IP %q: %w", ip, err)
		}
	}
	for _, s := range c.ICEServers {
		for _, u := range s.URLs {
			if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
				return fmt.Errorf("webrtc: ICE server %q is not a stun:, turn: or turns: URL", u)
			}
			if strings.ContainsAny(u, "<>\r\n\"") {
				return fmt.Errorf("webrtc: ICE server %q has invalid characters", u)
			}
		}
		if strings.ContainsAny(s.Username+s.Credential, "\r\n\"") {
			return errors.New("webrtc: ICE server credentials with quotes or line breaks")
		}
	}
	return nil
}

// resource is a live WHEP session or WHIP input, as the HTTP helpers see
// it.
type resource interface {
	ID() string
	Close() error
	AddICECandidates(frag []byte) error
	Stats() Stats
	// etag is the value of the ETag header of the session's resource.
	etag() string
	// endpoint is the URL path the session was created at ("" if not
	// created through the HTTP helpers).
	endpoint() string
}

// Server owns what every WebRTC session shares: the pion APIs, the UDP (and
// TCP) port, the DTLS certificate and the table of live sessions.
type Server struct {
	cfg        Config
	log        *slog.Logger
	apiPlay    *webrtc.API // WHEP viewers
	apiPublish *webrtc.API // WHIP publishers
	cert       webrtc.Certificate

	udpConns []net.PacketConn
	udpMux   ice.UDPMux
	tcpLn    net.Listener
	tcpMux   ice.TCPMux

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	resources map[string]resource
	closed    bool
	wg        sync.WaitGroup
}

// New starts a Server: it binds the UDP (and TCP) port. Close releases
// them.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, resources: map[string]resource{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.listen(); err != nil {
		s.closeSockets()
		return nil, err
	}
	if err := s.buildAPI(); err != nil {
		s.closeSockets()
		return nil, err
	}
	return s, nil
}

func (s *Server) listen() error {
	logs := pionLogs{log: s.log}
	host, portStr, err := net.SplitHostPort(s.cfg.UDPAddress)
	if err != nil {
		return fmt.Errorf("webrtc: UDP address %q: %w", s.cfg.UDPAddress, err)
	}
	ip := net.ParseIP(host)
	if host == "" || (ip != nil && ip.IsUnspecified()) {
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return fmt.Errorf("webrtc: UDP port %q: %w", portStr, err)
		}
		mux, err := ice.NewMultiUDPMuxFromPort(port, ice.UDPMuxFromPortWithLogger(logs.NewLogger("udpmux")),
			ice.UDPMuxFromPortWithReadBufferSize(4<<20), ice.UDPMuxFromPortWithWriteBufferSize(4<<20))
		if err != nil {
			return fmt.Errorf("webrtc: listen on UDP port %d: %w", port, err)
		}
		s.udpMux = mux
	} else {
		conn, err := net.ListenPacket("udp", s.cfg.UDPAddress)
		if err != nil {
			return fmt.Errorf("webrtc: listen on UDP %s: %w", s.cfg.UDPAddress, err)
		}
		if uc, ok := conn.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(4 << 20)
			_ = uc.SetWriteBuffer(4 << 20)
		}
		s.udpConns = append(s.udpConns, conn)
		s.udpMux = webrtc.NewICEUDPMux(logs.NewLogger("udpmux"), conn)
	}
	if s.cfg.TCPAddress != "" {
		ln, err := net.Listen("tcp", s.cfg.TCPAddress)
		if err != nil {
			return fmt.Errorf("webrtc: listen on TCP %s: %w", s.cfg.TCPAddress, err)
		}
		s.tcpLn = ln
		s.tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{
			Listener:                     ln,
			Logger:                       logs.NewLogger("tcpmux"),
			ReadBufferSize:               8,
			WriteBufferSize:              1 << 20,
			FirstStunBindTimeout:         s.cfg.ConnectTimeout,
			AliveDurationForConnFromStun: s.cfg.ConnectTimeout,
		})
	}
	return nil
}

func (s *Server) loopbackOnly() bool {
	host, _, _ := net.SplitHostPort(s.cfg.UDPAddress)
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) buildAPI() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("webrtc: DTLS key: %w", err)
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return fmt.Errorf("webrtc: DTLS certificate: %w", err)
	}
	s.cert = *cert

	var se webrtc.SettingEngine
	se.LoggerFactory = pionLogs{log: s.log}
	se.SetLite(true)
	se.SetICEUDPMux(s.udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if s.tcpMux != nil {
		se.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(s.loopbackOnly())
	se.SetICETimeouts(s.cfg.ICEDisconnectedTimeout, s.cfg.ICEFailedTimeout, s.cfg.ICEKeepaliveInterval)
	if len(s.cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        s.cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteAppend,
		}); err != nil {
			return fmt.Errorf("webrtc: public IPs: %w", err)
		}
	}

	// Two APIs on the same settings, so the same UDP (and TCP) port:
	// viewers' peer connections need no interceptor (an Output answers
	// NACKs from its shared ring, with no per-viewer copy, and writes its
	// sender reports from the stream clock), which saves their goroutines
	// and buffers; publishers' get NACKs for lost packets, receiver
	// reports and transport-wide congestion control feedback, so that a
	// browser raises its bit rate.
	playME := &webrtc.MediaEngine{}
	if err := registerCodecs(playME); err != nil {
		return err
	}
	s.apiPlay = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(playME),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))

	pubME := &webrtc.MediaEngine{}
	if err := registerCodecs(pubME); err != nil {
		return err
	}
	ir := &interceptor.Registry{}
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorSize(512))
	if err != nil {
		return fmt.Errorf("webrtc: NACK generator: %w", err)
	}
	ir.Add(gen)
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return fmt.Errorf("webrtc: receiver reports: %w", err)
	}
	ir.Add(rr)
	if err := webrtc.ConfigureTWCCSender(pubME, ir); err != nil {
		return fmt.Errorf("webrtc: TWCC: %w", err)
	}
	s.apiPublish = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(pubME), webrtc.WithInterceptorRegistry(ir))
	return nil
}

// newPeerConnection creates a peer connection with the shared certificate,
// for a viewer or a publisher.
func (s *Server) newPeerConnection(publish bool) (*webrtc.PeerConnection, error) {
	api := s.apiPlay
	if publish {
		api = s.apiPublish
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		Certificates: []webrtc.Certificate{s.cert},
		BundlePolicy: webrtc.BundlePolicyMaxBundle,
	})
	if err != nil {
		return nil, fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	return pc, nil
}

// UDPAddr returns the bound UDP address (nil when listening on every
// interface through several sockets).
func (s *Server) UDPAddr() net.Addr {
	if len(s.udpConns) == 1 {
		return s.udpConns[0].LocalAddr()
	}
	return nil
}

// TCPAddr returns the bound ICE-TCP address, or nil.
func (s *Server) TCPAddr() net.Addr {
	if s.tcpLn == nil {
		return nil
	}
	return s.tcpLn.Addr()
}

// LinkHeaders returns the values of the Link headers that announce the
// configured ICE servers to a WHIP/WHEP client (RFC 9725 section 4.4).
func (s *Server) LinkHeaders() []string {
	var out []string
	for _, is := range s.cfg.ICEServers {
		for _, u := range is.URLs {
			v := "<" + u + `>; rel="ice-server"`
			if strings.HasPrefix(u, "turn") && is.Username != "" {
				v += `; username="` + is.Username + `"; credential="` + is.Credential + `"; credential-type="password"`
			}
			out = append(out, v)
		}
	}
	return out
}

// register adds a live session to the table; it fails once the server is
// closed.
func (s *Server) register(r resource) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.resources[r.ID()] = r
	s.wg.Add(1)
	return nil
}

// unregister removes a session; it is called once per registered session.
func (s *Server) unregister(id string) {
	s.mu.Lock()
	_, ok := s.resources[id]
	delete(s.resources, id)
	s.mu.Unlock()
	if ok {
		s.wg.Done()
	}
}

func (s *Server) lookup(id string) resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resources[id]
}

// Sessions returns the number of live sessions (WHEP viewers and WHIP
// publishers, connected or connecting).
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.resources)
}

// Stats returns the stats of every live session, WHEP and WHIP.
func (s *Server) Stats() []Stats {
	s.mu.Lock()
	rs := make([]resource, 0, len(s.resources))
	for _, r := range s.resources {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	out := make([]Stats, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Stats())
	}
	return out
}

// CloseSession ends the live session (WHEP or WHIP) with that id.
func (s *Server) CloseSession(id string) error {
	r := s.lookup(id)
	if r == nil {
		return ErrSessionNotFound
	}
	return r.Close()
}

// Close ends every session and releases the ports. It waits for the
// sessions to finish.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rs := make([]resource, 0, len(s.resources))
	for _, r := range s.resources {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	s.cancel()
	for _, r := range rs {
		_ = r.Close()
	}
	s.wg.Wait()
	s.closeSockets()
	return nil
}

func (s *Server) closeSockets() {
	if s.udpMux != nil {
		_ = s.udpMux.Close()
	}
	for _, c := range s.udpConns {
		_ = c.Close()
	}
	if s.tcpMux != nil {
		_ = s.tcpMux.Close()
	}
	if s.tcpLn != nil {
		_ = s.tcpLn.Close()
	}
}

// newID returns a random session id: 128 bits, hex. Knowing it is what
// lets a client end or patch its session, so it must not be guessable.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

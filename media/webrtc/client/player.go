package client

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// PlayerConfig configures a WHEP player.
type PlayerConfig struct {
	// URL is the WHEP endpoint.
	URL string
	// API is the pion API to use (default: NewAPI(true)).
	API *webrtc.API
	// HTTPClient sends the requests (default http.DefaultClient).
	HTTPClient *http.Client
	// Header is added to every request (e.g. Authorization).
	Header http.Header
	// Trickle sends the offer without candidates and the candidates in a
	// PATCH afterwards.
	Trickle bool
	// NoAudio and NoVideo leave a kind out of the offer.
	NoAudio, NoVideo bool
	// OnPacket, if set, receives every RTP packet ("video" or "audio"),
	// decrypted, from the track's goroutine. The packet and its payload
	// are reused after OnPacket returns: copy what you keep.
	OnPacket func(kind string, pkt *rtp.Packet)
}

// Player is a WHEP session seen from the viewer.
type Player struct {
	session
	start time.Time

	firstVideo atomic.Int64 // ns after start of the first video packet
	packets    [2]atomic.Uint64
	bytes      [2]atomic.Uint64
}

// Play starts a WHEP session and waits until it is connected.
func Play(ctx context.Context, cfg PlayerConfig) (*Player, error) {
	p := &Player{}
	if err := p.open(cfg.API, cfg.HTTPClient, cfg.Header); err != nil {
		return nil, err
	}
	p.start = time.Now()
	p.firstVideo.Store(-1)
	pc := p.pc
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	if !cfg.NoVideo {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv); err != nil {
			pc.Close()
			return nil, err
		}
	}
	if !cfg.NoAudio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv); err != nil {
			pc.Close()
			return nil, err
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		kind := tr.Kind().String()
		i := 0
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			i = 1
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			buf := make([]byte, 1500)
			var pkt rtp.Packet
			for {
				n, _, err := tr.Read(buf)
				if err != nil {
					return
				}
				if err := pkt.Unmarshal(buf[:n]); err != nil {
					continue
				}
				if i == 0 && p.firstVideo.Load() < 0 {
					p.firstVideo.CompareAndSwap(-1, int64(time.Since(p.start)))
				}
				p.packets[i].Add(1)
				p.bytes[i].Add(uint64(n))
				if cfg.OnPacket != nil {
					cfg.OnPacket(kind, &pkt)
				}
			}
		}()
	})
	if err := p.connect(ctx, cfg.URL, cfg.Trickle); err != nil {
		return nil, err
	}
	return p, nil
}

// Location returns the URL of the session resource.
func (p *Player) Location() string { return p.sig.location }

// ETag returns the session resource's ETag.
func (p *Player) ETag() string { return p.sig.etag }

// Packets returns the RTP packets and bytes received per kind.
func (p *Player) Packets() (videoPkts, audioPkts, videoBytes, audioBytes uint64) {
	return p.packets[0].Load(), p.packets[1].Load(), p.bytes[0].Load(), p.bytes[1].Load()
}

// FirstVideo returns the time from Play to the first video packet (-1 if
// none yet).
func (p *Player) FirstVideo() time.Duration { return time.Duration(p.firstVideo.Load()) }

// Failed is closed when the connection fails or is closed by the server.
func (p *Player) Failed() <-chan struct{} { return p.watch.failed }

// PeerConnection returns the underlying peer connection.
func (p *Player) PeerConnection() *webrtc.PeerConnection { return p.pc }

// Close ends the session: DELETE on the server, then the peer connection.
func (p *Player) Close() error { return p.close() }

// CloseLocal closes the peer connection without telling the server.
func (p *Player) CloseLocal() { p.closeLocal() }

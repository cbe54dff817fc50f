// Package client has a WHEP player and a WHIP publisher built on pion, for
// tests, benchmarks and load tools. They speak plain WHIP/WHEP over HTTP
// (RFC 9725 and its WHEP counterpart): POST an offer, read the answer and
// Location, DELETE to leave, PATCH for trickle ICE.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// StatusError is a refusal of the server: its status code and body.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Code, strings.TrimSpace(e.Body))
}

// NewAPI returns a pion API with the default codecs and interceptors. With
// loopback set, ICE uses only loopback addresses (tests on one machine).
// One API can serve any number of players and publishers.
func NewAPI(loopback bool) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// signal is the HTTP side common to players and publishers.
type signal struct {
	client   *http.Client
	header   http.Header
	location string // absolute URL of the session resource
	etag     string
}

// post sends the offer and returns the answer.
func (s *signal) post(ctx context.Context, endpoint, offer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		return "", err
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", &StatusError{Code: resp.StatusCode, Body: string(body)}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/sdp") {
		return "", fmt.Errorf("answer has content type %q", ct)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", errors.New("answer without Location")
	}
	base, err := url.Parse(endpoint)
	if err != nil {
		return "", err
	}
	rel, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("bad Location %q: %w", loc, err)
	}
	s.location = base.ResolveReference(rel).String()
	s.etag = resp.Header.Get("ETag")
	return string(body), nil
}

// do sends a request to the session resource.
func (s *signal) do(ctx context.Context, method, contentType string, body []byte) (*http.Response, error) {
	if s.location == "" {
		return nil, errors.New("no session")
	}
	req, err := http.NewRequestWithContext(ctx, method, s.location, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if s.etag != "" && method == http.MethodPatch {
		req.Header.Set("If-Match", s.etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp, nil
}

// delete ends the session on the server.
func (s *signal) delete() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := s.do(ctx, http.MethodDelete, "", nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return &StatusError{Code: resp.StatusCode}
	}
	return nil
}

// negotiate creates the offer, sends it (complete, or without candidates
// and then trickled with PATCH) and applies the answer.
func negotiate(ctx context.Context, pc *webrtc.PeerConnection, s *signal, endpoint string, trickle bool) error {
	var mu sync.Mutex
	var cands []string
	gathered := make(chan struct{})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			close(gathered)
			return
		}
		mu.Lock()
		cands = append(cands, c.ToJSON().Candidate)
		mu.Unlock()
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	sdp := offer.SDP
	if !trickle {
		select {
		case <-gathered:
		case <-ctx.Done():
			return ctx.Err()
		}
		sdp = pc.LocalDescription().SDP
	}
	answer, err := s.post(ctx, endpoint, sdp)
	if err != nil {
		return err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("apply answer: %w", err)
	}
	if trickle {
		select {
		case <-gathered:
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		frag := Fragment(pc.LocalDescription().SDP, cands)
		mu.Unlock()
		resp, err := s.do(ctx, http.MethodPatch, "application/trickle-ice-sdpfrag", []byte(frag))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusNoContent {
			return &StatusError{Code: resp.StatusCode, Body: "PATCH"}
		}
	}
	return nil
}

// Fragment builds a trickle ICE SDP fragment (RFC 8840) with the ICE
// credentials and first mid of an SDP and the given candidate lines.
func Fragment(sdp string, candidates []string) string {
	var ufrag, pwd, mid string
	for _, l := range strings.Split(sdp, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:") && ufrag == "":
			ufrag = l
		case strings.HasPrefix(l, "a=ice-pwd:") && pwd == "":
			pwd = l
		case strings.HasPrefix(l, "a=mid:") && mid == "":
			mid = l
		}
	}
	var b strings.Builder
	b.WriteString(ufrag + "\r\n" + pwd + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n" + mid + "\r\n")
	for _, c := range candidates {
		b.WriteString("a=" + strings.TrimPrefix(c, "a=") + "\r\n")
	}
	b.WriteString("a=end-of-candidates\r\n")
	return b.String()
}

// waitConnected waits until pc is connected.
func waitConnected(ctx context.Context, connected <-chan struct{}, failed <-chan struct{}) error {
	select {
	case <-connected:
		return nil
	case <-failed:
		return errors.New("peer connection failed")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stateWatch turns connection state changes into channels.
type stateWatch struct {
	connected, failed chan struct{}
	once1, once2      sync.Once
}

func newStateWatch(pc *webrtc.PeerConnection) *stateWatch {
	w := &stateWatch{connected: make(chan struct{}), failed: make(chan struct{})}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			w.once1.Do(func() { close(w.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateDisconnected:
			w.once2.Do(func() { close(w.failed) })
		}
	})
	return w
}

// session is what a Player and a Publisher share: the peer connection,
// its signalling and its state, and the goroutines that read it.
type session struct {
	pc        *webrtc.PeerConnection
	sig       signal
	watch     *stateWatch
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// open makes the peer connection with api (default NewAPI(true)) and its
// signalling over hc (default http.DefaultClient) with header.
func (s *session) open(api *webrtc.API, hc *http.Client, header http.Header) error {
	if api == nil {
		var err error
		if api, err = NewAPI(true); err != nil {
			return err
		}
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		return err
	}
	s.pc = pc
	s.sig = signal{client: hc, header: header}
	s.watch = newStateWatch(pc)
	return nil
}

// connect negotiates the session with endpoint and waits until it is
// connected; on failure it closes the session.
func (s *session) connect(ctx context.Context, endpoint string, trickle bool) error {
	err := negotiate(ctx, s.pc, &s.sig, endpoint, trickle)
	if err == nil {
		err = waitConnected(ctx, s.watch.connected, s.watch.failed)
	}
	if err != nil {
		s.close() //nolint:errcheck
		return err
	}
	return nil
}

// close ends the session: DELETE on the server, then the peer connection.
func (s *session) close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.sig.location != "" {
			err = s.sig.delete()
		}
		_ = s.pc.Close()
		s.wg.Wait()
	})
	return err
}

// closeLocal closes the peer connection without telling the server.
func (s *session) closeLocal() {
	s.closeOnce.Do(func() {
		_ = s.pc.Close()
		s.wg.Wait()
	})
}

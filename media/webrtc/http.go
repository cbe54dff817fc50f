package webrtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strings"
)

// The HTTP helpers implement WHIP (RFC 9725) and WHEP on top of a Server:
// an endpoint URL takes POST (an SDP offer) and OPTIONS; every session it
// creates gets a resource URL <endpoint>/<session id> that takes PATCH
// (trickle ICE), DELETE and OPTIONS. Authentication, and choosing which
// Output or InputHandler a request is for, are the caller's, before.

// Content types of WHIP/WHEP.
const (
	ContentTypeSDP     = "application/sdp"
	ContentTypeSDPFrag = "application/trickle-ice-sdpfrag"
)

// StatusCode returns the HTTP status for an error of NewSession, NewInput
// or AddICECandidates: 400 for a bad offer or fragment, 422 for no usable
// codec or an ICE restart, 409 for a stream with B-frames, 404 for an
// unknown session, 503 for a stream with no media yet or a closing server.
func StatusCode(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrBadOffer), errors.Is(err, ErrBadFragment):
		return http.StatusBadRequest
	case errors.Is(err, ErrNoCodec), errors.Is(err, ErrICERestart):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrBFrames):
		return http.StatusConflict
	case errors.Is(err, ErrSessionNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrNotReady), errors.Is(err, ErrClosed),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError answers with the status of err and its message.
func writeError(w http.ResponseWriter, err error) {
	code := StatusCode(err)
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "2")
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		msg = "WebRTC session could not be created"
	}
	http.Error(w, msg, code)
}

// cors sets the CORS headers of WHIP/WHEP responses: any origin may call
// (authentication is by bearer token or signed URL, not cookies).
func cors(w http.ResponseWriter, methods string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch")
}

const endpointMethods = "OPTIONS, POST"
const sessionMethods = "OPTIONS, PATCH, DELETE"

// readOffer checks the method and content type of a POST and reads its
// body. It answers OPTIONS itself. ok is false when the response is
// written.
func (s *Server) readOffer(w http.ResponseWriter, r *http.Request) (offer string, remote netip.AddrPort, ok bool) {
	cors(w, endpointMethods)
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Allow", endpointMethods)
		w.Header().Set("Accept-Post", ContentTypeSDP)
		for _, l := range s.LinkHeaders() {
			w.Header().Add("Link", l)
		}
		w.WriteHeader(http.StatusNoContent)
		return "", remote, false
	case http.MethodPost:
	default:
		w.Header().Set("Allow", endpointMethods)
		http.Error(w, "use POST with an SDP offer", http.StatusMethodNotAllowed)
		return "", remote, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != ContentTypeSDP {
		http.Error(w, "the offer must be sent as "+ContentTypeSDP, http.StatusUnsupportedMediaType)
		return "", remote, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxOfferSize+1))
	if err != nil {
		http.Error(w, "could not read the offer", http.StatusBadRequest)
		return "", remote, false
	}
	if len(body) > MaxOfferSize {
		http.Error(w, fmt.Sprintf("the offer is larger than %d bytes", MaxOfferSize), http.StatusRequestEntityTooLarge)
		return "", remote, false
	}
	remote, _ = netip.ParseAddrPort(r.RemoteAddr)
	return string(body), remote, true
}

// writeAnswer sends the 201 Created of a new session.
func (s *Server) writeAnswer(w http.ResponseWriter, r *http.Request, res resource, answer string) {
	h := w.Header()
	h.Set("Content-Type", ContentTypeSDP)
	h.Set("Location", res.endpoint()+"/"+res.ID())
	h.Set("ETag", res.etag())
	h.Set("Accept-Patch", ContentTypeSDPFrag)
	for _, l := range s.LinkHeaders() {
		h.Add("Link", l)
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// ServeWHEP answers a request to the WHEP endpoint of out: POST with an
// SDP offer creates a Session (201 Created, the answer, its Location
// <request path>/<id>), OPTIONS tells what the endpoint takes. The request
// context bounds the negotiation only. It returns the Session, or nil
// when the request did not create one (the response, an error or the
// answer to OPTIONS, is written). out is not used for other methods than
// POST and may be nil for them.
func (s *Server) ServeWHEP(w http.ResponseWriter, r *http.Request, out *Output) *Session {
	offer, remote, ok := s.readOffer(w, r)
	if !ok {
		return nil
	}
	if out == nil {
		writeError(w, ErrClosed)
		return nil
	}
	sess, answer, err := out.NewSession(r.Context(), offer, remote)
	if err != nil {
		writeError(w, err)
		return nil
	}
	ep := strings.TrimSuffix(r.URL.Path, "/")
	sess.ep.Store(&ep)
	s.writeAnswer(w, r, sess, answer)
	return sess
}

// ServeSession answers a request to a session resource (WHEP or WHIP):
// DELETE ends the session, PATCH with a trickle ICE fragment adds
// candidates (204), OPTIONS tells what it takes. id is the last element of
// the path; the rest of the path must be the endpoint the session was
// created at, so an id is only good at its own URL. An unknown id is 404.
func (s *Server) ServeSession(w http.ResponseWriter, r *http.Request, id string) {
	cors(w, sessionMethods)
	res := s.lookup(id)
	if res == nil || (res.endpoint() != "" && strings.TrimSuffix(r.URL.Path, "/") != res.endpoint()+"/"+id) {
		http.Error(w, ErrSessionNotFound.Error(), http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Allow", sessionMethods)
		w.Header().Set("Accept-Patch", ContentTypeSDPFrag)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		_ = res.Close()
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != ContentTypeSDPFrag {
			http.Error(w, "PATCH takes "+ContentTypeSDPFrag, http.StatusUnsupportedMediaType)
			return
		}
		if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != res.etag() {
			http.Error(w, "ETag does not match", http.StatusPreconditionFailed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxFragmentSize+1))
		if err != nil {
			http.Error(w, "could not read the fragment", http.StatusBadRequest)
			return
		}
		if len(body) > MaxFragmentSize {
			http.Error(w, fmt.Sprintf("the fragment is larger than %d bytes", MaxFragmentSize), http.StatusRequestEntityTooLarge)
			return
		}
		if err := res.AddICECandidates(body); err != nil {
			if errors.Is(err, ErrClosed) {
				err = ErrSessionNotFound
			}
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", sessionMethods)
		http.Error(w, "use PATCH or DELETE", http.StatusMethodNotAllowed)
	}
}

// ServeWHIP answers a request to a WHIP endpoint: POST with an SDP offer
// creates an Input that feeds h (201 Created, the answer, its Location
// <request path>/<id>), OPTIONS tells what the endpoint takes. It returns
// the Input, or nil when the request did not create one (the response,
// an error, is written; h is not called). h is not used for other
// methods than POST and may be nil for them.
func (s *Server) ServeWHIP(w http.ResponseWriter, r *http.Request, h InputHandler, opts InputOptions) *Input {
	offer, remote, ok := s.readOffer(w, r)
	if !ok {
		return nil
	}
	if h == nil {
		writeError(w, ErrClosed)
		return nil
	}
	in, answer, err := s.NewInput(r.Context(), offer, remote, h, opts)
	if err != nil {
		writeError(w, err)
		return nil
	}
	ep := strings.TrimSuffix(r.URL.Path, "/")
	in.ep.Store(&ep)
	s.writeAnswer(w, r, in, answer)
	return in
}

package webrtc

import (
	"errors"
)

// Errors returned by NewSession, NewInput and the HTTP helpers. They are
// meant to be tested with errors.Is; the HTTP helpers map them to status
// codes (see StatusCode).
var (
	// ErrBadOffer means the SDP offer could not be parsed or is not a
	// usable WebRTC offer (no media, no ICE credentials, no DTLS
	// fingerprint, too large).
	ErrBadOffer = errors.New("invalid SDP offer")
	// ErrNoCodec means the offer has no codec this stream can be sent or
	// received with (H.264, H.265 or Opus).
	ErrNoCodec = errors.New("no usable codec in the offer")
	// ErrBFrames means the stream's video has B-frames, which WebRTC
	// players show out of order. The error message says how to turn them
	// off in OBS.
	ErrBFrames = errors.New("the stream's video has B-frames, which WebRTC cannot play; " +
		"in OBS set Settings → Output → Output Mode: Advanced → Streaming → x264 options: bframes=0 " +
		"(or Profile: baseline), or use a hardware encoder with B-frames set to 0")
	// ErrNotReady means the stream has not sent its codec configuration
	// yet, so there is nothing to negotiate.
	ErrNotReady = errors.New("the stream has no media yet")
	// ErrBadFragment means a trickle ICE SDP fragment (RFC 8840) could not
	// be parsed.
	ErrBadFragment = errors.New("invalid trickle ICE SDP fragment")
	// ErrICERestart means a fragment asked for an ICE restart (new
	// ice-ufrag/ice-pwd), which is not supported.
	ErrICERestart = errors.New("ICE restart is not supported")
	// ErrSessionNotFound means no live session has the given id.
	ErrSessionNotFound = errors.New("no such WebRTC session")
	// ErrClosed means the Server, Output or Session is closed.
	ErrClosed = errors.New("closed")
)

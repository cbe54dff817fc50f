package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Protocol names a client protocol.
type Protocol string

// Protocols.
const (
	ProtocolRTMP    Protocol = "rtmp"
	ProtocolRTSP    Protocol = "rtsp"
	ProtocolHTTPFLV Protocol = "http-flv"
	ProtocolHLS     Protocol = "hls"
	// ProtocolWebRTC is a WHEP viewer or a WHIP publisher.
	ProtocolWebRTC Protocol = "webrtc"
	// ProtocolSRT is an SRT publisher or reader.
	ProtocolSRT Protocol = "srt"
	// ProtocolThumb is a request of a stream's thumbnail
	// (/live/<name>/thumb.jpg): authorized as a play, never a client.
	ProtocolThumb Protocol = "thumb"
	// ProtocolForward is a push of a stream to a restreaming destination
	// (media/forward): a client that sends, never a viewer.
	ProtocolForward Protocol = "forward"
)

// Authorizer decides whether a client may publish or play. It is implemented
// by the application; the hub calls it, for the protocol servers, before
// accepting a publisher or a reader. A non-nil error refuses the client. A refusal made with Refusal
// (or any error wrapping a *RefusalError) sends its reason to the client;
// any other error is taken as the Authorizer failing: it is logged in full,
// and the client is told only "service unavailable".
type Authorizer interface {
	AuthorizePublish(ctx context.Context, req AuthRequest) error
	AuthorizePlay(ctx context.Context, req AuthRequest) error
}

// AuthRequest describes a client asking to publish or play.
type AuthRequest struct {
	// Stream is the stream name, without "/live/".
	Stream string
	// Query is the query of the URL or stream key (holds "sign").
	Query url.Values
	// RemoteIP is the client's IP address.
	RemoteIP netip.Addr
	// Protocol is the client's protocol.
	Protocol Protocol
	// Relay is the ID of the node asking when the request is a relay
	// between the nodes of a cluster (HTTP-FLV with the query parameter
	// RelayParam), "" for clients. The Authorizer must then check the
	// node credential in Query (see media.Config.RelayQuery) rather than
	// a viewer's sign: a relay is not counted as a viewer.
	Relay string
}

// RelayParam is the query parameter that marks a relay's request, its
// value the ID of the node asking.
const RelayParam = "relay"

// EventSink hears of publishes starting and ending. PublishStopped is called
// once the grace period has expired without the publisher coming back.
// Calls are made in order from one goroutine and must not block for long.
type EventSink interface {
	PublishStarted(ctx context.Context, s StreamInfo)
	PublishStopped(ctx context.Context, s StreamInfo)
}

// PlayEventSink is what an EventSink may also implement to hear of
// viewers of every protocol (relays to other nodes are none): PlayStarted
// when a client starts playing a stream, PlayStopped when it stops. They are called from the goroutine
// of PublishStarted and PublishStopped, in order with them: for one
// stream, PublishStarted comes before its viewers' PlayStarted, and each
// viewer's PlayStopped before PublishStopped (the viewers still playing
// when a stream ends are reported stopped first). They must not block
// for long either.
type PlayEventSink interface {
	PlayStarted(ctx context.Context, p PlayInfo)
	PlayStopped(ctx context.Context, p PlayInfo)
}

// PlayInfo describes a viewer in events.
type PlayInfo struct {
	// ClientID is the viewer's client ID (see ClientStats.ID).
	ClientID string
	// Stream is the stream name, without "/live/".
	Stream string
	// Protocol is the viewer's protocol.
	Protocol Protocol
	// Remote is the viewer's address.
	Remote netip.AddrPort
	// StartedAt is when it started playing.
	StartedAt time.Time
	// StoppedAt is when it stopped (zero in PlayStarted).
	StoppedAt time.Time
	// BytesOut counts the bytes sent to it (zero in PlayStarted).
	BytesOut uint64
	// Reason says why it stopped: "left" (it disconnected or was
	// disconnected) or "stream ended".
	Reason string
}

// StreamInfo describes a published stream in events.
type StreamInfo struct {
	// Name is the stream name, without "/live/".
	Name string
	// Path is "/live/" + Name.
	Path string
	// PublisherID is the client ID of the (last) publisher.
	PublisherID string
	// PublisherIP is the IP address of the (last) publisher.
	PublisherIP netip.Addr
	// Protocol is the publisher's protocol.
	Protocol Protocol
	// StartedAt is when the stream started.
	StartedAt time.Time
	// StoppedAt is when the stream ended (zero in PublishStarted).
	StoppedAt time.Time
	// Reason says why the stream ended (empty in PublishStarted):
	// "publisher left", "publisher did not come back" (within the
	// grace), "kicked" or "engine closed".
	Reason string
	// BytesIn counts the bytes received from the stream's publishers
	// (zero in PublishStarted).
	BytesIn uint64
}

// Errors returned by the hub when refusing clients. They can be matched
// with errors.Is.
var (
	// ErrAlreadyPublishing refuses a second publisher on a live stream.
	ErrAlreadyPublishing = errors.New("stream is already being published")
	// ErrStreamNotFound refuses a reader of a stream that is not published.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrInvalidStreamName refuses a malformed stream name or path.
	ErrInvalidStreamName = errors.New("invalid stream name")
	// ErrClosed is returned after Close (of the hub or the engine).
	ErrClosed = errors.New("media engine closed")
)

// RefusalError is an Authorizer's refusal of a client, with a reason meant
// for the client.
type RefusalError struct {
	// Reason is sent to the client (cut to 120 bytes); it must be plain
	// text naming no secret.
	Reason string
	// Err, if not nil, is the cause: it is logged, never sent.
	Err error
}

// Refusal returns a refusal whose reason is sent to the client, such as
// "unknown stream" or "the room is banned".
func Refusal(reason string) error { return &RefusalError{Reason: reason} }

// Error returns the reason and the cause.
func (e *RefusalError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *RefusalError) Unwrap() error { return e.Err }

// reasonUnavailable is what a client is told when the Authorizer failed
// rather than refused.
const reasonUnavailable = "service unavailable"

// AuthorizePublish asks the Authorizer whether req may publish (see
// authorize).
func (h *Hub) AuthorizePublish(req AuthRequest) error { return h.authorize(true, req) }

// AuthorizePlay asks the Authorizer whether req may play (see authorize).
func (h *Hub) AuthorizePlay(req AuthRequest) error { return h.authorize(false, req) }

// CountRefusal counts, in Counters.ClientsRefused, a client refused by a
// protocol server for a reason of its own (bad name, unknown stream,
// second publisher, over a limit). Refusals of the Authorizer are counted
// by AuthorizePublish and AuthorizePlay.
func (h *Hub) CountRefusal() { h.refused.Add(1) }

// authorize calls the Authorizer with a timeout. A refusal is returned as
// it is; any other error is logged and returned wrapped in a
// *RefusalError that tells the client only that the service is
// unavailable. Either is counted as a refusal.
func (h *Hub) authorize(publish bool, req AuthRequest) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.AuthTimeout)
	defer cancel()
	var err error
	if publish {
		err = h.cfg.Authorizer.AuthorizePublish(ctx, req)
	} else {
		err = h.cfg.Authorizer.AuthorizePlay(ctx, req)
	}
	if err == nil {
		return nil
	}
	h.refused.Add(1)
	var r *RefusalError
	if errors.As(err, &r) {
		return err
	}
	h.log.Warn("authorizer failed", "stream", req.Stream, "protocol", req.Protocol,
		"ip", req.RemoteIP, "publish", publish, "err", err)
	return &RefusalError{Reason: reasonUnavailable, Err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
}

// ErrUnavailable is in the chain of the refusal AuthorizePublish and
// AuthorizePlay return when the Authorizer failed (its database did not
// answer, say) rather than refused: protocols answer it as a temporary
// failure (HTTP 503, RTSP 503), not as "forbidden".
var ErrUnavailable = errors.New("the authorizer is unavailable")

// HTTPStatus is the HTTP status of an authorization error: 503 for
// ErrUnavailable, 403 for a refusal.
func HTTPStatus(err error) int {
	if errors.Is(err, ErrUnavailable) {
		return http.StatusServiceUnavailable
	}
	return http.StatusForbidden
}

// allowAll is the Authorizer used when Config.Authorizer is nil.
type allowAll struct{}

func (allowAll) AuthorizePublish(context.Context, AuthRequest) error { return nil }
func (allowAll) AuthorizePlay(context.Context, AuthRequest) error    { return nil }

// nopEvents is the EventSink used when Config.Events is nil.
type nopEvents struct{}

func (nopEvents) PublishStarted(context.Context, StreamInfo) {}
func (nopEvents) PublishStopped(context.Context, StreamInfo) {}

// PublicReason returns a short reason for a refusal that is safe to send to a
// client: the Reason of the *RefusalError in err's chain (the Authorizer's
// refusals, and its failures as "service unavailable"), else the text of
// err, which is then one of the engine's own errors; cut before any query
// string or new line and to 120 bytes.
func PublicReason(err error) string {
	var s string
	if r := (*RefusalError)(nil); errors.As(err, &r) {
		s = r.Reason
	} else {
		s = err.Error()
	}
	if i := strings.IndexAny(s, "?\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return strings.ToValidUTF8(s, "")
}

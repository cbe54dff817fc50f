package media

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
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
)

// Authorizer decides whether a client may publish or play. It is implemented
// by the application; the engine calls it before accepting a publisher or a
// reader. A non-nil error refuses the client; its message is logged and a
// short form of it is sent to the client, so it must not contain secrets.
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
}

// EventSink hears of publishes starting and ending. PublishStopped is called
// once the grace period has expired without the publisher coming back.
// Calls are made in order from one goroutine and must not block for long.
type EventSink interface {
	PublishStarted(ctx context.Context, s StreamInfo)
	PublishStopped(ctx context.Context, s StreamInfo)
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
}

// Errors returned by the engine when refusing clients. They can be matched
// with errors.Is.
var (
	// ErrAlreadyPublishing refuses a second publisher on a live stream.
	ErrAlreadyPublishing = errors.New("stream is already being published")
	// ErrStreamNotFound refuses a reader of a stream that is not published.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrInvalidStreamName refuses a malformed stream name or path.
	ErrInvalidStreamName = errors.New("invalid stream name")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("media engine closed")
)

// allowAll is the Authorizer used when Config.Authorizer is nil.
type allowAll struct{}

func (allowAll) AuthorizePublish(context.Context, AuthRequest) error { return nil }
func (allowAll) AuthorizePlay(context.Context, AuthRequest) error    { return nil }

// nopEvents is the EventSink used when Config.Events is nil.
type nopEvents struct{}

func (nopEvents) PublishStarted(context.Context, StreamInfo) {}
func (nopEvents) PublishStopped(context.Context, StreamInfo) {}

// publicReason returns a short reason for a refusal that is safe to send to a
// client: the text of err cut to 120 bytes, with no query strings.
func publicReason(err error) string {
	s := err.Error()
	for i := 0; i < len(s); i++ {
		if s[i] == '?' || s[i] == '\n' {
			s = s[:i]
			break
		}
	}
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

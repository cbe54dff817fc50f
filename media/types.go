package media

import (
	"github.com/mofang-live/mofang/media/hub"
	"github.com/mofang-live/mofang/media/webrtc"
)

// The engine's API types are the hub's; they are named here too so that
// the engine's users (cmd/mofang, rpc/) need only this package.
type (
	// Authorizer decides whether a client may publish or play (see
	// hub.Authorizer).
	Authorizer = hub.Authorizer
	// AuthRequest describes a client asking to publish or play.
	AuthRequest = hub.AuthRequest
	// EventSink hears of publishes starting and ending.
	EventSink = hub.EventSink
	// StreamInfo describes a published stream in events.
	StreamInfo = hub.StreamInfo
	// PlayEventSink is what an EventSink may also implement to hear of
	// viewers starting and stopping (see hub.PlayEventSink).
	PlayEventSink = hub.PlayEventSink
	// PlayInfo describes a viewer in events.
	PlayInfo = hub.PlayInfo
	// StreamStats describes one stream.
	StreamStats = hub.StreamStats
	// ClientStats describes one connection, whatever its protocol.
	ClientStats = hub.ClientStats
	// Counters are engine-wide totals since New.
	Counters = hub.Counters
	// Protocol names a client protocol.
	Protocol = hub.Protocol
	// Role says what a client does.
	Role = hub.Role
	// RefusalError is an Authorizer's refusal of a client, with a reason
	// meant for the client.
	RefusalError = hub.RefusalError
	// ICEServer is a STUN or TURN server handed to WebRTC clients.
	ICEServer = webrtc.ICEServer
)

// Protocols.
const (
	ProtocolRTMP    = hub.ProtocolRTMP
	ProtocolRTSP    = hub.ProtocolRTSP
	ProtocolHTTPFLV = hub.ProtocolHTTPFLV
	ProtocolHLS     = hub.ProtocolHLS
	ProtocolWebRTC  = hub.ProtocolWebRTC
	ProtocolSRT     = hub.ProtocolSRT
	ProtocolThumb   = hub.ProtocolThumb
)

// BFramesWarning tells a publisher whose stream has B-frames (see
// StreamStats.BFrames) why WebRTC viewers cannot play it and how to turn
// them off in OBS; WHEP viewers of such a stream are refused with it.
var BFramesWarning = webrtc.ErrBFrames.Error()

// Roles.
const (
	RoleNone    = hub.RoleNone
	RolePublish = hub.RolePublish
	RolePlay    = hub.RolePlay
)

// Errors returned by the engine when refusing clients (the hub's). They
// can be matched with errors.Is.
var (
	// ErrAlreadyPublishing refuses a second publisher on a live stream.
	ErrAlreadyPublishing = hub.ErrAlreadyPublishing
	// ErrStreamNotFound refuses a reader of a stream that is not published.
	ErrStreamNotFound = hub.ErrStreamNotFound
	// ErrInvalidStreamName refuses a malformed stream name or path.
	ErrInvalidStreamName = hub.ErrInvalidStreamName
	// ErrClosed is returned after Close.
	ErrClosed = hub.ErrClosed
)

// Refusal returns a refusal whose reason is sent to the client, such as
// "unknown stream" or "the room is banned" (see hub.Refusal).
func Refusal(reason string) error { return hub.Refusal(reason) }

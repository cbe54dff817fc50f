// Package cluster is what a MoFang node shares with the other nodes of its
// service: who is alive (the node registry), which node publishes each
// stream (the stream directory, with a fencing counter), how many viewers
// each node has, commands for another node (kicks), the rooms' events in
// one order per room with presence, and rate limits that hold across
// nodes.
//
// The media engine and the API use the interfaces of this package only, so
// neither knows whether it runs alone or in a cluster. A single node uses
// Local, which keeps everything in the process; several nodes use the Redis
// implementation in package cluster/rediscluster, which keeps it in one
// Redis shared by every node.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors of the cluster.
var (
	// ErrClaimed: another node's publisher holds the stream.
	ErrClaimed = errors.New("cluster: the stream is published on another node")
	// ErrUnavailable: the shared state cannot be reached now, so the
	// node cannot do this correctly (it goes on serving what it has).
	ErrUnavailable = errors.New("cluster: shared state unavailable")
	// ErrLost: the claim was taken over by another node or lapsed.
	ErrLost = errors.New("cluster: claim lost")
)

// Node is one MoFang process of the service.
type Node struct {
	ID string `json:"id"`
	// URL is where the other nodes reach this node's media over HTTP
	// (HTTP-FLV), such as "http://10.0.0.5:8080".
	URL      string    `json:"url"`
	Started  time.Time `json:"started"`
	LastSeen time.Time `json:"last_seen"`
	Streams  int       `json:"streams"` // streams published on the node
	Clients  int       `json:"clients"` // media clients connected to it
}

// Publisher is the publisher of a claimed stream.
type Publisher struct {
	IP       string `json:"ip"`       // its address, unmasked
	Protocol string `json:"protocol"` // "rtmp", "rtsp", "webrtc", ...
	// BFrames is true when the stream's video has B-frames (WHEP cannot
	// play it).
	BFrames bool `json:"bframes,omitempty"`
}

// Stream is a published stream as the whole cluster sees it.
type Stream struct {
	Name    string `json:"name"`
	Node    string `json:"node"`     // the ID of the node that publishes it
	NodeURL string `json:"node_url"` // that node's URL
	// Fence grows each time the stream is claimed: a node whose fence is
	// older than the directory's no longer owns the stream.
	Fence     int64     `json:"fence"`
	Publisher Publisher `json:"publisher"`
	// Grace is true while the publisher is gone and its node keeps the
	// stream for it to come back; a publisher on another node may then
	// take the stream over.
	Grace bool      `json:"grace,omitempty"`
	Since time.Time `json:"since"`
	// Clients is the number of viewers of every protocol on every node
	// (relays between nodes not counted).
	Clients int `json:"clients"`
}

// Report is what a node tells the cluster of itself, in absolute values:
// a dead node's report lapses with its lease.
type Report struct {
	// Viewers is the number of viewers of each stream on this node, of
	// every protocol, relays to other nodes not counted.
	Viewers map[string]int
	// Clients is the number of media clients of the node.
	Clients int
	// ClientList is the node's media clients as Admin.client.list shows
	// them (encoded by the API; the cluster stores it as is).
	ClientList json.RawMessage
}

// Command asks another node to act on something it holds.
type Command struct {
	Node string `json:"node"` // target node ID; "" means every node
	Kind string `json:"kind"` // "kick-stream", "kick-client", ...
	Arg  string `json:"arg"`  // the stream name, client ID, ...
	// Data carries what Kind needs beyond Arg (JSON).
	Data json.RawMessage `json:"data,omitempty"`
}

// Cluster is the node's view of the service and its share of it. Methods
// that answer from the view (Nodes, Streams, Stream, ClientLists) never
// wait on the network: the view is kept current in the background, at
// most about a second old.
type Cluster interface {
	// Self is this node.
	Self() Node
	// Err is nil while the shared state is reachable and the view
	// current, else why not (for /readyz and the metrics).
	Err() error

	// Nodes lists the live nodes, this one included, by ID.
	Nodes() []Node

	// Claim makes this node the publisher of a stream. It fails with
	// ErrClaimed when another node has a publisher on it that is not in
	// its grace period, and with ErrUnavailable when the shared state is
	// unreachable. A claim on a stream whose owner is in grace, or whose
	// owner's lease lapsed, takes it over with a higher fence.
	Claim(ctx context.Context, stream string, p Publisher) (Claim, error)

	// Streams lists the streams published in the cluster, by name, with
	// their viewers summed over every node.
	Streams() []Stream
	// Stream reports one stream of Streams.
	Stream(name string) (Stream, bool)

	// Report replaces this node's report; it is published with the
	// node's lease.
	Report(r Report)
	// ClientLists returns each live node's last ClientList, by node ID.
	ClientLists() map[string]json.RawMessage

	// Send delivers a command to its node (every node, this one
	// included, when Node is ""), at most once.
	Send(ctx context.Context, c Command) error
	// HandleCommands sets the function that runs the commands for this
	// node; call it before the node serves. It runs in one goroutine,
	// in order.
	HandleCommands(fn func(Command))

	// Close ends the node's membership at once (its lease and claims
	// removed) and stops the background work.
	Close() error
}

// Claim is this node's hold on a stream.
type Claim interface {
	// Fence is the claim's fencing token.
	Fence() int64
	// SetGrace marks the publisher gone (true: another node's publisher
	// may take the stream over) or back (false).
	SetGrace(ctx context.Context, grace bool) error
	// SetPublisher updates what the directory shows of the publisher.
	SetPublisher(ctx context.Context, p Publisher) error
	// Lost is closed when the claim is no longer this node's: another
	// node took the stream over, or the claim lapsed and could not be
	// renewed. Err then tells which.
	Lost() <-chan struct{}
	// Err is nil while the claim holds, else why it was lost.
	Err() error
	// Release gives the stream up, if the claim still holds it.
	Release(ctx context.Context) error
}

// Delivery is one event of a room, in the room's order.
type Delivery struct {
	Room    int64
	Seq     uint64 // the room's sequence number of the event, from 1
	Payload []byte // as published
	// Missed counts events before this one that could not be delivered
	// (older than the history kept); 0 normally.
	Missed uint64
}

// PresentUser is a user online in a room.
type PresentUser struct {
	ID    int64           `json:"id"`
	User  json.RawMessage `json:"user"` // as the API encodes it
	Since time.Time       `json:"since"`
}

// Rooms carries the rooms' events between nodes, one sequence per room,
// and who is online in each room on any node.
type Rooms interface {
	// Publish appends an event to a room's sequence and returns its
	// number. Every subscriber of the room, on every node, gets it once,
	// in sequence order.
	Publish(ctx context.Context, room int64, payload []byte) (seq uint64, err error)
	// Subscribe delivers the room's events from the next one published
	// to fn, in order, each once; events missed while the shared state
	// was unreachable are filled in from a short history when it is
	// back. fn runs in one goroutine per room and must be quick. The
	// returned function ends the subscription.
	Subscribe(room int64, fn func(Delivery)) (cancel func())

	// Enter records one more connection of user u in a room on this
	// node; first is true when the user had no connection in the room
	// on any node.
	Enter(ctx context.Context, room int64, u PresentUser) (first bool, err error)
	// Exit records one connection less; last is true when the user has
	// no connection left in the room on any node.
	Exit(ctx context.Context, room int64, userID int64) (last bool, err error)
	// Online lists the users online in a room on every live node, in
	// order of arrival.
	Online(ctx context.Context, room int64) ([]PresentUser, error)
	// HandleVanished sets the function told of users who left a room
	// because their node died (on one node of the cluster only), so that
	// it publishes their "leave". Call it before the node serves.
	HandleVanished(fn func(room int64, users []PresentUser))
}

// Limiter is a set of token buckets shared by every node.
type Limiter interface {
	// Allow takes a token from key's bucket, which holds burst tokens
	// and gets one back every every. With every 0 the bucket never
	// refills. A bucket that cannot be reached answers ErrUnavailable.
	Allow(ctx context.Context, key string, every time.Duration, burst int) (bool, error)
}

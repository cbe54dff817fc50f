package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/media/transcode"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
)

// mediaAuth decides who may publish and play: the media engine asks it,
// and it answers from the rooms in the store, the URL signs, and the API
// for the streams of calls and co-hosts (private).
type mediaAuth struct {
	store   *store.Store
	signer  *urlsign.Signer
	private *apiStreams // nil: no private streams
}

// privateStreams are the streams that belong to no room of their own: a
// relayed 1:1 call's ("call-<call id>-<user id>") and a co-host's. The API
// (*rpc.Server) knows them.
type privateStreams interface {
	// CallStream reports whether name is a party's stream of a call in
	// progress whose relay was asked for.
	CallStream(name string) bool
	// GuestStream reports whether name is the stream of a co-host on
	// now, and the stream of its room.
	GuestStream(name string) (roomStream string, ok bool)
	// PrivateStreamPublishing hears that such a stream started or
	// stopped.
	PrivateStreamPublishing(name string, live bool)
}

// apiStreams holds the privateStreams of the API, which is made after the
// engine (it needs the engine's stats): until set, no private stream
// exists.
type apiStreams struct{ v atomic.Value }

type streamsBox struct{ privateStreams }

func (a *apiStreams) set(p privateStreams) { a.v.Store(streamsBox{p}) }

func (a *apiStreams) get() privateStreams {
	if a == nil {
		return nil
	}
	b, _ := a.v.Load().(streamsBox)
	return b.privateStreams
}

// authorizePrivate decides for a stream of a call or a co-host; handled
// is false when the stream is none (then it is a room's, or unknown). A
// call stream needs a sign of its own (publish or play, handed to the
// call's parties only); a guest stream is published with its guest's
// sign, while its room may publish, and played by its room's rules.
func (a mediaAuth) authorizePrivate(ctx context.Context, req media.AuthRequest, action urlsign.Action) (handled bool, err error) {
	p := a.private.get()
	if p == nil {
		return false, nil
	}
	sign := req.Query.Get("sign")
	if p.CallStream(req.Stream) {
		if err := a.signer.Check(action, req.Stream, sign); err != nil {
			return true, signRefusal(string(action), err)
		}
		return true, nil
	}
	roomStream, ok := p.GuestStream(req.Stream)
	if !ok {
		return false, nil
	}
	room, err := a.store.RoomByName(ctx, roomStream)
	if errors.Is(err, store.ErrNotFound) {
		return true, errUnknownStream
	}
	if err != nil {
		return true, fmt.Errorf("looking up the room of a guest stream: %w", err)
	}
	if action == urlsign.Publish {
		switch {
		case room.Status == store.RoomStopped:
			return true, errRoomEnded
		case room.IsBanned:
			return true, errRoomBanned
		}
		if err := a.signer.Check(urlsign.Publish, req.Stream, sign); err != nil {
			return true, signRefusal("publish", err)
		}
		return true, nil
	}
	if room.HasPassword() {
		if err := a.signer.CheckGen(urlsign.Play, req.Stream, room.PasswordGen, sign); err != nil {
			return true, signRefusal("play", err)
		}
	}
	return true, nil
}

// Refusals the media engine passes on to clients: they name no secret.
// Any other error of the Authorizer (a store failure) is logged and
// reaches the client only as "service unavailable".
var (
	errUnknownStream = media.Refusal("unknown stream")
	errRoomEnded     = media.Refusal("the room has ended")
	errRoomBanned    = media.Refusal("the room is banned")
)

// signRefusal is the refusal of a missing, wrong or expired sign; err (why
// the sign failed) is logged, never sent.
func signRefusal(what string, err error) error {
	return &media.RefusalError{Reason: what + " refused: missing, wrong or expired sign", Err: err}
}

// AuthorizePublish admits a publisher to a stream that Live.stream created,
// not deleted, not stopped, with a publish sign of the room's stream key
// generation: its lasting stream key, or an expiring sign made for it
// (until Live.stream.key.reset starts a new generation); or to a stream
// of a call or a co-host (authorizePrivate).
func (a mediaAuth) AuthorizePublish(ctx context.Context, req media.AuthRequest) error {
	if handled, err := a.authorizePrivate(ctx, req, urlsign.Publish); handled {
		return err
	}
	room, err := a.store.RoomByName(ctx, req.Stream)
	if errors.Is(err, store.ErrNotFound) {
		return errUnknownStream
	}
	if err != nil {
		return fmt.Errorf("looking up the stream: %w", err)
	}
	if room.Status == store.RoomStopped {
		return errRoomEnded
	}
	if room.IsBanned {
		return errRoomBanned
	}
	if err := a.signer.CheckGen(urlsign.Publish, req.Stream, room.KeyGen, req.Query.Get("sign")); err != nil {
		return signRefusal("publish", err)
	}
	return nil
}

// AuthorizePlay admits a viewer of a known room; a room with a password
// also needs a valid play sign (which Live.stream.read gives only with
// the password) of the room's current password generation: a sign handed
// out before the password last changed is refused. Streams of calls and
// co-hosts: see authorizePrivate.
func (a mediaAuth) AuthorizePlay(ctx context.Context, req media.AuthRequest) error {
	if req.Relay != "" {
		return a.authorizeRelay(req)
	}
	if handled, err := a.authorizePrivate(ctx, req, urlsign.Play); handled {
		return err
	}
	room, err := a.store.RoomByName(ctx, req.Stream)
	if errors.Is(err, store.ErrNotFound) {
		return errUnknownStream
	}
	if err != nil {
		return fmt.Errorf("looking up the stream: %w", err)
	}
	if room.HasPassword() {
		if err := a.signer.CheckGen(urlsign.Play, req.Stream, room.PasswordGen, req.Query.Get("sign")); err != nil {
			return signRefusal("play", err)
		}
	}
	return nil
}

// relaySignTTL is the lifetime of a node credential: a relay makes one
// for each request.
const relaySignTTL = 30 * time.Second

// authorizeRelay admits another node of the cluster pulling a stream
// (a relay, not counted as a viewer) with a node credential: a Relay sign
// of the stream, which only the nodes (sharing the sign secret) make.
// The stream's room rules were checked by the viewers' node.
func (a mediaAuth) authorizeRelay(req media.AuthRequest) error {
	if err := a.signer.Check(urlsign.Relay, req.Stream, req.Query.Get("sign")); err != nil {
		return &media.RefusalError{Reason: "relay refused: missing, wrong or expired node credential", Err: err}
	}
	return nil
}

// RelayQuery is the node credential this node's relays add to their
// requests for stream to the node that publishes it (media.Config's
// RelayQuery): a Relay sign valid for relaySignTTL.
func (a mediaAuth) RelayQuery(stream string) url.Values {
	sign, _ := a.signer.Sign(urlsign.Relay, stream, relaySignTTL)
	return url.Values{"sign": {sign}}
}

// roomEvents keeps the rooms' status in step with their streams: live
// while published, then back to not started (a stopped room stays
// stopped).
// The streams of calls and co-hosts have no room: the API hears of them.
type roomEvents struct {
	store   *store.Store
	log     *slog.Logger
	private *apiStreams
	// cluster tells whether another node publishes a stream now: its
	// room stays live when this node's copy stops.
	cluster cluster.Cluster
}

func (r roomEvents) PublishStarted(ctx context.Context, s media.StreamInfo) {
	if r.privateStream(s.Name, true) {
		return
	}
	r.tellFollowers(ctx, s.Name, true)
	r.set(ctx, s, store.RoomLive)
}

func (r roomEvents) PublishStopped(ctx context.Context, s media.StreamInfo) {
	if r.privateStream(s.Name, false) {
		return
	}
	if r.cluster != nil {
		if cs, ok := r.cluster.Stream(s.Name); ok && cs.Node != r.cluster.Self().ID {
			r.log.Info("stream stopped here, published on another node", "stream", s.Name, "node", cs.Node)
			return
		}
	}
	r.tellFollowers(ctx, s.Name, false)
	r.set(ctx, s, store.RoomIdle)
}

// roomPublishing is the API's side of a room's live starting and ending
// (*rpc.Server): its followers told once per live, its scheduled live
// started.
type roomPublishing interface {
	RoomPublishing(ctx context.Context, stream string, live bool)
}

// tellFollowers tells the API, before the room's status changes, that a
// room's stream started or ended.
func (r roomEvents) tellFollowers(ctx context.Context, name string, live bool) {
	if p, ok := r.private.get().(roomPublishing); ok {
		p.RoomPublishing(ctx, name, live)
	}
}

// privateStream tells the API of a call or co-host stream; false for
// other streams.
func (r roomEvents) privateStream(name string, live bool) bool {
	if !rpc.IsPrivateStream(name) {
		return false
	}
	if p := r.private.get(); p != nil {
		p.PrivateStreamPublishing(name, live)
	}
	return true
}

func (r roomEvents) set(ctx context.Context, s media.StreamInfo, status store.RoomStatus) {
	room, err := r.store.RoomByName(ctx, s.Name)
	if err != nil {
		r.log.Warn("room of a stream not found", "stream", s.Name, "err", err)
		return
	}
	err = r.store.SetRoomStatus(ctx, room.ID, status)
	switch {
	case errors.Is(err, store.ErrRoomStopped):
	case err != nil:
		r.log.Error("setting room status", "room", room.ID, "status", status, "err", err)
	default:
		r.log.Info("room status", "room", room.ID, "stream", s.Name, "status", status)
	}
}

// liveStats shows the media engine's streams to the API.
type liveStats struct{ engine *media.Engine }

func (l liveStats) LiveStream(name string) (rpc.LiveStream, bool) {
	st, ok := l.engine.Stream(name)
	if !ok || !st.Live {
		return rpc.LiveStream{}, false
	}
	ls := rpc.LiveStream{Clients: st.ReaderCount, BFrames: st.BFrames}
	// the viewers of its renditions (the quality ladder) watch it too
	for _, r := range l.engine.Renditions(name) {
		if rs, ok := l.engine.Stream(r.Stream); ok {
			ls.Clients += rs.ReaderCount
		}
	}
	if st.BFrames {
		ls.Warning = media.BFramesWarning
	}
	ls.PublisherIP = ipString(st.PublisherIP)
	return ls, true
}

func (l liveStats) LiveStreamNames() []string {
	var names []string
	for _, st := range l.engine.Streams() {
		if st.Live {
			names = append(names, st.Name)
		}
	}
	return names
}

// mediaAdmin shows the media engine to the Admin methods; in a cluster,
// the streams of every node, from the cluster's view.
type mediaAdmin struct {
	engine  *media.Engine
	cluster cluster.Cluster // nil: this node alone
}

func (m mediaAdmin) Streams() []rpc.AdminStream {
	ss := m.engine.Streams()
	out := make([]rpc.AdminStream, 0, len(ss))
	here := map[string]bool{}
	for _, s := range ss {
		readers := make(map[string]int, len(s.Readers))
		for p, n := range s.Readers {
			readers[string(p)] = n
		}
		a := rpc.AdminStream{
			Name: s.Name, Path: s.Path, Live: s.Live, Publishing: s.Publishing,
			VideoCodec: s.VideoCodec, AudioCodec: s.AudioCodec, Width: s.Width, Height: s.Height, FPS: s.FPS,
			BitrateIn: s.BitrateIn, BytesIn: s.BytesIn, BytesOut: s.BytesOut,
			Readers: readers, ReaderCount: s.ReaderCount,
			FellBehind: s.ReadersFellBehind, Dropped: s.ReadersDropped,
			StartedAt: s.StartedAt.Unix(), BFrames: s.BFrames, Relay: s.Relay, Node: s.Origin,
		}
		if s.PublisherID != "" {
			a.Publisher = &rpc.AdminClientID{ID: s.PublisherID, IP: ipString(s.PublisherIP), Protocol: string(s.Protocol), Since: s.PublisherSince.Unix()}
		}
		if m.cluster != nil {
			if cs, ok := m.cluster.Stream(s.Name); ok {
				// The cluster's count: every node's viewers.
				a.ReaderCount, a.Node = cs.Clients, cs.Node
				if s.Relay && a.Publisher != nil {
					a.Publisher.IP, a.Publisher.Protocol = cs.Publisher.IP, cs.Publisher.Protocol
				}
			} else if a.Node == "" {
				a.Node = m.cluster.Self().ID
			}
		}
		here[s.Name] = true
		out = append(out, a)
	}
	if m.cluster == nil {
		return out
	}
	// The streams of other nodes that have no copy here.
	for _, cs := range m.cluster.Streams() {
		if here[cs.Name] {
			continue
		}
		out = append(out, rpc.AdminStream{
			Name: cs.Name, Path: "/live/" + cs.Name, Live: !cs.Grace, Publishing: !cs.Grace,
			Publisher:   &rpc.AdminClientID{IP: cs.Publisher.IP, Protocol: cs.Publisher.Protocol, Since: cs.Since.Unix()},
			Readers:     map[string]int{},
			ReaderCount: cs.Clients, StartedAt: cs.Since.Unix(), BFrames: cs.Publisher.BFrames, Node: cs.Node,
		})
	}
	return out
}

func (m mediaAdmin) Clients() []rpc.AdminClient {
	cs := m.engine.Clients()
	out := make([]rpc.AdminClient, len(cs))
	for i, c := range cs {
		out[i] = rpc.AdminClient{
			ID: c.ID, IP: ipString(c.IP), Protocol: string(c.Protocol), Stream: c.Stream, Role: string(c.Role),
			BytesIn: c.BytesIn, BytesOut: c.BytesOut, Bitrate: c.Bitrate, ConnectedAt: c.ConnectedAt.Unix(),
			Relay: c.Relay, Peer: c.Node,
		}
	}
	return out
}

func (m mediaAdmin) KickStream(name string) bool { return m.engine.KickStream(name) }
func (m mediaAdmin) KickClient(id string) bool   { return m.engine.KickClient(id) }

func (m mediaAdmin) Totals() rpc.MediaTotals {
	c := m.engine.Counters()
	return rpc.MediaTotals{BytesIn: c.BytesIn, BytesOut: c.BytesOut, ReadersFellBehind: c.ReadersFellBehind,
		ReadersDropped: c.ReadersDropped, ClientsRefused: c.ClientsRefused}
}

func ipString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

// renditionsOf lists a live's renditions for the API: this node's
// transcoder's, or, for a live another node of the cluster publishes,
// the renditions of the ladder that node publishes (their width is not
// known here).
func renditionsOf(engine *media.Engine, cl cluster.Cluster, ladder []transcode.Rendition) func(string) []rpc.Rendition {
	if len(ladder) == 0 {
		return nil
	}
	return func(stream string) []rpc.Rendition {
		var out []rpc.Rendition
		for _, r := range engine.Renditions(stream) {
			out = append(out, rpc.Rendition{Name: r.Name, Stream: r.Stream, Width: r.Width, Height: r.Height})
		}
		if len(out) > 0 || cl == nil {
			return out
		}
		if cs, ok := cl.Stream(stream); !ok || cs.Node == cl.Self().ID {
			return nil
		}
		for _, r := range ladder {
			name := transcode.StreamName(stream, r)
			if cs, ok := cl.Stream(name); ok && !cs.Grace {
				out = append(out, rpc.Rendition{Name: r.Name, Stream: name, Height: r.Height})
			}
		}
		return out
	}
}

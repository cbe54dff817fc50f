package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
)

// mediaAuth decides who may publish and play: the media engine asks it,
// and it answers from the rooms in the store and the URL signs.
type mediaAuth struct {
	store  *store.Store
	signer *urlsign.Signer
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
// not deleted, not stopped, with a valid publish sign.
func (a mediaAuth) AuthorizePublish(ctx context.Context, req media.AuthRequest) error {
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
	if err := a.signer.Check(urlsign.Publish, req.Stream, req.Query.Get("sign")); err != nil {
		return signRefusal("publish", err)
	}
	return nil
}

// AuthorizePlay admits a viewer of a known room; a room with a password
// also needs a valid play sign (which Live.stream.read gives only with
// the password) of the room's current password generation: a sign handed
// out before the password last changed is refused.
func (a mediaAuth) AuthorizePlay(ctx context.Context, req media.AuthRequest) error {
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

// roomEvents keeps the rooms' status in step with their streams: live
// while published, then back to not started (a stopped room stays
// stopped).
type roomEvents struct {
	store *store.Store
	log   *slog.Logger
}

func (r roomEvents) PublishStarted(ctx context.Context, s media.StreamInfo) {
	r.set(ctx, s, store.RoomLive)
}

func (r roomEvents) PublishStopped(ctx context.Context, s media.StreamInfo) {
	r.set(ctx, s, store.RoomIdle)
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
	ls := rpc.LiveStream{Clients: st.ReaderCount}
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

// mediaAdmin shows the media engine to the Admin methods.
type mediaAdmin struct{ engine *media.Engine }

func (m mediaAdmin) Streams() []rpc.AdminStream {
	ss := m.engine.Streams()
	out := make([]rpc.AdminStream, len(ss))
	for i, s := range ss {
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
			StartedAt: s.StartedAt.Unix(),
		}
		if s.PublisherID != "" {
			a.Publisher = &rpc.AdminClientID{ID: s.PublisherID, IP: ipString(s.PublisherIP), Protocol: string(s.Protocol), Since: s.PublisherSince.Unix()}
		}
		out[i] = a
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

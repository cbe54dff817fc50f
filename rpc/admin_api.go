package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/mofang-live/mofang/store"
)

// MediaAdmin is what the Admin methods need from the media engine.
type MediaAdmin interface {
	// Streams lists every stream the engine knows, live or in its
	// reconnect grace.
	Streams() []AdminStream
	// Clients lists every connected media client.
	Clients() []AdminClient
	// KickStream disconnects a stream's publisher and ends the stream at
	// once (no grace). False when there is no such stream.
	KickStream(name string) bool
	// KickClient disconnects one client. False when there is none.
	KickClient(id string) bool
	// Totals are engine-wide counters.
	Totals() MediaTotals
}

// AdminStream is a stream as admins see it: what SRS's streams API gives
// and more.
type AdminStream struct {
	Name        string         `json:"name"`
	Path        string         `json:"path"`
	Live        bool           `json:"live"`       // publishing and media flowing
	Publishing  bool           `json:"publishing"` // false during the reconnect grace
	Publisher   *AdminClientID `json:"publisher,omitempty"`
	VideoCodec  string         `json:"video_codec"`
	AudioCodec  string         `json:"audio_codec"`
	Width       int            `json:"width"`
	Height      int            `json:"height"`
	FPS         float64        `json:"fps"`
	BitrateIn   int64          `json:"bitrate_in"` // bit/s over the last 10 s
	BytesIn     uint64         `json:"bytes_in"`
	BytesOut    uint64         `json:"bytes_out"` // sent to this stream's readers
	Readers     map[string]int `json:"readers"`   // per protocol
	ReaderCount int            `json:"reader_count"`
	FellBehind  uint64         `json:"readers_fell_behind"`
	Dropped     uint64         `json:"readers_dropped"`
	StartedAt   int64          `json:"started_at"` // Unix seconds
	// BFrames is true when the stream's video has B-frames: WebRTC
	// viewers are refused until the publisher turns them off.
	BFrames bool `json:"bframes"`
	// Node is the ID of the node that publishes the stream; Relay is
	// true for this node's copy of a stream another node publishes
	// (its viewers here are counted in ReaderCount).
	Node  string     `json:"node,omitempty"`
	Relay bool       `json:"relay,omitempty"`
	Room  *AdminRoom `json:"room,omitempty"`
}

// AdminClientID names a publisher in AdminStream.
type AdminClientID struct {
	ID       string `json:"id"`
	IP       string `json:"ip"`
	Protocol string `json:"protocol"`
	Since    int64  `json:"since"` // Unix seconds
}

// AdminRoom is the room of a stream and its owner.
type AdminRoom struct {
	ID       int64  `json:"id"`
	RoomName string `json:"room_name"`
	OwnerID  int64  `json:"owner_id"`
	Owner    string `json:"owner"` // nickname
	Banned   bool   `json:"banned"`
}

// AdminClient is one connected media client, whatever its protocol.
type AdminClient struct {
	// Node is the ID of the node the client is connected to (set by
	// Admin.client.list).
	Node        string `json:"node"`
	ID          string `json:"id"`
	IP          string `json:"ip"`
	Protocol    string `json:"protocol"`
	Stream      string `json:"stream"`
	Role        string `json:"role"` // publish, play or "" before it asked
	BytesIn     uint64 `json:"bytes_in"`
	BytesOut    uint64 `json:"bytes_out"`
	Bitrate     int64  `json:"bitrate"`      // bit/s, in for publishers, out for players, over the last 10 s
	ConnectedAt int64  `json:"connected_at"` // Unix seconds
	// Relay marks a relay between nodes: this node pulling a stream of
	// another node (role publish) or another node pulling one of this
	// node's (role play); Peer is that node's ID.
	Relay bool   `json:"relay,omitempty"`
	Peer  string `json:"peer,omitempty"`
}

// MediaTotals are the engine's counters.
type MediaTotals struct {
	BytesIn           uint64 `json:"bytes_in"`
	BytesOut          uint64 `json:"bytes_out"`
	ReadersFellBehind uint64 `json:"readers_fell_behind"`
	ReadersDropped    uint64 `json:"readers_dropped"`
	ClientsRefused    uint64 `json:"clients_refused"`
}

// noMedia is the MediaAdmin of a server without a media engine.
type noMedia struct{}

func (noMedia) Streams() []AdminStream { return nil }
func (noMedia) Clients() []AdminClient { return nil }
func (noMedia) KickStream(string) bool { return false }
func (noMedia) KickClient(string) bool { return false }
func (noMedia) Totals() MediaTotals    { return MediaTotals{} }

// adminAPI is the Admin namespace. Every method needs an admin.
type adminAPI struct{ s *Server }

// requireAdmin loads the caller and checks it is an admin.
func (s *Server) requireAdmin(ctx context.Context) (store.User, Status, error) {
	u, st, err := s.currentUser(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return u, st, err
	}
	if !u.IsAdmin {
		return u, fail(ErrnoNotAdmin), nil
	}
	return u, ok(), nil
}

// PageParams select a page of a listing.
type PageParams struct {
	Page int `json:"page"` // from 1 [1]
	Size int `json:"size"` // [20], at most 100
}

// bounds checks a page and returns the slice bounds of it in n items.
func (p *PageParams) bounds(n int) (int, int, string) {
	if p.Page == 0 {
		p.Page = 1
	}
	if p.Size == 0 {
		p.Size = defaultPageSize
	}
	if p.Page < 1 || p.Page > maxPage || p.Size < 1 || p.Size > maxPageSize {
		return 0, 0, pageRangeMsg
	}
	lo := min((p.Page-1)*p.Size, n)
	return lo, min(lo+p.Size, n), ""
}

// StreamListData is the data of Admin.stream.list.
type StreamListData struct {
	Streams []AdminStream `json:"streams"`
	Total   int           `json:"total"`
	Page    int           `json:"page"`
	Size    int           `json:"size"`
}

// StreamList lists every stream the engine knows, with its room.
func (a *adminAPI) StreamList(ctx context.Context, p PageParams) (*Reply[StreamListData], error) {
	if _, st, err := a.s.requireAdmin(ctx); err != nil || st.Errno != ErrnoOK {
		return &Reply[StreamListData]{Status: st}, err
	}
	all := a.s.cfg.Media.Streams()
	lo, hi, msg := p.bounds(len(all))
	if msg != "" {
		return &Reply[StreamListData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	page := all[lo:hi]
	for i := range page {
		r, err := a.s.cfg.Store.RoomByNameWithOwner(ctx, page[i].Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		page[i].Room = &AdminRoom{ID: r.ID, RoomName: r.RoomName, OwnerID: r.UserID, Owner: r.Owner.Nickname, Banned: r.IsBanned}
	}
	return &Reply[StreamListData]{Status: ok(), Data: &StreamListData{Streams: page, Total: len(all), Page: p.Page, Size: p.Size}}, nil
}

// ClientListParams are the params of Admin.client.list.
type ClientListParams struct {
	Stream string `json:"stream"` // only this stream's clients [all]
	Page   int    `json:"page"`
	Size   int    `json:"size"`
}

// ClientListData is the data of Admin.client.list.
type ClientListData struct {
	Clients []AdminClient `json:"clients"`
	Total   int           `json:"total"`
	Page    int           `json:"page"`
	Size    int           `json:"size"`
}

// ClientList lists the media clients of every protocol connected to any
// node: this node's first, then the others' as they last reported them
// (by node ID), each with its node.
func (a *adminAPI) ClientList(ctx context.Context, p ClientListParams) (*Reply[ClientListData], error) {
	if _, st, err := a.s.requireAdmin(ctx); err != nil || st.Errno != ErrnoOK {
		return &Reply[ClientListData]{Status: st}, err
	}
	all := a.s.clusterClients()
	if p.Stream != "" {
		kept := all[:0]
		for _, c := range all {
			if c.Stream == p.Stream {
				kept = append(kept, c)
			}
		}
		all = kept
	}
	pp := PageParams{Page: p.Page, Size: p.Size}
	lo, hi, msg := pp.bounds(len(all))
	if msg != "" {
		return &Reply[ClientListData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	return &Reply[ClientListData]{Status: ok(), Data: &ClientListData{Clients: all[lo:hi], Total: len(all), Page: pp.Page, Size: pp.Size}}, nil
}

// localClients lists this node's media clients, with its node ID.
func (s *Server) localClients() []AdminClient {
	cs := s.cfg.Media.Clients()
	self := s.cfg.Cluster.Self().ID
	for i := range cs {
		cs[i].Node = self
	}
	return cs
}

// ClientReport is this node's media clients as Admin.client.list shows
// them, for the cluster's Report.ClientList: the other nodes list them
// from it.
func (s *Server) ClientReport() json.RawMessage {
	b, err := json.Marshal(s.localClients())
	if err != nil {
		return json.RawMessage("[]")
	}
	return b
}

// clusterClients lists this node's media clients and, after them, the
// other nodes' from their last reports, by node ID.
func (s *Server) clusterClients() []AdminClient {
	all := s.localClients()
	self := s.cfg.Cluster.Self().ID
	lists := s.cfg.Cluster.ClientLists()
	nodes := make([]string, 0, len(lists))
	for id := range lists {
		if id != self {
			nodes = append(nodes, id)
		}
	}
	slices.Sort(nodes)
	for _, id := range nodes {
		var cs []AdminClient
		if err := json.Unmarshal(lists[id], &cs); err != nil {
			s.log.Warn("a node's client list is not understood", "node", id, "error", err)
			continue
		}
		for i := range cs {
			cs[i].Node = id
		}
		all = append(all, cs...)
	}
	return all
}

// StreamKickParams are the params of Admin.stream.kick.
type StreamKickParams struct {
	Stream string `json:"stream" rpc:"required"`
}

// StreamKick drops a stream's publisher, on whichever node it publishes;
// the room is no longer live.
func (a *adminAPI) StreamKick(ctx context.Context, p StreamKickParams) (*Reply[struct{}], error) {
	u, st, err := a.s.requireAdmin(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, err
	}
	node, st := a.s.kickStream(ctx, p.Stream)
	if st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, nil
	}
	a.s.log.Info("admin kicked stream", "admin", u.ID, "stream", p.Stream, "node", node)
	return &Reply[struct{}]{Status: ok()}, nil
}

// errnoNodeUnreachable is the status of a command that could not reach
// the node it was for.
var errnoNodeUnreachable = failf(ErrnoUnavailable, "the node that holds it cannot be reached now, try again later")

// kickStream drops a stream's publisher here or, if another node
// publishes it, sends that node the command. It returns the node.
func (s *Server) kickStream(ctx context.Context, stream string) (string, Status) {
	self := s.cfg.Cluster.Self().ID
	if s.cfg.Media.KickStream(stream) {
		return self, ok()
	}
	cs, found := s.cfg.Cluster.Stream(stream)
	if !found || cs.Node == self {
		return "", fail(ErrnoNoStream)
	}
	if err := s.sendTo(ctx, cs.Node, CommandKickStream, stream); err != nil {
		s.log.Warn("could not send a kick to a stream's node", "stream", stream, "node", cs.Node, "error", err)
		return "", errnoNodeUnreachable
	}
	return cs.Node, ok()
}

// ClientKickParams are the params of Admin.client.kick.
type ClientKickParams struct {
	ClientID string `json:"client_id" rpc:"required"`
}

// ClientKick disconnects one media client.
func (a *adminAPI) ClientKick(ctx context.Context, p ClientKickParams) (*Reply[struct{}], error) {
	u, st, err := a.s.requireAdmin(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[struct{}]{Status: st}, err
	}
	node := a.s.cfg.Cluster.Self().ID
	if !a.s.cfg.Media.KickClient(p.ClientID) {
		node = ""
		for _, c := range a.s.clusterClients() {
			if c.ID == p.ClientID && c.Node != a.s.cfg.Cluster.Self().ID {
				node = c.Node
				break
			}
		}
		if node == "" {
			return &Reply[struct{}]{Status: fail(ErrnoNoClient)}, nil
		}
		if err := a.s.sendTo(ctx, node, CommandKickClient, p.ClientID); err != nil {
			a.s.log.Warn("could not send a kick to a client's node", "client", p.ClientID, "node", node, "error", err)
			return &Reply[struct{}]{Status: errnoNodeUnreachable}, nil
		}
	}
	a.s.log.Info("admin kicked client", "admin", u.ID, "client", p.ClientID, "node", node)
	return &Reply[struct{}]{Status: ok()}, nil
}

// BanData is the data of Admin.room.ban and Admin.room.unban.
type BanData struct {
	RoomID string `json:"room_id"`
	Banned bool   `json:"banned"`
}

// RoomBan bans a room: its stream stops and no publish is accepted until
// Admin.room.unban.
func (a *adminAPI) RoomBan(ctx context.Context, p RoomParams) (*Reply[BanData], error) {
	return a.setBan(ctx, p.RoomID, true)
}

// RoomUnban lifts a ban.
func (a *adminAPI) RoomUnban(ctx context.Context, p RoomParams) (*Reply[BanData], error) {
	return a.setBan(ctx, p.RoomID, false)
}

func (a *adminAPI) setBan(ctx context.Context, id RoomID, banned bool) (*Reply[BanData], error) {
	u, st, err := a.s.requireAdmin(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[BanData]{Status: st}, err
	}
	r, err := a.s.cfg.Store.RoomByID(ctx, int64(id))
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[BanData]{Status: fail(ErrnoNoRoom)}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := a.s.cfg.Store.SetRoomBanned(ctx, r.ID, banned); err != nil {
		return nil, err
	}
	if banned {
		// The ban started a new password generation: signs handed out
		// before no longer work. Ending the stream drops its players;
		// the viewers' sockets leave the room, on every node.
		a.s.kickStream(ctx, r.Name)
		a.s.evictViewers(r.ID, r.UserID, reenterBanned)
		a.s.reenterElsewhere(r.ID, r.UserID, "", reenterBanned)
	}
	a.s.log.Info("admin set room ban", "admin", u.ID, "room", r.ID, "banned", banned)
	return &Reply[BanData]{Status: ok(), Data: &BanData{RoomID: formatRoomID(r.ID), Banned: banned}}, nil
}

// ServerStatsData is the data of Admin.server.stats.
type ServerStatsData struct {
	Version     string                `json:"version"`
	Uptime      int64                 `json:"uptime"` // seconds
	Goroutines  int                   `json:"goroutines"`
	MemoryBytes uint64                `json:"memory_bytes"` // from the Go runtime (Sys)
	HeapBytes   uint64                `json:"heap_bytes"`
	CPUSeconds  float64               `json:"cpu_seconds"` // user + system since start
	Streams     int                   `json:"streams"`
	LiveStreams int                   `json:"live_streams"`
	Clients     int                   `json:"clients"` // media clients
	Websockets  int                   `json:"websockets"`
	Media       MediaTotals           `json:"media"`
	Calls       map[string]CallCounts `json:"calls"` // per method
}

// CallCounts count the calls of one method.
type CallCounts struct {
	Calls  uint64 `json:"calls"`
	Errors uint64 `json:"errors"` // JSON-RPC errors (errnos are not errors)
}

// ServerStats reports the process and its traffic.
func (a *adminAPI) ServerStats(ctx context.Context, p NoParams) (*Reply[ServerStatsData], error) {
	if _, st, err := a.s.requireAdmin(ctx); err != nil || st.Errno != ErrnoOK {
		return &Reply[ServerStatsData]{Status: st}, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	streams := a.s.cfg.Media.Streams()
	live := 0
	for _, s := range streams {
		if s.Live {
			live++
		}
	}
	d := &ServerStatsData{
		Version:     a.s.cfg.Version,
		Uptime:      int64(time.Since(a.s.started).Seconds()),
		Goroutines:  runtime.NumGoroutine(),
		MemoryBytes: ms.Sys,
		HeapBytes:   ms.HeapAlloc,
		CPUSeconds:  cpuSeconds(),
		Streams:     len(streams),
		LiveStreams: live,
		Clients:     len(a.s.cfg.Media.Clients()),
		Websockets:  a.s.Websockets(),
		Media:       a.s.cfg.Media.Totals(),
		Calls:       a.s.CallCounts(),
	}
	return &Reply[ServerStatsData]{Status: ok(), Data: d}, nil
}

// AdminNode is a node of the cluster as Admin.cluster.nodes shows it.
type AdminNode struct {
	ID       string `json:"id"`
	URL      string `json:"url"`       // where the other nodes reach its media
	Started  int64  `json:"started"`   // Unix seconds
	Streams  int    `json:"streams"`   // published on it
	Clients  int    `json:"clients"`   // media clients connected to it
	LastSeen int64  `json:"last_seen"` // Unix seconds: its lease's last refresh
	Self     bool   `json:"self"`      // the node that answered
}

// ClusterNodesData is the data of Admin.cluster.nodes.
type ClusterNodesData struct {
	Nodes []AdminNode `json:"nodes"`
}

// ClusterNodes lists the live nodes of the cluster, by ID (a node alone
// lists itself).
func (a *adminAPI) ClusterNodes(ctx context.Context, p NoParams) (*Reply[ClusterNodesData], error) {
	if _, st, err := a.s.requireAdmin(ctx); err != nil || st.Errno != ErrnoOK {
		return &Reply[ClusterNodesData]{Status: st}, err
	}
	self := a.s.cfg.Cluster.Self().ID
	d := &ClusterNodesData{Nodes: []AdminNode{}}
	for _, n := range a.s.cfg.Cluster.Nodes() {
		d.Nodes = append(d.Nodes, AdminNode{ID: n.ID, URL: n.URL, Started: n.Started.Unix(), Streams: n.Streams,
			Clients: n.Clients, LastSeen: n.LastSeen.Unix(), Self: n.ID == self})
	}
	return &Reply[ClusterNodesData]{Status: ok(), Data: d}, nil
}

// NoParams are the params of a method that takes none.
type NoParams struct{}

// cpuSeconds is the CPU time the process used, user and system.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

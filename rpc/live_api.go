package rpc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
)

// liveAPI is the Live namespace: rooms and their streams.
type liveAPI struct{ s *Server }

// Limits of room fields and listings.
const (
	maxRoomNameLen     = 64
	maxRoomPasswordLen = 64
	defaultRoomName    = "未命名" // seed MoFang's default: "unnamed"
	defaultPageSize    = 20
	maxPageSize        = 100
	// maxUnpagedRooms caps Live.stream.list called without a page, which
	// seed MoFang's pages do: they get every room up to this many.
	maxUnpagedRooms = 1000
	// maxPage is the last page any listing serves: (page-1)*size then
	// never overflows an offset.
	maxPage = 1_000_000
)

// pageRangeMsg is the errmsg of a page or size out of range.
var pageRangeMsg = fmt.Sprintf("page must be 1 to %d and size 1 to %d", maxPage, maxPageSize)

// RoomID is a room's id. It reads from a JSON number or a string of
// digits, since seed MoFang hands out room ids as "%04d" strings.
type RoomID int64

// UnmarshalJSON reads 12, "12" or "0012".
func (id *RoomID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("room_id must be a positive integer or a string of digits")
	}
	*id = RoomID(n)
	return nil
}

// formatRoomID is seed MoFang's room id: "%04d".
func formatRoomID(id int64) string { return fmt.Sprintf("%04d", id) }

// StreamParams are the params of Live.stream.
type StreamParams struct {
	RoomName string `json:"room_name"`
	// Password of the room: absent keeps the current one, "" removes it.
	Password *string `json:"password"`
	// Record turns the recording of the room's lives on or off; absent
	// keeps the setting (new rooms record).
	Record *bool `json:"record"`
}

// StreamData is the data of Live.stream: the caller's room and how to
// publish to it.
type StreamData struct {
	StreamName  string       `json:"stream_name"`
	RoomName    string       `json:"room_name"`
	RoomOwner   int64        `json:"room_owner"`
	RoomID      string       `json:"room_id"`
	HasPassword bool         `json:"has_password"`
	Record      bool         `json:"record"`
	Publish     *PublishURLs `json:"publish"`
}

// PublishURLs tell a streamer (OBS, ffmpeg) where to publish.
type PublishURLs struct {
	URL       string `json:"url"`        // the whole RTMP URL, for ffmpeg
	Server    string `json:"server"`     // OBS "Server"
	StreamKey string `json:"stream_key"` // OBS "Stream Key": name?sign=...
	// WHIP is the WebRTC publish URL (WHIP: POST an SDP offer to it), for
	// a browser or OBS's WHIP output; absent when WebRTC is off.
	WHIP string `json:"whip,omitempty"`
	// SRT is the SRT publish URL (MPEG-TS, stream ID
	// "publish:<stream>?sign=..."), for OBS and hardware encoders;
	// absent when SRT is off.
	SRT  string `json:"srt,omitempty"`
	Sign string `json:"sign"`
	// Expires is when the sign stops working, in Unix seconds; 0: never.
	// A room's stream key lasts until its owner resets it
	// (Live.stream.key.reset).
	Expires int64 `json:"expires"`
}

// Stream creates the caller's room on first call, or renames it and sets
// its password, and returns it with a signed publish URL.
func (a *liveAPI) Stream(ctx context.Context, p StreamParams) (*Reply[StreamData], error) {
	u, st, err := a.s.currentUser(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[StreamData]{Status: st}, err
	}
	p.RoomName = strings.TrimSpace(p.RoomName)
	if p.RoomName == "" {
		p.RoomName = defaultRoomName
	}
	if msg := checkText("room_name", p.RoomName, maxRoomNameLen); msg != "" {
		return &Reply[StreamData]{Status: failf(ErrnoInvalid, msg)}, nil
	}
	var hash *string
	if p.Password != nil {
		if len(*p.Password) > maxRoomPasswordLen {
			return &Reply[StreamData]{Status: failf(ErrnoInvalid, fmt.Sprintf("password must be at most %d bytes", maxRoomPasswordLen))}, nil
		}
		h := ""
		if *p.Password != "" {
			b, err := bcrypt.GenerateFromPassword([]byte(*p.Password), a.s.cfg.BcryptCost)
			if err != nil {
				return nil, fmt.Errorf("hashing room password: %w", err)
			}
			h = string(b)
		}
		hash = &h
	}

	room, err := a.s.cfg.Store.OpenRoomOfUser(ctx, u.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		room, err = a.createRoom(ctx, u.ID, p.RoomName, hash)
		if err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if err := a.s.cfg.Store.UpdateRoom(ctx, room.ID, p.RoomName, hash); err != nil {
			if errors.Is(err, store.ErrRoomStopped) {
				return &Reply[StreamData]{Status: fail(ErrnoRoomStopped)}, nil
			}
			return nil, err
		}
		room.RoomName = p.RoomName
		if hash != nil {
			// A password set or changed shuts out whoever entered with
			// the old one (or with none): the store started a new
			// generation, so their play and replay signs no longer work;
			// their sockets and players go now. A removed password opens
			// the room: nothing to shut.
			if *hash != "" {
				a.s.revokeRoom(room.ID, u.ID, room.Name, reenterPassword)
			}
			room.PasswordHash = *hash
		}
	}
	if p.Record != nil && *p.Record != room.Record {
		if err := a.s.cfg.Store.SetRoomRecord(ctx, room.ID, *p.Record); err != nil {
			return nil, err
		}
		room.Record = *p.Record
	}

	return &Reply[StreamData]{Status: ok(), Data: &StreamData{
		StreamName:  room.Name,
		RoomName:    room.RoomName,
		RoomOwner:   u.ID,
		RoomID:      formatRoomID(room.ID),
		HasPassword: room.HasPassword(),
		Record:      room.Record,
		Publish:     a.s.publishURLs(ctx, room),
	}}, nil
}

// createRoom makes a room with seed MoFang's stream name,
// room_<user id %06d><yyyymmddHHMMSS><random %06d>, trying again on the
// rare name collision.
func (a *liveAPI) createRoom(ctx context.Context, userID int64, roomName string, hash *string) (store.Room, error) {
	h := ""
	if hash != nil {
		h = *hash
	}
	for range 5 {
		n, err := rand.Int(rand.Reader, big.NewInt(999999-100+1))
		if err != nil {
			return store.Room{}, fmt.Errorf("making stream name: %w", err)
		}
		name := fmt.Sprintf("room_%06d%s%06d", userID, time.Now().Format("20060102150405"), n.Int64()+100)
		room, err := a.s.cfg.Store.CreateRoom(ctx, store.NewRoom{Name: name, RoomName: roomName, PasswordHash: h, UserID: userID})
		if errors.Is(err, store.ErrDuplicate) {
			continue
		}
		return room, err
	}
	return store.Room{}, errors.New("making stream name: five collisions in a row")
}

// StreamListParams are the params of Live.stream.list, all optional.
type StreamListParams struct {
	Page     int  `json:"page"`      // from 1; absent: every room (up to 1000)
	Size     int  `json:"size"`      // rooms per page, default 20, at most 100
	LiveOnly bool `json:"live_only"` // only rooms being published now
	Followed bool `json:"followed"`  // only rooms of hosts the caller follows
}

// StreamListReply is the result of Live.stream.list: seed MoFang's
// "stream_list" beside errno and errmsg.
type StreamListReply struct {
	Status
	StreamList []StreamItem `json:"stream_list"`
	Total      int          `json:"total"`
	Page       int          `json:"page"`
	Size       int          `json:"size"`
}

// StreamItem is one room in Live.stream.list.
type StreamItem struct {
	ID            int64     `json:"id"`
	Name          string    `json:"name"` // the stream name
	RoomName      string    `json:"room_name"`
	User          OwnerData `json:"user"`
	Status        bool      `json:"status"`         // live now
	ClientsNumber int       `json:"clients_number"` // viewers now, of every protocol
	RoomStatus    int       `json:"room_status"`    // 0 not started, 1 live, 2 paused, 3 stopped
	HasPassword   bool      `json:"has_password"`
	Cover         string    `json:"cover"`
	LookCount     int64     `json:"look_count"`
	// Thumb is the picture of a live room without a cover: a JPEG of its
	// stream's newest key frame (/live/<stream>/thumb.jpg), "" otherwise.
	// A room with a password shows it only to its owner (signed); others
	// get its picture from Live.stream.read's play.thumb, with the
	// password.
	Thumb string `json:"thumb"`
}

// OwnerData is a room owner as lists show it. IP is the publisher's
// address while the room is live, else the owner's last login address:
// whole to the owner and admins, masked to others (see
// Config.ShowPublisherIP).
type OwnerData struct {
	ID       int64  `json:"id"`
	Nickname string `json:"nickname"`
	IP       string `json:"ip"`
	Avatar   string `json:"avatar"`
}

// StreamList returns the rooms that can go live, newest first, each with
// its live state from the media engine.
func (a *liveAPI) StreamList(ctx context.Context, p StreamListParams) (*StreamListReply, error) {
	viewer, st, err := a.s.account(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &StreamListReply{Status: st, StreamList: []StreamItem{}}, err
	}
	if p.Page < 0 || p.Page > maxPage || p.Size < 0 || p.Size > maxPageSize || (p.Page == 0 && p.Size != 0) {
		return &StreamListReply{Status: failf(ErrnoInvalid, pageRangeMsg), StreamList: []StreamItem{}}, nil
	}
	opt := store.ListRoomsOptions{Limit: maxUnpagedRooms}
	if p.Page > 0 {
		if p.Size == 0 {
			p.Size = defaultPageSize
		}
		opt = store.ListRoomsOptions{Offset: (p.Page - 1) * p.Size, Limit: p.Size}
	}
	if p.LiveOnly {
		opt.Names = a.s.cfg.Live.LiveStreamNames()
		if opt.Names == nil {
			opt.Names = []string{}
		}
	}
	if p.Followed {
		opt.FollowedBy = viewer.id
	}
	rooms, total, err := a.s.cfg.Store.ListRooms(ctx, opt)
	if err != nil {
		return nil, err
	}
	items := make([]StreamItem, len(rooms))
	for i, r := range rooms {
		it := StreamItem{
			ID:          r.ID,
			Name:        r.Name,
			RoomName:    r.RoomName,
			User:        OwnerData{ID: r.Owner.ID, Nickname: r.Owner.Nickname, IP: r.Owner.IPAddress, Avatar: r.Owner.Avatar},
			RoomStatus:  int(r.Status),
			HasPassword: r.HasPassword(),
			Cover:       r.Cover,
			LookCount:   r.LookCount,
		}
		if ls, live := a.s.cfg.Live.LiveStream(r.Name); live {
			it.Status = true
			it.ClientsNumber = ls.Clients
			if ls.PublisherIP != "" {
				it.User.IP = ls.PublisherIP
			}
			if r.Cover == "" {
				it.Thumb = a.s.listThumb(ctx, viewer, r.Room)
			}
		}
		it.User.IP = a.s.ownerIP(viewer, r.UserID, it.User.IP)
		items[i] = it
	}
	return &StreamListReply{Status: ok(), StreamList: items, Total: total, Page: p.Page, Size: p.Size}, nil
}

// StreamReadParams are the params of Live.stream.read.
type StreamReadParams struct {
	RoomID   RoomID `json:"room_id" rpc:"required"`
	Password string `json:"password"`
}

// RoomData is one room as Live.stream.read shows it.
type RoomData struct {
	ID            int64     `json:"id"`
	RoomID        string    `json:"room_id"`
	Name          string    `json:"name"` // the stream name
	RoomName      string    `json:"room_name"`
	Title         string    `json:"title"`
	Cover         string    `json:"cover"`
	RoomStatus    int       `json:"room_status"`
	Status        bool      `json:"status"` // live now
	ClientsNumber int       `json:"clients_number"`
	LookCount     int64     `json:"look_count"`
	Coin          int64     `json:"coin"`
	HasPassword   bool      `json:"has_password"`
	User          OwnerData `json:"user"`
	CreatedTime   int64     `json:"created_time"` // Unix seconds
	// Play holds signed play URLs; absent once the room has ended.
	Play *PlayURLs `json:"play,omitempty"`
	// BFrames is true while the live stream's video has B-frames, which
	// WebRTC (WHEP) players cannot play; Warning then tells the publisher
	// how to turn them off in OBS.
	BFrames bool   `json:"bframes"`
	Warning string `json:"warning,omitempty"`
	// Cohosts are the room's co-hosts on now (Live.cohost), each with
	// signed play URLs of its guest stream; absent with Play.
	Cohosts []CohostInfo `json:"cohosts,omitempty"`
}

// PlayURLs are where to watch a room, each carrying the play sign.
type PlayURLs struct {
	FLV  string `json:"flv"`
	HLS  string `json:"hls"`
	RTMP string `json:"rtmp"`
	RTSP string `json:"rtsp"`
	// WHEP is the WebRTC play URL (WHEP: POST an SDP offer to it); absent
	// when WebRTC is off.
	WHEP string `json:"whep,omitempty"`
	// SRT is the SRT play URL (MPEG-TS, stream ID "read:<stream>?sign=...");
	// absent when SRT is off.
	SRT string `json:"srt,omitempty"`
	// Thumb is the thumbnail while the stream is live (a JPEG of its
	// newest key frame); absent when the server makes none.
	Thumb string `json:"thumb,omitempty"`
	Sign  string `json:"sign"`
	// Expires is when the sign stops working, in Unix seconds; 0: never.
	// A room's stream key lasts until its owner resets it
	// (Live.stream.key.reset).
	Expires int64 `json:"expires"`
	// Renditions are the live's lower qualities (the quality ladder),
	// from the highest, played with the same sign; absent when there
	// are none. HLSMaster is then the HLS multivariant playlist of the
	// live and every rendition (players pick by bandwidth).
	Renditions []RenditionURLs `json:"renditions,omitempty"`
	HLSMaster  string          `json:"hls_master,omitempty"`
}

// RenditionURLs are where to watch one rendition of a live.
type RenditionURLs struct {
	Name   string `json:"name"`   // "480p"
	Stream string `json:"stream"` // "<stream>_480p"
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height"`
	FLV    string `json:"flv"`
	HLS    string `json:"hls"`
	WHEP   string `json:"whep,omitempty"`
}

// StreamRead returns one room with its play URLs. A room with a password
// is shown to its owner, and to others only with the right password.
func (a *liveAPI) StreamRead(ctx context.Context, p StreamReadParams) (*Reply[RoomData], error) {
	viewer, st, err := a.s.account(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[RoomData]{Status: st}, err
	}
	r, st, err := a.s.enterRoom(ctx, viewer.id, p.RoomID, p.Password)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[RoomData]{Status: st}, err
	}
	d := &RoomData{
		ID:          r.ID,
		RoomID:      formatRoomID(r.ID),
		Name:        r.Name,
		RoomName:    r.RoomName,
		Title:       r.Title,
		Cover:       r.Cover,
		RoomStatus:  int(r.Status),
		LookCount:   r.LookCount,
		Coin:        r.Coin,
		HasPassword: r.HasPassword(),
		User:        OwnerData{ID: r.Owner.ID, Nickname: r.Owner.Nickname, IP: r.Owner.IPAddress, Avatar: r.Owner.Avatar},
		CreatedTime: r.Created.Unix(),
	}
	if ls, live := a.s.cfg.Live.LiveStream(r.Name); live {
		d.Status, d.ClientsNumber = true, ls.Clients
		d.BFrames, d.Warning = ls.BFrames, ls.Warning
		if ls.PublisherIP != "" {
			d.User.IP = ls.PublisherIP
		}
	}
	d.User.IP = a.s.ownerIP(viewer, r.UserID, d.User.IP)
	if r.Status != store.RoomStopped {
		d.Play = a.s.playURLs(ctx, r.Name, r.PasswordGen)
		if d.Status {
			a.s.addRenditions(ctx, d.Play, r.Name)
		}
		d.Cohosts = a.s.cohostsOf(ctx, r.ID, r.PasswordGen)
	}
	return &Reply[RoomData]{Status: ok(), Data: d}, nil
}

// StreamStatusParams are the params of Live.stream.status.
type StreamStatusParams struct {
	RoomID RoomID `json:"room_id" rpc:"required"`
	Type   string `json:"type" rpc:"required"` // play, pause or stop
}

// StatusData is the data of Live.stream.status.
type StatusData struct {
	RoomID     string `json:"room_id"`
	RoomStatus int    `json:"room_status"`
}

// roomStatusOf maps Live.stream.status's types to room states.
var roomStatusOf = map[string]store.RoomStatus{
	"play":  store.RoomLive,
	"pause": store.RoomPaused,
	"stop":  store.RoomStopped,
}

// StreamStatus sets the state of the caller's room (seed 001's
// changestatus). Only the owner may; a stopped room stays stopped.
func (a *liveAPI) StreamStatus(ctx context.Context, p StreamStatusParams) (*Reply[StatusData], error) {
	uid, st, err := a.s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[StatusData]{Status: st}, err
	}
	status, known := roomStatusOf[p.Type]
	if !known {
		return &Reply[StatusData]{Status: failf(ErrnoInvalid, "type must be play, pause or stop")}, nil
	}
	r, err := a.s.cfg.Store.RoomByID(ctx, int64(p.RoomID))
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[StatusData]{Status: fail(ErrnoNoRoom)}, nil
	}
	if err != nil {
		return nil, err
	}
	if r.UserID != uid {
		return &Reply[StatusData]{Status: fail(ErrnoForbidden)}, nil
	}
	if err := a.s.cfg.Store.SetRoomStatus(ctx, r.ID, status); err != nil {
		if errors.Is(err, store.ErrRoomStopped) {
			return &Reply[StatusData]{Status: fail(ErrnoRoomStopped)}, nil
		}
		return nil, err
	}
	return &Reply[StatusData]{Status: ok(), Data: &StatusData{RoomID: formatRoomID(r.ID), RoomStatus: int(status)}}, nil
}

// StreamKeyResetParams are the params of Live.stream.key.reset.
type StreamKeyResetParams struct {
	// RoomID is the room; absent: the caller's room, as Live.stream.
	RoomID RoomID `json:"room_id"`
}

// StreamKeyReset gives the caller's room a new stream key: the old one
// (in OBS, in the publish URLs handed out before) stops working, and
// whoever publishes with it now is disconnected. Only the owner may. It
// answers like Live.stream, with the new key.
func (a *liveAPI) StreamKeyReset(ctx context.Context, p StreamKeyResetParams) (*Reply[StreamData], error) {
	uid, st, err := a.s.loginID(ctx)
	if err != nil || st.Errno != ErrnoOK {
		return &Reply[StreamData]{Status: st}, err
	}
	var room store.Room
	if p.RoomID == 0 {
		room, err = a.s.cfg.Store.OpenRoomOfUser(ctx, uid)
	} else {
		var r store.RoomWithOwner
		r, err = a.s.cfg.Store.RoomByID(ctx, int64(p.RoomID))
		room = r.Room
	}
	if errors.Is(err, store.ErrNotFound) {
		return &Reply[StreamData]{Status: fail(ErrnoNoRoom)}, nil
	}
	if err != nil {
		return nil, err
	}
	if room.UserID != uid {
		return &Reply[StreamData]{Status: fail(ErrnoForbidden)}, nil
	}
	room, err = a.s.cfg.Store.ResetStreamKey(ctx, room.ID)
	if errors.Is(err, store.ErrRoomStopped) {
		return &Reply[StreamData]{Status: fail(ErrnoRoomStopped)}, nil
	}
	if err != nil {
		return nil, err
	}
	// Every publisher of the stream now, on any node, was admitted with
	// a key (or a sign) of an earlier generation: it goes. Its viewers
	// wait the publisher grace for the owner to come back with the new
	// key.
	kicked := 0
	self := a.s.cfg.Cluster.Self().ID
	for _, c := range a.s.clusterClients() {
		if c.Stream != room.Name || c.Role != "publish" {
			continue
		}
		if c.Node == self {
			if a.s.cfg.Media.KickClient(c.ID) {
				kicked++
			}
			continue
		}
		if err := a.s.sendTo(ctx, c.Node, CommandKickClient, c.ID); err != nil {
			a.s.log.Warn("could not send the kick of a publisher with a reset stream key", "client", c.ID, "node", c.Node, "error", err)
			continue
		}
		kicked++
	}
	a.s.log.Info("stream key reset", "room", room.ID, "generation", room.KeyGen, "publishers_disconnected", kicked)
	return &Reply[StreamData]{Status: ok(), Data: &StreamData{
		StreamName:  room.Name,
		RoomName:    room.RoomName,
		RoomOwner:   uid,
		RoomID:      formatRoomID(room.ID),
		HasPassword: room.HasPassword(),
		Record:      room.Record,
		Publish:     a.s.publishURLs(ctx, room),
	}}, nil
}

// publishURLs are the publish URLs of a room for its owner, with its
// stream key: a lasting publish sign of the room's key generation, which
// works until the owner resets it, whatever the time and restarts.
func (s *Server) publishURLs(ctx context.Context, room store.Room) *PublishURLs {
	sign := s.cfg.Signer.Lasting(urlsign.Publish, room.Name, room.KeyGen)
	server := s.rtmpBase(s.mediaHost(ctx))
	key := room.Name + "?sign=" + sign
	pu := &PublishURLs{URL: server + "/" + key, Server: server, StreamKey: key, Sign: sign}
	if !s.cfg.DisableWebRTC {
		pu.WHIP = s.webBase(s.mediaHost(ctx)) + "/live/" + room.Name + "/whip?sign=" + sign
	}
	pu.SRT = s.srtURL(ctx, "publish", room.Name, sign)
	return pu
}

// srtURL is the SRT URL of a stream for mode "publish" or "read", or ""
// when SRT is off. The stream ID goes unescaped: stream names and signs
// need no escaping, and ffmpeg passes the value on as it is written.
func (s *Server) srtURL(ctx context.Context, mode, stream, sign string) string {
	if s.cfg.Ports.SRT == 0 {
		return ""
	}
	hp := s.cfg.PublicURLs.SRT
	if hp == "" {
		hp = net.JoinHostPort(s.mediaHost(ctx), strconv.Itoa(s.cfg.Ports.SRT))
	}
	return "srt://" + hp + "?streamid=" + mode + ":" + stream + "?sign=" + sign
}

// playURLs signs the play URLs of a stream for the caller, for the room's
// current password generation: a later change of the password revokes
// them.
func (s *Server) playURLs(ctx context.Context, stream string, gen int64) *PlayURLs {
	sign, exp := s.cfg.Signer.SignGen(urlsign.Play, stream, gen, s.cfg.PlaySignTTL)
	host := s.mediaHost(ctx)
	q := "?sign=" + sign
	web := s.webBase(host) + "/live/" + stream
	pu := &PlayURLs{
		FLV:     web + ".flv" + q,
		HLS:     web + "/index.m3u8" + q,
		RTMP:    s.rtmpBase(host) + "/" + stream + q,
		RTSP:    s.rtspBase(host) + "/live/" + stream + q,
		Sign:    sign,
		Expires: exp.Unix(),
	}
	if !s.cfg.DisableWebRTC {
		pu.WHEP = web + "/whep" + q
	}
	if s.cfg.Thumbnails {
		pu.Thumb = web + "/thumb.jpg" + q
	}
	pu.SRT = s.srtURL(ctx, "read", stream, sign)
	return pu
}

// listThumb is the thumbnail URL of a live room in viewer's room list,
// authorized as its playback is: an open room's needs no sign (anyone
// may play it); a room with a password's carries a play sign of its
// password generation, handed to its owner only (others enter with the
// password through Live.stream.read); "" for everyone else.
func (s *Server) listThumb(ctx context.Context, viewer accountState, r store.Room) string {
	if !s.cfg.Thumbnails {
		return ""
	}
	u := s.webBase(s.mediaHost(ctx)) + "/live/" + r.Name + "/thumb.jpg"
	if !r.HasPassword() {
		return u
	}
	if viewer.id != r.UserID {
		return ""
	}
	sign, _ := s.cfg.Signer.SignGen(urlsign.Play, r.Name, r.PasswordGen, s.cfg.PlaySignTTL)
	return u + "?sign=" + sign
}

// addRenditions adds the play URLs of the live stream's renditions, with
// its sign, to pu.
func (s *Server) addRenditions(ctx context.Context, pu *PlayURLs, stream string) {
	if s.cfg.Renditions == nil {
		return
	}
	rs := s.cfg.Renditions(stream)
	if len(rs) == 0 {
		return
	}
	q := "?sign=" + pu.Sign
	base := s.webBase(s.mediaHost(ctx)) + "/live/"
	for _, r := range rs {
		u := RenditionURLs{Name: r.Name, Stream: r.Stream, Width: r.Width, Height: r.Height,
			FLV: base + r.Stream + ".flv" + q, HLS: base + r.Stream + "/index.m3u8" + q}
		if !s.cfg.DisableWebRTC {
			u.WHEP = base + r.Stream + "/whep" + q
		}
		pu.Renditions = append(pu.Renditions, u)
	}
	pu.HLSMaster = base + stream + "/master.m3u8" + q
}

// ownerIP is what viewer sees of the address of a room's owner (or
// publisher): all of it for the owner and admins, or for everyone when
// the server shows publishers' addresses; else a masked form.
func (s *Server) ownerIP(viewer accountState, ownerID int64, ip string) string {
	if s.cfg.ShowPublisherIP || viewer.admin || viewer.id == ownerID {
		return ip
	}
	return maskIP(ip)
}

// maskIP keeps the network part of an address: an IPv4 /24 as
// "203.0.113.x", an IPv6 /48 as "2001:db8:1::/48". What is no address
// gives "".
func maskIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%d.%d.%d.x", b[0], b[1], b[2])
	}
	p, _ := a.WithZone("").Prefix(48)
	return p.String()
}

// webBase is the scheme, host and port of the media URLs on the HTTP
// port: PublicURLs.HTTP if set; else https when that port serves TLS
// (Config.TLS).
func (s *Server) webBase(host string) string {
	if s.cfg.PublicURLs.HTTP != "" {
		return s.cfg.PublicURLs.HTTP
	}
	if s.cfg.TLS {
		return "https://" + hostPort(host, s.cfg.Ports.HTTP, 443)
	}
	return "http://" + hostPort(host, s.cfg.Ports.HTTP, 80)
}

// rtmpBase is the RTMP server of publish and play URLs, up to "/live":
// PublicURLs.RTMP if set.
func (s *Server) rtmpBase(host string) string {
	if s.cfg.PublicURLs.RTMP != "" {
		return s.cfg.PublicURLs.RTMP
	}
	return "rtmp://" + hostPort(host, s.cfg.Ports.RTMP, 1935) + "/live"
}

// rtspBase is the scheme, host and port of RTSP play URLs:
// PublicURLs.RTSP if set.
func (s *Server) rtspBase(host string) string {
	if s.cfg.PublicURLs.RTSP != "" {
		return s.cfg.PublicURLs.RTSP
	}
	return "rtsp://" + hostPort(host, s.cfg.Ports.RTSP, 554)
}

// hostPort joins host and port, leaving out the scheme's default port.
func hostPort(host string, port, defaultPort int) string {
	if port == defaultPort {
		if strings.Contains(host, ":") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// compile-time check that RoomID reads JSON.
var _ json.Unmarshaler = (*RoomID)(nil)

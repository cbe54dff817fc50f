package hub

import (
	"net/netip"
	"sort"
	"time"
)

// liveWindow is how recently a stream must have received media to be live.
const liveWindow = 5 * time.Second

// StreamStats describes one stream.
type StreamStats struct {
	// Name is the stream name, without "/live/".
	Name string
	// Path is "/live/" + Name.
	Path string
	// Live is true while a publisher is attached and media flows (a packet
	// in the last 5 s, or publishing started less than 5 s ago).
	Live bool
	// Publishing is true while a publisher is attached; false during the
	// grace period after it dropped.
	Publishing bool
	// PublisherID, PublisherIP and Protocol describe the current (or last)
	// publisher.
	PublisherID string
	PublisherIP netip.Addr
	Protocol    Protocol
	// PublisherSince is when the current (or last) publisher started.
	PublisherSince time.Time
	// VideoCodec ("h264", "h265", "av1", "vp9") and AudioCodec ("aac",
	// "opus", "mp3", ...) are empty when unknown or absent.
	VideoCodec string
	AudioCodec string
	Width      int
	Height     int
	FPS        float64
	// AudioSampleRate and AudioChannels come from the AAC configuration.
	AudioSampleRate int
	AudioChannels   int
	// BFrames is true when the stream's video has B-frames (frames
	// presented before frames decoded earlier, or an H.264 SPS announcing
	// reordered frames), which WebRTC players cannot show in order.
	BFrames bool
	// BitrateIn is the incoming bitrate in bit/s over the last 10 s.
	BitrateIn int64
	// BytesIn is the media payload received since the stream started.
	BytesIn uint64
	// BytesOut is what was sent to the stream's readers since it started
	// (RTMP and HTTP-FLV framing included, RTSP as counted by gortsplib).
	BytesOut uint64
	// StartedAt is when the stream started.
	StartedAt time.Time
	// Readers counts the readers per protocol; ReaderCount is their sum.
	// Relays to other nodes are not counted in either: each node counts
	// its own viewers, so that the cluster's sum is exact.
	Readers     map[Protocol]int
	ReaderCount int
	// Relays counts the other nodes pulling the stream from this one.
	Relays int
	// Relay is true when the stream's (current or last) publisher is a
	// relay from Origin, the ID of the node that publishes it.
	Relay  bool
	Origin string
	// Owned is true when this node publishes the stream for the service
	// (it reports the stream's start and end); false while a relay from
	// another node feeds it, or once another node took it over.
	Owned bool
	// ReadersFellBehind counts readers' skips to a newer key frame;
	// ReadersDropped counts readers disconnected for being too slow.
	ReadersFellBehind uint64
	ReadersDropped    uint64
}

// ClientStats describes one connection, whatever its protocol.
type ClientStats struct {
	// ID identifies the client while it is connected ("rtmp-12", "http-flv-40").
	ID string
	// IP and Port are the client's address.
	IP   netip.Addr
	Port uint16
	// Protocol is the client's protocol.
	Protocol Protocol
	// Stream is the stream name and Path its path, once known.
	Stream string
	Path   string
	// Role is RolePublish or RolePlay once the client has asked, else RoleNone.
	Role Role
	// Bitrate is in bit/s over the last 10 s: the stream's incoming
	// bitrate for publishers and RTSP readers, what was sent for RTMP and
	// HTTP-FLV readers.
	Bitrate int64
	// BytesIn and BytesOut count the bytes received from and sent to the
	// client on its connection(s).
	BytesIn  uint64
	BytesOut uint64
	// ConnectedAt is when the connection was accepted.
	ConnectedAt time.Time
	// Relay marks a relay between nodes: a relay source publishing a
	// stream of another node here, or another node pulling a stream;
	// Node is that other node's ID.
	Relay bool
	Node  string
}

// Counters are hub-wide totals since New.
type Counters struct {
	// BytesIn and BytesOut count every byte received from and sent to
	// clients, present and gone.
	BytesIn  uint64
	BytesOut uint64
	// ReadersFellBehind counts readers' skips to a newer key frame.
	ReadersFellBehind uint64
	// ReadersDropped counts readers disconnected for being too slow.
	ReadersDropped uint64
	// ClientsRefused counts publishers and readers refused (auth, second
	// publisher, unknown stream, bad name).
	ClientsRefused uint64
}

// Counters returns hub-wide totals.
func (h *Hub) Counters() Counters {
	c := Counters{
		ReadersFellBehind: h.readersFellBehind.Load(),
		ReadersDropped:    h.readersDropped.Load(),
		ClientsRefused:    h.refused.Load(),
	}
	h.clientsMu.Lock()
	c.BytesIn, c.BytesOut = h.goneBytesIn, h.goneBytesOut
	cs := make([]*Client, 0, len(h.clients))
	for cl := range h.clients {
		cs = append(cs, cl)
	}
	h.clientsMu.Unlock()
	for _, cl := range cs {
		in, out := cl.bytesIn.Load(), cl.bytesOut.Load()
		if cl.byteCounts != nil {
			in, out = cl.byteCounts()
		}
		c.BytesIn += in
		c.BytesOut += out
	}
	return c
}

// Clients returns every connected client, sorted by connection time.
func (h *Hub) Clients() []ClientStats {
	h.clientsMu.Lock()
	cs := make([]*Client, 0, len(h.clients))
	for c := range h.clients {
		cs = append(cs, c)
	}
	h.clientsMu.Unlock()
	now := time.Now()
	out := make([]ClientStats, 0, len(cs))
	for _, c := range cs {
		cst := c.stats(now)
		if cst.Role == RolePublish || (cst.Role == RolePlay && c.protocol == ProtocolRTSP) {
			if s := h.Stream(cst.Stream); s != nil {
				s.pubMu.Lock()
				cst.Bitrate = s.meter.bitsPerSecond(now, s.startedAt)
				s.pubMu.Unlock()
			}
		}
		out = append(out, cst)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ConnectedAt.Equal(out[j].ConnectedAt) {
			return out[i].ConnectedAt.Before(out[j].ConnectedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (c *Client) stats(now time.Time) ClientStats {
	c.mu.Lock()
	stream, role := c.stream, c.role
	bitrate := c.meter.bitsPerSecond(now, c.connectedAt)
	c.mu.Unlock()
	cs := ClientStats{
		ID:          c.id,
		IP:          c.remote.Addr(),
		Port:        c.remote.Port(),
		Protocol:    c.protocol,
		Stream:      stream,
		Role:        role,
		BytesIn:     c.bytesIn.Load(),
		BytesOut:    c.bytesOut.Load(),
		ConnectedAt: c.connectedAt,
		Bitrate:     bitrate,
		Relay:       c.relay,
		Node:        c.node,
	}
	if c.byteCounts != nil {
		cs.BytesIn, cs.BytesOut = c.byteCounts()
	}
	if stream != "" {
		cs.Path = "/" + AppName + "/" + stream
	}
	return cs
}

// Stats returns the stream's stats. BytesOut counts what the hub's
// Readers sent; a protocol that sends otherwise (RTSP, HLS) adds its own.
func (s *Stream) Stats() StreamStats {
	now := time.Now()
	st := StreamStats{
		Name:              s.name,
		Path:              s.path(),
		BytesIn:           s.bytesIn.Load(),
		BytesOut:          s.bytesOut.Load(),
		Readers:           make(map[Protocol]int),
		ReadersFellBehind: s.fellBehind.Load(),
		ReadersDropped:    s.dropped.Load(),
	}

	s.mu.Lock()
	st.Publishing = s.publisher != nil && !s.ended
	st.PublisherID = s.lastPub.id
	st.PublisherIP = s.lastPub.ip
	st.Protocol = s.lastPub.protocol
	st.StartedAt = s.startedAt
	st.PublisherSince = s.pubSince
	st.Relay, st.Origin = s.lastPub.relay, s.lastPub.node
	for c := range s.readers {
		if c.relay {
			st.Relays++
			continue
		}
		st.Readers[c.protocol]++
		st.ReaderCount++
	}
	s.mu.Unlock()
	st.Owned = s.owned.Load()

	s.pubMu.Lock()
	st.VideoCodec, st.AudioCodec = s.info.videoCodec, s.info.audioCodec
	st.Width, st.Height, st.FPS = s.info.width, s.info.height, s.info.fps
	st.AudioSampleRate, st.AudioChannels = s.info.audioRate, s.info.channels
	st.BFrames = s.info.bframes
	st.BitrateIn = s.meter.bitsPerSecond(now, st.StartedAt)
	s.pubMu.Unlock()

	last := time.Unix(0, s.lastPacketAt.Load())
	st.Live = st.Publishing && (now.Sub(last) < liveWindow || now.Sub(st.StartedAt) < liveWindow)
	return st
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mofang-live/mofang/cluster"
	"github.com/mofang-live/mofang/cluster/rediscluster"
	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/store"
)

// clusterParts are the node's share of its cluster, for the engine and
// the API: a Local set when the node runs alone, Redis's with --cluster.
type clusterParts struct {
	cluster cluster.Cluster
	rooms   cluster.Rooms
	limiter cluster.Limiter
	shared  bool // on Redis, with other nodes
	// roomsErr and closeRooms are Redis's Rooms' (nil alone).
	roomsErr   func() error
	closeRooms func() error
}

// err is why the node cannot do its cluster's work now, or nil.
func (p *clusterParts) err() error {
	if err := p.cluster.Err(); err != nil {
		return err
	}
	if p.roomsErr != nil {
		return p.roomsErr()
	}
	return nil
}

// close ends the node's membership: its rooms' subscriptions, then its
// lease (the engine has released its claims before).
func (p *clusterParts) close() {
	if p.closeRooms != nil {
		p.closeRooms()
	}
	p.cluster.Close()
}

// node is this node as the cluster names it: --node-id (default: the
// host name and the HTTP port) and --node-url (default: http://<host
// name>:<HTTP port>).
func (c *config) node() (cluster.Node, error) {
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return cluster.Node{}, fmt.Errorf("http address %q: %w", c.HTTPAddr, err)
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "localhost"
	}
	n := cluster.Node{ID: c.NodeID, URL: strings.TrimSuffix(c.NodeURL, "/"), Started: time.Now()}
	if n.ID == "" {
		n.ID = net.JoinHostPort(name, port)
	}
	if n.URL == "" {
		if host == "" || net.ParseIP(host).IsUnspecified() {
			host = name
		}
		n.URL = "http://" + net.JoinHostPort(host, port)
	}
	return n, nil
}

// checkClusterDB refuses a cluster on an embedded database: the nodes
// share one MySQL/MariaDB database, and SQLite cannot be shared.
func (c *config) checkClusterDB() error {
	if c.Cluster != "" && strings.HasPrefix(c.dbDSN(), "sqlite:") {
		return errors.New("--cluster needs a MySQL or MariaDB database that every node shares (--db mysql://user:pass@tcp(host:3306)/db): SQLite cannot be shared by several nodes")
	}
	return nil
}

// openCluster joins the cluster of --cluster, or makes the Local one.
func openCluster(ctx context.Context, c *config, log *slog.Logger) (*clusterParts, error) {
	self, err := c.node()
	if err != nil {
		return nil, err
	}
	if c.Cluster == "" {
		return &clusterParts{cluster: cluster.NewLocal(self), rooms: cluster.NewLocalRooms(), limiter: cluster.NewLocalLimiter()}, nil
	}
	// go-redis logs every failed dial on its own, many a second while
	// Redis is down: its lines go to our log at debug level, and the
	// cluster's own warnings say what matters.
	redis.SetLogger(redisLog{log.With("component", "redis")})
	cl, err := rediscluster.New(ctx, rediscluster.Config{URL: c.Cluster, Self: self, Logger: log.With("component", "cluster")})
	if err != nil {
		return nil, fmt.Errorf("joining the cluster: %w", err)
	}
	rooms := rediscluster.NewRooms(cl.Client(), rediscluster.RoomsConfig{Node: self.ID, Nodes: cl.Nodes, Logger: log.With("component", "cluster-rooms")})
	log.Info("cluster joined", "node", self.ID, "url", self.URL)
	return &clusterParts{cluster: cl, rooms: rooms, limiter: rediscluster.NewLimiter(cl.Client(), ""), shared: true,
		roomsErr: rooms.Err, closeRooms: rooms.Close}, nil
}

// redisLog is go-redis's logger on slog, at debug level.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}

// reportEvery is how often a node tells the cluster its viewers.
const reportEvery = time.Second

// reportToCluster tells the cluster this node's viewers per stream and
// its media clients, every reportEvery until ctx ends.
func reportToCluster(ctx context.Context, cl cluster.Cluster, e *media.Engine, api *rpc.Server) {
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	for {
		// Relays between nodes are not readers: each node counts its
		// own viewers, relayed streams included.
		r := cluster.Report{Viewers: map[string]int{}}
		for _, s := range e.Streams() {
			if s.ReaderCount > 0 {
				r.Viewers[s.Name] = s.ReaderCount
			}
		}
		for _, c := range e.Clients() {
			if !c.Relay {
				r.Clients++
			}
		}
		r.ClientList = api.ClientReport()
		cl.Report(r)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcileRooms keeps the rooms' status in the database in step with the
// cluster's stream directory: on the node with the smallest ID (one node
// does it), every few seconds while the view is current, a room left live
// by a node that died is set back to not started.
func reconcileRooms(ctx context.Context, cl cluster.Cluster, st *store.Store, log *slog.Logger) {
	const every = 2 * time.Second
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if cl.Err() != nil {
			continue
		}
		nodes := cl.Nodes()
		if len(nodes) == 0 || nodes[0].ID != cl.Self().ID {
			continue
		}
		var live []string
		for _, s := range cl.Streams() {
			live = append(live, s.Name)
		}
		n, err := st.EndLiveRoomsExcept(ctx, live, time.Now().Add(-2*every))
		switch {
		case err != nil:
			log.Warn("reconciling rooms with the stream directory", "err", err)
		case n > 0:
			log.Info("rooms no longer live anywhere set to not started", "rooms", n)
		}
	}
}

// clusterLive shows the cluster's streams to the API: live (published,
// not in a grace period) or not, the
// viewers of every node summed, the publisher's address, from the view
// the cluster keeps (no call per node).
type clusterLive struct{ cl cluster.Cluster }

func (l clusterLive) LiveStream(name string) (rpc.LiveStream, bool) {
	s, ok := l.cl.Stream(name)
	if !ok || s.Grace {
		return rpc.LiveStream{}, false
	}
	ls := rpc.LiveStream{Clients: s.Clients, PublisherIP: s.Publisher.IP, BFrames: s.Publisher.BFrames}
	if s.Publisher.BFrames {
		ls.Warning = media.BFramesWarning
	}
	return ls, true
}

func (l clusterLive) LiveStreamNames() []string {
	var names []string
	for _, s := range l.cl.Streams() {
		if !s.Grace {
			names = append(names, s.Name)
		}
	}
	return names
}

package main

import (
	"log/slog"

	"github.com/mofang-live/mofang/internal/livesession"
	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/media/transcode"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/store"
)

// newLives is the tracker of the rooms' lives (host statistics): the
// engine's EventSink, before next. In a cluster the node that publishes a
// stream owns its session.
func newLives(cfg config, st *store.Store, parts *clusterParts, log *slog.Logger, next media.EventSink) *livesession.Tracker {
	lc := livesession.Config{
		Store:  st,
		Next:   next,
		Every:  cfg.SampleEvery,
		Skip:   rpc.IsPrivateStream,
		Logger: log.With("component", "lives"),
	}
	if cfg.Transcode != "" {
		// The renditions' viewers watch their source's live.
		lc.Source = func(name string) string {
			if src, _, ok := transcode.SourceOf(name); ok {
				return src
			}
			return name
		}
	}
	if cl := parts.cluster; cl != nil {
		lc.Elsewhere = func(name string) bool {
			cs, ok := cl.Stream(name)
			return ok && cs.Node != cl.Self().ID
		}
	}
	return livesession.New(lc)
}

// viewers is a stream's viewers now, of every protocol, its renditions'
// included: on every node in a cluster (the cluster's view), else here.
func (s *service) viewers(stream string) int {
	if s.parts.shared {
		n := 0
		if cs, ok := s.parts.cluster.Stream(stream); ok {
			n = cs.Clients
		}
		for _, r := range s.engine.Renditions(stream) {
			if cs, ok := s.parts.cluster.Stream(r.Stream); ok {
				n += cs.Clients
			}
		}
		return n
	}
	n := 0
	if st, ok := s.engine.Stream(stream); ok {
		n = st.ReaderCount
	}
	for _, r := range s.engine.Renditions(stream) {
		if rs, ok := s.engine.Stream(r.Stream); ok {
			n += rs.ReaderCount
		}
	}
	return n
}

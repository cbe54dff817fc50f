package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mofang-live/mofang/internal/seal"
	"github.com/mofang-live/mofang/media"
	"github.com/mofang-live/mofang/media/forward"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/store"
)

// forwardSealPurpose names the key, derived from the sign secret, that
// seals restreaming destinations' stream keys in the database.
const forwardSealPurpose = "forward stream keys"

// forwardParts are restreaming's pieces: the destinations' key sealer
// (nil: restreaming off) and the cap per room.
type forwardParts struct {
	sealer *seal.Sealer
	max    int
}

// newForwardParts reads forward-max and derives the sealing key from
// the sign secret (HKDF-SHA256; no new secret file: changing the sign
// secret makes the stored keys unreadable, and their destinations must
// be added again).
func newForwardParts(cfg config, signSecret []byte) (forwardParts, error) {
	n, err := strconv.Atoi(cfg.ForwardMax)
	if err != nil || n < 0 || n > 100 {
		return forwardParts{}, fmt.Errorf("forward-max %q: want a whole number from 0 to 100 (0: restreaming off)", cfg.ForwardMax)
	}
	if n == 0 {
		return forwardParts{}, nil
	}
	sl, err := seal.New(signSecret, forwardSealPurpose)
	if err != nil {
		return forwardParts{}, fmt.Errorf("restreaming keys: %w", err)
	}
	return forwardParts{sealer: sl, max: n}, nil
}

// mediaConfig is the media engine's restreaming configuration: the
// destinations of a room's stream, their keys opened.
func (fp forwardParts) mediaConfig(cfg config, st *store.Store, log *slog.Logger) forward.Config {
	if fp.sealer == nil {
		return forward.Config{}
	}
	return forward.Config{
		AllowPrivate: cfg.ForwardPrivate,
		Targets: func(ctx context.Context, stream string) ([]forward.Target, error) {
			room, err := st.RoomByName(ctx, stream)
			if errors.Is(err, store.ErrNotFound) {
				return nil, nil // a call's or a guest's stream: no room of its own
			}
			if err != nil {
				return nil, err
			}
			fs, err := st.Forwards(ctx, room.ID)
			if err != nil {
				return nil, err
			}
			ts := make([]forward.Target, 0, len(fs))
			for _, f := range fs {
				if !f.Enabled {
					continue
				}
				key, err := fp.sealer.Open(f.KeySealed, rpc.ForwardKeyAD(room.ID))
				if err != nil {
					log.Warn("forward: the destination's key cannot be opened (was the sign secret changed?); add it again", "room", room.ID, "forward", f.ID)
					continue
				}
				ts = append(ts, forward.Target{ID: f.ID, URL: f.URL, Key: string(key)})
			}
			return ts, nil
		},
	}
}

// rpcConfig is Live.forward.*'s configuration.
func (fp forwardParts) rpcConfig(e *media.Engine) rpc.ForwardConfig {
	if fp.sealer == nil {
		return rpc.ForwardConfig{}
	}
	return rpc.ForwardConfig{Sealer: fp.sealer, Max: fp.max, Media: forwardMedia{e}}
}

// forwardMedia is the engine's restreaming as the API sees it.
type forwardMedia struct{ e *media.Engine }

func (f forwardMedia) ForwardStates(stream string) map[int64]rpc.ForwardState {
	m := f.e.Forwards()
	if m == nil {
		return nil
	}
	out := map[int64]rpc.ForwardState{}
	for id, s := range m.Status(stream) {
		out[id] = rpc.ForwardState{State: string(s.State), Reason: s.Reason, BytesSent: s.BytesSent, Since: s.Since}
	}
	return out
}

func (f forwardMedia) RefreshForwards(stream string) {
	if m := f.e.Forwards(); m != nil {
		m.Refresh(stream)
	}
}

// forwardCollector exports the pushes at scrape time.
type forwardCollector struct{ e *media.Engine }

var (
	descForwards     = prometheus.NewDesc("mofang_forward_destinations", "Restreaming destinations being pushed on this node, by state (connecting, live, error).", []string{"state"}, nil)
	descForwardUp    = prometheus.NewDesc("mofang_forward_up", "1 while a restreaming destination accepts the stream, else 0.", []string{"stream", "forward"}, nil)
	descForwardBytes = prometheus.NewDesc("mofang_forward_sent_bytes_total", "Bytes pushed to a restreaming destination during this live.", []string{"stream", "forward"}, nil)
	descForwardConns = prometheus.NewDesc("mofang_forward_connects_total", "Connections to a restreaming destination that it accepted, during this live.", []string{"stream", "forward"}, nil)
)

func (c forwardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descForwards, descForwardUp, descForwardBytes, descForwardConns} {
		ch <- d
	}
}

func (c forwardCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.e.Forwards()
	byState := map[forward.State]int{forward.StateConnecting: 0, forward.StateLive: 0, forward.StateError: 0}
	if m != nil {
		for _, s := range m.All() {
			byState[s.State]++
			id := strconv.FormatInt(s.ID, 10)
			up := 0.0
			if s.State == forward.StateLive {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descForwardUp, prometheus.GaugeValue, up, s.Stream, id)
			ch <- prometheus.MustNewConstMetric(descForwardBytes, prometheus.CounterValue, float64(s.BytesSent), s.Stream, id)
			ch <- prometheus.MustNewConstMetric(descForwardConns, prometheus.CounterValue, float64(s.Connects), s.Stream, id)
		}
	}
	for st, n := range byState {
		ch <- prometheus.MustNewConstMetric(descForwards, prometheus.GaugeValue, float64(n), string(st))
	}
}

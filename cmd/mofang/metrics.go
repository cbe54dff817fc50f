package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mofang-live/mofang/media"
)

// metrics are the service's Prometheus metrics. Everything but the RPC
// call metrics is read from the components when scraped, so the data
// paths pay nothing for them.
type metrics struct {
	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(s *service) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mofang_rpc_calls_total", Help: "JSON-RPC calls, by method.",
		}, []string{"method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mofang_rpc_errors_total", Help: "JSON-RPC calls answered with an error object, by method.",
		}, []string{"method"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mofang_rpc_call_duration_seconds", Help: "Time to answer a JSON-RPC call, by method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"method"}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(s.store.DB().DB, string(s.store.Dialect())),
		m.calls, m.errors, m.duration,
		gauge("mofang_websockets", "Open websockets (API calls and room events).", func() float64 {
			return float64(s.api.Websockets())
		}),
		gauge("mofang_room_members", "Websockets in live rooms.", func() float64 {
			return float64(s.api.RoomStats().Members)
		}),
		counter("mofang_room_events_delivered_total", "Room events delivered, counted per receiving websocket.", func() float64 {
			return float64(s.api.RoomStats().Delivered)
		}),
		counter("mofang_room_slow_sockets_total", "Room messages refused by websockets that could not keep up.", func() float64 {
			return float64(s.api.RoomStats().Refused)
		}),
		mediaCollector{s.engine},
		counter("mofang_thumbnail_decodes_total", "Thumbnails decoded by ffmpeg (/live/<stream>/thumb.jpg).", func() float64 {
			return float64(s.engine.ThumbnailStats().Decodes)
		}),
		counter("mofang_thumbnail_failures_total", "Thumbnail decodes that failed (ffmpeg error, timeout, output over the cap).", func() float64 {
			return float64(s.engine.ThumbnailStats().Failures)
		}),
		gauge("mofang_cluster_up", "1 while the cluster's shared state (Redis) is reachable and this node's view current; always 1 for a node alone.", func() float64 {
			if s.parts.err() != nil {
				return 0
			}
			return 1
		}),
		gauge("mofang_cluster_nodes", "Live nodes of the cluster, this one included.", func() float64 {
			return float64(len(s.parts.cluster.Nodes()))
		}),
		gauge("mofang_cluster_streams", "Streams published in the whole cluster.", func() float64 {
			return float64(len(s.parts.cluster.Streams()))
		}),
	)
	if s.hooks != nil {
		m.reg.MustRegister(hooksCollector{s.hooks})
	}
	return m
}

// observeCall is the rpc.Config.ObserveCall hook.
func (m *metrics) observeCall(method string, d time.Duration, failed bool) {
	m.calls.WithLabelValues(method).Inc()
	if failed {
		m.errors.WithLabelValues(method).Inc()
	}
	m.duration.WithLabelValues(method).Observe(d.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// mediaCollector reads the media engine's stats at scrape time.
type mediaCollector struct{ engine *media.Engine }

var (
	descStreams    = prometheus.NewDesc("mofang_media_streams", "Streams known to the media engine, by whether media flows.", []string{"live"}, nil)
	descClients    = prometheus.NewDesc("mofang_media_clients", "Connected media clients, by protocol and role.", []string{"protocol", "role"}, nil)
	descBytes      = prometheus.NewDesc("mofang_media_bytes_total", "Media bytes received from publishers (in) and sent to players (out).", []string{"direction"}, nil)
	descFellBehind = prometheus.NewDesc("mofang_media_readers_fell_behind_total", "Times a slow reader was skipped to the newest key frame.", nil, nil)
	descDropped    = prometheus.NewDesc("mofang_media_readers_dropped_total", "Readers disconnected for being too slow.", nil, nil)
	descRefused    = prometheus.NewDesc("mofang_media_clients_refused_total", "Clients refused (authorization, second publisher, bad requests).", nil, nil)
)

func (c mediaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStreams, descClients, descBytes, descFellBehind, descDropped, descRefused} {
		ch <- d
	}
}

func (c mediaCollector) Collect(ch chan<- prometheus.Metric) {
	live, idle := 0, 0
	for _, s := range c.engine.Streams() {
		if s.Live {
			live++
		} else {
			idle++
		}
	}
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(live), "true")
	ch <- prometheus.MustNewConstMetric(descStreams, prometheus.GaugeValue, float64(idle), "false")
	type key struct{ proto, role string }
	clients := map[key]int{}
	for _, p := range []media.Protocol{media.ProtocolRTMP, media.ProtocolRTSP, media.ProtocolHTTPFLV, media.ProtocolHLS, media.ProtocolWebRTC, media.ProtocolSRT} {
		for _, r := range []media.Role{media.RolePublish, media.RolePlay} {
			clients[key{string(p), string(r)}] = 0
		}
	}
	for _, cl := range c.engine.Clients() {
		clients[key{string(cl.Protocol), string(cl.Role)}]++
	}
	for k, n := range clients {
		ch <- prometheus.MustNewConstMetric(descClients, prometheus.GaugeValue, float64(n), k.proto, k.role)
	}
	t := c.engine.Counters()
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(t.BytesIn), "in")
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(t.BytesOut), "out")
	ch <- prometheus.MustNewConstMetric(descFellBehind, prometheus.CounterValue, float64(t.ReadersFellBehind))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(t.ReadersDropped))
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(t.ClientsRefused))
}

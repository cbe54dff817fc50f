package media

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mofang-live/mofang/media/hls"
	"github.com/mofang-live/mofang/media/hub"
)

// hlsSessionOpen counts an HLS player as a client of the stream.
func (e *Engine) hlsSessionOpen(s *hub.Stream, sk *sinks, ses *hls.Session) {
	remote, _ := netip.ParseAddrPort(ses.RemoteAddr)
	if !remote.IsValid() {
		if a, err := netip.ParseAddr(ses.RemoteAddr); err == nil {
			remote = netip.AddrPortFrom(a, 0)
		}
	}
	c := e.hub.NewClient(hub.ClientInfo{
		Protocol:    hub.ProtocolHLS,
		Remote:      remote,
		ID:          "hls-" + ses.ID,
		ConnectedAt: ses.Created,
		ByteCounts:  func() (uint64, uint64) { return 0, ses.BytesSent() },
	})
	c.SetRole(hub.RolePlay, s.Name())
	s.AddReader(c)
	sk.hlsClients.Store(ses, c)
}

// hlsSessionClose stops counting an HLS player.
func (e *Engine) hlsSessionClose(s *hub.Stream, sk *sinks, ses *hls.Session) {
	v, ok := sk.hlsClients.LoadAndDelete(ses)
	if !ok {
		return
	}
	c := v.(*hub.Client)
	s.RemoveReader(c)
	sk.hlsBytesOut.Add(ses.BytesSent())
	e.hub.RemoveClient(c)
}

// serveHLS serves /live/<name>/<file>: playlists, segments and parts, each
// request authorized as a play (the sign travels in every URL).
func (e *Engine) serveHLS(w http.ResponseWriter, req *http.Request, name, file string) {
	w.Header()["Access-Control-Allow-Origin"] = allowAnyOrigin
	if req.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := e.hlsAuth.authorize(e.hub, req, name, ProtocolHLS); err != nil {
		http.Error(w, "refused: "+hub.PublicReason(err), hub.HTTPStatus(err))
		return
	}
	var sk *sinks
	if s := e.hub.PlayStream(req.Context(), name); s != nil {
		sk = e.sinksOf(s)
	}
	if sk == nil || sk.hls == nil {
		e.hub.CountRefusal()
		http.Error(w, "stream not found", http.StatusNotFound)
		return
	}
	if file == MasterPlaylist {
		e.serveMaster(w, req, name, sk)
		return
	}
	sk.hls.Handle(w, req, file)
}

// splitHLSPath splits "/live/<name>/<file>" (or "<name>/<file>").
func splitHLSPath(p string) (name, file string, ok bool) {
	p = strings.TrimPrefix(strings.TrimPrefix(p, "/"), hub.AppName+"/")
	name, file, ok = strings.Cut(p, "/")
	if !ok || name == "" || file == "" || strings.Contains(file, "/") || !hub.ValidStreamName(name) {
		return "", "", false
	}
	return name, file, true
}

// authCache remembers play authorizations of HLS requests for a few
// seconds: a player makes several requests a second, each carrying the
// same sign, and the Authorizer may ask a database.
type authCache struct {
	mu      sync.Mutex
	entries map[authKey]authEntry
}

// authKey is what an authorization depends on: the stream and the sign.
type authKey struct{ stream, sign string }

// allowAnyOrigin is the CORS header value of HLS responses (shared, never
// modified).
var allowAnyOrigin = []string{"*"}

type authEntry struct {
	err error
	at  time.Time
}

const authCacheTTL = 10 * time.Second

// authorize checks a play request of stream by proto; the query is only decoded
// when the cache does not know its sign.
func (a *authCache) authorize(h *hub.Hub, r *http.Request, stream string, proto Protocol) error {
	key := authKey{stream, queryParam(r.URL.RawQuery, "sign")}
	now := time.Now()
	a.mu.Lock()
	if en, ok := a.entries[key]; ok && now.Sub(en.at) < authCacheTTL {
		a.mu.Unlock()
		return en.err
	}
	a.mu.Unlock()
	remote, _ := netip.ParseAddrPort(r.RemoteAddr)
	err := h.AuthorizePlay(AuthRequest{Stream: stream, Query: r.URL.Query(), RemoteIP: remote.Addr().Unmap(), Protocol: proto})
	a.mu.Lock()
	if a.entries == nil || len(a.entries) > 10_000 {
		a.entries = map[authKey]authEntry{}
	}
	a.entries[key] = authEntry{err: err, at: now}
	a.mu.Unlock()
	return err
}

// queryParam returns the first value of key in a raw query, as
// url.Values.Get does, without decoding the whole query.
func queryParam(raw, key string) string {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(pair, "%+;") {
			if strings.Contains(pair, ";") {
				continue // url.ParseQuery drops such pairs
			}
			var err1, err2 error
			if k, err1 = url.QueryUnescape(k); err1 != nil {
				continue
			}
			if v, err2 = url.QueryUnescape(v); err2 != nil {
				continue
			}
		}
		if k == key {
			return v
		}
	}
	return ""
}

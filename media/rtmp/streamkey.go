package media

import (
	"fmt"
	"net/url"
	"strings"
)

// appName is the RTMP application (and URL path prefix) of live streams.
const appName = "live"

// maxStreamNameLen caps the length of stream names.
const maxStreamNameLen = 128

// validStreamName reports whether name can be used as a stream name:
// 1 to 128 characters among letters, digits, '-', '_' and '.', not starting with '.'.
func validStreamName(name string) bool {
	if name == "" || len(name) > maxStreamNameLen || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// splitQuery splits s at its first '?' and parses what follows as a query.
// Values in the query win over the ones already in into.
func splitQuery(s string, into url.Values) (string, error) {
	base, rawQuery, found := strings.Cut(s, "?")
	if !found {
		return s, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("invalid query: %w", err)
	}
	for k, v := range q {
		into[k] = v
	}
	return base, nil
}

// parseRTMPTarget extracts the stream name and the merged query from the RTMP
// connect app and tcUrl and from the publish/play stream key. OBS puts
// "name?sign=..." in the key; other clients put the query in the tcUrl or the
// app ("live?sign=..."). Later sources win: tcUrl, app, key.
func parseRTMPTarget(app, tcURL, key string) (string, url.Values, error) {
	q := url.Values{}
	if _, rawQuery, ok := strings.Cut(tcURL, "?"); ok {
		if tq, err := url.ParseQuery(rawQuery); err == nil {
			for k, v := range tq {
				q[k] = v
			}
		}
	}
	app, err := splitQuery(app, q)
	if err != nil {
		return "", nil, fmt.Errorf("app: %w", err)
	}
	app = strings.Trim(app, "/")

	name, err := splitQuery(key, q)
	if err != nil {
		return "", nil, fmt.Errorf("stream key: %w", err)
	}
	name = strings.TrimPrefix(name, "/")
	// ffmpeg style: app "live", key "name"; some clients: app "", key
	// "live/name"; others (gortmplib, some players): app "live/name", key "".
	if a, rest, ok := strings.Cut(app, "/"); ok && name == "" {
		app, name = a, rest
	}
	if app == "" {
		app, name, _ = strings.Cut(name, "/")
	}
	if app != appName {
		return "", nil, fmt.Errorf("%w: unknown application %q", ErrInvalidStreamName, app)
	}
	if !validStreamName(name) {
		return "", nil, fmt.Errorf("%w: %q", ErrInvalidStreamName, name)
	}
	return name, q, nil
}

// parseHTTPFLVPath extracts the stream name from the path of an HTTP-FLV
// request: "/live/<name>.flv", or "<name>.flv" when the prefix was stripped.
func parseHTTPFLVPath(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimPrefix(p, appName+"/")
	name, ok := strings.CutSuffix(p, ".flv")
	if !ok || !validStreamName(name) {
		return "", fmt.Errorf("%w: %q", ErrInvalidStreamName, p)
	}
	return name, nil
}

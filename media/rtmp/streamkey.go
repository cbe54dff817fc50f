package rtmp

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/mofang-live/mofang/media/hub"
)

// parseTarget extracts the stream name and the merged query from the RTMP
// connect app and tcUrl and from the publish/play stream key. OBS puts
// "name?sign=..." in the key; other clients put the query in the tcUrl or the
// app ("live?sign=..."). Later sources win: tcUrl, app, key.
func parseTarget(app, tcURL, key string) (string, url.Values, error) {
	q := url.Values{}
	if _, rawQuery, ok := strings.Cut(tcURL, "?"); ok {
		if tq, err := url.ParseQuery(rawQuery); err == nil {
			for k, v := range tq {
				q[k] = v
			}
		}
	}
	app, err := hub.SplitQuery(app, q)
	if err != nil {
		return "", nil, fmt.Errorf("app: %w", err)
	}
	app = strings.Trim(app, "/")

	name, err := hub.SplitQuery(key, q)
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
	if app != hub.AppName {
		return "", nil, fmt.Errorf("%w: unknown application %q", hub.ErrInvalidStreamName, app)
	}
	if !hub.ValidStreamName(name) {
		return "", nil, fmt.Errorf("%w: %q", hub.ErrInvalidStreamName, name)
	}
	return name, q, nil
}

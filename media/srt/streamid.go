package srt

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/mofang-live/mofang/media/hub"
)

// maxStreamIDLen is the longest stream ID SRT carries (SRTO_STREAMID).
const maxStreamIDLen = 512

// errBadStreamID is in the chain of every stream ID refused by
// parseStreamID.
var errBadStreamID = errors.New("invalid SRT stream ID")

// streamID is what an SRT caller asks for in its stream ID.
type streamID struct {
	// publish is true for a publisher, false for a reader.
	publish bool
	// name is the stream name, without "live/".
	name string
	// query holds the parameters ("sign").
	query url.Values
}

// parseStreamID reads an SRT stream ID in one of the forms publishers
// and players use:
//
//   - mediamtx's "publish:<stream>" and "read:<stream>", the stream with
//     a query after '?' ("publish:room?sign=...") or, as mediamtx puts
//     it, after ':' ("publish:room:sign=...");
//   - the SRT access control syntax SRS uses, "#!::r=<stream>,m=publish"
//     (m=request, the default, reads), the query after the resource
//     ("r=live/room?sign=...") or as more keys ("...,m=publish,sign=...");
//     the keys h (host) and t (type) are ignored, other keys are query
//     parameters.
//
// The stream may be given as "live/<stream>" or "<stream>". A stream ID
// sent percent-encoded as a whole ("publish%3Aroom%3Fsign%3D...": some
// clients escape the whole value) is decoded first. Errors wrap hub.ErrInvalidStreamName for a bad stream name and
// errBadStreamID otherwise.
func parseStreamID(raw string) (streamID, error) {
	if len(raw) > maxStreamIDLen {
		return streamID{}, fmt.Errorf("%w: longer than %d bytes", errBadStreamID, maxStreamIDLen)
	}
	if escaped(raw) {
		dec, err := url.PathUnescape(raw)
		if err != nil {
			return streamID{}, fmt.Errorf("%w: %w", errBadStreamID, err)
		}
		raw = dec
	}
	if rest, ok := strings.CutPrefix(raw, "#!::"); ok {
		return parseAccessControl(rest)
	}
	var id streamID
	mode, rest, ok := strings.Cut(raw, ":")
	switch {
	case !ok:
		return streamID{}, fmt.Errorf("%w: want publish:<stream>, read:<stream> or #!::r=<stream>,m=publish", errBadStreamID)
	case mode == "publish":
		id.publish = true
	case mode == "read":
	default:
		return streamID{}, fmt.Errorf("%w: unknown action %q (want publish or read)", errBadStreamID, mode)
	}
	id.query = url.Values{}
	path, err := hub.SplitQuery(rest, id.query)
	if err != nil {
		return streamID{}, fmt.Errorf("%w: %w", errBadStreamID, err)
	}
	// mediamtx: "action:path:query"; "action:path:user:pass[:query]"
	// names credentials, which streams here do not have.
	path, mtxQuery, ok := strings.Cut(path, ":")
	if ok {
		if strings.Contains(mtxQuery, ":") {
			return streamID{}, fmt.Errorf("%w: user and password are not supported, sign the stream with ?sign=", errBadStreamID)
		}
		q, err := url.ParseQuery(mtxQuery)
		if err != nil {
			return streamID{}, fmt.Errorf("%w: invalid query: %w", errBadStreamID, err)
		}
		for k, v := range q {
			if _, dup := id.query[k]; !dup {
				id.query[k] = v
			}
		}
	}
	if id.name, err = streamName(path); err != nil {
		return streamID{}, err
	}
	return id, nil
}

// parseAccessControl reads the keys of a "#!::" stream ID.
func parseAccessControl(s string) (streamID, error) {
	id := streamID{query: url.Values{}}
	var resource string
	var haveResource, haveMode bool
	for kv := range strings.SplitSeq(s, ",") {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || !validKey(key) {
			return streamID{}, fmt.Errorf("%w: %q is not key=value", errBadStreamID, kv)
		}
		switch key {
		case "r":
			if haveResource {
				return streamID{}, fmt.Errorf("%w: two resources", errBadStreamID)
			}
			resource, haveResource = value, true
		case "m":
			if haveMode {
				return streamID{}, fmt.Errorf("%w: two modes", errBadStreamID)
			}
			haveMode = true
			switch value {
			case "publish":
				id.publish = true
			case "request":
			default:
				return streamID{}, fmt.Errorf("%w: unsupported mode %q (want publish or request)", errBadStreamID, value)
			}
		case "h", "t":
		default:
			id.query.Add(key, value)
		}
	}
	if !haveResource {
		return streamID{}, fmt.Errorf("%w: no resource (r=live/<stream>)", errBadStreamID)
	}
	// the resource's own query wins over the keys.
	path, err := hub.SplitQuery(resource, id.query)
	if err != nil {
		return streamID{}, fmt.Errorf("%w: %w", errBadStreamID, err)
	}
	if id.name, err = streamName(path); err != nil {
		return streamID{}, err
	}
	return id, nil
}

// streamName returns the stream name of a path "live/<stream>" or
// "<stream>".
func streamName(path string) (string, error) {
	path = strings.TrimPrefix(path, "/")
	if app, name, ok := strings.Cut(path, "/"); ok {
		if app != hub.AppName {
			return "", fmt.Errorf("%w: unknown application %q", hub.ErrInvalidStreamName, app)
		}
		path = name
	}
	if !hub.ValidStreamName(path) {
		return "", fmt.Errorf("%w: %q", hub.ErrInvalidStreamName, path)
	}
	return path, nil
}

// escaped reports whether a stream ID is percent-encoded as a whole: its
// first separator is escaped.
func escaped(raw string) bool {
	for _, p := range []string{"publish%3a", "read%3a", "%23!%3a%3a"} {
		if len(raw) >= len(p) && strings.EqualFold(raw[:len(p)], p) {
			return true
		}
	}
	return false
}

// validKey reports whether k can be a key of a "#!::" stream ID: 1 to 32
// letters, digits, '_', '-' or '.'.
func validKey(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

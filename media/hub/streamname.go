package hub

import (
	"fmt"
	"net/url"
	"strings"
)

// AppName is the RTMP application (and URL path prefix) of live streams.
const AppName = "live"

// maxStreamNameLen caps the length of stream names.
const maxStreamNameLen = 128

// ValidStreamName reports whether name can be used as a stream name:
// 1 to 128 characters among letters, digits, '-', '_' and '.', not starting with '.'.
func ValidStreamName(name string) bool {
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

// SplitQuery splits s at its first '?' and parses what follows as a query.
// Values in the query win over the ones already in into.
func SplitQuery(s string, into url.Values) (string, error) {
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

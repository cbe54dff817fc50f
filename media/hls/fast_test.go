package hls

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestParseQuery checks the raw query reader against url.ParseQuery (see
// checkParseQuery), on both its fast path and the slow one.
func TestParseQuery(t *testing.T) {
	for _, raw := range []string{
		"",
		"hls_sid=0123abcd",
		"sign=abc&hls_sid=0123abcd&_HLS_msn=12&_HLS_part=3",
		"_HLS_msn=12&sign=abc&_HLS_part=3&hls_sid=0123abcd",
		"sign=a%20b&_HLS_skip=YES&x=1&&y=2",
		"sign=a+b&hls_sid=1&hls_sid=2&_HLS_msn=1&_HLS_msn=2",
		`sign="><script>&hls_sid=1`,
		"sign=%zz&hls_sid=1",
		"a;b=1&sign=x",
		"sign=abc,URI=evil",
		"_HLS_msn=5",
	} {
		checkParseQuery(t, raw)
	}
}

// checkParseQuery compares parseQuery(raw) with url.ParseQuery(raw): the
// same values, and a rest that decodes to the query without _HLS_ keys,
// made of bytes that cannot break out of a playlist URI.
func checkParseQuery(t *testing.T, raw string) {
	t.Helper()
	got := parseQuery(raw)
	want, _ := url.ParseQuery(raw)
	if got.sid != want.Get(SessionParam) || got.msn != want.Get("_HLS_msn") || got.part != want.Get("_HLS_part") || got.skip != want.Get("_HLS_skip") {
		t.Errorf("%q: got %+v", raw, got)
	}
	for k := range want {
		if strings.HasPrefix(k, "_HLS_") {
			delete(want, k)
		}
	}
	rest, err := url.ParseQuery(got.rest)
	if err != nil || len(rest) == 0 && len(want) == 0 {
		rest = url.Values{}
	}
	if len(want) == 0 {
		want = url.Values{}
	}
	if !reflect.DeepEqual(rest, want) {
		t.Errorf("%q: rest %q = %v, want %v", raw, got.rest, rest, want)
	}
	for i := 0; i < len(got.rest); i++ {
		if !safeQueryByte(got.rest[i]) {
			t.Errorf("%q: rest %q has %q, which could break out of a playlist URI", raw, got.rest, got.rest[i])
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	f.Add("sign=abc&hls_sid=0123abcd&_HLS_msn=12&_HLS_part=3")
	f.Add(`a="b&_HLS_skip=YES`)
	f.Fuzz(checkParseQuery)
}

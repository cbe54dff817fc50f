package rtmp

import (
	"testing"

	"github.com/mofang-live/mofang/media/hub"
)

func TestParseRTMPTarget(t *testing.T) {
	for _, c := range []struct {
		app, tcURL, key string
		name, sign      string
		err             bool
	}{
		{"live", "rtmp://h/live", "room?sign=a", "room", "a", false},
		{"live", "rtmp://h/live?sign=t", "room", "room", "t", false},
		{"live?sign=b", "rtmp://h/live?sign=b", "room", "room", "b", false},
		{"live?sign=b", "rtmp://h/live?sign=b", "room?sign=c", "room", "c", false},
		{"live/", "rtmp://h/live/", "room", "room", "", false},
		{"", "rtmp://h/", "live/room?sign=d", "room", "d", false},
		{"app", "rtmp://h/app", "room", "", "", true},
		{"live/room", "rtmp://h/live/room?sign=e", "", "room", "e", false},
		{"live/room?sign=f", "rtmp://h/live/room", "", "room", "f", false},
		{"live", "rtmp://h/live", "", "", "", true},
		{"live", "rtmp://h/live", "a/b", "", "", true},
		{"live", "rtmp://h/live", "room?sign=%zz", "", "", true},
		{"live", "rtmp://h/live", "..", "", "", true},
	} {
		name, q, err := parseTarget(c.app, c.tcURL, c.key)
		if (err != nil) != c.err || name != c.name || (err == nil && q.Get("sign") != c.sign) {
			t.Errorf("parseTarget(%q, %q, %q) = %q, %v, %v", c.app, c.tcURL, c.key, name, q, err)
		}
	}
}

func FuzzParseRTMPTarget(f *testing.F) {
	f.Add("live", "rtmp://h/live?sign=1", "room?sign=2")
	f.Add("", "", "live/x")
	f.Add("live?a=%", "rtmp://[::1]/live", "?sign=3")
	f.Fuzz(func(t *testing.T, app, tcURL, key string) {
		name, q, err := parseTarget(app, tcURL, key)
		if err != nil {
			return
		}
		if !hub.ValidStreamName(name) || q == nil {
			t.Fatalf("accepted %q %v", name, q)
		}
	})
}

func FuzzParseRTMPCommand(f *testing.F) {
	f.Add(uint8(20), []byte{2, 0, 7, 'c', 'o', 'n', 'n', 'e', 'c', 't', 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 5})
	f.Add(uint8(17), []byte{0, 2, 0, 4, 'p', 'l', 'a', 'y', 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 2, 0, 1, 'x'})
	f.Add(uint8(18), []byte{2, 0, 13, '@', 's', 'e', 't', 'D', 'a', 't', 'a', 'F', 'r', 'a', 'm', 'e'})
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		if typ == typeDataAMF0 {
			metadataBody(b)
			return
		}
		parseCommand(typ, b) //nolint:errcheck
	})
}

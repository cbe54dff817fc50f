package srt

import (
	"errors"
	"testing"

	"github.com/mofang-live/mofang/media/hub"
)

func TestParseStreamID(t *testing.T) {
	for _, c := range []struct {
		raw     string
		publish bool
		name    string
		sign    string
		err     error
	}{
		// mediamtx's form, with our query after '?' or its own after ':'
		{"publish:room?sign=1-a", true, "room", "1-a", nil},
		{"read:room?sign=2-b", false, "room", "2-b", nil},
		{"publish:live/room?sign=3", true, "room", "3", nil},
		{"read:/live/room", false, "room", "", nil},
		{"publish:room:sign=4", true, "room", "4", nil},
		{"read:live/room:sign=5&x=1", false, "room", "5", nil},
		{"read:room:sign=6?sign=7", false, "room", "7", nil},
		// percent-encoded as a whole
		{"publish%3Alive%2Froom%3Fsign%3D8", true, "room", "8", nil},
		// SRS's (SRT access control) form
		{"#!::r=live/room,m=publish", true, "room", "", nil},
		{"#!::r=live/room?sign=9,m=publish", true, "room", "9", nil},
		{"#!::h=example.com,r=live/room,m=publish,sign=10", true, "room", "10", nil},
		{"#!::r=room,sign=11", false, "room", "11", nil},
		{"#!::r=live/room,m=request,t=stream,sign=12", false, "room", "12", nil},
		{"#!::r=live/room?sign=13,sign=14", false, "room", "13", nil},
		// refused
		{"", false, "", "", errBadStreamID},
		{"room", false, "", "", errBadStreamID},
		{"play:room", false, "", "", errBadStreamID},
		{"publish:", false, "", "", hub.ErrInvalidStreamName},
		{"publish:app/room", false, "", "", hub.ErrInvalidStreamName},
		{"publish:live/a/b", false, "", "", hub.ErrInvalidStreamName},
		{"publish:..", false, "", "", hub.ErrInvalidStreamName},
		{"publish:room:user:pass", false, "", "", errBadStreamID},
		{"publish:room?sign=%zz", false, "", "", errBadStreamID},
		{"publish%3Aroom%zz", false, "", "", errBadStreamID},
		{"publish:room%41", false, "", "", hub.ErrInvalidStreamName},
		{"#!::r=live/room,a&b=1", false, "", "", errBadStreamID},
		{"#!::m=publish", false, "", "", errBadStreamID},
		{"#!::r=live/room,m=bidirectional", false, "", "", errBadStreamID},
		{"#!::r=a,r=b", false, "", "", errBadStreamID},
		{"#!::r=live/room,m=publish,m=request", false, "", "", errBadStreamID},
		{"#!::r=live/room,junk", false, "", "", errBadStreamID},
		{"#!::r=other/room", false, "", "", hub.ErrInvalidStreamName},
		{"publish:" + string(make([]byte, 600)), false, "", "", errBadStreamID},
	} {
		id, err := parseStreamID(c.raw)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("parseStreamID(%q) = %+v, %v; want %v", c.raw, id, err, c.err)
			}
			continue
		}
		if err != nil || id.publish != c.publish || id.name != c.name || id.query.Get("sign") != c.sign {
			t.Errorf("parseStreamID(%q) = %+v, %v; want publish %v, %q, sign %q", c.raw, id, err, c.publish, c.name, c.sign)
		}
	}
}

// FuzzParseStreamID feeds hostile stream IDs: a parse either fails with
// one of its errors or gives a valid stream name, and the stream ID made
// from what it gave parses to the same.
func FuzzParseStreamID(f *testing.F) {
	for _, s := range []string{
		"publish:room?sign=1-a", "read:live/room:sign=2", "#!::r=live/room?sign=3,m=publish",
		"#!::h=h,r=room,m=request,u=x,s=y", "publish%3Aroom", "#!::", "read::", "publish:room:a:b:c",
		"#!::r=,m=", "read:live/?", "%", "#!::r=live/room,=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := parseStreamID(raw)
		if err != nil {
			if !errors.Is(err, errBadStreamID) && !errors.Is(err, hub.ErrInvalidStreamName) {
				t.Fatalf("parseStreamID(%q): unexpected error %v", raw, err)
			}
			return
		}
		if !hub.ValidStreamName(id.name) || id.query == nil {
			t.Fatalf("parseStreamID(%q) = %+v", raw, id)
		}
		mode := "read:"
		if id.publish {
			mode = "publish:"
		}
		again, err := parseStreamID(mode + id.name + "?" + id.query.Encode())
		if err != nil || again.publish != id.publish || again.name != id.name || again.query.Encode() != id.query.Encode() {
			t.Fatalf("parseStreamID(%q) = %+v, but its canonical form gives %+v, %v", raw, id, again, err)
		}
	})
}

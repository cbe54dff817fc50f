package main

import (
	"strings"
	"testing"
)

// TestICEServerSetting: ice-server takes STUN and TURN URLs, TURN with
// credentials before the host; bad entries are refused without showing
// the password, and `config print` masks it.
func TestICEServerSetting(t *testing.T) {
	c := &config{ICEServers: "stun:stun.example.org:3478, turn:alice:s3cret@turn.example.org:3478?transport=udp"}
	got, err := c.iceServers()
	if err != nil {
		t.Fatal(err)
	}
	want := []iceServer{{URL: "stun:stun.example.org:3478"},
		{URL: "turn:turn.example.org:3478?transport=udp", Username: "alice", Credential: "s3cret"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("iceServers() = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"http://x", "stun:bob:pw@x", "turn:nopass@x:3478", "turn:"} {
		c.ICEServers = bad
		if _, err := c.iceServers(); err == nil || strings.Contains(err.Error(), "pw") {
			t.Errorf("ice-server %q: %v, want a refusal without the password", bad, err)
		}
	}
	if m := maskICECredentials("turn:alice:s3cret@h:1,stun:h:2"); strings.Contains(m, "s3cret") || !strings.Contains(m, "alice") {
		t.Errorf("masked = %q", m)
	}
	c.WebRTCIPs = "203.0.113.7, 2001:db8::1"
	if ips, err := c.publicIPs(); err != nil || len(ips) != 2 {
		t.Errorf("publicIPs() = %v, %v", ips, err)
	}
	c.WebRTCIPs = "example.org"
	if _, err := c.publicIPs(); err == nil {
		t.Error("a host name was taken for a public IP")
	}
}

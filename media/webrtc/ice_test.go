package webrtc

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/mofang-live/mofang/media/webrtc/client"
)

// TestICETCP: a player that can only use TCP (a network that blocks UDP)
// plays over the server's ICE-TCP port.
func TestICETCP(t *testing.T) {
	srv := newTestServer(t, Config{TCPAddress: "127.0.0.1:0"})
	out := srv.NewOutput(OutputConfig{Name: "tcp"})
	defer out.Close()
	url := newHTTPFront(t, srv).addOutput("tcp", out)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go feed(ctx, out, readTags(t, clipNoB(t)), 1)

	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))

	p, err := client.Play(ctx, client.PlayerConfig{URL: url, API: api})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !waitFor(10*time.Second, func() bool { v, a, _, _ := p.Packets(); return v > 50 && a > 10 }) {
		v, a, _, _ := p.Packets()
		t.Fatalf("over TCP: %d video, %d audio packets", v, a)
	}
	pair, err := p.PeerConnection().SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote.Protocol != webrtc.ICEProtocolTCP {
		t.Errorf("selected pair %v %v, want TCP", pair, err)
	}
}

// TestPublicIPs: the configured public address is announced as a host
// candidate on the shared UDP port, next to the local one.
func TestPublicIPs(t *testing.T) {
	srv := newTestServer(t, Config{PublicIPs: []string{"203.0.113.7"}})
	out := srv.NewOutput(OutputConfig{Name: "nat"})
	defer out.Close()
	feedStart(out, readTags(t, clipNoB(t)))
	_, answer, err := out.NewSession(context.Background(), makeOffer(t, webrtc.RTPTransceiverDirectionRecvonly, codecH264), netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	port := srv.UDPAddr().(*net.UDPAddr).Port
	var public, local bool
	for _, l := range strings.Split(answer, "\r\n") {
		if !strings.HasPrefix(l, "a=candidate:") || !strings.Contains(l, " udp ") {
			continue
		}
		f := strings.Fields(l)
		if f[5] != itoa(port) {
			t.Errorf("candidate %q not on the shared port %d", l, port)
		}
		public = public || f[4] == "203.0.113.7"
		local = local || f[4] == "127.0.0.1"
	}
	if !public || !local {
		t.Errorf("answer candidates (public %v, local %v):\n%s", public, local, answer)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

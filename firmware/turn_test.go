package main

import (
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/testenv"
)

// A WebRTC port already taken does not stop the box: it warns and takes another one.
func TestWebRTCPortTaken(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	taken, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.LocalAddr().(*net.UDPAddr).Port
	n, err := startWebRTCNet(Config{WebRTCPort: port, TURNPort: -1}, nil, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("a taken port stopped the box: %v", err)
	}
	defer n.Close()
	if n.mux == nil || n.mux.Port() == port || n.mux.Port() == 0 {
		t.Fatalf("mux %v on port %d, the taken one is %d", n.mux, n.mux.Port(), port)
	}
}

// TestICEAPISubnets: a page inside the box's subnets gets STUN and a TURN credential,
// which makes its address a relay destination; a client routed in from elsewhere gets
// STUN only and never becomes one.
func TestICEAPISubnets(t *testing.T) {
	testenv.NeedLoopbackOnly(t)
	lo := netip.MustParseAddr("127.0.0.1")
	subnets, err := boxSubnets(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(subnets, loopbackSubnets) {
		t.Errorf("subnets of a loopback-only box: %v", subnets)
	}
	n, err := startWebRTCNet(Config{WebRTCPort: -1, TURNPort: 0, WebRTCLoopback: true}, nil, subnets, slog.New(slog.DiscardHandler))
	if err != nil || n.turn == nil {
		t.Fatalf("no TURN server: %v", err)
	}
	defer n.Close()
	if s := n.ice.ICEServers(lo, netip.MustParseAddr("127.0.0.9")); len(s) != 2 || s[1].Username == "" {
		t.Errorf("a client inside the subnets got %+v", s)
	}
	if !n.turn.Relays(netip.MustParseAddr("127.0.0.9"), time.Now()) {
		t.Error("a client that got a credential is not a relay destination")
	}
	outside := netip.MustParseAddr("10.20.30.40")
	if s := n.ice.ICEServers(lo, outside); len(s) != 1 || s[0].Username != "" {
		t.Errorf("a client outside the subnets got %+v", s)
	}
	if n.turn.Relays(outside, time.Now()) {
		t.Error("a client outside the subnets became a relay destination")
	}
}

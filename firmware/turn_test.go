package main

import (
	"log/slog"
	"net"
	"os"
	"testing"
)

// A WebRTC port already taken does not stop the box: it warns and takes another one.
func TestWebRTCPortTaken(t *testing.T) {
	if !loopbackOnly() {
		if os.Getenv("CI") == "true" {
			t.Fatal("opens sockets: run inside `unshare -n` (loopback only)")
		}
		t.Skip("opens sockets: run inside `unshare -n`, see README")
	}
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

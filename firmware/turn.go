package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/chattorrent/chattorrent/net/rtc"
	"github.com/chattorrent/chattorrent/net/turn"
	"github.com/chattorrent/chattorrent/web"
)

// udpReadBuffer is the receive buffer of the box's WebRTC socket: with the OS default
// (208 KiB) pion drops packets at full speed (PERFORMANCE.md).
const udpReadBuffer = 4 << 20

// webrtcNet is the box's UDP side: the one WebRTC port its pion peer uses for every
// connection, and the STUN/TURN server pages get from /api/ice.
type webrtcNet struct {
	mux  *rtc.UDPMux  // nil: a socket per connection (--webrtc-port -1)
	turn *turn.Server // nil: no STUN/TURN (--turn-port -1, or no LAN address)
	ice  web.ICE      // nil when turn is nil: /api/ice then answers an empty list
}

// startWebRTCNet opens the WebRTC port and the STUN/TURN server, whose relays send only
// inside subnets (the networks of lan, boxSubnets). A TURN server that cannot start is
// logged and left out: rooms work without it on a Wi-Fi that does not isolate clients.
func startWebRTCNet(cfg Config, lan []netip.Addr, subnets []netip.Prefix, log *slog.Logger) (*webrtcNet, error) {
	n := &webrtcNet{}
	if cfg.WebRTCPort >= 0 {
		mux, err := rtc.ListenUDPMux(cfg.WebRTCPort, udpReadBuffer, log)
		if err != nil && cfg.WebRTCPort > 0 {
			// Taken (another box on this machine, another program): rooms work on any
			// port, only a firewall rule for this one would miss it.
			log.Warn("WebRTC UDP port taken: using another one", "port", cfg.WebRTCPort, "err", err)
			mux, err = rtc.ListenUDPMux(0, udpReadBuffer, log)
		}
		if err != nil {
			return nil, err
		}
		n.mux = mux
	}
	if cfg.TURNPort >= 0 {
		addrs := append([]netip.Addr(nil), lan...)
		if cfg.WebRTCLoopback {
			addrs = append(addrs, netip.MustParseAddr("127.0.0.1"))
		}
		srv, err := turn.Start(turn.Options{Port: cfg.TURNPort, Addrs: addrs, AllowLoopback: cfg.WebRTCLoopback,
			Subnets: subnets, Logger: log})
		if err != nil {
			log.Warn("no STUN/TURN: phones on a Wi-Fi that isolates clients will not connect", "err", err)
		} else {
			n.turn = srv
			n.ice = iceAPI{srv}
		}
	}
	return n, nil
}

func (n *webrtcNet) Close() {
	if n.turn != nil {
		n.turn.Close()
	}
	if n.mux != nil {
		n.mux.Close()
	}
}

// iceAPI hands pages the box's STUN and TURN server on the address they reached it at;
// TURN credentials only to a client inside the box's subnets (the one a relay may send
// to): a client routed in from elsewhere gets STUN only.
type iceAPI struct{ srv *turn.Server }

func (a iceAPI) ICEServers(local, client netip.Addr) []web.ICEServer {
	if !a.srv.Serves(local) {
		return nil
	}
	host := net.JoinHostPort(local.String(), strconv.Itoa(a.srv.Port()))
	servers := []web.ICEServer{{URLs: []string{"stun:" + host}}}
	if !a.srv.InSubnets(client) {
		return servers
	}
	user, pass, _ := a.srv.Credentials(client.String(), time.Now())
	return append(servers, web.ICEServer{URLs: []string{"turn:" + host + "?transport=udp"}, Username: user, Credential: pass})
}

// loopbackSubnets are added to the box's subnets when it runs WebRTC on loopback
// (--webrtc-loopback: tests, one-machine setups).
var loopbackSubnets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// boxSubnets returns the networks of the box's interface addresses lan (the list the box
// serves on, cert.InterfaceAddrs), plus loopback when loopback is set: where the box's
// TURN relays and ICE checks may go.
func boxSubnets(lan []netip.Addr, loopback bool) ([]netip.Prefix, error) {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("serve: subnets: %w", err)
	}
	var out []netip.Prefix
	for _, ia := range ifaddrs {
		p, err := netip.ParsePrefix(ia.String())
		if err != nil {
			continue
		}
		p = netip.PrefixFrom(p.Addr().Unmap().WithZone(""), p.Bits())
		if slices.Contains(lan, p.Addr()) {
			out = append(out, p.Masked())
		}
	}
	if loopback {
		out = append(out, loopbackSubnets...)
	}
	return out, nil
}

// Default UDP ports (OPERATIONS.md lists them for firewalls).
const (
	defaultWebRTCPort = 50000
	defaultTURNPort   = turn.DefaultPort
)

func checkPorts(cfg Config) error {
	for _, p := range []struct {
		name string
		v    int
	}{{"-webrtc-port", cfg.WebRTCPort}, {"-turn-port", cfg.TURNPort}} {
		if p.v < -1 || p.v > 65535 {
			return fmt.Errorf("serve: %s %d: want 1..65535, 0 (ephemeral) or -1", p.name, p.v)
		}
	}
	if cfg.WebRTCPort > 0 && cfg.WebRTCPort == cfg.TURNPort {
		return fmt.Errorf("serve: -webrtc-port and -turn-port are both %d", cfg.TURNPort)
	}
	return nil
}

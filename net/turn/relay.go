package turn

import (
	"errors"
	"net"
	"time"

	pturn "github.com/pion/turn/v5"
	"golang.org/x/time/rate"
)

// relayGen opens relays on one LAN address (the one the request came in on: each
// listening socket has its own generator) and limits each relay's bandwidth.
type relayGen struct {
	pturn.RelayAddressGeneratorStatic
	bandwidth int
}

func (g *relayGen) AllocatePacketConn(conf pturn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	pc, addr, err := g.RelayAddressGeneratorStatic.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	burst := max(g.bandwidth/8, 64<<10) // room for a congestion window's burst
	return &limitedConn{
		PacketConn: pc,
		in:         rate.NewLimiter(rate.Limit(g.bandwidth), burst),
		out:        rate.NewLimiter(rate.Limit(g.bandwidth), burst),
	}, addr, nil
}

// limitedConn drops packets over its rate in either direction (UDP semantics: the peers'
// congestion control slows down); it never blocks, so one busy relay does not hold up
// the server's read loop.
type limitedConn struct {
	net.PacketConn
	in, out *rate.Limiter
}

func (c *limitedConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.out.AllowN(time.Now(), len(p)) {
		return len(p), nil // dropped
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *limitedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.in.AllowN(time.Now(), n) {
			return n, addr, err
		}
	}
}

// AllocateListener refuses TCP relays (RFC 6062): phones relay UDP only.
func (g *relayGen) AllocateListener(pturn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errNoTCP
}

// AllocateConn refuses TCP relays (RFC 6062).
func (g *relayGen) AllocateConn(pturn.AllocateConnConfig) (net.Conn, error) {
	return nil, errNoTCP
}

var errNoTCP = errors.New("turn: TCP relays are not offered")

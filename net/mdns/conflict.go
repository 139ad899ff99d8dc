package mdns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/ipv4"
)

// conflictWindow is how long a conflict check listens for answers.
const conflictWindow = 500 * time.Millisecond

// rival asks once, over ifaces, who answers for name.local, and returns the
// IPv4 address of another host that does and wins the tie-break (its address
// is lower than every one of ours), and the address of one that answers but
// loses it (it is the one to move on). Two boxes powered on at the same moment
// both find their name free while probing (neither answers yet) and both
// claim it; each checks again at every rescan, and the one with the higher
// address moves on to the next name (a simplified RFC 6762 §9). The answers
// this host gives itself carry its own addresses and are ignored.
func (r *Responder) rival(ctx context.Context, ifaces []net.Interface, name string) (winner, loser netip.Addr, err error) {
	ours := map[netip.Addr]bool{}
	var lowest netip.Addr
	for _, ifc := range ifaces {
		as, err := interfaceAddrs(ifc)
		if err != nil {
			continue
		}
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			ours[ip] = true
			if ip.Is4() && (!lowest.IsValid() || ip.Less(lowest)) {
				lowest = ip
			}
		}
	}
	if !lowest.IsValid() {
		return winner, loser, nil // no IPv4 here: nothing to compare
	}

	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: mdnsGroup4, Port: mdnsPort})
	if err != nil {
		return winner, loser, fmt.Errorf("%w: udp4 port %d: %w", errListen, mdnsPort, err)
	}
	defer l.Close()
	pc := ipv4.NewPacketConn(l)
	host := name + ".local."
	q, err := query(host)
	if err != nil {
		return winner, loser, err
	}
	group := &net.UDPAddr{IP: mdnsGroup4, Port: mdnsPort}
	sent := false
	for _, ifc := range ifaces {
		if pc.JoinGroup(&ifc, group) != nil || pc.SetMulticastInterface(&ifc) != nil {
			continue
		}
		if _, err := pc.WriteTo(q, nil, group); err == nil {
			sent = true
		}
	}
	if !sent {
		return winner, loser, nil
	}

	deadline := time.Now().Add(conflictWindow)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	l.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { l.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 9000)
	for {
		n, _, err := l.ReadFromUDP(buf)
		if err != nil {
			break // the window is over (or ctx ended)
		}
		for _, a := range answersFor(buf[:n], host) {
			switch {
			case ours[a]:
			case a.Less(lowest):
				if !winner.IsValid() || a.Less(winner) {
					winner = a
				}
			default:
				loser = a
			}
		}
	}
	return winner, loser, ctx.Err()
}

// query is a multicast mDNS question for the A record of host.
func query(host string) ([]byte, error) {
	n, err := dnsmessage.NewName(host)
	if err != nil {
		return nil, fmt.Errorf("mdns: %w", err)
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: n, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// answersFor returns the IPv4 addresses a response gives for host (A records
// among its answers and additional records); nothing for queries or junk.
func answersFor(msg []byte, host string) []netip.Addr {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || !h.Response {
		return nil
	}
	if err := p.SkipAllQuestions(); err != nil {
		return nil
	}
	var out []netip.Addr
	collect := func(next func() (dnsmessage.ResourceHeader, error), skip func() error) bool {
		for {
			rh, err := next()
			if err != nil {
				return err == dnsmessage.ErrSectionDone
			}
			if rh.Type != dnsmessage.TypeA || !strings.EqualFold(rh.Name.String(), host) {
				if skip() != nil {
					return false
				}
				continue
			}
			a, err := p.AResource()
			if err != nil {
				return false
			}
			out = append(out, netip.AddrFrom4(a.A))
		}
	}
	if !collect(p.AnswerHeader, p.SkipAnswer) {
		return out
	}
	if p.SkipAllAuthorities() != nil {
		return out
	}
	collect(p.AdditionalHeader, p.SkipAdditional)
	return out
}

//go:build linux

package mdns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/mdns/v2"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/chattorrent/chattorrent/net/pionlog"
)

// TestNetnsChild is the other half of TestNetns: this test binary run again
// inside one of its namespaces, with $MDNS_NETNS_CHILD saying what to be.
//
// MDNS_NETNS_CHILD=responder runs a Responder until its stdin closes (or
// SIGINT/SIGTERM), logging to stdout as slog text, and prints
//
//	MDNS_READY <name>   once, when the first name is claimed
//	MDNS_STOPPED        when Run has returned nil and every pion goroutine is gone
//
// with MDNS_NETNS_IFACE (empty: every usable interface; else that one
// interface), MDNS_NETNS_RESCAN (a duration, default the package's),
// MDNS_NETNS_PORT (the SRV port), MDNS_NETNS_BOXNAME (Config.Name) and
// MDNS_NETNS_ALIASES (Config.Aliases, comma-separated).
//
// MDNS_NETNS_CHILD=probe joins the mDNS group on MDNS_NETNS_IFACE and
// prints "MDNS_PROBE ok", or "MDNS_PROBE enoprotoopt" when the socket
// options are not available (qemu-user; see probeEmulatedMulticast).
//
// MDNS_NETNS_CHILD=querier asks the network over MDNS_NETNS_IFACE and fails
// unless it gets the answers wanted:
//
//	MDNS_NETNS_CHECK=resolve  MDNS_NETNS_NAME resolves to MDNS_NETNS_WANT with
//	                          pion's client (QueryAddr), asking again while it
//	                          gets another address (the responder may still be
//	                          answering with an old one)
//	MDNS_NETNS_CHECK=full     A, AAAA (if MDNS_NETNS_V6=true), DNS-SD (service
//	                          type enumeration, PTR, SRV, TXT) as raw multicast
//	                          queries, a legacy unicast query, junk packets
//	                          then the A query again, then pion's QueryAddr and
//	                          Browse as a peer would use them
//
// Children refuse to run unless interface va or vb exists, so that they can
// never open sockets in the machine's own namespace.
func TestNetnsChild(t *testing.T) {
	role := os.Getenv(childEnv)
	if role == "" {
		t.Skip("run by TestNetns inside a network namespace")
	}
	if !inTestNamespace() {
		t.Fatalf("%s=%s outside the test namespaces (no va or vb interface): refusing to open sockets", childEnv, role)
	}
	switch role {
	case "responder":
		childResponder(t)
	case "querier":
		childQuerier(t)
	case "probe":
		childProbe(t)
	case "squatter":
		childSquatter(t)
	default:
		t.Fatalf("unknown %s=%q", childEnv, role)
	}
}

// childSquatter answers for chattorrent.local over MDNS_NETNS_IFACE with pion directly,
// without probing, until its stdin closes: a host that claimed the name at the same moment
// as the responder under test. It prints MDNS_SQUATTING once it answers.
func childSquatter(t *testing.T) {
	ifc, err := net.InterfaceByName(os.Getenv("MDNS_NETNS_IFACE"))
	if err != nil {
		t.Fatalf("MDNS_NETNS_IFACE: %v", err)
	}
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: mdnsGroup4, Port: mdnsPort})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: childLogLevel()}))
	conn, err := mdns.NewServer(ipv4.NewPacketConn(l), nil,
		mdns.WithName("squatter"),
		mdns.WithInterfaces(*ifc),
		mdns.WithLocalNames(DefaultName+".local"),
		mdns.WithLoggerFactory(pionlog.Factory{Logger: log, Quiet: true}),
		mdns.WithCacheRefresh(false))
	if err != nil {
		t.Fatalf("pion server on %s: %v", ifc.Name, err)
	}
	fmt.Println("MDNS_SQUATTING")
	io.Copy(io.Discard, os.Stdin)
	if err := conn.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	fmt.Println("MDNS_STOPPED")
}

func inTestNamespace() bool {
	for _, name := range []string{"va", "vb"} {
		if _, err := net.InterfaceByName(name); err == nil {
			return true
		}
	}
	return false
}

func childResponder(t *testing.T) {
	cfg := Config{Logger: slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: childLogLevel()}))}
	cfg.Name = os.Getenv("MDNS_NETNS_BOXNAME")
	if a := os.Getenv("MDNS_NETNS_ALIASES"); a != "" {
		cfg.Aliases = strings.Split(a, ",")
	}
	if name := os.Getenv("MDNS_NETNS_IFACE"); name != "" {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			t.Fatalf("MDNS_NETNS_IFACE=%s: %v", name, err)
		}
		cfg.Interfaces = []net.Interface{*ifc}
	}
	if p := os.Getenv("MDNS_NETNS_PORT"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("MDNS_NETNS_PORT=%s: %v", p, err)
		}
		cfg.Port = port
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := os.Getenv("MDNS_NETNS_RESCAN"); s != "" {
		if r.rescan, err = time.ParseDuration(s); err != nil || r.rescan <= 0 {
			t.Fatalf("MDNS_NETNS_RESCAN=%s: %v", s, err)
		}
	}

	// Stop when the parent closes our stdin, or on a signal.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()

	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
		fmt.Printf("MDNS_READY %s\n", r.Name())
	case err := <-done:
		t.Fatalf("Run returned before a name was claimed: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Run joined its sockets' goroutines: none of pion's may be left.
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "github.com/pion/mdns") {
		t.Fatalf("pion goroutines left after Run returned:\n%s", stacks)
	}
	fmt.Println("MDNS_STOPPED")
}

func childLogLevel() slog.Level {
	if os.Getenv("MDNS_NETNS_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func childProbe(t *testing.T) {
	ifc, err := net.InterfaceByName(os.Getenv("MDNS_NETNS_IFACE"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: mdnsGroup4, Port: mdnsPort})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = ipv4.NewPacketConn(c).JoinGroup(ifc, &net.UDPAddr{IP: mdnsGroup4})
	switch {
	case errors.Is(err, syscall.ENOPROTOOPT):
		fmt.Printf("MDNS_PROBE enoprotoopt: %v\n", err)
	case err != nil:
		t.Fatalf("join 224.0.0.251 on %s: %v", ifc.Name, err)
	default:
		fmt.Println("MDNS_PROBE ok")
	}
}

// querier holds what the querier checks need.
type querier struct {
	t    *testing.T
	ifc  *net.Interface
	v6   bool
	port uint16
	log  *slog.Logger
}

func childQuerier(t *testing.T) {
	ifName := os.Getenv("MDNS_NETNS_IFACE")
	ifc, err := net.InterfaceByName(ifName)
	if err != nil {
		t.Fatalf("MDNS_NETNS_IFACE=%q: %v", ifName, err)
	}
	port, err := strconv.ParseUint(os.Getenv("MDNS_NETNS_PORT"), 10, 16)
	if err != nil {
		t.Fatalf("MDNS_NETNS_PORT: %v", err)
	}
	name := os.Getenv("MDNS_NETNS_NAME")
	if name == "" {
		name = DefaultName + ".local"
	}
	want, err := netip.ParseAddr(os.Getenv("MDNS_NETNS_WANT"))
	if err != nil {
		t.Fatalf("MDNS_NETNS_WANT: %v", err)
	}
	q := &querier{
		t:    t,
		ifc:  ifc,
		v6:   os.Getenv("MDNS_NETNS_V6") == "true",
		port: uint16(port),
		log:  slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: childLogLevel()})),
	}
	switch check := os.Getenv("MDNS_NETNS_CHECK"); check {
	case "resolve":
		q.resolve(name, want)
	case "full":
		q.full(name, want)
	default:
		t.Fatalf("unknown MDNS_NETNS_CHECK=%q", check)
	}
}

// waitCtx bounds each wait for an answer. It is a limit for a broken
// responder, not a performance threshold: answers come in milliseconds.
func waitCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 20*time.Second)
}

// v6Of is the IPv6 address TestNetns gives the veth end holding v4.
func v6Of(v4 netip.Addr) netip.Addr {
	switch v4.String() {
	case addrA, addrA2:
		return netip.MustParseAddr(addr6A)
	case addrB:
		return netip.MustParseAddr(addr6B)
	}
	return netip.Addr{}
}

// resolve asks pion's client for name until it answers want. pion's
// QueryAddr returns the first answer; an older address may come first
// while the responder has not yet seen its address change.
func (q *querier) resolve(name string, want netip.Addr) {
	t := q.t
	conn := q.pionConn(want.Is4(), want.Is6())
	defer conn.Close()
	ctx, cancel := waitCtx()
	defer cancel()
	var seen []string
	for {
		_, got, err := conn.QueryAddr(ctx, name)
		if err != nil {
			t.Fatalf("pion QueryAddr(%s) over %s: %v; answers seen before: %v", name, q.ifc.Name, err, seen)
		}
		if got == want {
			t.Logf("pion QueryAddr(%s) = %v", name, got)
			return
		}
		seen = append(seen, got.String())
		t.Logf("pion QueryAddr(%s) = %v, want %v: asking again", name, got, want)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pionConn opens pion's mDNS endpoint with no names of its own, IPv4
// and/or IPv6 only: it sends A questions only with IPv4, AAAA only with IPv6.
func (q *querier) pionConn(v4, v6 bool) *mdns.Conn {
	t := q.t
	var (
		p4 *ipv4.PacketConn
		p6 *ipv6.PacketConn
	)
	if v4 {
		l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: mdnsGroup4, Port: mdnsPort})
		if err != nil {
			t.Fatal(err)
		}
		p4 = ipv4.NewPacketConn(l)
	}
	if v6 {
		l, err := net.ListenUDP("udp6", &net.UDPAddr{IP: mdnsGroup6, Port: mdnsPort})
		if err != nil {
			t.Fatal(err)
		}
		p6 = ipv6.NewPacketConn(l)
	}
	conn, err := mdns.NewServer(p4, p6,
		mdns.WithName("querier"),
		mdns.WithInterfaces(*q.ifc),
		mdns.WithLoggerFactory(pionlog.Factory{Logger: q.log, Quiet: true}),
		mdns.WithCacheRefresh(false))
	if err != nil {
		t.Fatalf("pion client on %s: %v", q.ifc.Name, err)
	}
	return conn
}

func (q *querier) full(name string, want netip.Addr) {
	t := q.t
	host := fqdn(name)
	label := strings.TrimSuffix(name, ".local")
	want6 := v6Of(want)
	if !want.Is4() || (q.v6 && !want6.IsValid()) {
		t.Fatalf("full check wants one of the test's IPv4 addresses, got %v", want)
	}

	// A proper mDNS querier: port 5353, the group joined. Answers come back
	// to the group.
	mc := q.listenGroup4()
	defer mc.Close()
	group4 := &net.UDPAddr{IP: mdnsGroup4, Port: mdnsPort}

	// A over IPv4 multicast.
	msg := q.exchange(mc, group4, host, dnsmessage.TypeA, false)
	q.checkAddr(msg, host, want)
	if a := findRR(msg.Answers, host, dnsmessage.TypeA); a.Header.TTL == 0 {
		t.Errorf("A answer with TTL 0 (a goodbye)")
	}

	// AAAA, asked over IPv4 and over IPv6 multicast.
	if q.v6 {
		q.checkAddr(q.exchange(mc, group4, host, dnsmessage.TypeAAAA, false), host, want6)
		mc6 := q.listenGroup6()
		group6 := &net.UDPAddr{IP: mdnsGroup6, Port: mdnsPort, Zone: q.ifc.Name}
		q.checkAddr(q.exchange(mc6, group6, host, dnsmessage.TypeAAAA, false), host, want6)
		q.checkAddr(q.exchange(mc6, group6, host, dnsmessage.TypeA, false), host, want)
		mc6.Close()
	} else {
		t.Log("no IPv6: AAAA not checked")
	}

	// A question with the unicast-response bit (QU), from port 5353.
	q.checkAddr(q.exchange(mc, group4, host, dnsmessage.TypeA, true), host, want)

	// A legacy query (RFC 6762 §6.7): from an ephemeral port, answered by
	// unicast to it, with the ID and question echoed.
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	q.setMulticastIface4(uc)
	legacy := q.exchange(uc, group4, host, dnsmessage.TypeA, false)
	q.checkAddr(legacy, host, want)
	if len(legacy.Questions) != 1 || !strings.EqualFold(legacy.Questions[0].Name.String(), host) {
		t.Errorf("legacy unicast answer does not echo the question: %v", legacy.Questions)
	}

	// DNS-SD: the service types, then each service's PTR, SRV and TXT.
	enum := q.exchange(mc, group4, "_services._dns-sd._udp.local.", dnsmessage.TypePTR, false)
	types := map[string]bool{}
	for _, rr := range enum.Answers {
		if ptr, ok := rr.Body.(*dnsmessage.PTRResource); ok {
			types[strings.ToLower(ptr.PTR.String())] = true
		}
	}
	for _, service := range []string{serviceHTTPS, serviceChatTorrent} {
		svc := service + ".local."
		if !types[svc] {
			t.Errorf("service type enumeration lacks %s: %v", svc, types)
		}
		instance := label + "." + svc

		ptrMsg := q.exchange(mc, group4, svc, dnsmessage.TypePTR, false)
		ptr, _ := findRR(ptrMsg.Answers, svc, dnsmessage.TypePTR).Body.(*dnsmessage.PTRResource)
		if ptr == nil || !strings.EqualFold(ptr.PTR.String(), instance) {
			t.Errorf("PTR %s = %v, want %s", svc, ptr, instance)
		}
		// The additional records spare a browser further queries (RFC 6763 §12.1).
		q.checkSRV(findRR(ptrMsg.Additionals, instance, dnsmessage.TypeSRV), instance, host, "PTR additional")
		if a, _ := findRR(ptrMsg.Additionals, host, dnsmessage.TypeA).Body.(*dnsmessage.AResource); a == nil || netip.AddrFrom4(a.A) != want {
			t.Errorf("PTR %s: additional A for %s = %v, want %v", svc, host, a, want)
		}

		srvMsg := q.exchange(mc, group4, instance, dnsmessage.TypeSRV, false)
		q.checkSRV(findRR(srvMsg.Answers, instance, dnsmessage.TypeSRV), instance, host, "SRV answer")

		txtMsg := q.exchange(mc, group4, instance, dnsmessage.TypeTXT, false)
		txt, _ := findRR(txtMsg.Answers, instance, dnsmessage.TypeTXT).Body.(*dnsmessage.TXTResource)
		if txt == nil || !containsString(txt.TXT, "path=/") {
			t.Errorf("TXT %s = %v, want path=/ in it", instance, txt)
		}
		if service == serviceChatTorrent && (txt == nil || !containsString(txt.TXT, "proto=https")) {
			t.Errorf("TXT %s = %v, want proto=https in it", instance, txt)
		}
	}

	// Junk from any host on the LAN must not stop the responder: send
	// malformed packets to the group, from port 5353 and from an
	// ephemeral port, then the A query must still be answered.
	for i, p := range junkPackets(host) {
		for _, c := range []net.PacketConn{mc, uc} {
			if _, err := c.WriteTo(p, group4); err != nil {
				t.Logf("junk packet %d (%d bytes) not sent: %v", i, len(p), err)
			}
		}
	}
	if q.v6 {
		mc6 := q.listenGroup6()
		for _, p := range junkPackets(host) {
			mc6.WriteTo(p, &net.UDPAddr{IP: mdnsGroup6, Port: mdnsPort, Zone: q.ifc.Name})
		}
		mc6.Close()
	}
	q.checkAddr(q.exchange(mc, group4, host, dnsmessage.TypeA, false), host, want)
	q.checkAddr(q.exchange(uc, group4, host, dnsmessage.TypeA, false), host, want)
	t.Log("the responder still answers after junk packets")
	mc.Close()
	uc.Close()

	// pion's own client, as a browser-like peer resolving the name.
	q.resolve(name, want)
	if q.v6 {
		q.resolve(name, want6)
	}

	// pion's DNS-SD browser finds the box with its port and address.
	conn := q.pionConn(true, false)
	defer conn.Close()
	events := make(chan mdns.ServiceEvent, 16)
	conn.OnServiceDiscovered(func(evt mdns.ServiceEvent) {
		select {
		case events <- evt:
		default:
		}
	})
	ctx, cancel := waitCtx()
	defer cancel()
	if err := conn.Browse(ctx, serviceChatTorrent); err != nil {
		t.Fatalf("pion Browse: %v", err)
	}
	select {
	case evt := <-events:
		if evt.Instance.Instance != label || evt.Instance.Port != q.port || evt.Addr != want ||
			!strings.EqualFold(strings.TrimSuffix(evt.Instance.Host, "."), name) {
			t.Errorf("pion Browse(%s) found %+v at %v; want instance %s, host %s, port %d, address %v",
				serviceChatTorrent, evt.Instance, evt.Addr, label, name, q.port, want)
		} else {
			t.Logf("pion Browse(%s): %s at %v port %d", serviceChatTorrent, evt.Instance.Instance, evt.Addr, evt.Instance.Port)
		}
	case <-ctx.Done():
		t.Fatalf("pion Browse(%s) found nothing", serviceChatTorrent)
	}
}

func (q *querier) listenGroup4() *net.UDPConn {
	t := q.t
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: mdnsGroup4, Port: mdnsPort})
	if err != nil {
		t.Fatal(err)
	}
	p := ipv4.NewPacketConn(c)
	if err := p.JoinGroup(q.ifc, &net.UDPAddr{IP: mdnsGroup4}); err != nil {
		t.Fatalf("join 224.0.0.251 on %s: %v", q.ifc.Name, err)
	}
	q.setMulticastIface4(c)
	return c
}

func (q *querier) setMulticastIface4(c *net.UDPConn) {
	p := ipv4.NewPacketConn(c)
	if err := p.SetMulticastInterface(q.ifc); err != nil {
		q.t.Fatalf("multicast interface %s: %v", q.ifc.Name, err)
	}
	p.SetMulticastTTL(255)
	p.SetMulticastLoopback(false)
}

func (q *querier) listenGroup6() *net.UDPConn {
	t := q.t
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: mdnsGroup6, Port: mdnsPort})
	if err != nil {
		t.Fatal(err)
	}
	p := ipv6.NewPacketConn(c)
	if err := p.JoinGroup(q.ifc, &net.UDPAddr{IP: mdnsGroup6}); err != nil {
		t.Fatalf("join ff02::fb on %s: %v", q.ifc.Name, err)
	}
	if err := p.SetMulticastInterface(q.ifc); err != nil {
		t.Fatalf("multicast interface %s: %v", q.ifc.Name, err)
	}
	p.SetMulticastHopLimit(255)
	p.SetMulticastLoopback(false)
	return c
}

// exchange sends one question to dst from c, again every second, until a
// response holding an answer of that name and type comes in on c (with
// the query's ID when c is not on port 5353: a legacy query).
func (q *querier) exchange(c *net.UDPConn, dst *net.UDPAddr, name string, typ dnsmessage.Type, qu bool) *dnsmessage.Message {
	t := q.t
	t.Helper()
	id := uint16(time.Now().UnixNano()) | 1
	class := dnsmessage.ClassINET
	if qu {
		class |= 1 << 15
	}
	query, err := (&dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: class}},
	}).Pack()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := waitCtx()
	defer cancel()
	buf := make([]byte, 9000)
	legacy := c.LocalAddr().(*net.UDPAddr).Port != mdnsPort
	var ignored int
	for ctx.Err() == nil {
		if _, err := c.WriteTo(query, dst); err != nil {
			t.Fatalf("send %v %s to %v: %v", typ, name, dst, err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				t.Fatalf("read: %v", err)
			}
			var msg dnsmessage.Message
			if err := msg.Unpack(buf[:n]); err != nil || !msg.Response {
				ignored++
				continue
			}
			if findRR(msg.Answers, name, typ).Body == nil {
				ignored++
				continue
			}
			if legacy && msg.ID != id {
				// A legacy querier matches answers by ID (RFC 6762 §6.7):
				// this one answers another query (a junk one, say).
				ignored++
				continue
			}
			t.Logf("%v %s via %v (QU %v, from port %d): answered by %v, %d answers, %d additionals",
				typ, name, dst, qu, c.LocalAddr().(*net.UDPAddr).Port, from, len(msg.Answers), len(msg.Additionals))
			return &msg
		}
	}
	t.Fatalf("no answer to %v %s sent to %v from %v over %s (%d other packets ignored)",
		typ, name, dst, c.LocalAddr(), q.ifc.Name, ignored)
	return nil
}

func (q *querier) checkAddr(msg *dnsmessage.Message, host string, want netip.Addr) {
	q.t.Helper()
	var got []netip.Addr
	for _, rr := range msg.Answers {
		if !strings.EqualFold(rr.Header.Name.String(), host) {
			continue
		}
		switch b := rr.Body.(type) {
		case *dnsmessage.AResource:
			got = append(got, netip.AddrFrom4(b.A))
		case *dnsmessage.AAAAResource:
			got = append(got, netip.AddrFrom16(b.AAAA))
		}
	}
	if len(got) != 1 || got[0] != want {
		q.t.Errorf("%s answered %v, want only %v", host, got, want)
	}
}

func (q *querier) checkSRV(rr dnsmessage.Resource, instance, host, what string) {
	q.t.Helper()
	srv, _ := rr.Body.(*dnsmessage.SRVResource)
	if srv == nil {
		q.t.Errorf("%s: no SRV for %s", what, instance)
		return
	}
	if srv.Port != q.port || !strings.EqualFold(srv.Target.String(), host) {
		q.t.Errorf("%s: SRV %s = %s:%d, want %s:%d", what, instance, srv.Target, srv.Port, host, q.port)
	}
}

// findRR returns the first record of that name and type (a zero Resource,
// Body nil, if none).
func findRR(rrs []dnsmessage.Resource, name string, typ dnsmessage.Type) dnsmessage.Resource {
	for _, rr := range rrs {
		if rr.Header.Type == typ && strings.EqualFold(rr.Header.Name.String(), name) {
			return rr
		}
	}
	return dnsmessage.Resource{}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// junkPackets are malformed or hostile mDNS packets, most of them about
// host so that a lax parser would act on them.
func junkPackets(host string) [][]byte {
	hdr := func(id, flags, qd, an, ns, ar uint16) []byte {
		b := make([]byte, 12)
		for i, v := range []uint16{id, flags, qd, an, ns, ar} {
			b[2*i], b[2*i+1] = byte(v>>8), byte(v)
		}
		return b
	}
	wireName := func(name string) []byte {
		var b []byte
		for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
			b = append(append(b, byte(len(l))), l...)
		}
		return append(b, 0)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	qtail := []byte{0, 1, 0, 1} // type A, class IN

	valid, _ := (&dnsmessage.Message{Questions: []dnsmessage.Question{{
		Name: dnsmessage.MustNewName(host), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET,
	}}}).Pack()

	noise := make([]byte, 1200)
	x := uint32(2463534242)
	for i := range noise { // xorshift: the same noise every run
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		noise[i] = byte(x)
	}
	var longName []byte // more than 255 bytes of name
	for range 40 {
		longName = append(longName, 9, 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a')
	}
	longName = append(longName, 0)

	return [][]byte{
		{},                         // empty datagram
		{0x00},                     // one byte
		hdr(1, 0, 0, 0, 0, 0)[:11], // short header
		hdr(0, 0, 1, 0, 0, 0),      // a question announced, none there
		hdr(0, 0, 0xffff, 0, 0, 0), // 65535 questions announced
		cat(hdr(0, 0, 1, 0, 0, 0), []byte{63, 'a', 'b', 'c'}),                // label past the end
		cat(hdr(0, 0, 1, 0, 0, 0), []byte{0xc0, 12}, qtail),                  // compression pointer to itself
		cat(hdr(0, 0, 1, 0, 0, 0), []byte{0xc0, 200}, qtail),                 // pointer past the end
		cat(hdr(0, 0, 1, 0, 0, 0), []byte{0x40, 'a'}, qtail),                 // reserved label type
		cat(hdr(0, 0, 1, 0, 0, 0), longName, qtail),                          // name over 255 bytes
		cat(hdr(0, 0, 1, 0, 0, 0), wireName(host)),                           // question without type/class
		cat(hdr(0, 0, 2, 0, 0, 0), wireName(host), qtail, []byte{5, 'x'}),    // second question cut
		cat(hdr(0, 0x8400, 0, 3, 0, 0), wireName(host), qtail),               // response, answer cut
		cat(valid, []byte{0xde, 0xad}),                                       // trailing bytes
		cat(hdr(0, 0, 1, 0, 0, 0), wireName(host), []byte{0, 255, 0, 3}),     // ANY, class CHAOS
		cat(hdr(0, 0, 1, 0, 0, 0), wireName(host), []byte{0, 1, 0xff, 0xff}), // class 65535
		cat(hdr(0, 0x7800, 1, 0, 0, 0), wireName(host), qtail),               // opcode 15
		noise,
		cat(hdr(0, 0, 1, 0, 0, 0), noise),
		bytes.Repeat([]byte{0xff}, 1400),
	}
}

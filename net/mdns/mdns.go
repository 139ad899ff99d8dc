// Package mdns makes the appliance reachable as <name>.local: it answers
// multicast DNS (RFC 6762) A and AAAA queries for the box's host name with
// the address of the interface the query came in on, and advertises the
// box over DNS-SD (RFC 6763) as "_https._tcp" and "_chattorrent._tcp".
//
// The wire protocol is github.com/pion/mdns/v2; this package adds what an
// appliance needs around it: a validated name, a simplified probe for name
// clashes (RFC 6762 §8.1) with "-2", "-3", … suffixes, a periodic check for
// a host that claimed the same name at the same moment, slog logging, and
// re-opening the sockets when the interfaces or their addresses change.
package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/mdns/v2"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/chattorrent/chattorrent/net/pionlog"
)

const (
	// mdnsPort is the mDNS UDP port.
	mdnsPort = 5353

	// probeCount queries, probeInterval apart, then one more probeInterval
	// of listening: RFC 6762 §8.1 timing.
	probeCount    = 3
	probeInterval = 250 * time.Millisecond

	// maxCandidates bounds the names tried: name, name-2 … name-16.
	maxCandidates = 16

	// defaultRescan is how often Run looks for interface or address changes.
	defaultRescan = 10 * time.Second

	// Services advertised over DNS-SD.
	serviceHTTPS       = "_https._tcp"
	serviceChatTorrent = "_chattorrent._tcp"
)

var (
	mdnsGroup4 = net.IPv4(224, 0, 0, 251)
	mdnsGroup6 = net.ParseIP("ff02::fb")
)

// errListen marks a failure to open the mDNS sockets themselves, which Run
// retries at every rescan (a failure inside pion is retried only when the
// interfaces change, as each attempt costs pion two sockets it keeps).
var errListen = errors.New("mdns: listen")

// Config configures a Responder.
type Config struct {
	// Name is the host label: the box answers for "<Name>.local".
	// Default "chattorrent". It is lowercased and must be one DNS label
	// (a-z, 0-9, '-', at most 63 bytes, no leading or trailing '-').
	// If another host already answers for it, Run takes "<Name>-2",
	// "<Name>-3", … (see Responder.Name).
	Name string

	// Aliases are more host labels answered for ("<alias>.local", A and AAAA only)
	// without probing, without DNS-SD records and without moving on when another host
	// answers too: names that several boxes may answer for at once, such as the generic
	// "chattorrent" beside a box's unique "chattorrent-3f9a1c". A phone then gets
	// whichever box answers first, so an alias must never be a name the box's certificate
	// covers; the box's plain-HTTP side redirects it to the unique name. An alias equal to
	// a name Run may claim is dropped.
	Aliases []string

	// Port is the HTTPS port put in the DNS-SD SRV records. Default 443.
	Port int

	// Interfaces to serve on. nil means every interface that is up,
	// multicast-capable and not loopback, re-read while running. Named
	// interfaces (loopback allowed) are looked up again by name while
	// running, so one that goes away and comes back is served again.
	Interfaces []net.Interface

	// Logger receives the responder's logs. Default slog.Default().
	Logger *slog.Logger
}

// Responder answers mDNS and DNS-SD queries for the box. Make one with New
// and call Run once.
type Responder struct {
	base    string
	aliases []string // labels, without ".local"
	port    uint16
	ifaces  []net.Interface
	log     *slog.Logger
	rescan  time.Duration // defaultRescan; tests shorten it
	started atomic.Bool

	ready     chan struct{} // closed at the first successful claim
	readyOnce sync.Once

	mu   sync.Mutex
	name string // guarded by mu: the claimed label, "" before the first claim
}

// New checks cfg and returns a Responder. It opens no sockets.
func New(cfg Config) (*Responder, error) {
	base, err := normalizeName(cfg.Name)
	if err != nil {
		return nil, err
	}
	port := cfg.Port
	if port == 0 {
		port = 443
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("mdns: port %d out of range 1-65535", cfg.Port)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var aliases []string
	for _, a := range cfg.Aliases {
		a, err := normalizeName(a)
		if err != nil {
			return nil, fmt.Errorf("alias: %w", err)
		}
		if !slices.Contains(aliases, a) && !isCandidate(base, a) {
			aliases = append(aliases, a)
		}
	}
	var ifaces []net.Interface
	if cfg.Interfaces != nil {
		ifaces = append([]net.Interface{}, cfg.Interfaces...)
	}
	return &Responder{
		base:    base,
		aliases: aliases,
		port:    uint16(port),
		ifaces:  ifaces,
		log:     log.With("component", "mdns"),
		rescan:  defaultRescan,
		ready:   make(chan struct{}),
	}, nil
}

// Name returns the name in use, such as "chattorrent.local" or
// "chattorrent-2.local", or "" until Ready is closed.
func (r *Responder) Name() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.name == "" {
		return ""
	}
	return r.name + ".local"
}

// Ready is closed once a name has been claimed and the responder answers
// for it.
func (r *Responder) Ready() <-chan struct{} { return r.ready }

// Run probes for a free name, then answers queries until ctx ends. It
// re-reads the interfaces every few seconds; when they or their addresses
// change it closes its sockets, probes again (keeping the name it holds
// unless someone else now answers for it) and serves again. Otherwise it
// checks that no other host answers for its name too, and moves on to the
// next name when one does and has the lower address (see rival). With no usable
// interface it waits for one. Run returns nil when ctx ends, after closing
// every socket and joining every goroutine, and an error only when it
// cannot serve at all: Run called twice, or every candidate name taken.
func (r *Responder) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("mdns: Run called more than once")
	}
	ticker := time.NewTicker(r.rescan)
	defer ticker.Stop()

	var (
		conn    *mdns.Conn
		lastFP  string
		retry   = true // open even if the interfaces look unchanged
		n       = 1    // index of the candidate name to try first
		waiting bool
	)
	defer func() {
		if conn != nil {
			r.closeConn(conn)
		}
	}()
	// claimed handles claim's error: whether Run must return, and what.
	claimed := func(err error) (bool, error) {
		if ctx.Err() != nil {
			return true, nil
		}
		if err != nil {
			if errors.Is(err, errListen) {
				retry = true // try again at the next rescan
			}
			if errors.Is(err, errAllTaken) {
				return true, err
			}
			r.log.Warn("cannot serve", "err", err)
		}
		return false, nil
	}
	for {
		ifaces, fp, err := currentInterfaces(r.ifaces)
		switch {
		case err != nil:
			r.log.Warn("cannot read interfaces", "err", err)
		case retry || fp != lastFP:
			retry = false
			if conn != nil {
				r.log.Info("interfaces changed, serving again")
				r.closeConn(conn)
				conn = nil
			}
			lastFP = fp
			if len(ifaces) == 0 {
				if !waiting {
					r.log.Info("no usable interface yet, waiting")
					waiting = true
				}
				break
			}
			waiting = false
			conn, n, err = r.claim(ctx, ifaces, n)
			if stop, err := claimed(err); stop {
				return err
			}
		case conn != nil:
			// Our name is ours alone? (Two boxes that started together both found it free.)
			name := candidate(r.base, n)
			holder, other, err := r.rival(ctx, ifaces, name)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				r.log.Debug("name conflict check failed", "err", err)
				break
			}
			if other.IsValid() && !holder.IsValid() {
				r.log.Debug("another host answers for this name; ours is the lower address", "name", name+".local", "other", other.String())
			}
			if holder.IsValid() {
				r.log.Warn("another host answers for this name too and keeps it (its address is lower)", "name", name+".local", "holder", holder.String())
				r.closeConn(conn)
				conn, n, err = r.claim(ctx, ifaces, n+1)
				if stop, err := claimed(err); stop {
					return err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

var errAllTaken = errors.New("mdns: every candidate name is taken")

// claim probes candidate names from the n-th on and serves the first free
// one. It returns the serving conn and the index of the name claimed.
func (r *Responder) claim(ctx context.Context, ifaces []net.Interface, n int) (*mdns.Conn, int, error) {
	wanted := candidate(r.base, n)
	for ; n <= maxCandidates; n++ {
		name := candidate(r.base, n)
		holder, err := r.probe(ctx, ifaces, name)
		if err != nil {
			return nil, n, err
		}
		if holder.IsValid() {
			r.log.Info("name taken by another host", "name", name+".local", "holder", holder.String())
			continue
		}
		conn, err := r.serve(ifaces, name)
		if err != nil {
			return nil, n, err
		}
		r.mu.Lock()
		r.name = name
		r.mu.Unlock()
		if name != wanted {
			r.log.Warn("name in use on the network, using another", "wanted", wanted+".local", "name", name+".local")
		}
		r.log.Info("answering", "name", name+".local", "aliases", r.aliases, "port", r.port, "interfaces", ifaceNames(ifaces))
		r.readyOnce.Do(func() { close(r.ready) })
		return conn, n, nil
	}
	return nil, n, fmt.Errorf("%w: %s to %s", errAllTaken, candidate(r.base, 1)+".local", candidate(r.base, maxCandidates)+".local")
}

// probe asks probeCount times, probeInterval apart, who answers for
// name.local, and returns the address of a host that does (invalid if
// none). Simplified RFC 6762 §8.1: plain A/AAAA questions, no authority
// section, no tie-breaking between simultaneous probers.
func (r *Responder) probe(ctx context.Context, ifaces []net.Interface, name string) (holder netip.Addr, err error) {
	conn, err := r.open(ifaces, mdns.WithQueryInterval(probeInterval))
	if err != nil {
		return netip.Addr{}, err
	}
	defer r.closeConn(conn)
	pctx, cancel := context.WithTimeout(ctx, probeCount*probeInterval)
	defer cancel()
	_, addr, err := conn.QueryAddr(pctx, name+".local")
	if err != nil {
		if ctx.Err() != nil {
			return netip.Addr{}, ctx.Err()
		}
		return netip.Addr{}, nil // nobody answered in time: the name is free
	}
	return addr, nil
}

// serve opens the sockets that answer for name.local and its services.
func (r *Responder) serve(ifaces []net.Interface, name string) (*mdns.Conn, error) {
	host := name + ".local"
	names := []string{host}
	for _, a := range r.aliases {
		names = append(names, a+".local")
	}
	return r.open(ifaces,
		mdns.WithLocalNames(names...),
		mdns.WithService(mdns.ServiceInstance{
			Instance: name,
			Service:  serviceHTTPS,
			Host:     host + ".",
			Port:     r.port,
			Text:     []mdns.TXTEntry{mdns.NewTXTString("path", "/")},
		}),
		mdns.WithService(mdns.ServiceInstance{
			Instance: name,
			Service:  serviceChatTorrent,
			Host:     host + ".",
			Port:     r.port,
			Text:     []mdns.TXTEntry{mdns.NewTXTString("path", "/"), mdns.NewTXTString("proto", "https")},
		}),
	)
}

// open binds the mDNS port (IPv4 required, IPv6 if the kernel has it) and
// hands the sockets to pion. Go sets SO_REUSEADDR on a socket bound to a
// multicast address and binds it to the wildcard address, so several
// responders (and avahi) can share port 5353.
func (r *Responder) open(ifaces []net.Interface, opts ...mdns.ServerOption) (*mdns.Conn, error) {
	l4, err := net.ListenUDP("udp4", &net.UDPAddr{IP: mdnsGroup4, Port: mdnsPort})
	if err != nil {
		return nil, fmt.Errorf("%w: udp4 port %d: %w", errListen, mdnsPort, err)
	}
	var p6 *ipv6.PacketConn
	l6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: mdnsGroup6, Port: mdnsPort})
	if err != nil {
		r.log.Debug("no IPv6 mDNS socket, IPv4 only", "err", err)
	} else {
		p6 = ipv6.NewPacketConn(l6)
	}
	loopback := false
	for _, ifc := range ifaces {
		loopback = loopback || ifc.Flags&net.FlagLoopback != 0
	}
	all := append([]mdns.ServerOption{
		mdns.WithName("chattorrent"),
		mdns.WithLoggerFactory(pionlog.Factory{Logger: r.log, Quiet: true}),
		mdns.WithInterfaces(ifaces...),
		mdns.WithIncludeLoopback(loopback),
		mdns.WithCacheRefresh(false), // the box browses nothing
	}, opts...)
	conn, err := mdns.NewServer(ipv4.NewPacketConn(l4), p6, all...)
	if err != nil {
		l4.Close()
		if l6 != nil {
			l6.Close()
		}
		return nil, fmt.Errorf("mdns: start responder on %v: %w", ifaceNames(ifaces), err)
	}
	return conn, nil
}

func (r *Responder) closeConn(conn *mdns.Conn) {
	if err := conn.Close(); err != nil {
		r.log.Warn("close", "err", err)
	}
}

func ifaceNames(ifaces []net.Interface) []string {
	names := make([]string, len(ifaces))
	for i, ifc := range ifaces {
		names[i] = ifc.Name
	}
	return names
}

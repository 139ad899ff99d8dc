// Package turn is the box's STUN and TURN server (pion/turn) for phones on a Wi-Fi that
// isolates clients from each other: each phone reaches the box, the box relays. What it
// relays is the phones' DTLS, still encrypted end to end; the box sees ciphertext only.
//
// Credentials are short-lived, in the TURN REST style: the username is "<expiry unix
// seconds>:<peer>", the password base64(HMAC-SHA1(secret, username)) with a secret made
// at each start. The page gets them from GET /api/ice. Relay addresses are the box's LAN
// addresses only: one listening socket per private address, and an allocation relays on
// the address its request came in on; a public address is never listened on nor relayed
// to. A relay sends only to the box's own addresses (another relay, the box's WebRTC
// peer) and to clients inside the box's subnets that hold a current credential (phones
// that asked GET /api/ice): never to the rest of the LAN.
package turn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	pturn "github.com/pion/turn/v5"

	"github.com/chattorrent/chattorrent/net/pionlog"
)

// Realm is the TURN realm (part of the long-term credential key).
const Realm = "chattorrent"

// Defaults for Options.
const (
	DefaultPort          = 3478
	DefaultCredentialTTL = 12 * time.Hour
	// Every peer connection of a page gathers a relay, used or not (a browser keeps it while
	// the connection lives, an unanswered offer included). One side's relay is enough for a
	// pair to connect (the other sends to it from its own address), so a phone past its cap
	// still connects to peers that have one. 8 matches the drop box's open offers per
	// client; the total is 32 phones (the box's peers) at that cap.
	DefaultMaxAllocations          = 256
	DefaultMaxAllocationsPerClient = 8
	// MaxCredentialClients bounds the client addresses remembered as holding a credential
	// (relay destinations); past it the one whose credential ends first is forgotten.
	MaxCredentialClients = 1024
	// refusalLogEvery spaces the logs of refused relays and permissions: one line with a
	// count, not one per request.
	refusalLogEvery = time.Minute
	// An allocation lives this long unless refreshed. Browsers refresh by the lifetime the
	// server grants; relays of a page that vanished (closed, killed, out of range) end
	// after it, and free their place in the per-phone cap.
	DefaultLifetime  = 3 * time.Minute
	DefaultBandwidth = 16 << 20         // bytes/s per allocation and direction
	maxPeerLen       = 64               // bytes of the "peer" part of a username
	lifetimeCap      = 60 * time.Minute // RFC 8656 lets a server cap what clients ask
	credentialCap    = 7 * 24 * time.Hour
)

// Options configure Start.
type Options struct {
	// Port is the UDP port on every address (0: an ephemeral port, the same on all).
	Port int
	// Addrs are the addresses to serve on. Those that are not LAN addresses (private
	// IPv4, IPv6 ULA, or loopback with AllowLoopback) are skipped. Link-local IPv6 is
	// skipped (zones). Nil or empty after filtering is an error.
	Addrs []netip.Addr
	// AllowLoopback serves (and relays) on loopback addresses: tests, one-machine setups.
	AllowLoopback bool
	// Subnets are the networks of the box's interfaces it serves on. A relay sends to (and
	// takes a permission or channel for) the box's own addresses, and to an address inside
	// Subnets that holds a current credential (Credentials for that address); to no other.
	// A loopback prefix counts only with AllowLoopback. Nil: the box's own addresses only.
	Subnets []netip.Prefix
	// Secret signs credentials; nil means 32 random bytes (new at each start).
	Secret []byte
	// CredentialTTL is how long a credential handed out stays valid. Default 12 h.
	CredentialTTL time.Duration
	// MaxAllocations bounds the relays open at once (0: DefaultMaxAllocations);
	// MaxPerClient those of one client (the username's part after the expiry: web's
	// /api/ice uses the phone's address; 0: DefaultMaxAllocationsPerClient).
	MaxAllocations, MaxPerClient int
	// Lifetime is an allocation's lifetime between refreshes (pion's AllocationLifetime).
	Lifetime time.Duration
	// Bandwidth is the most bytes per second one allocation relays in each direction;
	// packets above it are dropped (never queued: one slow relay must not stall others).
	Bandwidth int
	// Logger receives this package's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Server is a running STUN/TURN server.
type Server struct {
	opts  Options
	log   *slog.Logger
	srv   *pturn.Server
	port  int
	addrs []netip.Addr

	mu      sync.Mutex
	byUser  map[string]int
	total   int
	holders map[netip.Addr]time.Time // client address → when its newest credential ends
	refused refusals
}

// refusals counts refused relays and permissions between two logs.
type refusals struct {
	last        time.Time
	quota, perm int
}

// LANAddr reports whether a is an address the box may serve TURN on and relay from.
func LANAddr(a netip.Addr, allowLoopback bool) bool {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return allowLoopback
	case a.Is6() && a.IsLinkLocalUnicast():
		return false
	case a.IsPrivate(): // 10/8, 172.16/12, 192.168/16, fc00::/7
		return true
	case a.Is4() && a.IsLinkLocalUnicast(): // 169.254/16: a hotspot without DHCP
		return true
	case a.Is4() && netip.MustParsePrefix("100.64.0.0/10").Contains(a): // CGNAT range, used by some hotspots
		return true
	}
	return false
}

// Start listens on every LAN address in opts.Addrs and serves STUN and TURN.
func Start(opts Options) (*Server, error) {
	if opts.CredentialTTL <= 0 {
		opts.CredentialTTL = DefaultCredentialTTL
	}
	opts.CredentialTTL = min(opts.CredentialTTL, credentialCap)
	if opts.MaxAllocations <= 0 {
		opts.MaxAllocations = DefaultMaxAllocations
	}
	if opts.MaxPerClient <= 0 {
		opts.MaxPerClient = DefaultMaxAllocationsPerClient
	}
	if opts.Lifetime <= 0 {
		opts.Lifetime = DefaultLifetime
	}
	opts.Lifetime = min(opts.Lifetime, lifetimeCap)
	if opts.Bandwidth <= 0 {
		opts.Bandwidth = DefaultBandwidth
	}
	if opts.Secret == nil {
		opts.Secret = make([]byte, 32)
		if _, err := rand.Read(opts.Secret); err != nil {
			return nil, fmt.Errorf("turn: secret: %w", err)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{opts: opts, log: log.With("component", "turn"), byUser: map[string]int{}, port: opts.Port}

	var confs []pturn.PacketConnConfig
	closeAll := func() {
		for _, c := range confs {
			c.PacketConn.Close()
		}
	}
	for _, a := range opts.Addrs {
		a = a.Unmap()
		if !LANAddr(a, opts.AllowLoopback) || s.has(a) {
			continue
		}
		network := "udp4"
		if a.Is6() {
			network = "udp6"
		}
		pc, err := net.ListenPacket(network, netip.AddrPortFrom(a, uint16(s.port)).String())
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("turn: listen on %s port %d: %w", a, s.port, err)
		}
		if s.port == 0 {
			s.port = pc.LocalAddr().(*net.UDPAddr).Port
		}
		s.addrs = append(s.addrs, a)
		confs = append(confs, pturn.PacketConnConfig{
			PacketConn: pc,
			RelayAddressGenerator: &relayGen{
				RelayAddressGeneratorStatic: pturn.RelayAddressGeneratorStatic{RelayAddress: a.AsSlice(), Address: a.String()},
				bandwidth:                   opts.Bandwidth,
			},
			PermissionHandler: s.permit,
		})
	}
	if len(confs) == 0 {
		return nil, errors.New("turn: no LAN address to serve on")
	}
	srv, err := pturn.NewServer(pturn.ServerConfig{
		Realm:              Realm,
		PacketConnConfigs:  confs,
		AuthHandler:        s.auth,
		QuotaHandler:       s.quota,
		AllocationLifetime: opts.Lifetime,
		LoggerFactory:      pionlog.New(s.log), // pion/turn's warnings and errors, through slog
		EventHandler: pturn.EventHandler{
			OnAllocationCreated: func(src, _ net.Addr, _, user, _ string, relay net.Addr, _ int) {
				s.count(user)
				s.log.Debug("relay opened", "user", user, "from", src, "relay", relay)
			},
			OnAllocationDeleted: func(src, _ net.Addr, _, user, _ string) {
				s.release(user)
				s.log.Debug("relay closed", "user", user, "from", src)
			},
		},
	})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("turn: %w", err)
	}
	s.srv = srv
	s.log.Info("STUN/TURN listening", "port", s.port, "addrs", s.addrs, "relays_to", opts.Subnets,
		"max_allocations", opts.MaxAllocations, "per_client", opts.MaxPerClient, "bandwidth", opts.Bandwidth)
	return s, nil
}

func (s *Server) has(a netip.Addr) bool {
	for _, b := range s.addrs {
		if a == b {
			return true
		}
	}
	return false
}

// Port returns the UDP port the server listens on.
func (s *Server) Port() int { return s.port }

// Addrs returns the addresses the server listens (and relays) on.
func (s *Server) Addrs() []netip.Addr { return append([]netip.Addr(nil), s.addrs...) }

// Serves reports whether the server listens on a.
func (s *Server) Serves(a netip.Addr) bool { return s.has(a.Unmap()) }

// Allocations returns how many relays are open.
func (s *Server) Allocations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Close stops the server and closes every relay.
func (s *Server) Close() error { return s.srv.Close() }

// Credentials returns a username and password valid until now + CredentialTTL for peer
// (a label for logs and per-client quotas: any text, cut to 64 bytes, ':' removed). When
// peer is an IP address inside Subnets, relays may send to that address until the
// credential ends.
func (s *Server) Credentials(peer string, now time.Time) (username, password string, expires time.Time) {
	expires = now.Add(s.opts.CredentialTTL).Truncate(time.Second)
	if a, err := netip.ParseAddr(peer); err == nil && s.inSubnets(a) {
		s.hold(a.Unmap().WithZone(""), expires, now)
	}
	peer = strings.ReplaceAll(peer, ":", "")
	if len(peer) > maxPeerLen {
		peer = peer[:maxPeerLen]
	}
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + peer
	return username, Password(s.opts.Secret, username), expires
}

// InSubnets reports whether a is inside the box's subnets (Options.Subnets; a loopback
// address only with AllowLoopback): a client there may be given a credential and be
// relayed to.
func (s *Server) InSubnets(a netip.Addr) bool { return s.inSubnets(a) }

func (s *Server) inSubnets(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	if !LANAddr(a, s.opts.AllowLoopback) {
		return false
	}
	for _, p := range s.opts.Subnets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// hold remembers that a holds a credential until exp, forgetting expired holders when
// MaxCredentialClients is reached, and else the one whose credential ends first.
func (s *Server) hold(a netip.Addr, exp, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holders == nil {
		s.holders = map[netip.Addr]time.Time{}
	}
	if _, ok := s.holders[a]; !ok && len(s.holders) >= MaxCredentialClients {
		var first netip.Addr
		for h, end := range s.holders {
			if !now.Before(end) {
				delete(s.holders, h)
			} else if !first.IsValid() || end.Before(s.holders[first]) {
				first = h
			}
		}
		if len(s.holders) >= MaxCredentialClients {
			delete(s.holders, first)
		}
	}
	if exp.After(s.holders[a]) {
		s.holders[a] = exp
	}
}

// holds reports whether a holds a credential at now.
func (s *Server) holds(a netip.Addr, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Before(s.holders[a])
}

// Relays reports whether a relay may send to peer at now: one of the box's own addresses,
// or a client inside Subnets holding a current credential.
func (s *Server) Relays(peer netip.Addr, now time.Time) bool {
	peer = peer.Unmap().WithZone("")
	return s.has(peer) || (s.inSubnets(peer) && s.holds(peer, now))
}

// permit is pion's PermissionHandler: CreatePermission and ChannelBind towards peer.
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	p, ok := netip.AddrFromSlice(peer)
	if ok && s.Relays(p, time.Now()) {
		return true
	}
	s.refuse(func(r *refusals) { r.perm++ }, "permission", "from", client, "peer", peer)
	return false
}

// refuse counts a refusal and logs at most once per refusalLogEvery, with the counts since
// the last log and the latest refusal's details.
func (s *Server) refuse(count func(*refusals), what string, args ...any) {
	s.mu.Lock()
	count(&s.refused)
	now := time.Now()
	if now.Sub(s.refused.last) < refusalLogEvery {
		s.mu.Unlock()
		return
	}
	r := s.refused
	s.refused = refusals{last: now}
	s.mu.Unlock()
	s.log.Warn("refused: over a limit or outside the box's subnets (logged once a minute)",
		append([]any{"latest", what, "quota_refused", r.quota, "permissions_refused", r.perm}, args...)...)
}

// Password is the TURN REST password of username: base64(HMAC-SHA1(secret, username)).
func Password(secret []byte, username string) string {
	h := hmac.New(sha1.New, secret)
	h.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Check reports whether username names an unexpired credential at now (its password is
// then Password(secret, username)).
func Check(username string, now time.Time, ttlCap time.Duration) bool {
	exp, peer, ok := strings.Cut(username, ":")
	if !ok || len(peer) > maxPeerLen || len(exp) == 0 || len(exp) > 12 {
		return false
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sec <= 0 {
		return false
	}
	t := time.Unix(sec, 0)
	return now.Before(t) && t.Sub(now) <= ttlCap
}

func (s *Server) auth(ra *pturn.RequestAttributes) (string, []byte, bool) {
	if !Check(ra.Username, time.Now(), s.opts.CredentialTTL+time.Minute) {
		s.log.Debug("refused: expired or malformed credential", "from", ra.SrcAddr)
		return "", nil, false
	}
	return ra.Username, pturn.GenerateAuthKey(ra.Username, ra.Realm, Password(s.opts.Secret, ra.Username)), true
}

// peerOf is the part of a username quotas count by: the peer, not the expiry (a page
// fetches a new credential for each connection).
func peerOf(username string) string {
	_, peer, _ := strings.Cut(username, ":")
	return peer
}

// quota admits an allocation while the relays open (counted by OnAllocationCreated,
// released by OnAllocationDeleted) are under the limits. pion handles one listener's
// requests one at a time.
func (s *Server) quota(username, _ string, src net.Addr) bool {
	username = peerOf(username)
	s.mu.Lock()
	total, mine := s.total, s.byUser[username]
	s.mu.Unlock()
	if total >= s.opts.MaxAllocations || mine >= s.opts.MaxPerClient {
		s.refuse(func(r *refusals) { r.quota++ }, "relay", "client", username, "from", src, "open", total, "of_client", mine)
		return false
	}
	return true
}

func (s *Server) count(username string) {
	username = peerOf(username)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	s.byUser[username]++
}

func (s *Server) release(username string) {
	username = peerOf(username)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byUser[username] > 0 {
		s.byUser[username]--
		s.total--
		if s.byUser[username] == 0 {
			delete(s.byUser, username)
		}
	}
}

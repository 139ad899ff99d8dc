// Package turn is the box's STUN and TURN server (pion/turn) for phones on a Wi-Fi that
// isolates clients from each other: each phone reaches the box, the box relays. What it
// relays is the phones' DTLS, still encrypted end to end; the box sees ciphertext only.
//
// Credentials are short-lived, in the TURN REST style: the username is "<expiry unix
// seconds>:<peer>", the password base64(HMAC-SHA1(secret, username)) with a secret made
// at each start. The page gets them from GET /api/ice. Relay addresses are the box's LAN
// addresses only: one listening socket per private address, and an allocation relays on
// the address its request came in on; a public address is never listened on nor relayed
// to.
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

	"github.com/pion/logging"
	pturn "github.com/pion/turn/v5"
)

// Realm is the TURN realm (part of the long-term credential key).
const Realm = "chattorrent"

// Defaults for Options.
const (
	DefaultPort          = 3478
	DefaultCredentialTTL = 12 * time.Hour
	// Every peer connection of a page gathers a relay, used or not (a browser may keep it
	// while the connection lives): a phone in a room of 30 may hold 29. The caps bound what a
	// misbehaving page can take, not what a full classroom needs.
	DefaultMaxAllocations = 512
	DefaultMaxPerUser     = 64
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
	// Secret signs credentials; nil means 32 random bytes (new at each start).
	Secret []byte
	// CredentialTTL is how long a credential handed out stays valid. Default 12 h.
	CredentialTTL time.Duration
	// MaxAllocations bounds the relays open at once; MaxPerUser those of one peer (the
	// username's part after the expiry: web's /api/ice uses the phone's address).
	MaxAllocations, MaxPerUser int
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

	mu     sync.Mutex
	byUser map[string]int
	total  int
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
	if opts.MaxPerUser <= 0 {
		opts.MaxPerUser = DefaultMaxPerUser
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
			PermissionHandler: func(_ net.Addr, peer net.IP) bool {
				p, ok := netip.AddrFromSlice(peer)
				return ok && LANAddr(p, opts.AllowLoopback)
			},
		})
	}
	if len(confs) == 0 {
		return nil, errors.New("turn: no LAN address to serve on")
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	srv, err := pturn.NewServer(pturn.ServerConfig{
		Realm:              Realm,
		PacketConnConfigs:  confs,
		AuthHandler:        s.auth,
		QuotaHandler:       s.quota,
		AllocationLifetime: opts.Lifetime,
		LoggerFactory:      lf,
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
	s.log.Info("STUN/TURN listening", "port", s.port, "addrs", s.addrs, "max_allocations", opts.MaxAllocations,
		"per_user", opts.MaxPerUser, "bandwidth", opts.Bandwidth)
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
// (a label for logs and per-user quotas: any text, cut to 64 bytes, ':' removed).
func (s *Server) Credentials(peer string, now time.Time) (username, password string, expires time.Time) {
	peer = strings.ReplaceAll(peer, ":", "")
	if len(peer) > maxPeerLen {
		peer = peer[:maxPeerLen]
	}
	expires = now.Add(s.opts.CredentialTTL).Truncate(time.Second)
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + peer
	return username, Password(s.opts.Secret, username), expires
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
	defer s.mu.Unlock()
	if s.total >= s.opts.MaxAllocations || s.byUser[username] >= s.opts.MaxPerUser {
		s.log.Warn("relay refused: quota", "user", username, "from", src, "open", s.total, "of_user", s.byUser[username])
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

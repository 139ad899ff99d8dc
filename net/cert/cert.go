// Package cert makes and keeps the box's own certificate authority and its HTTPS server
// certificate.
//
// Phones need HTTPS for the microphone, WebCrypto and service workers, and an offline box
// cannot get a public certificate. So on first start the box creates a local CA, signs a
// server certificate with it and keeps both in its data directory; a phone that installs the
// CA once (see web's /trust page) trusts the box from then on.
//
// Files in the data directory:
//
//	ca.crt       the CA certificate (PEM), the file phones install
//	ca.key       the CA private key (PEM, PKCS #8), mode 0600
//	server.crt   the server certificate (PEM), signed by the CA
//	server.key   its private key (PEM, PKCS #8), mode 0600
//
// Every file is written atomically (temporary file, fsync, rename). A valid CA is never
// replaced behind the user's back: a missing half or a corrupt CA file is an error that names
// the file and says what to do, and Retire (the "chattorrent new-ca" command) sets the CA
// aside so that the next start makes a new one. Only an expired CA, which no phone accepts
// any more, is retired automatically. The server certificate is re-issued (same CA) whenever
// it is missing, corrupt, near expiry, or does not cover the box's current names and
// addresses.
//
// The CA carries critical X.509 name constraints limited to this box: the DNS names it was
// made for (<hostname>.local, the clash alternates <hostname>-2.local … <hostname>-16.local,
// and localhost) and the exact addresses the box had then (127.0.0.1, ::1 and its private,
// link-local or shared-range interface addresses, each as a single address). It may also
// sign only TLS server certificates (extended key usage). A phone that trusts one box
// therefore cannot be fooled by that box's key about any other name or address: not a public
// site, not another box's or the router's name, not another .local or home.arpa name, not an
// address of the subnet other than the box's own. Certificates are valid from a day before
// the box's clock (Backdate) so that a box or phone whose clock is slightly wrong still
// connects. An older box's broad CA (every .local name and private range) is kept, with a
// warning at each start, until the owner runs "chattorrent new-ca" (see OPERATIONS.md).
package cert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chattorrent/chattorrent/store/atomicfile"
)

// File names inside the data directory.
const (
	CAFile      = "ca.crt"
	CAKeyFile   = "ca.key"
	LeafFile    = "server.crt"
	LeafKeyFile = "server.key"
)

// Lifetimes and the re-issue margin.
const (
	// CALifetime bounds how long a leaked ca.key (a lost SD card) stays useful. Three
	// years: phones install the CA by hand, so it should not expire often; an expired CA
	// is retired and a new one made at the next start.
	CALifetime = 3 * 365 * 24 * time.Hour
	// LeafLifetime stays under the 825 days Apple's platforms accept for a server
	// certificate.
	LeafLifetime = 2 * 365 * 24 * time.Hour
	// RenewBefore is how long before expiry the server certificate is re-issued.
	RenewBefore = 30 * 24 * time.Hour
	// Backdate is how long before the clock certificates become valid, so that a clock
	// that is wrong by less than a day (a Pi without a real-time clock, a phone set by
	// hand) still accepts them.
	Backdate = 24 * time.Hour
)

// DefaultHostname is the generic mDNS name without ".local". Boxes add a suffix of their
// own (firmware's default is "chattorrent-<6 hex>"), so that the CA can be limited to a
// name no other box has.
const DefaultHostname = "chattorrent"

// RetiredPrefix starts the name of the directories Retire moves old CA files into.
const RetiredPrefix = "retired-ca-"

// ErrCorrupt is wrapped by the errors Load returns for unreadable CA files.
var ErrCorrupt = errors.New("corrupt certificate file")

// Options tunes Load. The zero value is ready to use.
type Options struct {
	// Hostname is the box's mDNS name without ".local"; the certificate covers
	// "<Hostname>.local". Default DefaultHostname ("chattorrent").
	Hostname string
	// AltHostnames are more mDNS names without ".local" the certificate covers: those the
	// box may answer for instead when another host holds Hostname ("chattorrent-2", …).
	// A new CA is limited to Hostname, AltHostnames and localhost: changing them later
	// needs a new CA (Retire).
	AltHostnames []string
	// Addrs lists the addresses the certificate must cover besides 127.0.0.1 and ::1.
	// Default InterfaceAddrs (every non-loopback unicast address of the machine, read once).
	Addrs func() ([]netip.Addr, error)
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives what Load decided (created, reused, re-issued). Default: discarded.
	Logger *slog.Logger
}

// Box is the loaded CA and server certificate.
type Box struct {
	ca      *x509.Certificate
	caPEM   []byte
	leaf    *x509.Certificate
	tlsCert tls.Certificate
}

// Load reads the CA and server certificate from dir, creating whatever is missing (dir
// included, mode 0700) and re-issuing the server certificate when it no longer fits.
func Load(dir string, opts Options) (*Box, error) {
	opts = opts.withDefaults()
	log := opts.Logger.With("component", "cert")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	now := opts.Now()

	names, addrs, err := opts.wanted()
	if err != nil {
		return nil, err
	}

	ca, caKey, caPEM, err := loadCA(dir, now)
	if errors.Is(err, errExpired) {
		// No phone accepts an expired CA: every phone must install a new one anyway.
		moved, rerr := Retire(dir, now)
		if rerr != nil {
			return nil, fmt.Errorf("%w (and setting it aside failed: %w)", err, rerr)
		}
		log.Warn("the certificate authority expired; it was set aside and a new one is made: every phone must install the new one",
			"expired", ca.NotAfter.Format(time.DateOnly), "old", moved)
		ca, caKey, caPEM, err = nil, nil, nil, fmt.Errorf("cert: CA retired: %w", fs.ErrNotExist)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ca, caKey, caPEM, err = createCA(dir, opts.Hostname, names, addrs, now)
		if err != nil {
			return nil, err
		}
		log.Info("created a new certificate authority", "file", filepath.Join(dir, CAFile), "fingerprint", Fingerprint(ca),
			"names", ca.PermittedDNSDomains, "addrs", ipRanges(ca), "expires", ca.NotAfter.Format(time.DateOnly))
	case err != nil:
		return nil, err
	}
	if broad := Broad(ca); len(broad) > 0 {
		log.Warn("this box's certificate authority was made by an older version and may vouch for names that are not this box's; "+
			"run \"chattorrent new-ca\" and have phones install the new CA (docs/OPERATIONS.md, \"Re-minting the CA\")",
			"broad", broad)
	}

	// Names the CA may not vouch for cannot be in the server certificate: a client that
	// enforces name constraints would refuse the whole chain.
	var skipped []string
	names = slices.DeleteFunc(names, func(n string) bool {
		if !permitsDNS(ca, n) {
			skipped = append(skipped, n)
			return true
		}
		return false
	})
	addrs = slices.DeleteFunc(addrs, func(a netip.Addr) bool {
		if !permitsIP(ca, a) {
			skipped = append(skipped, a.String())
			return true
		}
		return false
	})
	if len(skipped) > 0 {
		log.Warn("the certificate authority was made for other names or addresses and cannot vouch for these; browsers will warn there "+
			"(the box's name and its addresses when the CA was made still work; \"chattorrent new-ca\" makes a CA for the current ones)", "names", skipped)
	}

	leaf, tlsCert, why := loadLeaf(dir, ca, names, addrs, now)
	if why != "" {
		leaf, tlsCert, err = issueLeaf(dir, ca, caKey, names, addrs, now)
		if err != nil {
			return nil, err
		}
		log.Info("issued the server certificate", "reason", why, "names", names, "addrs", addrs, "expires", leaf.NotAfter.Format(time.DateOnly))
	} else {
		log.Debug("reusing the server certificate", "expires", leaf.NotAfter.Format(time.DateOnly))
	}
	return &Box{ca: ca, caPEM: caPEM, leaf: leaf, tlsCert: tlsCert}, nil
}

// TLSConfig returns a fresh server configuration (TLS 1.2 or later) serving the box's
// certificate.
func (b *Box) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{b.tlsCert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// CAPEM returns the CA certificate in PEM form, as phones install it.
func (b *Box) CAPEM() []byte { return bytes.Clone(b.caPEM) }

// CA returns the parsed CA certificate.
func (b *Box) CA() *x509.Certificate { return b.ca }

// Leaf returns the parsed server certificate.
func (b *Box) Leaf() *x509.Certificate { return b.leaf }

// CAFingerprint returns the SHA-256 fingerprint of the CA certificate as phones and
// browsers show it: upper-case hex pairs separated by colons.
func (b *Box) CAFingerprint() string { return Fingerprint(b.ca) }

// Fingerprint returns the SHA-256 of c's DER encoding as "AB:CD:…".
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// InterfaceAddrs returns every non-loopback unicast address of the machine's interfaces.
// IPv6 link-local addresses are left out: a browser cannot open a URL that needs a zone.
func InterfaceAddrs() ([]netip.Addr, error) {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("cert: list interface addresses: %w", err)
	}
	var out []netip.Addr
	for _, ia := range ifaddrs {
		pfx, err := netip.ParsePrefix(ia.String())
		if err != nil {
			continue
		}
		a := pfx.Addr().Unmap()
		if a.IsLoopback() || a.IsMulticast() || a.IsUnspecified() || (a.Is6() && a.IsLinkLocalUnicast()) {
			continue
		}
		out = append(out, a.WithZone(""))
	}
	return out, nil
}

func (o Options) withDefaults() Options {
	if o.Hostname == "" {
		o.Hostname = DefaultHostname
	}
	if o.Addrs == nil {
		o.Addrs = InterfaceAddrs
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// wanted returns the DNS names and addresses the server certificate should cover now.
func (o Options) wanted() ([]string, []netip.Addr, error) {
	host := strings.ToLower(strings.TrimSuffix(o.Hostname, ".local"))
	if !validDNSName(host) {
		return nil, nil, fmt.Errorf("cert: hostname %q is not a valid DNS name", o.Hostname)
	}
	names := []string{"localhost", host + ".local"}
	for _, alt := range o.AltHostnames {
		alt = strings.ToLower(strings.TrimSuffix(alt, ".local"))
		if !validDNSName(alt) {
			return nil, nil, fmt.Errorf("cert: hostname %q is not a valid DNS name", alt)
		}
		if !slices.Contains(names, alt+".local") {
			names = append(names, alt+".local")
		}
	}
	found, err := o.Addrs()
	if err != nil {
		return nil, nil, err
	}
	addrs := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	for _, a := range found {
		a = a.Unmap().WithZone("")
		if a.IsValid() && !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return names, addrs, nil
}

func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// privateRanges are where the box's addresses must lie for the CA to vouch for them:
// private, shared (CGNAT), loopback, link-local and unique-local. A public address of the box
// is left out of the CA, so a leaked key can never vouch for a public address.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
}

func private(a netip.Addr) bool {
	return slices.ContainsFunc(privateRanges, func(p netip.Prefix) bool { return p.Contains(a) })
}

// createCA makes a CA limited to exactly names (each DNS name and, as X.509 name
// constraints go, names under it) and the private addresses among addrs, each as a single
// address. Exact addresses rather than the box's subnets: a subnet such as 192.168.1.0/24
// holds the router and the NAS of millions of LANs. The price is that an address the box
// gets later (another DHCP lease, another network) is not covered until a new CA is made;
// its mDNS name still is.
func createCA(dir, hostname string, names []string, addrs []netip.Addr, now time.Time) (*x509.Certificate, crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cert: generate CA key: %w", err)
	}
	var ipNets []*net.IPNet
	for _, a := range addrs {
		if a = a.Unmap().WithZone(""); private(a) {
			ipNets = append(ipNets, &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())})
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "ChatTorrent box " + hostname + " CA", Organization: []string{"ChatTorrent"}},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// Critical, as RFC 5280 asks: a client that does not understand name constraints
		// must refuse the CA rather than trust it for every name.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         slices.Clone(names),
		PermittedIPRanges:           ipNets,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cert: create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cert: parse new CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFileAtomic(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return nil, nil, nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, CAFile), caPEM, 0o644); err != nil {
		return nil, nil, nil, err
	}
	return ca, key, caPEM, nil
}

// errExpired is what loadCA returns, with the CA, when the CA has expired.
var errExpired = errors.New("cert: the CA expired")

// loadCA returns an error wrapping fs.ErrNotExist only when neither CA file exists, and
// errExpired with the CA when it has expired.
func loadCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, []byte, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, nil, fmt.Errorf("cert: no CA in %s: %w", dir, fs.ErrNotExist)
	case errors.Is(certErr, fs.ErrNotExist):
		return nil, nil, nil, fmt.Errorf("cert: %s exists but %s is missing: restore %s from a backup, or delete %s to make a new CA (every phone must then install the new one)", keyPath, certPath, CAFile, keyPath)
	case errors.Is(keyErr, fs.ErrNotExist):
		return nil, nil, nil, fmt.Errorf("cert: %s exists but its key %s is missing: restore %s from a backup, or delete %s to make a new CA (every phone must then install the new one)", certPath, keyPath, CAKeyFile, certPath)
	case certErr != nil:
		return nil, nil, nil, fmt.Errorf("cert: read CA: %w", certErr)
	case keyErr != nil:
		return nil, nil, nil, fmt.Errorf("cert: read CA key: %w", keyErr)
	}
	corrupt := func(path, what string, err error) error {
		return fmt.Errorf("cert: %s is not a valid %s (%v): %w; restore it from a backup, or delete %s and %s to make a new CA (every phone must then install the new one)",
			path, what, err, ErrCorrupt, certPath, keyPath)
	}
	ca, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, nil, corrupt(certPath, "CA certificate", err)
	}
	if !ca.IsCA {
		return nil, nil, nil, corrupt(certPath, "CA certificate", errors.New("not a CA"))
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, nil, corrupt(keyPath, "CA key", err)
	}
	if !publicKeysEqual(ca.PublicKey, key.Public()) {
		return nil, nil, nil, corrupt(keyPath, "CA key", errors.New("it does not belong to "+CAFile))
	}
	if now.After(ca.NotAfter) {
		return ca, nil, nil, fmt.Errorf("%w on %s (%s)", errExpired, ca.NotAfter.Format(time.DateOnly), certPath)
	}
	return ca, key, certPEM, nil
}

// loadLeaf returns the stored server certificate, or why it must be issued again.
func loadLeaf(dir string, ca *x509.Certificate, names []string, addrs []netip.Addr, now time.Time) (*x509.Certificate, tls.Certificate, string) {
	certPEM, err := os.ReadFile(filepath.Join(dir, LeafFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, tls.Certificate{}, "none yet"
	} else if err != nil {
		return nil, tls.Certificate{}, "unreadable: " + err.Error()
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, LeafKeyFile))
	if err != nil {
		return nil, tls.Certificate{}, "key unreadable: " + err.Error()
	}
	tc, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, tls.Certificate{}, "corrupt: " + err.Error()
	}
	leaf := tc.Leaf
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return nil, tls.Certificate{}, "not signed by the current CA"
	}
	if now.Add(RenewBefore).After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return nil, tls.Certificate{}, "expires soon or not yet valid"
	}
	for _, n := range names {
		if !slices.Contains(leaf.DNSNames, n) {
			return nil, tls.Certificate{}, "new name " + n
		}
	}
	for _, a := range addrs {
		if !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool { return ip.Equal(a.AsSlice()) }) {
			return nil, tls.Certificate{}, "new address " + a.String()
		}
	}
	return leaf, tc, ""
}

func issueLeaf(dir string, ca *x509.Certificate, caKey crypto.Signer, names []string, addrs []netip.Addr, now time.Time) (*x509.Certificate, tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("cert: generate server key: %w", err)
	}
	var ips []net.IP
	for _, a := range addrs {
		ips = append(ips, a.AsSlice())
	}
	notAfter := now.Add(LeafLifetime)
	if notAfter.After(ca.NotAfter) {
		notAfter = ca.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: commonName(names), Organization: []string{"ChatTorrent"}},
		NotBefore:    now.Add(-Backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("cert: create server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFileAtomic(filepath.Join(dir, LeafKeyFile), keyPEM, 0o600); err != nil {
		return nil, tls.Certificate{}, err
	}
	if err := writeFileAtomic(filepath.Join(dir, LeafFile), certPEM, 0o644); err != nil {
		return nil, tls.Certificate{}, err
	}
	tc, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("cert: load new server certificate: %w", err)
	}
	return tc.Leaf, tc, nil
}

// commonName picks the box's mDNS name for the (informational) subject.
func commonName(names []string) string {
	for _, n := range names {
		if strings.HasSuffix(n, ".local") {
			return n
		}
	}
	return "localhost"
}

// Broad lists what ca may vouch for beyond one box: name constraints on whole domains
// (".local", "home.arpa") or address ranges wider than one address, or no constraint at all
// ("any name", "any address"). Empty for a CA this version makes. CAs made before name
// constraints were limited to one box permit "local", "localhost", "home.arpa" and every
// private range.
func Broad(ca *x509.Certificate) []string {
	var out []string
	if len(ca.PermittedDNSDomains) == 0 {
		out = append(out, "any name")
	}
	for _, d := range ca.PermittedDNSDomains {
		// One box's names are "<label>.local" (and localhost, which never leaves the
		// device); "local", "home.arpa" or a bare host name ("raspberrypi") are everyone's.
		label, ok := strings.CutSuffix(d, ".local")
		if d != "localhost" && (!ok || label == "" || strings.Contains(label, ".")) {
			out = append(out, d)
		}
	}
	if len(ca.PermittedIPRanges) == 0 {
		out = append(out, "any address")
	}
	for _, n := range ca.PermittedIPRanges {
		if ones, bits := n.Mask.Size(); ones != bits {
			out = append(out, n.String())
		}
	}
	return out
}

// Retire moves the CA and server certificate files out of dir's way, into a new
// directory dir/retired-ca-<time>, and returns its path. The next Load makes a new CA (phones
// must install it). Nothing else in dir is touched: rooms, files and the box's identity stay.
// A dir without a CA is not an error: Retire returns "".
func Retire(dir string, now time.Time) (string, error) {
	var present []string
	for _, f := range []string{CAFile, CAKeyFile, LeafFile, LeafKeyFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			present = append(present, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("cert: retire: %w", err)
		}
	}
	if len(present) == 0 {
		return "", nil
	}
	dest := filepath.Join(dir, RetiredPrefix+now.UTC().Format("20060102T150405Z"))
	if err := os.Mkdir(dest, 0o700); err != nil {
		return "", fmt.Errorf("cert: retire: %w", err)
	}
	// Should a rename fail half-way, Load reports the missing half and names both files.
	for _, f := range present {
		if err := os.Rename(filepath.Join(dir, f), filepath.Join(dest, f)); err != nil {
			return dest, fmt.Errorf("cert: retire %s: %w", f, err)
		}
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return dest, fmt.Errorf("cert: retire: %w", err)
	}
	return dest, nil
}

func ipRanges(ca *x509.Certificate) []string {
	out := make([]string, 0, len(ca.PermittedIPRanges))
	for _, n := range ca.PermittedIPRanges {
		out = append(out, n.String())
	}
	return out
}

func parseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return s, nil
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cert: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

func randomSerial() *big.Int {
	// 128 random bits; rand.Int never fails with crypto/rand's reader.
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return n.Add(n, big.NewInt(1))
}

func dnsUnder(name, domain string) bool {
	return name == domain || strings.HasSuffix(name, "."+domain)
}

func permitsDNS(ca *x509.Certificate, name string) bool {
	if len(ca.PermittedDNSDomains) == 0 {
		return true
	}
	return slices.ContainsFunc(ca.PermittedDNSDomains, func(d string) bool { return dnsUnder(name, d) })
}

func permitsIP(ca *x509.Certificate, a netip.Addr) bool {
	if len(ca.PermittedIPRanges) == 0 {
		return true
	}
	return slices.ContainsFunc(ca.PermittedIPRanges, func(n *net.IPNet) bool { return n.Contains(a.AsSlice()) })
}

// writeFileAtomic writes data to path whole or not at all (store/atomicfile).
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := atomicfile.WriteBytes(path, perm, data); err != nil {
		return fmt.Errorf("cert: write %s: %w", path, err)
	}
	return nil
}

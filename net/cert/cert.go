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
// Every file is written atomically (temporary file, fsync, rename). The CA is never replaced
// behind the user's back: a missing half or a corrupt CA file is an error that names the file
// and says what to do. The server certificate is re-issued (same CA) whenever it is missing,
// corrupt, near expiry, or does not cover the box's current names and addresses.
//
// The CA carries X.509 name constraints: it can only vouch for local names (.local,
// localhost, home.arpa, the names the box had when the CA was made) and private, loopback
// and link-local addresses. A phone that trusts it therefore cannot be fooled about any
// public site even if the box's key leaks.
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
	CALifetime   = 10 * 365 * 24 * time.Hour
	LeafLifetime = 2 * 365 * 24 * time.Hour
	// RenewBefore is how long before expiry the server certificate is re-issued.
	RenewBefore = 30 * 24 * time.Hour
)

// DefaultHostname is the box's mDNS name without ".local".
const DefaultHostname = "chattorrent"

// ErrCorrupt is wrapped by the errors Load returns for unreadable CA files.
var ErrCorrupt = errors.New("corrupt certificate file")

// Options tunes Load. The zero value is ready to use.
type Options struct {
	// Hostname is the box's mDNS name without ".local"; the certificate covers
	// "<Hostname>.local". Default DefaultHostname ("chattorrent").
	Hostname string
	// AltHostnames are more mDNS names without ".local" the certificate covers: those the
	// box may answer for instead when another host holds Hostname ("chattorrent-2", …).
	AltHostnames []string
	// MachineHostname is the operating system's host name, also covered by the certificate
	// when it is a valid DNS name. Default os.Hostname().
	MachineHostname string
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
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ca, caKey, caPEM, err = createCA(dir, opts.Hostname, names, now)
		if err != nil {
			return nil, err
		}
		log.Info("created a new certificate authority", "file", filepath.Join(dir, CAFile), "fingerprint", Fingerprint(ca))
	case err != nil:
		return nil, err
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
		log.Warn("the certificate authority cannot vouch for these names; browsers will warn there", "names", skipped)
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
	if o.MachineHostname == "" {
		o.MachineHostname, _ = os.Hostname()
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
	if m := strings.ToLower(strings.TrimSuffix(o.MachineHostname, ".")); validDNSName(m) && !slices.Contains(names, m) {
		names = append(names, m)
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

// permittedRanges are the address ranges the CA may vouch for.
var permittedRanges = []netip.Prefix{
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

func createCA(dir, hostname string, names []string, now time.Time) (*x509.Certificate, crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cert: generate CA key: %w", err)
	}
	domains := []string{"local", "localhost", "home.arpa"}
	for _, n := range names {
		if !slices.ContainsFunc(domains, func(d string) bool { return dnsUnder(n, d) }) {
			domains = append(domains, n)
		}
	}
	var ipNets []*net.IPNet
	for _, p := range permittedRanges {
		ipNets = append(ipNets, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "ChatTorrent box " + hostname + " CA", Organization: []string{"ChatTorrent"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		PermittedDNSDomains:   domains,
		PermittedIPRanges:     ipNets,
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

// loadCA returns an error wrapping fs.ErrNotExist only when neither CA file exists.
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
		return nil, nil, nil, fmt.Errorf("cert: the CA in %s expired on %s: delete %s and %s to make a new one (every phone must then install it)",
			certPath, ca.NotAfter.Format(time.DateOnly), certPath, keyPath)
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
		NotBefore:    now.Add(-time.Hour),
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

// writeFileAtomic writes data to path through a temporary file in the same directory,
// synced and renamed over path, so a power cut leaves either the old or the new file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cert: write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("cert: write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cert: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cert: write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

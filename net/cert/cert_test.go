package cert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testOpts(addrs ...string) Options {
	return Options{
		Hostname:     "box",
		AltHostnames: []string{"box-2"},
		Addrs: func() ([]netip.Addr, error) {
			var out []netip.Addr
			for _, a := range addrs {
				out = append(out, netip.MustParseAddr(a))
			}
			return out, nil
		},
		Now: func() time.Time { return t0 },
	}
}

func mustLoad(t *testing.T, dir string, opts Options) *Box {
	t.Helper()
	b, err := Load(dir, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return b
}

func read(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verify checks that the box's chain verifies for every name and address, at t0.
func verify(t *testing.T, b *Box, hosts ...string) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b.CAPEM()) {
		t.Fatal("CAPEM does not parse")
	}
	for _, h := range hosts {
		_, err := b.Leaf().Verify(x509.VerifyOptions{
			DNSName:     h,
			Roots:       roots,
			CurrentTime: t0,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("verify %q: %v", h, err)
		}
	}
}

func TestCreateVerifiesEverySAN(t *testing.T) {
	dir := t.TempDir()
	b := mustLoad(t, filepath.Join(dir, "state"), testOpts("192.168.4.1", "10.0.0.7", "fd00::5"))
	verify(t, b, "localhost", "box.local", "box-2.local", "127.0.0.1", "::1", "192.168.4.1", "10.0.0.7", "fd00::5")

	ca := b.CA()
	if !ca.IsCA || ca.Subject.CommonName != "ChatTorrent box box CA" {
		t.Errorf("CA subject %q IsCA %v", ca.Subject.CommonName, ca.IsCA)
	}
	if got := ca.NotAfter.Sub(t0); got < 2*365*24*time.Hour || got > 3*366*24*time.Hour {
		t.Errorf("CA lifetime %v", got)
	}
	if got := b.Leaf().NotAfter.Sub(t0); got < 700*24*time.Hour || got > 800*24*time.Hour {
		t.Errorf("leaf lifetime %v", got)
	}
	for _, f := range []string{CAKeyFile, LeafKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, "state", f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if fp := b.CAFingerprint(); len(fp) != 95 || strings.ToUpper(fp) != fp {
		t.Errorf("fingerprint %q", fp)
	}
	cfg := b.TLSConfig()
	if cfg.MinVersion < 0x0303 || len(cfg.Certificates) != 1 {
		t.Errorf("TLS config: min %x, %d certs", cfg.MinVersion, len(cfg.Certificates))
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Join(dir, "state"))
	if len(entries) != 4 {
		t.Errorf("data dir holds %d entries, want 4", len(entries))
	}
}

func TestNameConstraintsKeepPublicNamesOut(t *testing.T) {
	dir := t.TempDir()
	b := mustLoad(t, dir, testOpts("192.168.4.1", "8.8.8.8", "2001:db8::1"))
	verify(t, b, "box.local", "192.168.4.1")
	for _, ip := range b.Leaf().IPAddresses {
		if ip.String() == "8.8.8.8" || ip.String() == "2001:db8::1" {
			t.Errorf("leaf covers public address %v", ip)
		}
	}
	// Even a certificate the CA key signs for a public name must not verify.
	if len(b.CA().PermittedDNSDomains) == 0 || len(b.CA().PermittedIPRanges) == 0 {
		t.Fatal("CA has no name constraints")
	}
	if permitsDNS(b.CA(), "example.com") || permitsIP(b.CA(), netip.MustParseAddr("8.8.8.8")) {
		t.Error("CA permits public names")
	}
}

func TestReuse(t *testing.T) {
	dir := t.TempDir()
	opts := testOpts("192.168.4.1")
	b1 := mustLoad(t, dir, opts)
	ca1, leaf1 := read(t, dir, CAFile), read(t, dir, LeafFile)

	opts.Now = func() time.Time { return t0.Add(24 * time.Hour) }
	b2 := mustLoad(t, dir, opts)
	if !bytes.Equal(b2.CAPEM(), ca1) || !bytes.Equal(read(t, dir, CAFile), ca1) {
		t.Error("CA changed on reuse")
	}
	if !bytes.Equal(read(t, dir, LeafFile), leaf1) {
		t.Error("server certificate re-issued without reason")
	}
	if b1.CAFingerprint() != b2.CAFingerprint() {
		t.Error("fingerprint changed")
	}
}

// New names and addresses get a new server certificate when the CA may vouch for them: an
// older box's broad CA (a CA this version makes covers no new name, see
// TestNewNameNeedsNewCA).
func TestReissue(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Options)
	}{
		{"new address under a broad CA", func(o *Options) { *o = testOpts("192.168.4.1", "10.1.2.3") }},
		{"new hostname under a broad CA", func(o *Options) { o.Hostname = "kitchen" }},
		{"leaf deleted", func(*Options) {}},
		{"near expiry", func(o *Options) {
			o.Now = func() time.Time { return t0.Add(LeafLifetime - RenewBefore + time.Hour) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if strings.Contains(tt.name, "broad") {
				oldBroadCA(t, dir)
			}
			opts := testOpts("192.168.4.1")
			mustLoad(t, dir, opts)
			ca1, leaf1 := read(t, dir, CAFile), read(t, dir, LeafFile)
			if tt.name == "leaf deleted" {
				os.Remove(filepath.Join(dir, LeafFile))
			}
			tt.change(&opts)
			b := mustLoad(t, dir, opts)
			if !bytes.Equal(read(t, dir, CAFile), ca1) {
				t.Error("CA replaced")
			}
			if bytes.Equal(read(t, dir, LeafFile), leaf1) {
				t.Error("server certificate not re-issued")
			}
			if got := b.Leaf(); got.CheckSignatureFrom(b.CA()) != nil {
				t.Error("new leaf not signed by the CA")
			}
		})
	}
	t.Run("new address verifies under a broad CA", func(t *testing.T) {
		dir := t.TempDir()
		oldBroadCA(t, dir)
		mustLoad(t, dir, testOpts("192.168.4.1"))
		b := mustLoad(t, dir, testOpts("192.168.4.1", "10.1.2.3"))
		verify(t, b, "10.1.2.3", "192.168.4.1", "box.local")
	})
}

func TestCorruptFiles(t *testing.T) {
	garbage := []byte("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
	for _, name := range []string{CAFile, CAKeyFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mustLoad(t, dir, testOpts())
			if err := os.WriteFile(filepath.Join(dir, name), garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir, testOpts())
			if err == nil {
				t.Fatal("Load succeeded with a corrupt CA file")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), filepath.Join(dir, name)) || !strings.Contains(err.Error(), "delete") {
				t.Errorf("error does not name the file and the fix: %v", err)
			}
			if !bytes.Equal(read(t, dir, name), garbage) {
				t.Error("corrupt CA file was replaced")
			}
		})
	}
	t.Run("missing CA key", func(t *testing.T) {
		dir := t.TempDir()
		mustLoad(t, dir, testOpts())
		os.Remove(filepath.Join(dir, CAKeyFile))
		_, err := Load(dir, testOpts())
		if err == nil || !strings.Contains(err.Error(), CAKeyFile) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("CA key of another CA", func(t *testing.T) {
		dir, other := t.TempDir(), t.TempDir()
		mustLoad(t, dir, testOpts())
		mustLoad(t, other, testOpts())
		if err := os.WriteFile(filepath.Join(dir, CAKeyFile), read(t, other, CAKeyFile), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir, testOpts()); !errors.Is(err, ErrCorrupt) {
			t.Errorf("err = %v", err)
		}
	})
	for _, name := range []string{LeafFile, LeafKeyFile} {
		t.Run(name+" regenerated", func(t *testing.T) {
			dir := t.TempDir()
			mustLoad(t, dir, testOpts("192.168.4.1"))
			ca1 := read(t, dir, CAFile)
			if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o600); err != nil {
				t.Fatal(err)
			}
			b := mustLoad(t, dir, testOpts("192.168.4.1"))
			if !bytes.Equal(read(t, dir, CAFile), ca1) {
				t.Error("CA replaced")
			}
			verify(t, b, "box.local", "192.168.4.1")
		})
	}
	t.Run("leaf signed by another CA", func(t *testing.T) {
		dir, other := t.TempDir(), t.TempDir()
		mustLoad(t, dir, testOpts())
		mustLoad(t, other, testOpts())
		for _, f := range []string{LeafFile, LeafKeyFile} {
			os.WriteFile(filepath.Join(dir, f), read(t, other, f), 0o600)
		}
		verify(t, mustLoad(t, dir, testOpts()), "box.local")
	})
}

// An expired CA, which no phone accepts any more, is set aside (not deleted) and a new one
// is made, so that the box still starts.
func TestExpiredCA(t *testing.T) {
	dir := t.TempDir()
	old := mustLoad(t, dir, testOpts())
	opts := testOpts()
	later := t0.Add(CALifetime + time.Hour)
	opts.Now = func() time.Time { return later }
	b := mustLoad(t, dir, opts)
	if bytes.Equal(b.CAPEM(), old.CAPEM()) {
		t.Fatal("the expired CA was kept")
	}
	retired, _ := filepath.Glob(filepath.Join(dir, RetiredPrefix+"*", CAFile))
	if len(retired) != 1 || !bytes.Equal(read(t, filepath.Dir(retired[0]), CAFile), old.CAPEM()) {
		t.Errorf("the expired CA was not kept aside: %v", retired)
	}
}

func TestBadHostname(t *testing.T) {
	opts := testOpts()
	opts.Hostname = "no spaces"
	if _, err := Load(t.TempDir(), opts); err == nil {
		t.Error("Load accepted an invalid hostname")
	}
}

func TestInterfaceAddrs(t *testing.T) {
	addrs, err := InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IsLoopback() || a.IsMulticast() || a.Zone() != "" {
			t.Errorf("unexpected address %v", a)
		}
	}
}

// signedBy signs a server certificate for dns and ips with the box's CA key, as whoever holds
// ca.key could, and reports whether a client trusting the CA accepts it for host.
func forgedVerifies(t *testing.T, dir string, b *Box, host string) bool {
	t.Helper()
	key, err := parseKey(read(t, dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		NotBefore:    t0.Add(-time.Hour),
		NotAfter:     t0.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if a, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = []net.IP{a.AsSlice()}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.CA(), leafKey.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(b.CA())
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, CurrentTime: t0})
	return err == nil
}

// The CA vouches for this box's names and addresses only: a certificate its key signs for
// any other .local name, home.arpa, the router or another address of the subnet, or a
// public name, is refused by a client that trusts the CA.
func TestCAVouchesOnlyForThisBox(t *testing.T) {
	dir := t.TempDir()
	b := mustLoad(t, dir, testOpts("192.168.1.57", "fd00::5", "203.0.113.9"))
	for _, h := range []string{"box.local", "box-2.local", "localhost", "127.0.0.1", "::1", "192.168.1.57", "fd00::5"} {
		if !forgedVerifies(t, dir, b, h) {
			t.Errorf("the CA does not vouch for the box's own %s", h)
		}
	}
	for _, h := range []string{"chattorrent.local", "other-box.local", "router.local", "box-3.local", "local",
		"nas.home.arpa", "router.lan", "raspberrypi", "example.com",
		"192.168.1.1", "192.168.1.58", "10.0.0.1", "172.16.0.1", "169.254.1.1", "100.64.0.1", "127.0.0.2",
		"fd00::1", "fe80::1", "203.0.113.9", "8.8.8.8"} {
		if forgedVerifies(t, dir, b, h) {
			t.Errorf("the CA vouches for %s, which is not this box", h)
		}
	}
	ca := b.CA()
	if !ca.PermittedDNSDomainsCritical {
		t.Error("name constraints are not critical")
	}
	if !slices.Equal(ca.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("CA extended key usage %v, want server auth only", ca.ExtKeyUsage)
	}
	if broad := Broad(ca); len(broad) > 0 {
		t.Errorf("a new CA is broad: %v", broad)
	}
}

// Certificates are valid from a day before the clock: a phone or box whose clock is up to
// a day behind still accepts them.
func TestBackdated(t *testing.T) {
	b := mustLoad(t, t.TempDir(), testOpts())
	for _, c := range []*x509.Certificate{b.CA(), b.Leaf()} {
		if got := t0.Sub(c.NotBefore); got < 24*time.Hour {
			t.Errorf("%s valid from %v before the clock, want a day", c.Subject.CommonName, got)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(b.CA())
	if _, err := b.Leaf().Verify(x509.VerifyOptions{DNSName: "box.local", Roots: roots, CurrentTime: t0.Add(-23 * time.Hour)}); err != nil {
		t.Errorf("a clock 23 h behind: %v", err)
	}
}

// oldBroadCA writes a CA as versions before this one made it: every .local name, home.arpa,
// localhost, the machine's name and every private range.
func oldBroadCA(t *testing.T, dir string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var nets []*net.IPNet
	for _, p := range privateRanges {
		nets = append(nets, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ChatTorrent box chattorrent CA"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
		PermittedDNSDomains: []string{"local", "localhost", "home.arpa", "raspberrypi"},
		PermittedIPRanges:   nets,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	os.WriteFile(filepath.Join(dir, CAFile), caPEM, 0o644)
	os.WriteFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600)
	return caPEM
}

// An older box's broad CA is kept (phones trust it; replacing it behind their back would
// break every one of them) with a warning at each start; "new-ca" (Retire) sets it aside,
// with nothing else in the data directory touched, and the next start makes a narrow one.
func TestOldBroadCAKeptWithWarningUntilRetired(t *testing.T) {
	dir := t.TempDir()
	oldPEM := oldBroadCA(t, dir)
	os.WriteFile(filepath.Join(dir, "identity.json"), []byte("{}"), 0o600)
	os.MkdirAll(filepath.Join(dir, "store"), 0o700)

	var logs bytes.Buffer
	opts := testOpts("192.168.1.57")
	opts.Hostname = "chattorrent-1a2b3c"
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	b := mustLoad(t, dir, opts)
	if !bytes.Equal(b.CAPEM(), oldPEM) {
		t.Fatal("the old CA was replaced without asking")
	}
	verify(t, b, "chattorrent-1a2b3c.local", "192.168.1.57")
	if len(Broad(b.CA())) == 0 || !strings.Contains(logs.String(), "new-ca") {
		t.Errorf("no warning about the broad CA: %s", logs.String())
	}

	moved, err := Retire(dir, t0)
	if err != nil || !strings.HasPrefix(filepath.Base(moved), RetiredPrefix) {
		t.Fatalf("Retire: %q, %v", moved, err)
	}
	if !bytes.Equal(read(t, moved, CAFile), oldPEM) || len(read(t, moved, CAKeyFile)) == 0 {
		t.Error("the old CA is not kept in the retired directory")
	}
	for _, keep := range []string{"identity.json", "store"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("Retire touched %s: %v", keep, err)
		}
	}
	logs.Reset()
	b = mustLoad(t, dir, opts)
	if bytes.Equal(b.CAPEM(), oldPEM) || len(Broad(b.CA())) > 0 || strings.Contains(logs.String(), "new-ca") {
		t.Errorf("after Retire: broad %v, logs %s", Broad(b.CA()), logs.String())
	}
	if again, err := Retire(t.TempDir(), t0); again != "" || err != nil {
		t.Errorf("Retire of an empty dir: %q, %v", again, err)
	}
}

// A name the CA was not made for is left out of the server certificate (with a warning),
// never a reason to replace the CA.
func TestNewNameNeedsNewCA(t *testing.T) {
	dir := t.TempDir()
	b1 := mustLoad(t, dir, testOpts("192.168.1.57"))
	opts := testOpts("192.168.1.80")
	opts.Hostname = "kitchen"
	b2 := mustLoad(t, dir, opts)
	if !bytes.Equal(b1.CAPEM(), b2.CAPEM()) {
		t.Fatal("the CA was replaced")
	}
	if slices.Contains(b2.Leaf().DNSNames, "kitchen.local") {
		t.Error("the leaf names kitchen.local, which the CA cannot vouch for")
	}
	verify(t, b2, "localhost", "127.0.0.1")
}

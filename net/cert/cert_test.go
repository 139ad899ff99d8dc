package cert

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testOpts(addrs ...string) Options {
	return Options{
		Hostname:        "box",
		MachineHostname: "raspberrypi",
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
	verify(t, b, "localhost", "box.local", "raspberrypi", "127.0.0.1", "::1", "192.168.4.1", "10.0.0.7", "fd00::5")

	ca := b.CA()
	if !ca.IsCA || ca.Subject.CommonName != "ChatTorrent box box CA" {
		t.Errorf("CA subject %q IsCA %v", ca.Subject.CommonName, ca.IsCA)
	}
	if got := ca.NotAfter.Sub(t0); got < 9*365*24*time.Hour {
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

func TestReissue(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Options)
	}{
		{"new address", func(o *Options) { *o = testOpts("192.168.4.1", "10.1.2.3") }},
		{"new hostname", func(o *Options) { o.Hostname = "kitchen" }},
		{"near expiry", func(o *Options) {
			o.Now = func() time.Time { return t0.Add(LeafLifetime - RenewBefore + time.Hour) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOpts("192.168.4.1")
			mustLoad(t, dir, opts)
			ca1, leaf1 := read(t, dir, CAFile), read(t, dir, LeafFile)
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
	t.Run("new address verifies", func(t *testing.T) {
		dir := t.TempDir()
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

func TestExpiredCA(t *testing.T) {
	dir := t.TempDir()
	mustLoad(t, dir, testOpts())
	opts := testOpts()
	opts.Now = func() time.Time { return t0.Add(CALifetime + time.Hour) }
	if _, err := Load(dir, opts); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("err = %v", err)
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

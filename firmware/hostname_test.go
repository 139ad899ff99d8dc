package main

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/store"
)

// Without --hostname the box is chattorrent-<6 hex> from its identity key: stable across
// starts, different for another box, and the new box's identity is named after it. An
// explicit name is used as is.
func TestBoxHostname(t *testing.T) {
	dir := t.TempDir()
	h1, id, err := boxHostname(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^chattorrent-[0-9a-f]{6}$`).MatchString(h1) {
		t.Errorf("default hostname %q", h1)
	}
	if id.Name != "ChatTorrent "+h1 || !strings.HasPrefix(strings.ReplaceAll(id.Fingerprint(), "-", ""), strings.TrimPrefix(h1, "chattorrent-")) {
		t.Errorf("identity %q fingerprint %s for %s", id.Name, id.Fingerprint(), h1)
	}
	if h2, _, err := boxHostname(dir, ""); err != nil || h2 != h1 {
		t.Errorf("second start: %q, %v; want %q", h2, err, h1)
	}
	if other, _, _ := boxHostname(t.TempDir(), ""); other == h1 {
		t.Errorf("two boxes share %q", h1)
	}
	// An existing identity keeps its name.
	id.Name = "Aula 3"
	if err := store.SaveIdentity(dir, id); err != nil {
		t.Fatal(err)
	}
	if h, id2, err := boxHostname(dir, ""); err != nil || h != h1 || id2.Name != "Aula 3" {
		t.Errorf("existing identity: %q %q %v", h, id2.Name, err)
	}
	if h, _, err := boxHostname(dir, "e2ebox"); err != nil || h != "e2ebox" {
		t.Errorf("explicit: %q, %v", h, err)
	}
}

func TestBoxNames(t *testing.T) {
	b := newBoxNames("box-1a2b3c", []string{"box-1a2b3c-2"}, []netip.Addr{netip.MustParseAddr("192.168.1.57")})
	b.now = func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("10.42.0.1")}, nil }
	for _, h := range []string{"box-1a2b3c.local", "box-1a2b3c.local.", "box-1a2b3c-2.local", "localhost", "127.0.0.1", "127.0.1.1", "::1", "192.168.1.57", "::ffff:192.168.1.57", "10.42.0.1"} {
		if !b.has(h) {
			t.Errorf("%q is the box's", h)
		}
	}
	for _, h := range []string{"chattorrent.local", "box-1a2b3c-3.local", "evil.example", "box-1a2b3c.local.evil.example", "192.168.1.1", "fe80::1%eth0", ""} {
		if b.has(h) {
			t.Errorf("%q is not the box's", h)
		}
	}
}

// "chattorrent new-ca" sets the CA aside and leaves everything else.
func TestNewCACmd(t *testing.T) {
	dir := t.TempDir()
	if _, err := cert.Load(dir, cert.Options{Hostname: "box"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, store.IdentityFile), []byte("{}"), 0o600)
	var out, errOut bytes.Buffer
	if err := newCACmd([]string{"-data-dir", dir}, &out, &errOut, time.Now()); err != nil {
		t.Fatal(err)
	}
	moved, _ := filepath.Glob(filepath.Join(dir, cert.RetiredPrefix+"*", cert.CAKeyFile))
	if len(moved) != 1 || !strings.Contains(out.String(), "install") {
		t.Errorf("moved %v, out %q", moved, out.String())
	}
	for _, f := range []string{cert.CAFile, cert.CAKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s still in place", f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, store.IdentityFile)); err != nil {
		t.Errorf("identity touched: %v", err)
	}
}

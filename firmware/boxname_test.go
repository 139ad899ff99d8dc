package main

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/web"
)

// A rename by the owner: the name file wins at start, and the CA made for the old name is
// set aside (its name constraints cannot cover the new one); a CA that covers the name is
// kept.
func TestOwnerRenameRetiresCA(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	if name, err := ownerBoxName(dir, log); name != "" || err != nil {
		t.Fatalf("no name file: %q %v", name, err)
	}
	load := func(host string) *cert.Box {
		t.Helper()
		b, err := cert.Load(dir, cert.Options{Hostname: host, Logger: log,
			Addrs: func() ([]netip.Addr, error) { return nil, nil }})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	old := load("chattorrent-abc123")
	if err := web.WriteBoxName(dir, "kitchen"); err != nil {
		t.Fatal(err)
	}
	name, err := ownerBoxName(dir, log)
	if err != nil || name != "kitchen" {
		t.Fatalf("name %q %v", name, err)
	}
	if err := retireCAForName(dir, "chattorrent-abc123", time.Now(), log); err != nil {
		t.Fatal(err)
	}
	if again := load("chattorrent-abc123"); again.CAFingerprint() != old.CAFingerprint() {
		t.Fatal("the CA was retired for the name it covers")
	}
	if err := retireCAForName(dir, name, time.Now(), log); err != nil {
		t.Fatal(err)
	}
	renamed := load(name)
	if renamed.CAFingerprint() == old.CAFingerprint() {
		t.Fatal("the renamed box kept the CA made for its old name")
	}
	if err := renamed.Leaf().VerifyHostname("kitchen.local"); err != nil {
		t.Errorf("the new certificate: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, cert.RetiredPrefix+"*", cert.CAFile)); len(m) != 1 {
		t.Errorf("the old CA is not kept aside: %v", m)
	}
	if err := os.WriteFile(filepath.Join(dir, web.BoxNameFile), []byte("Bad name\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if name, err := ownerBoxName(dir, log); name != "" || err != nil {
		t.Errorf("a bad name file: %q %v, want ignored", name, err)
	}
}

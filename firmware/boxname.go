package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/web"
)

// ownerBoxName returns the name the owner gave the box on the settings page
// (web.BoxNameFile in the data directory), or "" when none. It wins over --hostname and
// the name from the identity key: the owner chose it last. The box restarts itself to take
// it (web's PUT /api/owner/network); until then it keeps answering its old name. An
// unreadable or invalid file is logged and ignored.
func ownerBoxName(dataDir string, log *slog.Logger) (string, error) {
	name, err := web.ReadBoxName(dataDir)
	if err != nil { // a box that does not start cannot be renamed again: keep the old name
		log.Error("the owner's box name is unreadable: keeping the name the box had", "err", err)
		return "", nil
	}
	if name != "" {
		log.Info("hostname", "name", name+".local", "from", "the owner's settings page ("+web.BoxNameFile+")")
	}
	return name, nil
}

// retireCAForName sets the box's CA aside (cert.Retire) when it was made for other names
// than host.local: its name constraints would make every browser refuse the renamed box's
// certificate, so the owner's rename means a new CA, which every phone installs again from
// /trust (the settings page says so before the rename). A CA that covers host.local (a
// rename back, an older broad CA) is kept.
func retireCAForName(dataDir, host string, now time.Time, log *slog.Logger) error {
	b, err := os.ReadFile(filepath.Join(dataDir, cert.CAFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("serve: rename: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil // cert.Load reports a corrupt CA and what to do
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil
	}
	name := host + ".local"
	if len(ca.PermittedDNSDomains) == 0 || slices.ContainsFunc(ca.PermittedDNSDomains, func(d string) bool {
		return name == d || strings.HasSuffix(name, "."+d)
	}) {
		return nil
	}
	moved, err := cert.Retire(dataDir, now)
	if err != nil {
		return fmt.Errorf("serve: rename: %w", err)
	}
	log.Warn("the owner renamed the box: its old certificate authority cannot vouch for the new name, so a new one is made; "+
		"every phone must install it again from /trust", "name", name, "old_ca", moved, "old_names", ca.PermittedDNSDomains)
	return nil
}

package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/store"
)

// boxHostname returns the box's mDNS name without ".local" and its identity (loaded, or
// made on first start): the explicit --hostname as is, else "chattorrent-<6 hex>" from the
// box's identity key, the same hex that starts the fingerprint shown beside the box's
// name. It is stable as long as identity.json is (it is in every backup), and no other box
// has it, so the CA can be limited to it (net/cert).
func boxHostname(dataDir, explicit string) (string, *store.Identity, error) {
	_, statErr := os.Stat(filepath.Join(dataDir, store.IdentityFile))
	fresh := errors.Is(statErr, fs.ErrNotExist)
	name := explicit
	if name == "" {
		name = cert.DefaultHostname
	}
	id, err := store.LoadIdentity(dataDir, "ChatTorrent "+name)
	if err != nil {
		return "", nil, err
	}
	if explicit != "" {
		return explicit, id, nil
	}
	host := uniqueHostname(id.Key.Public().(ed25519.PublicKey))
	if fresh { // name a new box after its unique name, as an explicit one would be
		id.Name = "ChatTorrent " + host
		if err := store.SaveIdentity(dataDir, id); err != nil {
			return "", nil, err
		}
	}
	return host, id, nil
}

// uniqueHostname is "chattorrent-" and the first 6 hex characters of SHA-256 of the box's
// public key.
func uniqueHostname(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return cert.DefaultHostname + "-" + hex.EncodeToString(sum[:3])
}

// boxNames knows the box's own names and addresses: what the HTTPS API accepts in Host
// (web.Options.BoxHost). The generic chattorrent.local alias is not among them: several
// boxes may answer it, and the certificate does not cover it.
type boxNames struct {
	names []string                     // "<hostname>.local", the clash alternates, "localhost"
	addrs []netip.Addr                 // the interface addresses read at start
	now   func() ([]netip.Addr, error) // the interface addresses now, asked on a miss
}

func newBoxNames(hostname string, alts []string, addrs []netip.Addr) *boxNames {
	b := &boxNames{names: []string{"localhost", hostname + ".local"}, addrs: addrs, now: cert.InterfaceAddrs}
	for _, a := range alts {
		b.names = append(b.names, a+".local")
	}
	return b
}

// has reports whether host (lowercase, without port or brackets, as web gives it) is one
// of the box's names, a loopback address, or an address of the box's interfaces. An
// address not seen at start (a new DHCP lease) is looked up again.
func (b *boxNames) has(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if slices.Contains(b.names, host) {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return false
	}
	a = a.Unmap()
	if a.IsLoopback() || slices.Contains(b.addrs, a) {
		return true
	}
	now, err := b.now()
	return err == nil && slices.Contains(now, a)
}

// newCACmd runs "chattorrent new-ca [-data-dir D]": it sets the box's CA and server
// certificate aside (into <data-dir>/retired-ca-<time>/), so that the next start makes a new
// CA for the box's current name and addresses. Rooms, files and the identity stay.
func newCACmd(args []string, stdout, stderr io.Writer, now time.Time) error {
	fs := newEnvFlags("chattorrent new-ca", os.LookupEnv, stderr)
	dir := new(string)
	fs.dataDir(dir)
	if err := fs.parse(args); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return usageError{err: fmt.Errorf("new-ca: unexpected argument %q", fs.Arg(0))}
	}
	moved, err := cert.Retire(*dir, now)
	if err != nil {
		return fmt.Errorf("new-ca: %w", err)
	}
	if moved == "" {
		fmt.Fprintf(stdout, "no CA in %s: the next start makes one\n", *dir)
		return nil
	}
	fmt.Fprintf(stdout, "the old CA is in %s\nrestart the box (systemctl restart chattorrent): it makes a new CA, and every phone must install it from /trust\n", moved)
	return nil
}

// logHostname says which name the box took and why.
func logHostname(log *slog.Logger, host string, explicit bool) {
	if explicit {
		log.Info("hostname", "name", host+".local", "from", "--hostname")
		return
	}
	log.Info("hostname", "name", host+".local", "from", "the box's identity key", "also_answers", cert.DefaultHostname+".local",
		"hint", "set --hostname to choose another; the CA then needs re-minting (chattorrent new-ca)")
}

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/chattorrent/chattorrent/store"
)

// identityCmd runs "chattorrent identity [show|export|import FILE] [-data-dir D]": the box's
// own key pair, made on first use. export prints a backup (the same format a browser's
// "save a copy of the identity" writes); import restores one, keeping the old file aside.
func identityCmd(args []string, stdout, stderr io.Writer) error {
	fs := newEnvFlags("chattorrent identity", os.LookupEnv, stderr)
	dir := new(string)
	fs.dataDir(dir)
	sub, rest := "show", args
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		sub, rest = args[0], args[1:]
	}
	pos, err := fs.parseMixed(rest) // arguments, with flags allowed before and after them
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	switch sub {
	case "show", "export":
		if len(pos) != 0 {
			return usageError{err: errors.New("usage: chattorrent identity [show|export|import FILE] [-data-dir DIR]")}
		}
		id, err := store.LoadIdentity(*dir, "ChatTorrent box")
		if err != nil {
			return err
		}
		if sub == "show" {
			fmt.Fprintf(stdout, "name:        %s\nkey:         %s\nfingerprint: %s\nfile:        %s\n",
				id.Name, id.Author(), id.Fingerprint(), filepath.Join(*dir, store.IdentityFile))
			return nil
		}
		b, err := id.MarshalJSON()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return nil
	case "import":
		if len(pos) != 1 {
			return usageError{err: errors.New("usage: chattorrent identity import FILE [-data-dir DIR]")}
		}
		b, err := readLimited(pos[0], 4096)
		if err != nil {
			return fmt.Errorf("identity import: %w", err)
		}
		id, err := store.ParseIdentity(b)
		if err != nil {
			return fmt.Errorf("identity import %s: %w", pos[0], err)
		}
		cur := filepath.Join(*dir, store.IdentityFile)
		if _, err := os.Stat(cur); err == nil {
			old := fmt.Sprintf("%s.replaced-%d", cur, time.Now().Unix())
			if err := os.Rename(cur, old); err != nil {
				return fmt.Errorf("identity import: keep the old identity: %w", err)
			}
			fmt.Fprintf(stdout, "the previous identity is kept in %s\n", old)
		}
		if err := store.SaveIdentity(*dir, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "identity %s (%s) restored\n", id.Name, id.Fingerprint())
		return nil
	default:
		return usageError{err: fmt.Errorf("identity: unknown subcommand %q", sub)}
	}
}

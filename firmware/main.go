// Command chattorrent is the ChatTorrent appliance: it serves the chat page over HTTPS on
// the LAN, with its own certificate authority, and inspects invitation files.
//
// Usage:
//
//	chattorrent [serve] [flags]      run the appliance (the default)
//	chattorrent torrent inspect FILE print an invitation .torrent as JSON
//	chattorrent verify FILE.json     check a history export's signatures and chains
//	chattorrent identity [show|export|import FILE]  the box's own key pair
//	chattorrent release keygen|sign  make the release key, sign a release
//	chattorrent update FILE          stage a signed release on this box
//	chattorrent backup [-o FILE]     the whole box as one file (the box stopped)
//	chattorrent restore FILE         restore a backup into this box (the box stopped)
//	chattorrent healthcheck [flags]  ask the running appliance whether it is healthy
//	chattorrent version              print the version
//	chattorrent help                 print this help
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// Set at build time: go build -ldflags "-X main.version=1.0.0 -X main.commit=abc1234
// -X main.built=2026-12-06T10:00:00Z" (built: the commit's time, RFC 3339).
var (
	version = "dev"
	commit  = "unknown"
	built   = ""
)

// builtAt is when the binary was built (the stamped time, else the VCS time Go records),
// or zero when unknown: the box's clock cannot honestly be before it.
func builtAt() time.Time {
	s := built
	if bi, ok := debug.ReadBuildInfo(); s == "" && ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.time" {
				s = kv.Value
			}
		}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(report(err, os.Stderr))
}

// report prints err as one line "chattorrent: <reason>" and returns the exit code:
// 0 for success, 2 for a command-line mistake, 1 for anything else.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ue usageError
	isUsage := errors.As(err, &ue)
	if !isUsage || !ue.printed {
		fmt.Fprintf(stderr, "chattorrent: %s\n", oneLine(err.Error()))
	}
	if isUsage {
		return 2
	}
	return 1
}

// usageError is a command-line mistake; printed reports that the flag package already
// told the user.
type usageError struct {
	err     error
	printed bool
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

const usage = `chattorrent: offline peer-to-peer chat appliance.

Usage:
  chattorrent [serve] [flags]        run the appliance (default); "chattorrent serve -h" lists the flags
  chattorrent torrent inspect FILE   print an invitation .torrent file as JSON
  chattorrent verify FILE.json       check every entry of a history export (signatures, chains);
                                     names each entry that fails; exit 1 if any does
  chattorrent identity [show|export|import FILE] [-data-dir DIR]
                                     the box's key pair (made on first use); export prints a
                                     backup, import restores one (a browser's backup works too)
  chattorrent export [-o DIR] [-data-dir DIR] [ROOM-ID...]
                                     every room the box keeps (or those named) as a zip:
                                     history.json (verifiable) and the files the box holds
  chattorrent new-ca [-data-dir DIR] set the box's CA aside (into DIR/retired-ca-<time>/) so that the
                                     next start makes a new one for the box's current name and
                                     addresses; every phone must then install it again
  chattorrent release keygen|sign    make the release key, sign a release (docs/OPERATIONS.md, "Updates")
  chattorrent update [-data-dir DIR] FILE
                                     stage a signed release; it runs on trial at the next start
  chattorrent backup [-data-dir DIR] [-o FILE]
                                     the whole box as one tar (rooms, files, CA, identity, settings),
                                     with the box stopped; the owner's page downloads the same file
  chattorrent restore [-data-dir DIR] FILE
                                     check a backup whole, then merge it into this box (the box
                                     stopped): its rooms, files, CA, identity and settings
  chattorrent healthcheck [flags]    GET /healthz of the running appliance (same flags as serve)
  chattorrent version                print the version
  chattorrent help                   print this help
`

// run is the whole program minus the process: it returns instead of exiting.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, rest := "serve", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := parseConfig(rest, os.LookupEnv, stderr)
		if errors.Is(err, errHelp) {
			return nil
		}
		if err != nil {
			return err
		}
		return serveUpdatable(ctx, cfg, stderr)
	case "healthcheck":
		cfg, err := parseConfig(rest, os.LookupEnv, stderr)
		if errors.Is(err, errHelp) {
			return nil
		}
		if err != nil {
			return err
		}
		return healthcheck(ctx, cfg, stdout)
	case "torrent":
		return torrentCmd(rest, stdout)
	case "verify":
		return verifyCmd(rest, stdout, time.Now())
	case "identity":
		return identityCmd(rest, stdout, stderr)
	case "export":
		return exportCmd(ctx, rest, stdout, stderr)
	case "release":
		return releaseCmd(rest, stdout, stderr)
	case "update":
		return updateCmd(rest, stdout, stderr)
	case "backup":
		return backupCmd(rest, stdout, stderr)
	case "restore":
		return restoreCmd(rest, stdout, stderr)
	case "new-ca":
		return newCACmd(rest, stdout, stderr, time.Now())
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{err: fmt.Errorf("unknown command %q", cmd)}
	}
}

func versionString() string {
	return fmt.Sprintf("chattorrent %s (%s, %s/%s, %s)", version, commit, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

// oneLine keeps an error message on one line of the terminal.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/chattorrent/chattorrent/firmware/update"
	"github.com/chattorrent/chattorrent/store/atomicfile"
	"github.com/chattorrent/chattorrent/web"
)

// releaseKey is the project's release public key (hex), stamped at build time by
// deploy/build.sh from deploy/release-key.pub: -ldflags "-X main.releaseKey=...". A build
// without it refuses every release (updates off).
var releaseKey = ""

// errRestart ends serve for the staged release to start (updater.reexec).
var errRestart = errors.New("restarting into the staged release")

// updater is the box's side of firmware/update: which program runs, the owner's uploads,
// the trial of a new release.
type updater struct {
	m        *update.Manager
	self     string // the running program
	launcher string // the installed binary, which decides what runs at every start
	restart  func() // set by serveUpdatable: stops serve with errRestart
	logs     *logRing
	log      *slog.Logger
}

func newUpdater(dataDir string, log *slog.Logger) (*updater, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	launcher := self
	if l := os.Getenv(update.EnvLauncher); l != "" && os.Getenv(update.EnvLaunched) == self {
		launcher = l
	}
	pub, _ := update.ParseKey(releaseKey) // nil: updates off, said when one is uploaded
	return &updater{
		m:    update.New(filepath.Join(dataDir, "releases"), pub, update.Current(), launcher, log.With("component", "update")),
		self: self, launcher: launcher, log: log,
	}, nil
}

// launch runs at the start of serve in the installed binary: it replaces the process by
// the staged release, if any (after rolling back one that failed its trial). It returns
// only when this program is the one to run.
func (u *updater) launch() {
	if os.Getenv(update.EnvLaunched) == u.self {
		return // the launcher started us
	}
	path, err := u.m.Launch()
	if err != nil {
		u.log.Error("update: cannot read the releases' state: running the installed binary", "err", err)
		return
	}
	if path == "" || path == u.self {
		return
	}
	env := append(cleanEnv(), update.EnvLaunched+"="+path, update.EnvLauncher+"="+u.self)
	u.log.Info("update: starting the staged release", "path", path)
	err = update.Exec(path, slices.Concat([]string{path}, os.Args[1:]), env)
	u.log.Error("update: running the installed binary instead", "err", err)
}

// reexec starts the launcher again (same process id), which runs the staged release.
func (u *updater) reexec() error {
	return update.Exec(u.launcher, slices.Concat([]string{u.launcher}, os.Args[1:]), cleanEnv())
}

func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, update.EnvLaunched+"=") || strings.HasPrefix(kv, update.EnvLauncher+"=")
	})
}

// watch confirms a release on trial once healthy (the box's own /healthz) passes, or rolls
// it back after update.HealthWindow and returns an error, which stops serve: the
// supervisor's restart then runs the previous version.
func (u *updater) watch(ctx context.Context, healthy func(context.Context) error) error {
	if u == nil {
		return nil
	}
	return u.m.Watch(ctx, u.self, healthy)
}

// serveUpdatable is serve with updates: the staged release runs instead of this program
// (launch), and when the owner uploads one serve stops cleanly and the launcher starts
// again (same process id) to run it.
func serveUpdatable(ctx context.Context, cfg Config, logOut io.Writer) error {
	ring := new(logRing) // the owner's page shows the last lines (ownerbox.go)
	logOut = io.MultiWriter(logOut, ring)
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if err := applyFactoryReset(cfg.DataDir, log); err != nil {
		return err
	}
	u, err := newUpdater(cfg.DataDir, log)
	if err != nil {
		return err
	}
	u.logs = ring
	u.launch()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	u.restart = func() { cancel(errRestart) }
	if err := serveWith(ctx, cfg, logOut, serveDeps{updater: u}); err != nil {
		return err
	}
	if errors.Is(context.Cause(ctx), errRestart) {
		return u.reexec()
	}
	return nil
}

// api is the web.Updater of this box, nil without an updater.
func (u *updater) api() web.Updater {
	if u == nil {
		return nil
	}
	return updateAPI{u}
}

type updateAPI struct{ u *updater }

func (a updateAPI) Stage(r *http.Request) (string, error) {
	h, err := a.u.m.Stage(http.MaxBytesReader(nil, r.Body, update.MaxBinary+update.MaxHeader+1024))
	if err == nil {
		return h.Version, nil
	}
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{update.ErrNoKey, http.StatusNotImplemented, "updates-off"},
		{update.ErrSignature, http.StatusUnprocessableEntity, "bad-signature"},
		{update.ErrPlatform, http.StatusUnprocessableEntity, "wrong-platform"},
		{update.ErrTruncated, http.StatusUnprocessableEntity, "truncated"},
		{update.ErrTooBig, http.StatusRequestEntityTooLarge, "too-big"},
		{update.ErrFormat, http.StatusUnprocessableEntity, "not-a-release"},
	} {
		if errors.Is(err, c.err) {
			return "", &web.UpdateError{Status: c.status, Code: c.code, Err: err}
		}
	}
	return "", err
}

func (a updateAPI) Status() (any, error) { return a.u.m.Status() }

func (a updateAPI) Restart() {
	if a.u.restart != nil {
		a.u.restart()
	}
}

const releaseUsage = `Usage:
  chattorrent release keygen -o KEYFILE
      make the project's release key pair: the private key (hex seed) into KEYFILE (mode
      0600, keep it offline), the public key (hex) on stdout for deploy/release-key.pub
  chattorrent release sign -key KEYFILE -version V [-o OUT] BINARY
      sign BINARY (a chattorrent built by deploy/build.sh) as a release for the platform
      it was built for; OUT defaults to chattorrent-V-OS-ARCH.release
  chattorrent update [-data-dir DIR] FILE
      stage a release on this box (as the owner's upload does); it runs, on trial, at the
      next start: systemctl restart chattorrent
`

// releaseCmd runs "chattorrent release keygen|sign".
func releaseCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, releaseUsage)
		return usageError{err: errors.New("release: keygen or sign?")}
	}
	fs := flag.NewFlagSet("release "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output file")
	keyFile := fs.String("key", "", "the private key file (release keygen)")
	ver := fs.String("version", "", "the release's version")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err: err, printed: true}
	}
	switch args[0] {
	case "keygen":
		if *out == "" {
			return usageError{err: errors.New("release keygen: -o KEYFILE is required")}
		}
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("release keygen: %w", err)
		}
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("release keygen: %w", err)
		}
		_, err = fmt.Fprintln(f, hex.EncodeToString(priv.Seed()))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("release keygen: %w", err)
		}
		fmt.Fprintln(stdout, hex.EncodeToString(pub))
		return nil
	case "sign":
		if *keyFile == "" || *ver == "" || fs.NArg() != 1 {
			fmt.Fprint(stderr, releaseUsage)
			return usageError{err: errors.New("release sign: -key, -version and one BINARY are required")}
		}
		return signRelease(*keyFile, *ver, fs.Arg(0), *out, stdout)
	}
	fmt.Fprint(stderr, releaseUsage)
	return usageError{err: fmt.Errorf("release: unknown command %q", args[0])}
}

func signRelease(keyFile, ver, bin, out string, stdout io.Writer) error {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return fmt.Errorf("release sign: %w", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return fmt.Errorf("release sign: %s is not a key release keygen made", keyFile)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("release sign: %s: %w", bin, err)
	}
	h := update.Header{Version: ver}
	for _, kv := range info.Settings {
		switch kv.Key {
		case "GOOS":
			h.OS = kv.Value
		case "GOARCH":
			h.Arch = kv.Value
		case "GOARM":
			h.GOARM = strings.Split(kv.Value, ",")[0]
		case "vcs.revision":
			h.Commit = kv.Value
		}
	}
	f, err := os.Open(bin)
	if err != nil {
		return fmt.Errorf("release sign: %w", err)
	}
	defer f.Close()
	if out == "" {
		out = fmt.Sprintf("chattorrent-%s-%s-%s%s.release", ver, h.OS, h.Arch, h.GOARM)
	}
	err = atomicfile.WriteFile(out, 0o644, func(w io.Writer) error {
		return update.Sign(w, ed25519.NewKeyFromSeed(seed), h, f)
	})
	if err != nil {
		return fmt.Errorf("release sign: %w", err)
	}
	fmt.Fprintf(stdout, "%s (%s/%s%s)\n", out, h.OS, h.Arch, h.GOARM)
	return nil
}

// updateCmd runs "chattorrent update [-data-dir DIR] FILE".
func updateCmd(args []string, stdout, stderr io.Writer) error {
	fs := newEnvFlags("chattorrent update", os.LookupEnv, stderr)
	var dataDir string
	fs.dataDir(&dataDir)
	if err := fs.parse(args); err != nil {
		if errors.Is(err, errHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, releaseUsage)
		return usageError{err: errors.New("update: one release FILE")}
	}
	f, err := update.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	u, err := newUpdater(dataDir, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	h, err := u.m.Stage(f)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	fmt.Fprintf(stdout, "release %s staged; it runs, on trial, at the next start (systemctl restart chattorrent)\n", h.Version)
	return nil
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/web"
)

// runMain runs the command as main does, minus os.Exit: it returns what main would print
// and its exit code.
func runMain(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = report(run(context.Background(), args, &out, &errb), &errb)
	return out.String(), errb.String(), code
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	want := "chattorrent dev (unknown, " + runtime.GOOS + "/" + runtime.GOARCH + ", " + runtime.Version() + ")\n"
	if out.String() != want {
		t.Errorf("version = %q, want %q", out.String(), want)
	}
}

func TestHelpAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, &errb); err != nil || !strings.Contains(out.String(), "torrent inspect") {
		t.Errorf("help: %v %q", err, out.String())
	}
	errb.Reset()
	if err := run(context.Background(), []string{"serve", "-h"}, &out, &errb); err != nil {
		t.Errorf("serve -h: %v", err)
	}
	for _, f := range []string{"-data-dir", "CHATTORRENT_DATA_DIR", "-https-addr", ":8443", "-http-addr", ":8080", "-hostname", "-log-level", "-ready-file"} {
		if !strings.Contains(errb.String(), f) {
			t.Errorf("serve -h does not mention %s", f)
		}
	}
	err := run(context.Background(), []string{"frobnicate"}, &out, &errb)
	var ue usageError
	if !errors.As(err, &ue) {
		t.Errorf("unknown command: %v", err)
	}
	if _, stderr, code := runMain(t, "frobnicate"); code != 2 || !strings.HasSuffix(stderr, "chattorrent: unknown command \"frobnicate\"\n") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := runMain(t, "serve", "-no-such-flag"); code != 2 || strings.Count(stderr, "no-such-flag") != 1 {
		t.Errorf("bad flag: exit %d, stderr %q", code, stderr)
	}
	if _, _, code := runMain(t, "version"); code != 0 {
		t.Errorf("version: exit %d", code)
	}
}

func TestTorrentInspect(t *testing.T) {
	valid := filepath.Join("..", "net", "torrent", "testdata", "valid_offer.torrent")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"torrent", "inspect", valid}, &out, &out); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got["role"] != "offer" {
		t.Errorf("inspect output %q: %v", out.String(), err)
	}

	// Exactly MaxSize bytes is read whole and accepted.
	exact := filepath.Join("..", "net", "torrent", "testdata", "valid_exactly_65536_bytes.torrent")
	if err := run(context.Background(), []string{"torrent", "inspect", exact}, &out, &out); err != nil {
		t.Errorf("65536-byte file: %v", err)
	}

	dir := t.TempDir()
	big := filepath.Join(dir, "big.torrent")
	b, _ := os.ReadFile(exact)
	os.WriteFile(big, append(b, 'x'), 0o644)
	junk := filepath.Join(dir, "junk.torrent")
	os.WriteFile(junk, []byte("hello\nworld"), 0o644)

	for _, tt := range []struct{ file, want string }{
		{big, "too-large"},
		{junk, "junk.torrent: torrent:"},
		{filepath.Join(dir, "missing.torrent"), "no such file"},
	} {
		stdout, stderr, code := runMain(t, "torrent", "inspect", tt.file)
		if code != 1 || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q", tt.file, code, stdout)
		}
		if !strings.HasPrefix(stderr, "chattorrent: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: stderr %q, want one line containing %q", tt.file, stderr, tt.want)
		}
	}
	if _, _, code := runMain(t, "torrent", "frob"); code != 2 {
		t.Errorf("torrent frob: exit %d", code)
	}
}

func TestParseConfig(t *testing.T) {
	var discard bytes.Buffer

	cfg, err := parseConfig(nil, envOf("HOME", "/home/u"), &discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPSAddr != ":8443" || cfg.HTTPAddr != ":8080" || cfg.Hostname != "" || cfg.LogLevel.String() != "INFO" || cfg.ReadyFile != "" ||
		cfg.BodyTimeout != web.DefaultBodyReadTimeout {
		t.Errorf("defaults = %+v", cfg)
	}
	wantDir := "/home/u/.local/state/chattorrent"
	if os.Geteuid() == 0 {
		wantDir = "/var/lib/chattorrent"
	}
	if cfg.DataDir != wantDir {
		t.Errorf("default data dir %q, want %q", cfg.DataDir, wantDir)
	}

	env := envOf("CHATTORRENT_DATA_DIR", "/d", "CHATTORRENT_HTTPS_ADDR", ":1", "CHATTORRENT_HTTP_ADDR", "",
		"CHATTORRENT_HOSTNAME", "Kitchen.local", "CHATTORRENT_LOG_LEVEL", "debug", "CHATTORRENT_READY_FILE", "/r",
		"CHATTORRENT_BODY_TIMEOUT", "5s")
	cfg, err = parseConfig(nil, env, &discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/d" || cfg.HTTPSAddr != ":1" || cfg.HTTPAddr != "" || cfg.Hostname != "kitchen" || cfg.LogLevel.String() != "DEBUG" || cfg.ReadyFile != "/r" ||
		cfg.BodyTimeout != 5*time.Second {
		t.Errorf("from env = %+v", cfg)
	}
	cfg, err = parseConfig([]string{"--data-dir", "/f", "-https-addr=:2", "-log-level", "warn", "-body-timeout", "1s"}, env, &discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/f" || cfg.HTTPSAddr != ":2" || cfg.LogLevel.String() != "WARN" || cfg.BodyTimeout != time.Second {
		t.Errorf("flags over env = %+v", cfg)
	}

	for _, args := range [][]string{{"-log-level", "loud"}, {"extra"}, {"-https-addr", ""}, {"-body-timeout", "0s"}, {"-body-timeout", "slow"}, {"-body-timeout", "1h"}} {
		if _, err := parseConfig(args, envOf("HOME", "/h"), &discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	if _, err := parseConfig(nil, envOf("HOME", "/h", "CHATTORRENT_BODY_TIMEOUT", "slow"), &discard); err == nil {
		t.Error("CHATTORRENT_BODY_TIMEOUT=slow accepted")
	}
}

func TestDefaultDataDir(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	for _, tt := range []struct {
		euid int
		env  map[string]string
		want string
	}{
		{0, map[string]string{"XDG_STATE_HOME": "/x", "HOME": "/root"}, "/var/lib/chattorrent"},
		{1000, map[string]string{"XDG_STATE_HOME": "/x/state", "HOME": "/home/u"}, "/x/state/chattorrent"},
		{1000, map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/home/u"}, "/home/u/.local/state/chattorrent"},
		{1000, map[string]string{"HOME": "/home/u"}, "/home/u/.local/state/chattorrent"},
	} {
		if got := defaultDataDir(tt.euid, env(tt.env)); got != tt.want {
			t.Errorf("euid %d env %v: %q, want %q", tt.euid, tt.env, got, tt.want)
		}
	}
}

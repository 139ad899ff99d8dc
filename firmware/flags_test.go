package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEveryFlagHasEnv: every serve flag has its CHATTORRENT_* variable, which serve -h
// names next to it and which sets it (the README promises one per flag); the README lists
// the variable too.
func TestEveryFlagHasEnv(t *testing.T) {
	var cfg Config
	var help bytes.Buffer
	f := newEnvFlags("chattorrent serve", envOf(), &help)
	cfg.flags(f)
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	f.VisitAll(func(fl *flag.Flag) {
		n++
		key := f.env[fl.Name]
		if !strings.HasPrefix(key, "CHATTORRENT_") {
			t.Errorf("-%s has no CHATTORRENT_* variable", fl.Name)
			return
		}
		if !strings.Contains(fl.Usage, key) {
			t.Errorf("serve -h does not name %s for -%s", key, fl.Name)
		}
		if !bytes.Contains(readme, []byte(key)) && !bytes.Contains(readme, []byte("CHATTORRENT_*")) {
			t.Errorf("README names neither %s nor CHATTORRENT_*", key)
		}
	})
	if n < 20 {
		t.Fatalf("only %d flags visited", n)
	}
}

// TestMaxVoiceEnv: CHATTORRENT_MAX_VOICE sets -max-voice, the flag beats it, and a value
// that does not parse is a usage error (as for every variable).
func TestMaxVoiceEnv(t *testing.T) {
	var discard bytes.Buffer
	cfg, err := parseConfig(nil, envOf("HOME", "/h", "CHATTORRENT_MAX_VOICE", "90s"), &discard)
	if err != nil || cfg.MaxVoice != 90*time.Second {
		t.Fatalf("CHATTORRENT_MAX_VOICE=90s: %v, %v", cfg.MaxVoice, err)
	}
	cfg, err = parseConfig([]string{"-max-voice", "2m"}, envOf("HOME", "/h", "CHATTORRENT_MAX_VOICE", "90s"), &discard)
	if err != nil || cfg.MaxVoice != 2*time.Minute {
		t.Fatalf("-max-voice 2m over the variable: %v, %v", cfg.MaxVoice, err)
	}
	for _, kv := range [][2]string{{"CHATTORRENT_MAX_VOICE", "long"}, {"CHATTORRENT_WEBRTC_PORT", "x"}, {"CHATTORRENT_MDNS", "maybe"}} {
		_, err := parseConfig(nil, envOf("HOME", "/h", kv[0], kv[1]), &discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), kv[0]) {
			t.Errorf("%s=%s: %v, want a usage error naming it", kv[0], kv[1], err)
		}
	}
}

// TestDataDirOneWay: every subcommand reads -data-dir the same way: the flag, else
// CHATTORRENT_DATA_DIR, else the default.
func TestDataDirOneWay(t *testing.T) {
	for _, env := range []func(string) (string, bool){envOf("HOME", "/h"), envOf("HOME", "/h", "CHATTORRENT_DATA_DIR", "/env")} {
		for _, args := range [][]string{nil, {"-data-dir", "/flag"}} {
			var dir string
			f := newEnvFlags("x", env, new(bytes.Buffer))
			f.dataDir(&dir)
			if err := f.parse(args); err != nil {
				t.Fatal(err)
			}
			want := defaultDataDir(os.Geteuid(), env)
			if v, ok := env("CHATTORRENT_DATA_DIR"); ok {
				want = v
			}
			if args != nil {
				want = "/flag"
			}
			if dir != want {
				t.Errorf("args %q: data dir %q, want %q", args, dir, want)
			}
		}
	}
}

// envOf is a lookupEnv of the pairs kv.
func envOf(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

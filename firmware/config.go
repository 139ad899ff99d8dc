package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chattorrent/chattorrent/board"
	"github.com/chattorrent/chattorrent/store"
	"github.com/chattorrent/chattorrent/web"
)

// Config is everything "serve" needs, filled from flags with CHATTORRENT_* environment
// variables as fallbacks (a flag beats the environment, the environment beats the default).
type Config struct {
	// DataDir holds the certificates (and later the store). Default: /var/lib/chattorrent
	// for root, else $XDG_STATE_HOME/chattorrent or ~/.local/state/chattorrent.
	DataDir string
	// HTTPSAddr is where the UI is served. Default ":8443" (no root needed; the systemd
	// unit passes ":443").
	HTTPSAddr string
	// HTTPAddr serves the CA and the trust page and redirects the rest to HTTPS. Default
	// ":8080" (the unit passes ":80"); empty turns it off.
	HTTPAddr string
	// Hostname is the box's mDNS name without ".local". Default "" (serve then uses
	// "chattorrent-<6 hex>" from the box's identity key, see hostname.go).
	Hostname string
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel slog.Level
	// ReadyFile, when set, receives {"https": addr, "http": addr, "ca_cert": path} as JSON
	// once both servers listen; it is removed on exit. For tests and supervisors.
	ReadyFile string
	// StaticDir, when set, serves the UI from this directory instead of the embedded copy,
	// so the page can be edited without a rebuild.
	StaticDir string
	// WebRTCLoopback lets the box's WebRTC peer offer 127.0.0.1 candidates: for tests and a
	// single-machine setup. Default false.
	WebRTCLoopback bool
	// Board is the hardware: pins, microphone, stick mount points (board.Config).
	Board board.Config
	// MDNS: answer mDNS for Hostname.local (and chattorrent.local with the default name)
	// and advertise the box over DNS-SD. Default true.
	MDNS bool
	// WAVMic, when set, is a WAV file the box uses as its microphone (--mic wav:FILE).
	WAVMic string
	// MaxVoice bounds a voice note from the box's microphone. Default 60 s.
	MaxVoice time.Duration
	// WebRTCPort is the one UDP port of the box's WebRTC peer (0: ephemeral, -1: a socket
	// per connection). Default 50000. TURNPort is the STUN/TURN server's UDP port (0:
	// ephemeral, -1: off). Default 3478. See turn.go.
	WebRTCPort, TURNPort int
	// OwnerResetFile: when this file exists at start, the box forgets its owner and deletes
	// it (owner.go). Default /boot/firmware/chattorrent-reset-owner; empty turns it off.
	OwnerResetFile string
	// BodyTimeout bounds how long a request may take to send its body; a slower one is cut
	// with 408 slow-body (web.Options.BodyReadTimeout). Default web.DefaultBodyReadTimeout.
	BodyTimeout time.Duration
	// StoreBudget is the bytes rooms.db may take (store.Limits.StoreBytes); past it the box
	// refuses entries and its voice notes with store-full. Default store.DefaultStoreBudget.
	StoreBudget int64
}

// errHelp reports that -h was asked for and the help was printed.
var errHelp = errors.New("help requested")

// parseConfig reads the serve flags. lookupEnv is os.LookupEnv outside tests.
func parseConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (Config, error) {
	var cfg Config
	f := newEnvFlags("chattorrent serve", lookupEnv, stderr)
	level, sticks := cfg.flags(f)
	if err := f.parse(args); err != nil {
		return Config{}, err
	}
	if f.NArg() > 0 {
		return Config{}, usageError{err: fmt.Errorf("serve: unexpected argument %q", f.Arg(0))}
	}
	if err := cfg.finish(*level, *sticks); err != nil {
		return Config{}, usageError{err: err}
	}
	return cfg, nil
}

// flags registers serve's flags, each with its CHATTORRENT_* variable, into cfg; the log
// level and the sticks' globs are read as strings, for finish.
func (cfg *Config) flags(f *envFlags) (level, sticks *string) {
	level, sticks = new(string), new(string)
	f.dataDir(&cfg.DataDir)
	f.String(&cfg.HTTPSAddr, "https-addr", "CHATTORRENT_HTTPS_ADDR", ":8443",
		"HTTPS listen address for the UI (env CHATTORRENT_HTTPS_ADDR; the systemd unit uses :443)")
	f.String(&cfg.HTTPAddr, "http-addr", "CHATTORRENT_HTTP_ADDR", ":8080",
		"plain-HTTP listen address: CA download, trust page, redirect to HTTPS; empty disables it\n"+
			"(env CHATTORRENT_HTTP_ADDR; the systemd unit uses :80)")
	f.String(&cfg.Hostname, "hostname", "CHATTORRENT_HOSTNAME", "",
		"the box's name on the LAN, without .local; the certificate covers <hostname>.local (env CHATTORRENT_HOSTNAME;\n"+
			"default chattorrent-<6 hex> from the box's identity, which also answers chattorrent.local)")
	f.String(level, "log-level", "CHATTORRENT_LOG_LEVEL", "info",
		"log level: debug, info, warn or error (env CHATTORRENT_LOG_LEVEL)")
	f.String(&cfg.ReadyFile, "ready-file", "CHATTORRENT_READY_FILE", "",
		"once listening, write {\"https\":ADDR,\"http\":ADDR,\"ca_cert\":PATH} as JSON to this file (removed on exit;\n"+
			"env CHATTORRENT_READY_FILE; default none)")
	f.String(&cfg.StaticDir, "static-dir", "CHATTORRENT_STATIC_DIR", "",
		"serve the UI from this directory instead of the embedded copy (env CHATTORRENT_STATIC_DIR; default embedded)")
	f.Bool(&cfg.WebRTCLoopback, "webrtc-loopback", "CHATTORRENT_WEBRTC_LOOPBACK", false,
		"let the box's WebRTC peer use loopback addresses, for tests and a single-machine setup\n"+
			"(env CHATTORRENT_WEBRTC_LOOPBACK=true; default false)")
	f.Bool(&cfg.MDNS, "mdns", "CHATTORRENT_MDNS", true,
		"answer mDNS for <hostname>.local and advertise the box over DNS-SD (env CHATTORRENT_MDNS=false turns it off)")
	f.String(&cfg.Board.Mic, "mic", "CHATTORRENT_MIC", "auto",
		"the box's microphone: auto, alsa, arecord, none, or wav:FILE (a WAV file, for demos and tests)\n"+
			"(env CHATTORRENT_MIC)")
	f.String(&cfg.Board.MicDevice, "mic-device", "CHATTORRENT_MIC_DEVICE", "",
		"ALSA capture device (hw:1,0; for arecord any -D name); default the first card that captures (env CHATTORRENT_MIC_DEVICE)")
	f.String(&cfg.Board.PushToTalkPin, "ptt-pin", "CHATTORRENT_PTT_PIN", "GPIO17",
		"push-to-talk button GPIO, or none (env CHATTORRENT_PTT_PIN)")
	f.String(&cfg.Board.ExportPin, "export-pin", "CHATTORRENT_EXPORT_PIN", "GPIO22",
		"export button GPIO, or none (env CHATTORRENT_EXPORT_PIN)")
	f.String(&cfg.Board.LEDPin, "led-pin", "CHATTORRENT_LED_PIN", "GPIO27",
		"status LED GPIO, or none (env CHATTORRENT_LED_PIN)")
	f.String(sticks, "sticks", "CHATTORRENT_STICKS", "/media/*/*,/media/*",
		"comma-separated mount-point globs watched for USB sticks, or none (env CHATTORRENT_STICKS)")
	f.Duration(&cfg.MaxVoice, "max-voice", "CHATTORRENT_MAX_VOICE", 60*time.Second,
		"longest voice note from the box's microphone, 1s..10m (env CHATTORRENT_MAX_VOICE)")
	cfg.netFlags(f)
	return level, sticks
}

// netFlags registers the flags of the box's WebRTC and HTTP limits.
func (cfg *Config) netFlags(f *envFlags) {
	f.Int(&cfg.WebRTCPort, "webrtc-port", "CHATTORRENT_WEBRTC_PORT", defaultWebRTCPort,
		"the UDP port of the box's WebRTC peer, for every connection; 0 ephemeral, -1 a port per connection\n"+
			"(env CHATTORRENT_WEBRTC_PORT)")
	f.Int(&cfg.TURNPort, "turn-port", "CHATTORRENT_TURN_PORT", defaultTURNPort,
		"the UDP port of the box's STUN/TURN server (phones on a Wi-Fi that isolates clients); 0 ephemeral, -1 off\n"+
			"(env CHATTORRENT_TURN_PORT)")
	f.String(&cfg.OwnerResetFile, "owner-reset-file", "CHATTORRENT_OWNER_RESET_FILE", defaultOwnerResetFile,
		"when this file exists at start the box forgets its owner and deletes the file; empty disables it\n"+
			"(env CHATTORRENT_OWNER_RESET_FILE)")
	f.Duration(&cfg.BodyTimeout, "body-timeout", "CHATTORRENT_BODY_TIMEOUT", web.DefaultBodyReadTimeout,
		"how long a request may take to send its body before it is cut with 408 slow-body, 100ms..10m\n"+
			"(env CHATTORRENT_BODY_TIMEOUT)")
	f.Int64(&cfg.StoreBudget, "store-budget", "CHATTORRENT_STORE_BUDGET", int64(store.DefaultStoreBudget),
		"the bytes the history (rooms.db, segment and index files) may take on the card; past it the box refuses with store-full (HTTP 507)\n"+
			"(env CHATTORRENT_STORE_BUDGET)")
}

// finish checks the parsed flags and derives what they imply: the log level, the sticks'
// globs, a WAV microphone.
func (cfg *Config) finish(level, sticks string) error {
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("serve: -log-level %q: want debug, info, warn or error", level)
	}
	if cfg.DataDir == "" {
		return errors.New("serve: no data directory: set -data-dir or CHATTORRENT_DATA_DIR")
	}
	if cfg.HTTPSAddr == "" {
		return errors.New("serve: -https-addr must not be empty")
	}
	cfg.Hostname = strings.TrimSuffix(strings.ToLower(cfg.Hostname), ".local")
	cfg.Board.MountGlobs = strings.Split(sticks, ",")
	if path, ok := strings.CutPrefix(cfg.Board.Mic, "wav:"); ok {
		cfg.WAVMic, cfg.Board.Mic = path, "none"
	}
	if cfg.MaxVoice <= 0 || cfg.MaxVoice > 10*time.Minute {
		return errors.New("serve: -max-voice wants 1s..10m")
	}
	if cfg.BodyTimeout < 100*time.Millisecond || cfg.BodyTimeout > 10*time.Minute {
		return fmt.Errorf("serve: -body-timeout %v: want 100ms..10m", cfg.BodyTimeout)
	}
	if cfg.StoreBudget < 4<<10 {
		return fmt.Errorf("serve: -store-budget %d: want at least 4096 bytes", cfg.StoreBudget)
	}
	return checkPorts(*cfg)
}

// defaultDataDir follows the XDG base directory spec for users and the FHS for root.
func defaultDataDir(euid int, lookupEnv func(string) (string, bool)) string {
	if euid == 0 {
		return "/var/lib/chattorrent"
	}
	if d, ok := lookupEnv("XDG_STATE_HOME"); ok && filepath.IsAbs(d) {
		return filepath.Join(d, "chattorrent")
	}
	if home, ok := lookupEnv("HOME"); ok && home != "" {
		return filepath.Join(home, ".local", "state", "chattorrent")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "chattorrent")
	}
	return ""
}

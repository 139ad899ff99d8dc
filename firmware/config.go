package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
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
	// board, when set (tests), is used instead of the hardware board.Open finds.
	board *board.Board
	// onLED, when set (tests), is told each pattern the status LED is given.
	onLED func(board.Pattern)
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
	env := func(key, def string) string {
		if v, ok := lookupEnv(key); ok {
			return v
		}
		return def
	}
	var cfg Config
	fs := flag.NewFlagSet("chattorrent serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", env("CHATTORRENT_DATA_DIR", defaultDataDir(os.Geteuid(), lookupEnv)),
		"directory for the certificates and state (env CHATTORRENT_DATA_DIR; default /var/lib/chattorrent as root,\n"+
			"else $XDG_STATE_HOME/chattorrent or ~/.local/state/chattorrent)")
	fs.StringVar(&cfg.HTTPSAddr, "https-addr", env("CHATTORRENT_HTTPS_ADDR", ":8443"),
		"HTTPS listen address for the UI (env CHATTORRENT_HTTPS_ADDR; the systemd unit uses :443)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", env("CHATTORRENT_HTTP_ADDR", ":8080"),
		"plain-HTTP listen address: CA download, trust page, redirect to HTTPS; empty disables it\n"+
			"(env CHATTORRENT_HTTP_ADDR; the systemd unit uses :80)")
	fs.StringVar(&cfg.Hostname, "hostname", env("CHATTORRENT_HOSTNAME", ""),
		"the box's name on the LAN, without .local; the certificate covers <hostname>.local (env CHATTORRENT_HOSTNAME;\n"+
			"default chattorrent-<6 hex> from the box's identity, which also answers chattorrent.local)")
	level := fs.String("log-level", env("CHATTORRENT_LOG_LEVEL", "info"),
		"log level: debug, info, warn or error (env CHATTORRENT_LOG_LEVEL)")
	fs.StringVar(&cfg.ReadyFile, "ready-file", env("CHATTORRENT_READY_FILE", ""),
		"once listening, write {\"https\":ADDR,\"http\":ADDR,\"ca_cert\":PATH} as JSON to this file (removed on exit;\n"+
			"env CHATTORRENT_READY_FILE; default none)")
	fs.StringVar(&cfg.StaticDir, "static-dir", env("CHATTORRENT_STATIC_DIR", ""),
		"serve the UI from this directory instead of the embedded copy (env CHATTORRENT_STATIC_DIR; default embedded)")
	fs.BoolVar(&cfg.WebRTCLoopback, "webrtc-loopback", env("CHATTORRENT_WEBRTC_LOOPBACK", "") == "true",
		"let the box's WebRTC peer use loopback addresses, for tests and a single-machine setup\n"+
			"(env CHATTORRENT_WEBRTC_LOOPBACK=true; default false)")
	fs.BoolVar(&cfg.MDNS, "mdns", env("CHATTORRENT_MDNS", "true") != "false",
		"answer mDNS for <hostname>.local and advertise the box over DNS-SD (env CHATTORRENT_MDNS=false turns it off)")
	fs.StringVar(&cfg.Board.Mic, "mic", env("CHATTORRENT_MIC", "auto"),
		"the box's microphone: auto, alsa, arecord, none, or wav:FILE (a WAV file, for demos and tests)\n"+
			"(env CHATTORRENT_MIC)")
	fs.StringVar(&cfg.Board.MicDevice, "mic-device", env("CHATTORRENT_MIC_DEVICE", ""),
		"ALSA capture device (hw:1,0; for arecord any -D name); default the first card that captures (env CHATTORRENT_MIC_DEVICE)")
	fs.StringVar(&cfg.Board.PushToTalkPin, "ptt-pin", env("CHATTORRENT_PTT_PIN", "GPIO17"),
		"push-to-talk button GPIO, or none (env CHATTORRENT_PTT_PIN)")
	fs.StringVar(&cfg.Board.ExportPin, "export-pin", env("CHATTORRENT_EXPORT_PIN", "GPIO22"),
		"export button GPIO, or none (env CHATTORRENT_EXPORT_PIN)")
	fs.StringVar(&cfg.Board.LEDPin, "led-pin", env("CHATTORRENT_LED_PIN", "GPIO27"),
		"status LED GPIO, or none (env CHATTORRENT_LED_PIN)")
	sticks := fs.String("sticks", env("CHATTORRENT_STICKS", "/media/*/*,/media/*"),
		"comma-separated mount-point globs watched for USB sticks, or none (env CHATTORRENT_STICKS)")
	fs.DurationVar(&cfg.MaxVoice, "max-voice", 60*time.Second, "longest voice note from the box's microphone")
	fs.IntVar(&cfg.WebRTCPort, "webrtc-port", envInt(env("CHATTORRENT_WEBRTC_PORT", ""), defaultWebRTCPort),
		"the UDP port of the box's WebRTC peer, for every connection; 0 ephemeral, -1 a port per connection\n"+
			"(env CHATTORRENT_WEBRTC_PORT)")
	fs.IntVar(&cfg.TURNPort, "turn-port", envInt(env("CHATTORRENT_TURN_PORT", ""), defaultTURNPort),
		"the UDP port of the box's STUN/TURN server (phones on a Wi-Fi that isolates clients); 0 ephemeral, -1 off\n"+
			"(env CHATTORRENT_TURN_PORT)")
	fs.StringVar(&cfg.OwnerResetFile, "owner-reset-file", env("CHATTORRENT_OWNER_RESET_FILE", defaultOwnerResetFile),
		"when this file exists at start the box forgets its owner and deletes the file; empty disables it\n"+
			"(env CHATTORRENT_OWNER_RESET_FILE)")
	bodyTimeout := web.DefaultBodyReadTimeout
	if v, ok := lookupEnv("CHATTORRENT_BODY_TIMEOUT"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, usageError{err: fmt.Errorf("serve: CHATTORRENT_BODY_TIMEOUT %q: want a duration such as 30s", v)}
		}
		bodyTimeout = d
	}
	fs.DurationVar(&cfg.BodyTimeout, "body-timeout", bodyTimeout,
		"how long a request may take to send its body before it is cut with 408 slow-body, 100ms..10m\n"+
			"(env CHATTORRENT_BODY_TIMEOUT)")
	storeBudget := int64(store.DefaultStoreBudget)
	if v, ok := lookupEnv("CHATTORRENT_STORE_BUDGET"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Config{}, usageError{err: fmt.Errorf("serve: CHATTORRENT_STORE_BUDGET %q: want a number of bytes", v)}
		}
		storeBudget = n
	}
	fs.Int64Var(&cfg.StoreBudget, "store-budget", storeBudget,
		"the bytes the history (rooms.db) may take on the card; past it the box refuses with store-full (HTTP 507)\n"+
			"(env CHATTORRENT_STORE_BUDGET)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, errHelp
		}
		return Config{}, usageError{err: err, printed: true}
	}
	if fs.NArg() > 0 {
		return Config{}, usageError{err: fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))}
	}
	if err := cfg.finish(*level, *sticks); err != nil {
		return Config{}, usageError{err: err}
	}
	return cfg, nil
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

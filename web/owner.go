package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chattorrent/chattorrent/store/atomicfile"
)

// The box's owner: the first person who proves physical presence (a one-time code the box
// prints in its log and on its console) claims the box and gets a cookie; only the owner
// changes the box's settings. The token's SHA-256 is kept in the data directory, so the
// owner survives a restart; a documented reset (firmware) forgets it.

// Files Owner keeps in its directory (0600, written atomically).
const (
	OwnerFile    = "owner.json"    // the owner's token hash
	SettingsFile = "settings.json" // the box's settings
)

// MaxClaimFailures is how many wrong codes a claim code survives: the next failure replaces
// it with a new one (printed again), so a guesser never gets more than this many tries at
// one code. ClaimLockout is how long claims are then refused, which bounds the guessing
// rate to MaxClaimFailures per ClaimLockout.
const (
	MaxClaimFailures = 5
	ClaimLockout     = 30 * time.Second
)

// claimCodeDigits is the length of the one-time code: 10 digits (10^10 codes; at 5 guesses
// per 30 s a guesser needs about 2,000 years for an even chance).
const claimCodeDigits = 10

// Errors of Owner.Claim.
var (
	ErrClaimed     = errors.New("owner: the box already has an owner")
	ErrBadCode     = errors.New("owner: wrong claim code")
	ErrCodeChanged = errors.New("owner: too many wrong codes; the box printed a new code")
	ErrClaimLocked = errors.New("owner: too many wrong codes; wait before trying again")
)

// Settings are the box's owner-only settings. The zero value is the default: microphone
// on, push-to-talk into the room most recently written to.
type Settings struct {
	// MicOff switches the box's microphone off for everyone: neither the page's "voice note
	// from the box" nor push-to-talk records.
	MicOff bool `json:"mic_off"`
	// PTTRoom is the room push-to-talk records into; "" is automatic (the room a member
	// wrote to most recently, by the box's own receive time).
	PTTRoom string `json:"ptt_room"`
	// StickExportOff stops the export of every room onto a USB stick when one is inserted;
	// the export button still exports to a mounted stick.
	StickExportOff bool `json:"stick_export_off"`
}

// OwnerOptions configures NewOwner.
type OwnerOptions struct {
	// Dir holds OwnerFile and SettingsFile (the box's data directory). Required.
	Dir string
	// Logger receives the claim code (Warn) and claims. Default: discarded.
	Logger *slog.Logger
	// Console receives the claim code as a plain banner (the unit's journal, a terminal).
	// Nil: the log only.
	Console io.Writer
	// Now is the time for the lockout; default time.Now.
	Now func() time.Time
}

// Owner is the box's owner state: claimed or not, the claim code while unclaimed, the
// settings. Safe for concurrent use.
type Owner struct {
	opts OwnerOptions
	log  *slog.Logger

	mu          sync.Mutex
	tokenHash   []byte // SHA-256 of the owner's token; nil while unclaimed
	code        string // the one-time claim code while unclaimed
	failures    int    // wrong codes against code
	lockedUntil time.Time
	settings    Settings
	boxName     string // the name the box runs under (SetBox, wifi.go)
	restart     func() // restarts the box; nil: it cannot
}

type ownerRecord struct {
	TokenSHA256 string    `json:"token_sha256"`
	ClaimedAt   time.Time `json:"claimed_at"`
}

// NewOwner loads the owner and the settings from opts.Dir. An unclaimed box gets a claim
// code, logged at Warn level and printed on the console.
func NewOwner(opts OwnerOptions) (*Owner, error) {
	if opts.Dir == "" {
		return nil, errors.New("owner: Dir is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	o := &Owner{opts: opts, log: opts.Logger.With("component", "owner")}
	var rec ownerRecord
	switch err := readJSON(filepath.Join(opts.Dir, OwnerFile), &rec); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		h, err := hex.DecodeString(rec.TokenSHA256)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("owner: %s: bad token hash", OwnerFile)
		}
		o.tokenHash = h
	}
	if err := readJSON(filepath.Join(opts.Dir, SettingsFile), &o.settings); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if o.tokenHash == nil {
		o.mu.Lock()
		o.newCodeLocked("the box has no owner yet")
		o.mu.Unlock()
	} else {
		o.log.Info("the box has an owner")
	}
	return o, nil
}

// Forget removes the owner (the reset): the box is unclaimed again and prints a new code.
// The settings are kept.
func (o *Owner) Forget() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := os.Remove(filepath.Join(o.opts.Dir, OwnerFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("owner: forget: %w", err)
	}
	o.tokenHash = nil
	o.newCodeLocked("the owner was reset")
	return nil
}

// newCodeLocked makes and prints a new claim code. o.mu is held.
func (o *Owner) newCodeLocked(why string) {
	n, err := rand.Int(rand.Reader, big.NewInt(10_000_000_000))
	if err != nil { // crypto/rand does not fail on Linux
		panic(err)
	}
	o.code = fmt.Sprintf("%0*d", claimCodeDigits, n)
	o.failures = 0
	shown := o.code[:5] + "-" + o.code[5:]
	o.log.Warn("CLAIM THIS BOX: open the chat page, press \"Claim this box\" and type this one-time code; whoever types it first becomes the box's owner",
		"claim_code", shown, "why", why)
	if o.opts.Console != nil {
		fmt.Fprintf(o.opts.Console, "\n*** ChatTorrent: %s. To become its owner, open the chat page and type the claim code %s ***\n\n", why, shown)
	}
}

// Claimed reports whether the box has an owner.
func (o *Owner) Claimed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tokenHash != nil
}

// Claim makes whoever knows the claim code the owner and returns the owner's token (for
// the cookie; only its hash is kept). Spaces and dashes in code are ignored.
func (o *Owner) Claim(code string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tokenHash != nil {
		return "", ErrClaimed
	}
	now := o.opts.Now()
	if now.Before(o.lockedUntil) {
		return "", ErrClaimLocked
	}
	code = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
	if subtle.ConstantTimeCompare([]byte(code), []byte(o.code)) != 1 {
		o.failures++
		o.log.Warn("wrong claim code", "failures", o.failures, "max", MaxClaimFailures)
		if o.failures >= MaxClaimFailures {
			o.lockedUntil = now.Add(ClaimLockout)
			o.newCodeLocked(fmt.Sprintf("%d wrong claim codes: the old code no longer works", MaxClaimFailures))
			return "", ErrCodeChanged
		}
		return "", ErrBadCode
	}
	var raw [32]byte
	rand.Read(raw[:])
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(token))
	rec := ownerRecord{TokenSHA256: hex.EncodeToString(sum[:]), ClaimedAt: now.UTC()}
	if err := writeJSONAtomic(filepath.Join(o.opts.Dir, OwnerFile), rec); err != nil {
		return "", err
	}
	o.tokenHash, o.code = sum[:], ""
	o.log.Warn("the box was claimed: it has an owner now")
	return token, nil
}

// IsOwner reports whether token is the owner's (constant time).
func (o *Owner) IsOwner(token string) bool {
	if token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tokenHash != nil && subtle.ConstantTimeCompare(sum[:], o.tokenHash) == 1
}

// Settings returns the box's settings.
func (o *Owner) Settings() Settings {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.settings
}

// MicOff reports whether the owner switched the box's microphone off.
func (o *Owner) MicOff() bool { return o.Settings().MicOff }

// SetSettings stores s.
func (o *Owner) SetSettings(s Settings) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := writeJSONAtomic(filepath.Join(o.opts.Dir, SettingsFile), s); err != nil {
		return err
	}
	o.settings = s
	o.log.Info("settings changed", "mic_off", s.MicOff, "ptt_room", s.PTTRoom)
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("owner: %s: %w", filepath.Base(path), err)
	}
	return nil
}

// writeJSONAtomic writes v to path with mode 0600: a temporary file, synced, renamed over.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	if err := atomicfile.WriteBytes(path, 0o600, append(b, '\n')); err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	return nil
}

// Package update owns the box's updates without internet: the signed release file (its
// format, signing and verification) and the switch between the installed binary, the
// staged release and the previous one, with a trial that rolls back by itself when the
// new binary is not healthy within a minute.
//
// A release file (docs/OPERATIONS.md, "Updates") is:
//
//	"CTRELEASE1\n"          the magic, 11 bytes
//	header                 one line of JSON (Header), at most MaxHeader bytes, ending in "\n"
//	signature              64 bytes: Ed25519 over the magic and the header line
//	binary                 exactly Header.Size bytes whose SHA-256 is Header.SHA256
//
// The signature covers the header, and the header the binary's hash, so one signature
// check and one streaming hash authenticate the whole file. It is read once, as a stream,
// into a temporary file that becomes the release only when every check passed.
package update

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Magic starts every release file.
const Magic = "CTRELEASE1\n"

// MaxHeader is the largest header line, MaxBinary the largest binary a release may carry
// (the arm binaries are about 20 MiB): the box stores nothing bigger.
const (
	MaxHeader = 4 << 10
	MaxBinary = 96 << 20
)

// Header describes a release; it is what the signature covers.
type Header struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	GOARM   string `json:"goarm,omitempty"` // "6" or "7" for arch "arm"
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// Platform is what a box runs: the release must be built for it.
type Platform struct {
	OS, Arch, GOARM string
}

// Errors Stage and Verify wrap; the web API answers with their codes.
var (
	ErrFormat    = errors.New("not a ChatTorrent release file")
	ErrSignature = errors.New("the release's signature is not the project's")
	ErrPlatform  = errors.New("the release is built for another machine")
	ErrTruncated = errors.New("the release file is truncated or damaged")
	ErrNoKey     = errors.New("this build carries no release key: updates are off")
	ErrTooBig    = errors.New("the release is too big")
)

var reVersion = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+~_-]{0,63}$`)

func (h Header) valid() error {
	switch {
	case !reVersion.MatchString(h.Version):
		return fmt.Errorf("%w: bad version %q", ErrFormat, h.Version)
	case h.Size <= 0 || h.Size > MaxBinary:
		return fmt.Errorf("%w: binary of %d bytes (at most %d)", ErrTooBig, h.Size, MaxBinary)
	case len(h.SHA256) != 64:
		return fmt.Errorf("%w: bad sha256", ErrFormat)
	}
	if _, err := hex.DecodeString(h.SHA256); err != nil {
		return fmt.Errorf("%w: bad sha256", ErrFormat)
	}
	return nil
}

// Fits reports whether a release built for h runs on p: same OS and architecture, and on
// arm an ARM version no newer than p's (a GOARM=6 binary runs on an ARMv7 box, not the
// reverse).
func (h Header) Fits(p Platform) error {
	if h.OS != p.OS || h.Arch != p.Arch {
		return fmt.Errorf("%w: %s/%s, this box is %s/%s", ErrPlatform, h.OS, h.Arch, p.OS, p.Arch)
	}
	if p.Arch == "arm" {
		want, _ := strconv.Atoi(p.GOARM)
		got, err := strconv.Atoi(h.GOARM)
		if err != nil || (want != 0 && got > want) {
			return fmt.Errorf("%w: arm v%s, this box is arm v%s", ErrPlatform, h.GOARM, p.GOARM)
		}
	}
	return nil
}

// Current is the platform this program was built for.
func Current() Platform {
	p := Platform{OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "GOARM" {
				p.GOARM = strings.TrimSuffix(strings.TrimSuffix(kv.Value, ",softfloat"), ",hardfloat")
			}
		}
	}
	return p
}

// signed is the text the signature covers.
func signed(line []byte) []byte { return append([]byte(Magic), line...) }

// Sign writes a release of the binary bin (size bytes) for h's platform; it fills h's
// Size and SHA256.
func Sign(w io.Writer, key ed25519.PrivateKey, h Header, bin io.ReadSeeker) error {
	hash := sha256.New()
	n, err := io.Copy(hash, bin)
	if err != nil {
		return fmt.Errorf("update: sign: %w", err)
	}
	if _, err := bin.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("update: sign: %w", err)
	}
	h.Size, h.SHA256 = n, hex.EncodeToString(hash.Sum(nil))
	if err := h.valid(); err != nil {
		return fmt.Errorf("update: sign: %w", err)
	}
	line, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("update: sign: %w", err)
	}
	line = append(line, '\n')
	sig := ed25519.Sign(key, signed(line))
	for _, part := range [][]byte{[]byte(Magic), line, sig} {
		if _, err := w.Write(part); err != nil {
			return fmt.Errorf("update: sign: %w", err)
		}
	}
	if _, err := io.Copy(w, bin); err != nil {
		return fmt.Errorf("update: sign: %w", err)
	}
	return nil
}

// Verify reads a release from r, checks its signature against pub and that it fits p,
// and copies the binary to dst, checking its size and hash as it goes. dst holds the
// binary only when Verify returns nil; the caller discards it otherwise.
func Verify(r io.Reader, pub ed25519.PublicKey, p Platform, dst io.Writer) (Header, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Header{}, ErrNoKey
	}
	br := bufio.NewReaderSize(r, 64<<10)
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != Magic {
		return Header{}, ErrFormat
	}
	line, err := readLine(br, MaxHeader)
	if err != nil {
		return Header{}, err
	}
	sig := make([]byte, ed25519.SignatureSize)
	if _, err := io.ReadFull(br, sig); err != nil {
		return Header{}, ErrTruncated
	}
	if !ed25519.Verify(pub, signed(line), sig) {
		return Header{}, ErrSignature
	}
	var h Header
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return Header{}, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if err := h.valid(); err != nil {
		return Header{}, err
	}
	if err := h.Fits(p); err != nil {
		return h, err
	}
	hash := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, hash), io.LimitReader(br, h.Size+1))
	if err != nil {
		return h, fmt.Errorf("update: reading the release: %w", err)
	}
	if n != h.Size || hex.EncodeToString(hash.Sum(nil)) != h.SHA256 {
		return h, fmt.Errorf("%w: %d of %d bytes, or not the signed ones", ErrTruncated, n, h.Size)
	}
	return h, nil
}

// readLine reads one line of at most limit bytes, its "\n" included.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		b, err := br.ReadByte()
		if err != nil {
			return nil, ErrTruncated
		}
		line = append(line, b)
		if b == '\n' {
			return line, nil
		}
		if len(line) >= limit {
			return nil, fmt.Errorf("%w: header longer than %d bytes", ErrFormat, limit)
		}
	}
}

// elfMachines maps GOARCH to the ELF machine its binaries carry.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
	"arm":   elf.EM_ARM,
	"386":   elf.EM_386,
}

// checkELF makes sure the file at path is an executable for p, whatever its header said:
// a release signed for the wrong binary must not become the box's program.
func checkELF(path string, p Platform) error {
	if p.OS != "linux" {
		return nil
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%w: not an executable: %v", ErrPlatform, err)
	}
	defer f.Close()
	if want, ok := elfMachines[p.Arch]; !ok || f.Machine != want || f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%w: an executable for %v", ErrPlatform, f.Machine)
	}
	return nil
}

// ParseKey reads a release public key written in hex (as deploy/release-key.pub holds it).
func ParseKey(s string) (ed25519.PublicKey, error) {
	if s == "" {
		return nil, ErrNoKey
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("update: release key: want %d bytes in hex", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// Open opens a release file for Verify; it refuses what is not a regular file.
func Open(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("update: %s: not a regular file", path)
	}
	return f, nil
}

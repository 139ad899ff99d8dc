package update

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testKey is a fixed key for the tests (never the project's release key).
func testKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
}

// selfBinary is an executable for this platform: the test binary itself.
func selfBinary(t *testing.T) []byte {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func release(t *testing.T, key ed25519.PrivateKey, h Header, bin []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Sign(&buf, key, h, bytes.NewReader(bin)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func header(version string) Header {
	p := Current()
	return Header{Version: version, OS: p.OS, Arch: p.Arch, GOARM: p.GOARM}
}

// listing is every file under dir with its content, to show that nothing changed.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		}
		return nil
	})
	return out
}

func TestStageRefusesBadReleases(t *testing.T) {
	key := testKey(t)
	bin := selfBinary(t)
	good := release(t, key, header("2.0.0"), bin)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	wrongArch := header("2.0.0")
	wrongArch.Arch = map[string]string{"amd64": "arm64"}[wrongArch.Arch]
	if wrongArch.Arch == "" {
		wrongArch.Arch = "amd64"
	}
	flipped := slices.Clone(good)
	flipped[len(Magic)+10] ^= 1 // inside the header: the signature no longer matches
	flippedBin := slices.Clone(good)
	flippedBin[len(flippedBin)-100] ^= 1
	notELF := release(t, key, header("2.0.0"), []byte("#!/bin/sh\necho hello\n"))

	cases := []struct {
		name string
		file []byte
		want error
	}{
		{"wrong signature", release(t, other, header("2.0.0"), bin), ErrSignature},
		{"header changed", flipped, ErrSignature},
		{"binary changed", flippedBin, ErrTruncated},
		{"truncated", good[:len(good)/2], ErrTruncated},
		{"truncated in the header", good[:len(Magic)+5], ErrTruncated},
		{"empty", nil, ErrFormat},
		{"not a release", []byte("PK\x03\x04 a zip"), ErrFormat},
		{"wrong architecture", release(t, key, wrongArch, bin), ErrPlatform},
		{"signed but not an executable", notELF, ErrPlatform},
		{"trailing bytes", append(slices.Clone(good), 'x'), ErrTruncated},
	}
	dir := t.TempDir()
	m := New(dir, key.Public().(ed25519.PublicKey), Current(), "/nonexistent/chattorrent", slog.New(slog.DiscardHandler))
	if _, err := m.Stage(bytes.NewReader(good)); err != nil {
		t.Fatalf("a good release: %v", err)
	}
	before := listing(t, dir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.Stage(bytes.NewReader(c.file))
			if !errors.Is(err, c.want) {
				t.Fatalf("Stage: %v, want %v", err, c.want)
			}
			if after := listing(t, dir); !mapsEqual(before, after) {
				t.Errorf("a refused release changed the releases directory")
			}
		})
	}
	noKey := New(t.TempDir(), nil, Current(), "", slog.New(slog.DiscardHandler))
	if _, err := noKey.Stage(bytes.NewReader(good)); !errors.Is(err, ErrNoKey) {
		t.Errorf("a build without a key: %v", err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestFits(t *testing.T) {
	box := Platform{OS: "linux", Arch: "arm", GOARM: "7"}
	for _, c := range []struct {
		h  Header
		ok bool
	}{
		{Header{OS: "linux", Arch: "arm", GOARM: "6"}, true},
		{Header{OS: "linux", Arch: "arm", GOARM: "7"}, true},
		{Header{OS: "linux", Arch: "arm64"}, false},
		{Header{OS: "linux", Arch: "arm"}, false},
	} {
		if err := c.h.Fits(box); (err == nil) != c.ok {
			t.Errorf("%+v on %+v: %v", c.h, box, err)
		}
	}
	if err := (Header{OS: "linux", Arch: "arm", GOARM: "7"}).Fits(Platform{OS: "linux", Arch: "arm", GOARM: "6"}); err == nil {
		t.Error("an ARMv7 release fits an ARMv6 box")
	}
}

func TestVerifyStreamsAtMostTheSignedSize(t *testing.T) {
	key := testKey(t)
	rel := release(t, key, header("1.0.0"), []byte("\x7fELF fake"))
	var out bytes.Buffer
	h, err := Verify(io.MultiReader(bytes.NewReader(rel), strings.NewReader(strings.Repeat("x", 1<<20))), key.Public().(ed25519.PublicKey), Current(), &out)
	if !errors.Is(err, ErrTruncated) || out.Len() > int(h.Size)+1 {
		t.Errorf("Verify with 1 MiB appended: %v, copied %d bytes", err, out.Len())
	}
}

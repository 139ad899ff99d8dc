package store

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/chattorrent/chattorrent/store/atomicfile"
	"github.com/chattorrent/chattorrent/store/history"
)

// IdentityFile is the box's key in its data dir, in the same format as a browser's
// identity backup, so either can be restored on the other.
const IdentityFile = "identity.json"

// Identity is a device's key pair and display name.
type Identity struct {
	Name string
	Key  ed25519.PrivateKey
}

// Author is the identity's public key in the form entries carry.
func (id *Identity) Author() string { return history.EncodeKey(id.Key.Public().(ed25519.PublicKey)) }

// Fingerprint is the short form people compare.
func (id *Identity) Fingerprint() string { return history.Fingerprint(id.Author()) }

// Sign signs an entry as this identity.
func (id *Identity) Sign(e *history.Entry) { e.Sign(id.Key) }

type identityJSON struct {
	Format string `json:"format"`
	V      int    `json:"v"`
	Name   string `json:"name"`
	JWK    struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		D   string `json:"d"`
		X   string `json:"x"`
	} `json:"jwk"`
}

// MarshalJSON writes the backup format {"format":"chattorrent-identity","v":1,"name","jwk"}.
func (id *Identity) MarshalJSON() ([]byte, error) {
	var j identityJSON
	j.Format, j.V, j.Name = "chattorrent-identity", 1, id.Name
	j.JWK.Kty, j.JWK.Crv = "OKP", "Ed25519"
	j.JWK.D = base64.RawURLEncoding.EncodeToString(id.Key.Seed())
	j.JWK.X = id.Author()
	return json.MarshalIndent(j, "", " ")
}

// ParseIdentity reads a backup (the box's file or a browser's export) and checks that the
// private and public halves belong together.
func ParseIdentity(b []byte) (*Identity, error) {
	if len(b) > 4096 {
		return nil, errors.New("store: identity: file larger than 4 KiB")
	}
	var j identityJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("store: identity: %w", err)
	}
	if j.Format != "chattorrent-identity" || j.V != 1 {
		return nil, errors.New("store: identity: not a chattorrent-identity v1 file")
	}
	if j.JWK.Kty != "OKP" || j.JWK.Crv != "Ed25519" {
		return nil, errors.New("store: identity: not an Ed25519 key")
	}
	seed, err := base64.RawURLEncoding.Strict().DecodeString(j.JWK.D)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("store: identity: bad private key")
	}
	key := ed25519.NewKeyFromSeed(seed)
	id := &Identity{Name: strings.TrimSpace(j.Name), Key: key}
	if id.Author() != j.JWK.X {
		return nil, errors.New("store: identity: the public key does not match the private key")
	}
	if id.Name == "" || len(id.Name) > history.MaxName {
		id.Name = "ChatTorrent box"
	}
	return id, nil
}

// LoadIdentity reads the box's identity from dir, making one on first use (name
// defaultName). A damaged file is an error naming it: the key is never silently replaced.
func LoadIdentity(dir, defaultName string) (*Identity, error) {
	path := filepath.Join(dir, IdentityFile)
	b, err := os.ReadFile(path)
	if err == nil {
		id, err := ParseIdentity(b)
		if err != nil {
			return nil, fmt.Errorf("%w (%s: restore it from a backup, or move it away to make a new identity)", err, path)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("store: identity: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("store: identity: %w", err)
	}
	id := &Identity{Name: defaultName, Key: key}
	if err := SaveIdentity(dir, id); err != nil {
		return nil, err
	}
	return id, nil
}

// SaveIdentity writes the identity file atomically (store/atomicfile), mode 0600.
func SaveIdentity(dir string, id *Identity) error {
	b, err := id.MarshalJSON()
	if err != nil {
		return fmt.Errorf("store: identity: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: identity: %w", err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, IdentityFile), 0o600, append(b, '\n')); err != nil {
		return fmt.Errorf("store: identity: %w", err)
	}
	return nil
}

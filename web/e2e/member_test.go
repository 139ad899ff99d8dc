package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"testing"

	"github.com/chattorrent/chattorrent/store/history"
	"github.com/chattorrent/chattorrent/web"
)

// proveKey does what the page does on a box (member.js): it signs the box's nonce with
// key, and client's cookie jar then holds the member cookie. client gets a jar if it has
// none. base is "https://host:port", sent as the Origin the proof is bound to.
func proveKey(ctx context.Context, client *http.Client, base string, key ed25519.PrivateKey) error {
	if client.Jar == nil {
		client.Jar, _ = cookiejar.New(nil)
	}
	post := func(path string, body []byte) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-ChatTorrent", "1")
		req.Header.Set("Origin", base)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s: %s", path, resp.Status, b)
		}
		return b, nil
	}
	b, err := post("/api/member/challenge", nil)
	if err != nil {
		return err
	}
	var c struct{ Nonce string }
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	sig := ed25519.Sign(key, web.ProofMessage(base, c.Nonce))
	body, _ := json.Marshal(map[string]string{"author": history.EncodeKey(key.Public().(ed25519.PublicKey)),
		"nonce": c.Nonce, "sig": base64.RawURLEncoding.EncodeToString(sig)})
	_, err = post("/api/member/proof", body)
	return err
}

// mustProve is proveKey for a test.
func mustProve(t testing.TB, ctx context.Context, client *http.Client, base string, key ed25519.PrivateKey) {
	t.Helper()
	if err := proveKey(ctx, client, base, key); err != nil {
		t.Fatalf("prove the key to the box: %v", err)
	}
}

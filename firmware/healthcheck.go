package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/chattorrent/chattorrent/net/cert"
)

// healthcheck runs "chattorrent healthcheck [serve flags]": it asks the running appliance
// for /healthz over HTTPS on loopback, trusting only the box's own CA from the data dir.
// For container HEALTHCHECKs and supervisors; exit status 0 means healthy.
func healthcheck(ctx context.Context, cfg Config, stdout io.Writer) error {
	caPEM, err := os.ReadFile(filepath.Join(cfg.DataDir, cert.CAFile))
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("healthcheck: no certificate in " + filepath.Join(cfg.DataDir, cert.CAFile))
	}
	_, port, err := net.SplitHostPort(cfg.HTTPSAddr)
	if err != nil {
		return fmt.Errorf("healthcheck: -https-addr: %w", err)
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+net.JoinHostPort("127.0.0.1", port)+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s", resp.Status)
	}
	fmt.Fprintf(stdout, "%s\n", body)
	return nil
}

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
	_, port, err := net.SplitHostPort(cfg.HTTPSAddr)
	if err != nil {
		return fmt.Errorf("healthcheck: -https-addr: %w", err)
	}
	probe, err := newHealthProbe(filepath.Join(cfg.DataDir, cert.CAFile), net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	body, err := probe.get(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", body)
	return nil
}

// healthProbe asks a box for /healthz over HTTPS, trusting only the box's CA. Made once:
// the CA is read once and one client keeps its connection between probes (the watchdog's
// and a new release's trial probe every few seconds).
type healthProbe struct {
	url    string
	client *http.Client
}

func newHealthProbe(caFile, hostport string) (*healthProbe, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("healthcheck: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("healthcheck: no certificate in " + caFile)
	}
	return &healthProbe{
		url: "https://" + hostport + "/healthz",
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
			IdleConnTimeout: time.Minute,
		}},
	}, nil
}

// get returns /healthz's body, or why the box is not healthy.
func (p *healthProbe) get(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return nil, fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("healthcheck: %s", resp.Status)
	}
	return body, nil
}

// check is get for callers that only need the verdict.
func (p *healthProbe) check(ctx context.Context) error {
	_, err := p.get(ctx)
	return err
}

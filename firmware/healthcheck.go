package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"

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
	body, err := probeHealth(ctx, filepath.Join(cfg.DataDir, cert.CAFile), net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", body)
	return nil
}

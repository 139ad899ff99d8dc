package main

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"

	"github.com/chattorrent/chattorrent/net/cert"
	"github.com/chattorrent/chattorrent/net/mdns"
)

// newMDNS makes the responder that answers for <hostname>.local and advertises the HTTPS
// port over DNS-SD; nil when turned off (--mdns=false). A box with the default unique name
// (generic true) also answers the generic chattorrent.local, which people may type; the
// plain-HTTP side redirects it to the unique name (web.Options.CanonicalHost).
func newMDNS(cfg Config, generic bool, httpsPort int, log *slog.Logger) (*mdns.Responder, error) {
	if !cfg.MDNS {
		return nil, nil
	}
	mc := mdns.Config{Name: cfg.Hostname, Port: httpsPort, Logger: log}
	if generic {
		mc.Aliases = []string{cert.DefaultHostname}
	}
	return mdns.New(mc)
}

// runMDNS serves mDNS until ctx ends. A responder that cannot serve at all (every candidate
// name taken) is logged, not fatal: the box stays reachable by its IP addresses.
func runMDNS(ctx context.Context, r *mdns.Responder, log *slog.Logger) error {
	if err := r.Run(ctx); err != nil {
		log.Error("mDNS stopped: phones must use the box's IP address", "err", err)
	}
	return nil
}

// phoneURLs are the addresses phones open the box at: its mDNS name (the one claimed, once
// claimed), then its LAN addresses, for phones that do not resolve ".local".
func phoneURLs(r *mdns.Responder, hostname string, port int, lan []netip.Addr) []string {
	p := ""
	if port != 443 {
		p = ":" + strconv.Itoa(port)
	}
	name := hostname + ".local"
	if r != nil && r.Name() != "" {
		name = r.Name()
	}
	urls := []string{"https://" + name + p}
	for _, a := range lan {
		if a.IsLoopback() {
			continue
		}
		h := a.String()
		if a.Is6() {
			h = "[" + h + "]"
		}
		urls = append(urls, "https://"+h+p)
	}
	return urls
}

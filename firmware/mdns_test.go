package main

import (
	"net/netip"
	"strings"
	"testing"
)

// Phones get the mDNS name first, then every LAN address (IPv6 bracketed), never loopback;
// the port is left out when it is 443.
func TestPhoneURLs(t *testing.T) {
	lan := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.168.4.1"), netip.MustParseAddr("fd00::1")}
	if got := strings.Join(phoneURLs(nil, "caja", 443, lan), " "); got != "https://caja.local https://192.168.4.1 https://[fd00::1]" {
		t.Errorf("port 443: %s", got)
	}
	if got := strings.Join(phoneURLs(nil, "caja", 8443, lan), " "); got != "https://caja.local:8443 https://192.168.4.1:8443 https://[fd00::1]:8443" {
		t.Errorf("port 8443: %s", got)
	}
}

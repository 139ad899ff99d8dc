package mdns

import (
	"errors"
	"net"
	"slices"
	"testing"
)

// TestUsableInterfaces runs the interface filter on made-up interfaces: no
// socket is opened and the machine's interfaces are not read.
func TestUsableInterfaces(t *testing.T) {
	const (
		up    = net.FlagUp | net.FlagMulticast | net.FlagBroadcast
		lo    = net.FlagUp | net.FlagLoopback | net.FlagMulticast
		noMC  = net.FlagUp | net.FlagPointToPoint
		down  = net.FlagMulticast
		addrA = "10.1.0.1"
	)
	list := []net.Interface{
		{Index: 1, Name: "lo", Flags: lo},
		{Index: 2, Name: "wlan0", Flags: up},
		{Index: 3, Name: "eth0", Flags: down},
		{Index: 4, Name: "tun0", Flags: noMC},
		{Index: 5, Name: "usb0", Flags: up}, // no address yet
		{Index: 6, Name: "broken", Flags: up},
	}
	addrs := map[string][]net.Addr{
		"lo":    {&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)}},
		"wlan0": {&net.IPNet{IP: net.ParseIP(addrA), Mask: net.CIDRMask(24, 32)}, &net.IPAddr{IP: net.ParseIP("fe80::1")}},
		"eth0":  {&net.IPNet{IP: net.ParseIP("10.2.0.1"), Mask: net.CIDRMask(24, 32)}},
		"tun0":  {&net.IPNet{IP: net.ParseIP("10.3.0.1"), Mask: net.CIDRMask(24, 32)}},
	}
	fake := func(ifc net.Interface) ([]net.Addr, error) {
		if ifc.Name == "broken" {
			return nil, errors.New("no")
		}
		return addrs[ifc.Name], nil
	}

	got, fp := usableInterfaces(list, false, fake)
	if names := ifaceNames(got); !slices.Equal(names, []string{"wlan0"}) {
		t.Errorf("all interfaces: got %v, want [wlan0]", names)
	}
	got, _ = usableInterfaces(list, true, fake)
	if names := ifaceNames(got); !slices.Equal(names, []string{"lo", "wlan0"}) {
		t.Errorf("named interfaces: got %v, want [lo wlan0] (loopback allowed when named)", names)
	}

	// The fingerprint changes with an address, not with the order addresses come in.
	addrs["wlan0"][0], addrs["wlan0"][1] = addrs["wlan0"][1], addrs["wlan0"][0]
	if _, fp2 := usableInterfaces(list, false, fake); fp2 != fp {
		t.Errorf("fingerprint changed with address order: %q vs %q", fp, fp2)
	}
	addrs["usb0"] = []net.Addr{&net.IPNet{IP: net.ParseIP("10.4.0.1"), Mask: net.CIDRMask(24, 32)}}
	got, fp3 := usableInterfaces(list, false, fake)
	if fp3 == fp || len(got) != 2 {
		t.Errorf("usb0 got an address: interfaces %v, fingerprint unchanged %v", ifaceNames(got), fp3 == fp)
	}
	if got, fp := usableInterfaces(nil, false, fake); len(got) != 0 || fp != "" {
		t.Errorf("no interfaces: got %v, %q", got, fp)
	}
}

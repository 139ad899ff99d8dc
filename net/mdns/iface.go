package mdns

import (
	"fmt"
	"net"
	"slices"
	"strings"
)

// usableInterfaces keeps the interfaces mDNS can serve on: up,
// multicast-capable and holding at least one IP address. Loopback is
// dropped unless explicit (the caller named the interfaces). addrs is
// net.Interface.Addrs in production and a fake in tests.
//
// The second result identifies the set (names, indexes, flags,
// addresses): when it changes, the sockets are opened again.
func usableInterfaces(list []net.Interface, explicit bool, addrs func(net.Interface) ([]net.Addr, error)) ([]net.Interface, string) {
	var (
		out []net.Interface
		fp  strings.Builder
	)
	for _, ifc := range list {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagMulticast == 0 {
			continue
		}
		if !explicit && ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		as, err := addrs(ifc)
		if err != nil {
			continue
		}
		var ips []string
		for _, a := range as {
			switch a := a.(type) {
			case *net.IPNet:
				ips = append(ips, a.IP.String())
			case *net.IPAddr:
				ips = append(ips, a.IP.String())
			}
		}
		if len(ips) == 0 {
			continue
		}
		slices.Sort(ips)
		out = append(out, ifc)
		fmt.Fprintf(&fp, "%d/%s/%v/%s;", ifc.Index, ifc.Name, ifc.Flags, strings.Join(ips, ","))
	}
	return out, fp.String()
}

// currentInterfaces reads the interfaces afresh: the configured ones (by
// name, as an interface that comes back gets a new index) or all of them.
func currentInterfaces(configured []net.Interface) ([]net.Interface, string, error) {
	if configured == nil {
		all, err := net.Interfaces()
		if err != nil {
			return nil, "", fmt.Errorf("mdns: list interfaces: %w", err)
		}
		ifs, fp := usableInterfaces(all, false, interfaceAddrs)
		return ifs, fp, nil
	}
	fresh := make([]net.Interface, 0, len(configured))
	for _, c := range configured {
		ifc, err := net.InterfaceByName(c.Name)
		if err != nil {
			continue // gone for now; it may come back
		}
		fresh = append(fresh, *ifc)
	}
	ifs, fp := usableInterfaces(fresh, true, interfaceAddrs)
	return ifs, fp, nil
}

func interfaceAddrs(ifc net.Interface) ([]net.Addr, error) { return ifc.Addrs() }

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/mdns/v2"
	"golang.org/x/net/ipv4"

	"github.com/chattorrent/chattorrent/store/testenv"
)

// TestLANBoxByName: two hosts. The box runs in a network namespace of its own, joined to
// this test's namespace (the phones' host) by a veth pair:
//
//	this namespace (phones): ctva 10.78.0.2/24  <== veth ==>  box namespace: ctvb 10.78.0.1/24
//
// The phones' host resolves the generic chattorrent.local over real multicast (pion's
// resolver, as a phone's OS would), is redirected by the box's plain-HTTP side to the box's
// unique name chattorrent-<6 hex>.local, resolves that too, checks that the box's
// certificate is valid for it (and not for the generic name, which every box answers), and
// gives the answer to Chromium as its resolver (Chromium on Linux resolves .local through
// the system's NSS, which has no mDNS module here). Two browsers then load the unique name,
// meet through the box's drop box with no files and chat.
func TestLANBoxByName(t *testing.T) {
	ns, err := newBoxNamespace(t)
	if err != nil {
		testenv.SkipOrFail(t, fmt.Sprintf("two-host setup: %v (needs root and iproute2)", err))
	}

	// The box: the real binary with its defaults (mDNS on, name chattorrent-<6 hex>), in its host,
	// without STUN/TURN (see D below; TestRelayThroughBox tests those).
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready.json")
	logf, err := os.Create(filepath.Join(dir, "box.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", ns, filepath.Join(server.dir, "chattorrent"), "serve",
		"--data-dir", filepath.Join(dir, "data"), "--https-addr", ":8443", "--http-addr", ":8080", "--ready-file", ready,
		"--turn-port", "-1", "--mic", "none", "--ptt-pin", "none", "--export-pin", "none", "--led-pin", "none", "--sticks", "none")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(logf.Name())
			t.Logf("box log:\n%s", log)
		}
	}()
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("box exited: %v\n%s", err, log)
		case <-time.After(20 * time.Millisecond):
		}
	}

	// Resolve the generic name over multicast on the veth; its plain-HTTP side names the
	// box's own.
	generic := resolveMDNS(t, "ctva", "chattorrent.local")
	if generic != netip.MustParseAddr("10.78.0.1") {
		t.Fatalf("chattorrent.local resolved to %v, want the box's 10.78.0.1", generic)
	}
	plain := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, netip.AddrPortFrom(generic, 8080).String())
		}}}
	resp, err := plain.Get("http://chattorrent.local:8080/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusPermanentRedirect || loc == nil || !regexp.MustCompile(`^chattorrent-[0-9a-f]{6}\.local$`).MatchString(loc.Hostname()) || loc.Port() != "8443" {
		t.Fatalf("http://chattorrent.local/ answered %d, Location %q; want the box's unique name", resp.StatusCode, resp.Header.Get("Location"))
	}
	name := loc.Hostname()
	addr := resolveMDNS(t, "ctva", name)
	if addr != netip.MustParseAddr("10.78.0.1") {
		t.Fatalf("%s resolved to %v, want the box's 10.78.0.1", name, addr)
	}

	// The box's certificate is valid for its mDNS name (against the box's own CA).
	caPEM, err := os.ReadFile(filepath.Join(dir, "data", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			if a != name+":8443" && a != "chattorrent.local:8443" {
				return nil, fmt.Errorf("unexpected dial %s", a)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, netip.AddrPortFrom(addr, 8443).String())
		},
	}}
	resp, err = client.Get("https://" + name + ":8443/api/box/address")
	if err != nil {
		t.Fatalf("HTTPS to %s with the box's CA: %v", name, err)
	}
	var got struct{ URLs []string }
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if len(got.URLs) < 2 || got.URLs[0] != "https://"+name+":8443" || got.URLs[1] != "https://10.78.0.1:8443" {
		t.Errorf("the box lists %v", got.URLs)
	}
	// The generic name, which any box (or anyone) may answer, is not covered.
	if resp, err := client.Get("https://chattorrent.local:8443/healthz"); err == nil {
		resp.Body.Close()
		t.Error("the box's certificate is valid for the generic chattorrent.local")
	}

	// Two phones on the phones' host load the page by name and meet through the drop box.
	base := "https://" + name + ":8443"
	rules := fmt.Sprintf("MAP %s %s , %s", name, addr, noDNS)
	a := newUserAt(t, "A", "es-ES", base, rules)
	b := newUserAt(t, "B", "es-ES", base, rules)
	if href := evalJS[string](a, `location.href`); href != base+"/" {
		t.Fatalf("A is at %s", href)
	}
	a.setName("Ana")
	b.setName("Bruno")
	a.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Campamento"))
	a.download(chromedp.Click(chromedp.CSS("#create-room")))
	a.waitJS(`!document.getElementById('publish-offer').hidden`)
	a.do(menuClick("#publish-offer"))
	b.waitJS(`[...document.querySelectorAll('#drop-offers .drop-offer .room-name')].some(n => n.textContent === 'Campamento')`)
	before := len(b.downloads())
	b.do(chromedp.Click(chromedp.CSS("#drop-offers .drop-join")))
	code := b.waitDropCode() // Ana accepts Bruno once both see the same code
	if _, shown := a.waitDropAnswer("Bruno"); shown != code {
		t.Errorf("A shows code %q for Bruno, Bruno's page %q", shown, code)
	}
	a.do(chromedp.Click(chromedp.CSS("#drop-answers .drop-accept")))
	a.waitStatus("connected")
	b.waitStatus("connected")
	if n := len(b.downloads()); n != before {
		t.Errorf("B downloaded %d files joining through the box", n-before)
	}
	a.say("hola desde la tienda")
	b.waitMessage("hola desde la tienda")
	b.say("te leo")
	a.waitMessage("te leo")

	// A phone that never granted the microphone: Chromium hides its addresses behind
	// random .local names in its offer, and answers for them over mDNS itself. The box
	// (pion, in its own host) resolves them over multicast and joins D's room.
	d := newUserAt(t, "D", "es-ES", base, rules, func(u *user) { u.noMic = true })
	d.setName("Dora")
	d.do(chromedp.SendKeys(chromedp.CSS("#new-room-name"), "Radio"))
	offer, _ := d.download(chromedp.Click(chromedp.CSS("#create-room")))
	names := 0
	for _, c := range candidates(t, offer) {
		f := strings.Fields(c)
		switch {
		case len(f) < 8:
			t.Fatalf("D's offer: %s", c)
		case f[7] != "host":
			// The box here serves no STUN/TURN (--turn-port -1): a server-reflexive
			// candidate would show D's address and let pion connect without resolving.
			t.Fatalf("D's offer has a %s candidate: %s", f[7], c)
		case strings.HasSuffix(f[4], ".local"):
			names++
		case f[4] != "127.0.0.1" && f[4] != "::1": // loopback is shown (the harness allows it)
			t.Fatalf("D's offer shows its LAN address as a host candidate, not a .local name: %s", c)
		}
	}
	if names == 0 {
		t.Fatalf("D's offer has no .local candidate: %q", candidates(t, offer))
	}
	d.do(menuClick("#keep-on-box"))
	d.waitStatus("connected")
	d.waitJS(`document.getElementById('room-peer').textContent.includes('ChatTorrent chattorrent')`)
	d.say("la caja me encontró")
	d.waitJS(`[...document.querySelectorAll('#messages .msg.mine .msg-state')].every(n => n.dataset.state === 'delivered')`)

	// The box is switched off (killed, as a plug pulled): the phones' room goes on.
	cmd.Process.Kill()
	<-done
	done <- nil // for the deferred stop
	a.say("sin la caja")
	b.waitMessage("sin la caja")
	b.say("seguimos")
	a.waitMessage("seguimos")
	a.checkConsole()
	b.checkConsole()
	d.checkConsole()
}

// newBoxNamespace makes the box's namespace and the veth pair to it, with IPv4 only, and
// removes both when the test ends.
func newBoxNamespace(t *testing.T) (string, error) {
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "", err
	}
	ns := fmt.Sprintf("ctbox%d", os.Getpid())
	ip := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("netns", "add", ns); err != nil {
		return "", err
	}
	t.Cleanup(func() { ip("netns", "del", ns) }) // the veth pair goes with it
	for _, args := range [][]string{
		{"link", "add", "ctva", "type", "veth", "peer", "name", "ctvb", "netns", ns},
		// No IPv6 link-local addresses: one appearing a second or two after the link comes
		// up (once duplicate-address detection ends) is a network change to Chromium, which
		// then closes every connection and fails the requests in flight
		// (ERR_NETWORK_CHANGED): the page's modules did not load, now and then.
		{"link", "set", "ctva", "addrgenmode", "none"},
		{"-n", ns, "link", "set", "ctvb", "addrgenmode", "none"},
		{"addr", "add", "10.78.0.2/24", "dev", "ctva"},
		{"link", "set", "ctva", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", "10.78.0.1/24", "dev", "ctvb"},
		{"-n", ns, "link", "set", "ctvb", "up"},
		// The phones' host routes everything to the box, as a phone on the box's Wi-Fi
		// does: Chromium without a microphone grant offers only its default route's
		// address (behind a .local name), and finds none without a default route. Nothing
		// leaves: the box's namespace has no other link and does not forward.
		{"route", "add", "default", "via", "10.78.0.1", "dev", "ctva"},
	} {
		if err := ip(args...); err != nil {
			return "", err
		}
	}
	return ns, nil
}

// resolveMDNS asks for name over multicast on ifname until an IPv4 answer comes (the box
// probes for its name before it answers).
func resolveMDNS(t *testing.T, ifname, name string) netip.Addr {
	t.Helper()
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	l4, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mdns.NewServer(ipv4.NewPacketConn(l4), nil, mdns.WithInterfaces(*ifc), mdns.WithQueryInterval(100*time.Millisecond))
	if err != nil {
		l4.Close()
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, addr, err := conn.QueryAddr(ctx, name)
	if err != nil {
		t.Fatalf("resolve %s over mDNS on %s: %v", name, ifname, err)
	}
	return addr.Unmap()
}

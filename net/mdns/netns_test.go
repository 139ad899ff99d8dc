//go:build linux

package mdns

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chattorrent/chattorrent/store/testenv"
)

// The namespace test runs real multicast between two network namespaces
// joined by a veth pair, as /work/shared/TESTING.md describes:
//
//	ns A: va 10.77.0.1/24 fd77::1/64  <== veth ==>  ns B: vb 10.77.0.2/24 fd77::2/64
//
// It creates both namespaces itself (with `ip netns`), so it works the same
// from the root namespace and from inside `unshare -n`, and no socket of
// the test ever exists outside them: the parent process only runs `ip`; the
// responders and queriers are this test binary run again inside a
// namespace (`ip netns exec`), selected by $MDNS_NETNS_CHILD and running
// TestNetnsChild. Without root or iproute2 it skips, unless CI=true.
// Under qemu-user (deploy/qemu-test.sh) it skips when the emulator cannot
// join a multicast group: see probeEmulatedMulticast.

const (
	childEnv = "MDNS_NETNS_CHILD"
	addrA    = "10.77.0.1"
	addrA2   = "10.77.0.11"
	addrB    = "10.77.0.2"
	addr6A   = "fd77::1"
	addr6B   = "fd77::2"
	testPort = "8443"
)

func TestNetns(t *testing.T) {
	e := setupNetns(t)
	start := time.Now()

	// 1. The box in A, on every usable interface (the default: only va
	// there), re-reading interfaces every 200 ms.
	r1 := e.startResponder(t, e.a, "MDNS_NETNS_IFACE=", "MDNS_NETNS_RESCAN=200ms")
	if got := r1.waitReady(t); got != "chattorrent.local" {
		t.Fatalf("first responder claimed %q, want chattorrent.local", got)
	}
	t.Logf("responder 1 ready after %v", time.Since(start).Round(time.Millisecond))

	// 2. A phone in B: A, AAAA, DNS-SD, junk packets, pion's browser.
	e.runQuerier(t, e.b, "MDNS_NETNS_CHECK=full", "MDNS_NETNS_WANT="+addrA)

	// 3. A second box in B wanting the same name gets chattorrent-2.
	r2 := e.startResponder(t, e.b, "MDNS_NETNS_IFACE=vb")
	if got := r2.waitReady(t); got != "chattorrent-2.local" {
		t.Fatalf("second responder claimed %q, want chattorrent-2.local", got)
	}
	if out := r2.output(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "name=chattorrent-2.local") {
		t.Errorf("second responder logged no Warn naming chattorrent-2.local:\n%s", out)
	}
	// ... and A resolves it to B's address.
	e.runQuerier(t, e.a, "MDNS_NETNS_IFACE=va", "MDNS_NETNS_CHECK=resolve",
		"MDNS_NETNS_NAME=chattorrent-2.local", "MDNS_NETNS_WANT="+addrB)

	// 4. The box's address changes: it re-reads its interfaces, keeps its
	// name and answers with the new address.
	// The new address is not a secondary of 10.77.0.1/24: deleting a
	// primary address deletes its secondaries (promote_secondaries is off
	// by default), and va would be left without IPv4.
	e.ip(t, "-n", e.a, "addr", "add", addrA2+"/16", "dev", "va")
	e.ip(t, "-n", e.a, "addr", "del", addrA+"/24", "dev", "va")
	e.runQuerier(t, e.b, "MDNS_NETNS_CHECK=resolve", "MDNS_NETNS_NAME=chattorrent.local", "MDNS_NETNS_WANT="+addrA2)

	// 5. Both stop on context cancellation, return nil and join everything.
	r2.stop(t)
	r1.stop(t)
	if strings.Count(r1.output(), "MDNS_READY") != 1 || !strings.Contains(r1.output(), "interfaces changed") {
		t.Errorf("first responder did not re-open once on the address change:\n%s", r1.output())
	}
	t.Logf("namespace test took %v", time.Since(start).Round(time.Millisecond))
}

// TestNetnsAlias: a box with a unique name also answers the generic alias, so a phone that
// types chattorrent.local finds it, and still answers its own name.
func TestNetnsAlias(t *testing.T) {
	e := setupNetns(t)
	r := e.startResponder(t, e.a, "MDNS_NETNS_IFACE=va", "MDNS_NETNS_BOXNAME=chattorrent-1a2b3c", "MDNS_NETNS_ALIASES=chattorrent")
	if got := r.waitReady(t); got != "chattorrent-1a2b3c.local" {
		t.Fatalf("responder claimed %q, want chattorrent-1a2b3c.local", got)
	}
	e.runQuerier(t, e.b, "MDNS_NETNS_CHECK=resolve", "MDNS_NETNS_NAME=chattorrent.local", "MDNS_NETNS_WANT="+addrA)
	e.runQuerier(t, e.b, "MDNS_NETNS_CHECK=resolve", "MDNS_NETNS_NAME=chattorrent-1a2b3c.local", "MDNS_NETNS_WANT="+addrA)
	r.stop(t)
}

// TestNetnsNameConflict: two boxes powered on together can both find chattorrent.local
// free while probing (neither answers yet) and both claim it. Each checks at every rescan
// whether another host answers for its name too; the one with the higher address moves on.
// The other host here is a squatter (pion answering for the name, no probing), so both
// sides of the tie-break are shown every time.
func TestNetnsNameConflict(t *testing.T) {
	e := setupNetns(t)
	// 1. The box in B (10.77.0.2) holds chattorrent.local; then A (10.77.0.1, lower)
	// answers for it too: B moves to chattorrent-2.local, and says why.
	rb := e.startResponder(t, e.b, "MDNS_NETNS_IFACE=vb", "MDNS_NETNS_RESCAN=200ms")
	if got := rb.waitReady(t); got != "chattorrent.local" {
		t.Fatalf("B claimed %q", got)
	}
	sa := e.startChild(t, e.a, "squatter", "MDNS_NETNS_IFACE=va")
	sa.waitReady(t)
	rb.waitOutput(t, "msg=answering component=mdns name=chattorrent-2.local")
	if out := rb.output(); !strings.Contains(out, "another host answers for this name too") || !strings.Contains(out, "holder="+addrA) {
		t.Errorf("B moved without saying why:\n%s", out)
	}
	e.runQuerier(t, e.a, "MDNS_NETNS_IFACE=va", "MDNS_NETNS_CHECK=resolve",
		"MDNS_NETNS_NAME=chattorrent-2.local", "MDNS_NETNS_WANT="+addrB)
	rb.stop(t)
	sa.stop(t)

	// 2. The box in A (lower) holds its name against a squatter in B: after several checks
	// that heard the squatter, it still answers as chattorrent.local.
	ra := e.startResponder(t, e.a, "MDNS_NETNS_IFACE=va", "MDNS_NETNS_RESCAN=200ms", "MDNS_NETNS_DEBUG=1")
	if got := ra.waitReady(t); got != "chattorrent.local" {
		t.Fatalf("A claimed %q", got)
	}
	sb := e.startChild(t, e.b, "squatter", "MDNS_NETNS_IFACE=vb")
	sb.waitReady(t)
	for range 3 {
		n := strings.Count(ra.output(), "msg=\"another host answers for this name; ours is the lower address\"")
		ra.waitOutputCount(t, "msg=\"another host answers for this name; ours is the lower address\"", n+1)
	}
	if out := ra.output(); strings.Contains(out, "chattorrent-2") {
		t.Errorf("A, the lower address, gave up its name:\n%s", out)
	}
	e.runQuerier(t, e.b, "MDNS_NETNS_CHECK=resolve", "MDNS_NETNS_NAME=chattorrent.local", "MDNS_NETNS_WANT="+addrA)
	ra.stop(t)
	sb.stop(t)
}

// setupNetns makes the two namespaces for a parent test (a child process skips it) and
// skips under an emulator that cannot join a multicast group.
func setupNetns(t *testing.T) *netnsEnv {
	t.Helper()
	if os.Getenv(childEnv) != "" {
		t.Skip("inside a child process")
	}
	e := newNetnsEnv(t)
	if e.emulated {
		e.probeEmulatedMulticast(t)
	}
	return e
}

// netnsEnv is two fresh namespaces and how to run this binary inside them.
type netnsEnv struct {
	a, b string   // namespace names
	exe  []string // the test binary, behind an emulator if it needs one
	v6   bool     // the veth ends have their IPv6 addresses

	emulated bool // exe runs under qemu-user
}

// unavailable skips the test, or fails it when CI=true.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	testenv.SkipOrFail(t, fmt.Sprintf("skipping the network namespace test: %s (needs root and iproute2; with CI=true this fails)", msg))
}

func newNetnsEnv(t *testing.T) *netnsEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		unavailable(t, "no ip command: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("test binary: %v", err)
	}
	emu, err := emulator()
	if err != nil {
		unavailable(t, "%v", err)
	}
	e := &netnsEnv{
		a:   fmt.Sprintf("mdnstest-%d-a", os.Getpid()),
		b:   fmt.Sprintf("mdnstest-%d-b", os.Getpid()),
		exe: append(emu, exe),

		emulated: len(emu) > 0,
	}
	if out, err := exec.Command("ip", "netns", "add", e.a).CombinedOutput(); err != nil {
		unavailable(t, "ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", e.a).Run() })
	e.ip(t, "netns", "add", e.b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", e.b).Run() })

	// The pair is made directly inside the two namespaces.
	e.ip(t, "link", "add", "va", "netns", e.a, "type", "veth", "peer", "name", "vb", "netns", e.b)
	e.v6 = true
	for _, end := range []struct{ ns, dev, v4, v6 string }{{e.a, "va", addrA, addr6A}, {e.b, "vb", addrB, addr6B}} {
		e.ip(t, "-n", end.ns, "link", "set", "lo", "up")
		e.ip(t, "-n", end.ns, "addr", "add", end.v4+"/24", "dev", end.dev)
		// Only the fixed IPv6 address, no DAD, no link-local: AAAA
		// answers are then predictable and usable at once.
		if exec.Command("ip", "-n", end.ns, "link", "set", end.dev, "addrgenmode", "none").Run() != nil ||
			exec.Command("ip", "-n", end.ns, "-6", "addr", "add", end.v6+"/64", "dev", end.dev, "nodad").Run() != nil {
			e.v6 = false
		}
		e.ip(t, "-n", end.ns, "link", "set", end.dev, "up")
	}
	// The kernel marks a veth end running (carrier) and, for IPv6, adds
	// its multicast route ff00::/8 only some time after both ends are up
	// (linkwatch). Before that IPv6 multicast sends fail with "network is
	// unreachable", and the responder would see its interface's flags
	// change and open its sockets again. Wait for both.
	for _, end := range []struct{ ns, dev string }{{e.a, "va"}, {e.b, "vb"}} {
		e.waitLink(t, end.ns, end.dev)
	}
	if !e.v6 {
		t.Log("no IPv6 in the namespaces: AAAA checks skipped")
	}
	return e
}

// waitLink waits until dev in ns is running and, with IPv6, has its
// multicast route. The deadline is only there for a kernel that never
// does it.
func (e *netnsEnv) waitLink(t *testing.T, ns, dev string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		link, _ := exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", dev).Output()
		running := bytes.Contains(link, []byte("LOWER_UP")) && bytes.Contains(link, []byte("state UP"))
		route := !e.v6
		if e.v6 {
			routes, _ := exec.Command("ip", "-n", ns, "-6", "route", "show", "table", "local", "type", "multicast", "dev", dev).Output()
			route = bytes.Contains(routes, []byte("ff00::/8"))
		}
		if running && route {
			return
		}
		if time.Now().After(deadline) {
			if running {
				t.Logf("no IPv6 multicast route on %s: IPv6 not used", dev)
				e.v6 = false
				return
			}
			t.Fatalf("%s in %s not running: %s", dev, ns, bytes.TrimSpace(link))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// probeEmulatedMulticast skips the test when the emulator cannot join a
// multicast group. qemu-user (7.2, Debian 12's) does not emulate the socket
// options golang.org/x/net uses for that on Linux (MCAST_JOIN_GROUP,
// IP_MULTICAST_IF with an ip_mreqn) and answers ENOPROTOOPT, so pion finds
// "no usable interfaces". That is the emulator, not the code under test nor
// a missing tool, so this skips even with CI=true; the same test runs
// natively (amd64 and on a Pi). Any other probe failure fails the test.
func (e *netnsEnv) probeEmulatedMulticast(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := e.command(ctx, e.a, childEnv+"=probe", "MDNS_NETNS_IFACE=va").CombinedOutput()
	switch {
	case err != nil:
		t.Fatalf("multicast probe under %s failed: %v\n%s", e.exe[0], err, out)
	case bytes.Contains(out, []byte("MDNS_PROBE enoprotoopt")):
		t.Skipf("skipping the network namespace test under emulation: %s cannot join a multicast group "+
			"(no MCAST_JOIN_GROUP / IP_MULTICAST_IF emulation; not a missing tool, so not a failure with CI=true); "+
			"it runs natively", e.exe[0])
	case !bytes.Contains(out, []byte("MDNS_PROBE ok")):
		t.Fatalf("multicast probe under %s said nothing:\n%s", e.exe[0], out)
	}
}

func (e *netnsEnv) ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// emulator returns the qemu-user command to run this binary under when it
// was built for another architecture than the machine's (go test -exec
// qemu-aarch64-static), nil when it runs natively.
func emulator() ([]string, error) {
	out, err := exec.Command("uname", "-m").Output()
	if err != nil {
		return nil, fmt.Errorf("uname -m: %w", err)
	}
	host := map[string]string{
		"x86_64": "amd64", "aarch64": "arm64", "armv6l": "arm", "armv7l": "arm",
		"armv8l": "arm", "i686": "386", "riscv64": "riscv64",
	}[strings.TrimSpace(string(out))]
	if host == runtime.GOARCH || (host == "arm64" && runtime.GOARCH == "arm") || (host == "amd64" && runtime.GOARCH == "386") {
		return nil, nil
	}
	qemu := map[string]string{
		"arm64": "qemu-aarch64-static", "arm": "qemu-arm-static", "amd64": "qemu-x86_64-static",
		"386": "qemu-i386-static", "riscv64": "qemu-riscv64-static",
	}[runtime.GOARCH]
	path, err := exec.LookPath(qemu)
	if qemu == "" || err != nil {
		return nil, fmt.Errorf("a %s test binary on a %s machine needs %q to run again inside a namespace", runtime.GOARCH, host, qemu)
	}
	return []string{path}, nil
}

func (e *netnsEnv) command(ctx context.Context, ns string, env ...string) *exec.Cmd {
	args := append([]string{"netns", "exec", ns}, e.exe...)
	args = append(args, "-test.run=^TestNetnsChild$", "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, fmt.Sprintf("MDNS_NETNS_V6=%v", e.v6), "MDNS_NETNS_PORT="+testPort)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runQuerier runs one querier child to completion; its failures are ours.
func (e *netnsEnv) runQuerier(t *testing.T, ns string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	cmd := e.command(ctx, ns, append([]string{childEnv + "=querier", "MDNS_NETNS_IFACE=vb"}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("querier in %s (%s) failed: %v\n%s", ns, strings.Join(env, " "), err, out)
	}
	t.Logf("querier in %s (%s) passed in %v", ns, strings.Join(env, " "), time.Since(start).Round(time.Millisecond))
}

// responderChild is a responder running in a namespace until its stdin closes.
type responderChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  chan string // the name from the MDNS_READY line
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader goroutine has seen EOF

	mu  sync.Mutex
	out bytes.Buffer // guarded by mu: everything the child wrote
}

func (e *netnsEnv) startResponder(t *testing.T, ns string, env ...string) *responderChild {
	t.Helper()
	return e.startChild(t, ns, "responder", env...)
}

// startChild runs a responder or squatter child; waitReady returns once it serves.
func (e *netnsEnv) startChild(t *testing.T, ns, role string, env ...string) *responderChild {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	c := &responderChild{ready: make(chan string, 1), cancel: cancel, done: make(chan struct{})}
	c.cmd = e.command(ctx, ns, append([]string{childEnv + "=" + role}, env...)...)
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = c.cmd.Stdout
	if err := c.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start responder in %s: %v", ns, err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.out.WriteString(line + "\n")
			c.mu.Unlock()
			if name, ok := strings.CutPrefix(line, "MDNS_READY "); ok || line == "MDNS_SQUATTING" {
				select {
				case c.ready <- name:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { // if the test stopped early
		c.stdin.Close()
		cancel()
		<-c.done
		c.cmd.Wait()
		if t.Failed() {
			t.Logf("responder in %s (%s) wrote:\n%s", ns, strings.Join(env, " "), c.output())
		}
	})
	return c
}

func (c *responderChild) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// waitOutput waits until the child has written s.
func (c *responderChild) waitOutput(t *testing.T, s string) {
	t.Helper()
	c.waitOutputCount(t, s, 1)
}

// waitOutputCount waits until the child has written s n times. The deadline is for a
// broken child, not a performance threshold.
func (c *responderChild) waitOutputCount(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(c.output(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the child did not write %q %d times:\n%s", s, n, c.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *responderChild) waitReady(t *testing.T) string {
	t.Helper()
	select {
	case name := <-c.ready:
		return name
	case <-c.done:
		t.Fatalf("responder exited before it was ready:\n%s", c.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("responder not ready after 20 s:\n%s", c.output())
	}
	return ""
}

// stop closes the child's stdin (its context ends) and checks it exits 0.
func (c *responderChild) stop(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	<-c.done
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("responder exited with %v:\n%s", err, c.output())
	}
	if !strings.Contains(c.output(), "MDNS_STOPPED") {
		t.Errorf("responder did not report a clean stop:\n%s", c.output())
	}
}

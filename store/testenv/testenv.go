// Package testenv holds the helpers tests across the module share (tailscale's tstest):
// waiting for a condition, and the checks that a test may run here at all (a
// loopback-only network namespace, a browser). Under CI=true nothing may skip: a missing
// precondition fails the test instead. It imports nothing of this module; only tests
// import it.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// WaitTimeout bounds WaitFor: only so that a broken test fails instead of hanging until
// go test's own timeout. Tests do not depend on it.
const WaitTimeout = time.Minute

// WaitFor polls cond until it holds. It fails t when WaitTimeout passes first or t's
// context ends.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-deadline.C:
			t.Fatalf("never: %s (waited %v)", what, WaitTimeout)
		case <-tick.C:
		}
	}
}

// InCI says whether the tests run in CI (CI=true), where nothing may skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips t, or fails it under CI=true, with why.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatal("cannot run with CI=true: " + why)
	}
	t.Skip(why)
}

// NotLoopbackOnly says why this process may not open real sockets (an interface other
// than loopback is up: outside `unshare -n`), or "" when it may.
func NotLoopbackOnly() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return err.Error()
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return "not in a loopback-only network namespace (interface " + i.Name + "): run inside `unshare -n sh -c 'ip link set lo up && go test ...'`"
		}
	}
	return ""
}

// LoopbackOnly says whether every network interface is a loopback one.
func LoopbackOnly() bool { return NotLoopbackOnly() == "" }

// NeedLoopbackOnly skips (fails under CI=true) a test that opens sockets outside a
// loopback-only network namespace.
func NeedLoopbackOnly(t testing.TB) {
	t.Helper()
	if why := NotLoopbackOnly(); why != "" {
		SkipOrFail(t, "opens sockets: "+why)
	}
}

// NeedBrowser returns the path of the first of paths (absolute, or a name looked up in
// PATH) that exists; without one it skips t, or fails it under CI=true.
func NeedBrowser(t testing.TB, what string, paths ...string) string {
	t.Helper()
	if p := FindBrowser(paths...); p != "" {
		return p
	}
	SkipOrFail(t, "no "+what+" here")
	return ""
}

// FindBrowser returns the first of paths that exists, or "".
func FindBrowser(paths ...string) string {
	for _, p := range paths {
		if found, err := exec.LookPath(p); err == nil {
			return found
		}
	}
	return ""
}

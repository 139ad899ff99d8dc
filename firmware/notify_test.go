package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listenNotify opens the unixgram socket systemd would hold and returns an environment
// pointing at it.
func listenNotify(t *testing.T, name string) (*net.UnixConn, map[string]string) {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, map[string]string{"NOTIFY_SOCKET": name}
}

func readDatagram(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestNotifierWatchdogOnlyWhileHealthy: READY=1 first, WATCHDOG=1 after a passing health
// check, none after failing ones, STOPPING=1 at the end; the order on the socket is the order
// of the sends.
func TestNotifierWatchdogOnlyWhileHealthy(t *testing.T) {
	sock, env := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	env["WATCHDOG_USEC"] = "20000"
	env["WATCHDOG_PID"] = strconv.Itoa(os.Getpid())
	n := newNotifier(func(k string) string { return env[k] }, quietLog())
	if n == nil || n.watchdog.Microseconds() != 20000 {
		t.Fatalf("notifier = %+v, want a 20ms watchdog", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	calls := 0
	healthy := func(context.Context) error {
		calls++ // only run's goroutine calls it
		switch {
		case calls == 1:
			return nil
		case calls == 3:
			cancel()
		}
		return errors.New("not serving")
	}
	done := make(chan error, 1)
	go func() { done <- n.run(ctx, healthy) }()
	for _, want := range []string{"READY=1", "WATCHDOG=1", "STOPPING=1"} {
		if got := readDatagram(t, sock); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestNotifierBusy: long work before READY=1 pushes systemd's start timeout back, at most
// every extendEvery; no notifier, no function.
func TestNotifierBusy(t *testing.T) {
	sock, env := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	n := newNotifier(func(k string) string { return env[k] }, quietLog())
	now := time.Unix(1000, 0)
	busy := n.busy(func() time.Time { return now })
	busy()
	now = now.Add(extendEvery / 2)
	busy() // too soon: nothing sent
	now = now.Add(extendEvery)
	busy()
	want := "EXTEND_TIMEOUT_USEC=60000000\nSTATUS=Migrating the store"
	for range 2 {
		if got := readDatagram(t, sock); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if err := sock.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := sock.Read(make([]byte, 256)); err == nil {
		t.Error("a third datagram was sent for calls within extendEvery")
	}
	var none *notifier
	if none.busy(time.Now) != nil {
		t.Error("a nil notifier's busy is not nil")
	}
}

// TestNotifierAbstractSocket: systemd may name an abstract socket ("@...").
func TestNotifierAbstractSocket(t *testing.T) {
	sock, env := listenNotify(t, "@chattorrent-notify-test-"+strconv.Itoa(os.Getpid()))
	n := newNotifier(func(k string) string { return env[k] }, quietLog())
	if err := n.send("READY=1"); err != nil {
		t.Fatal(err)
	}
	if got := readDatagram(t, sock); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
}

// TestNotifierEnvironment: no socket, no notifier; a watchdog meant for another process
// (WATCHDOG_PID) or none at all gives no pings.
func TestNotifierEnvironment(t *testing.T) {
	if n := newNotifier(func(string) string { return "" }, quietLog()); n != nil {
		t.Fatalf("notifier without NOTIFY_SOCKET: %+v", n)
	}
	for _, env := range []map[string]string{
		{"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"},
		{"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "0"},
		{"NOTIFY_SOCKET": "/x"},
	} {
		if n := newNotifier(func(k string) string { return env[k] }, quietLog()); n == nil || n.watchdog != 0 {
			t.Errorf("env %v: notifier %+v, want one without watchdog", env, n)
		}
	}
}

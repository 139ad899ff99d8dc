package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's notification protocol (sd_notify(3)) without libsystemd: one
// datagram per message to the unix socket named by $NOTIFY_SOCKET. chattorrent.service is
// Type=notify with WatchdogSec=: the unit counts as started at READY=1, and systemd
// restarts the service when WATCHDOG=1 stops coming.
type notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration // WatchdogSec= of the unit, 0 when off or meant for another process
	log      *slog.Logger
}

// newNotifier returns nil when the process was not started by systemd with a notify socket.
// getenv is os.Getenv outside tests.
func newNotifier(getenv func(string) string, log *slog.Logger) *notifier {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	// "@name" is an abstract socket: Go's net package maps the leading '@' to a NUL byte.
	n := &notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}, log: log}
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	pid := getenv("WATCHDOG_PID")
	if err == nil && usec > 0 && (pid == "" || pid == strconv.Itoa(os.Getpid())) {
		n.watchdog = time.Duration(usec) * time.Microsecond
	}
	return n
}

// send writes one notification, e.g. "READY=1".
func (n *notifier) send(state string) error {
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}

// extendEvery is how often busy() may push systemd's start timeout back, and extendBy how
// far: a migration of a big store at the first start after an update may outlast the
// unit's TimeoutStartSec= (90 s by default) on a Pi's SD card.
const (
	extendEvery = 10 * time.Second
	extendBy    = time.Minute
)

// busy returns a function for long work before READY=1 (store.Options.Busy): at most every
// extendEvery it asks systemd for extendBy more before the start counts as failed.
// It returns nil for a nil notifier.
func (n *notifier) busy(now func() time.Time) func() {
	if n == nil {
		return nil
	}
	var last time.Time
	return func() {
		t := now()
		if !last.IsZero() && t.Sub(last) < extendEvery {
			return
		}
		last = t
		msg := fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d\nSTATUS=Migrating the store", extendBy.Microseconds())
		if err := n.send(msg); err != nil {
			n.log.Warn("systemd: extend the start timeout", "err", err)
		}
	}
}

// run tells systemd the service is ready, then, if the unit has a watchdog, sends
// WATCHDOG=1 every half WatchdogSec while healthy(ctx) succeeds: a box that stops serving
// (a deadlock, a dead listener) misses its pings and systemd restarts it. It returns when
// ctx ends, after STOPPING=1. Failures to reach the socket are logged, never fatal.
func (n *notifier) run(ctx context.Context, healthy func(context.Context) error) error {
	if err := n.send("READY=1"); err != nil {
		n.log.Warn("systemd: ready notification", "err", err)
	}
	var tick <-chan time.Time
	if n.watchdog > 0 {
		t := time.NewTicker(n.watchdog / 2)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			n.send("STOPPING=1")
			return nil
		case <-tick:
			cctx, cancel := context.WithTimeout(ctx, n.watchdog/2)
			err := healthy(cctx)
			cancel()
			if err != nil {
				n.log.Warn("systemd: health check failed, no watchdog ping", "err", err)
				continue
			}
			if err := n.send("WATCHDOG=1"); err != nil {
				n.log.Warn("systemd: watchdog ping", "err", err)
			}
		}
	}
}

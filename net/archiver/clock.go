package archiver

import (
	"log/slog"
	"slices"
	"sync"
	"time"
)

// The bounds on what peers can do to the box's clock (docs/SECURITY.md, "The clock").
const (
	// MaxClockStep is the most one step moves the Clock forward: a Pi switched off for up
	// to a month (fake-hwclock boots it at its shutdown time) catches up in one step.
	MaxClockStep = 31 * 24 * time.Hour
	// MaxClockLead is the most the Clock is ever ahead of the system clock: three steps,
	// a box stored away for a school summer. It is also the furthest into the future a
	// room's entries can be stamped while the box is stale (plus history.FutureSlack).
	MaxClockLead = 3 * MaxClockStep
	// MinClockReports is how many different members must have stated their time.
	MinClockReports = 2
	// ClockReportTTL is how long a member's stated time counts, on the box's monotonic clock.
	ClockReportTTL = 10 * time.Minute
	// minClockMove: a median less than this ahead of the Clock is ignored (clocks differ a
	// little; history.FutureSlack covers that).
	minClockMove = time.Minute
)

// ClockOptions configures a Clock; the zero value is the system clock with the kernel's
// word on staleness.
type ClockOptions struct {
	// Sys is the system clock; nil means time.Now. Its readings should carry Go's
	// monotonic clock (time.Now's do): elapsed time is measured by it.
	Sys func() time.Time
	// Stale says whether the system clock is known to be stale now; peers' times are
	// taken only while it says so. nil means KernelUnsynced (linux: the kernel says the
	// clock is unsynchronised, as it does on a Pi with no network time; elsewhere never).
	// Either way the system time is also stale while it is before NotBefore.
	Stale func() bool
	// NotBefore is a time the system clock cannot honestly be before: the binary's build
	// time, raised by RaiseNotBefore to the newest entry the box stored. Zero: none.
	NotBefore time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Clock is the box's time: what it checks entries against and stamps its own entries
// with. A Raspberry Pi has no real-time clock and, offline, no time server: it boots with
// the time it last saved, days or weeks behind, and would refuse every phone's entries as
// from the future. Peers state their clock in hello. While the system clock is known to be
// stale, the Clock moves forward to the lower median of what at least MinClockReports
// different members stated within ClockReportTTL, by at most MaxClockStep a step and
// MaxClockLead in all, and never back. One peer alone never moves it.
type Clock struct {
	sys   func() time.Time
	stale func() bool
	log   *slog.Logger

	mu        sync.Mutex
	notBefore time.Time
	anchor    time.Time // a system reading (with its monotonic part) when the lead was set
	lead      time.Duration
	reports   map[string]clockReport // per member id, its latest report
}

// clockReport is one member's stated time, as an offset from the system clock at receipt.
type clockReport struct {
	offset time.Duration
	at     time.Time // system reading at receipt (monotonic)
}

// NewClock returns a Clock configured by opts.
func NewClock(opts ClockOptions) *Clock {
	c := &Clock{sys: opts.Sys, stale: opts.Stale, log: opts.Logger, notBefore: opts.NotBefore,
		reports: make(map[string]clockReport)}
	if c.sys == nil {
		c.sys = time.Now
	}
	if c.stale == nil {
		c.stale = KernelUnsynced
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c
}

// KernelUnsynced reports whether the kernel says the system clock is unsynchronised
// (linux: adjtimex). Where that cannot be asked, it says false.
func KernelUnsynced() bool {
	unsynced, err := kernelUnsynced()
	return err == nil && unsynced
}

// Now is the box's time: the system clock plus the lead its members agreed on, measured
// on the monotonic clock since it was set (so a later jump of the system clock is not
// added twice: the larger of the two wins).
func (c *Clock) Now() time.Time {
	s := c.sys()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now(s)
}

func (c *Clock) now(s time.Time) time.Time {
	if c.lead == 0 {
		return s
	}
	return later(s, c.anchor.Add(s.Sub(c.anchor)+c.lead))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// RaiseNotBefore raises NotBefore to t (the newest entry the box stored): a system clock
// behind it is stale.
func (c *Clock) RaiseNotBefore(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.notBefore) {
		c.notBefore = t
	}
}

// Stale reports whether the system clock is known to be stale now.
func (c *Clock) Stale() bool {
	s := c.sys()
	c.mu.Lock()
	nb := c.notBefore
	c.mu.Unlock()
	return s.Before(nb) || c.stale()
}

// Observe takes a member's stated time from its hello. The caller vouches that member is
// the id of a member (an author with entries in the room's stored history). It is
// ignored unless the system clock is known to be stale; the Clock moves only when at least
// MinClockReports different members' reports are current.
func (c *Clock) Observe(member string, stated time.Time) {
	if member == "" || stated.IsZero() || !c.Stale() {
		return
	}
	s := c.sys()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reports[member] = clockReport{offset: stated.Sub(s), at: s}
	var offsets []time.Duration
	for id, r := range c.reports {
		if s.Sub(r.at) >= ClockReportTTL || s.Sub(r.at) < 0 {
			delete(c.reports, id)
			continue
		}
		offsets = append(offsets, r.offset)
	}
	if len(offsets) < MinClockReports {
		return
	}
	slices.Sort(offsets)
	median := offsets[(len(offsets)-1)/2] // the lower median
	cur := c.now(s).Sub(s)
	target := min(median, cur+MaxClockStep, MaxClockLead)
	if target < cur+minClockMove {
		return
	}
	c.anchor, c.lead = s, target
	c.log.Warn("the box's clock is stale: moved forward to its members' time (no real-time clock?)",
		"ahead_of_system", target.Round(time.Second).String(), "members", len(offsets),
		"median", median.Round(time.Second).String())
}

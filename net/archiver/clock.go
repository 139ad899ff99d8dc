package archiver

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// MaxClockLead bounds how far ahead of the system clock the phones may move a Clock.
const MaxClockLead = 366 * 24 * time.Hour

// Clock is the box's time for checking entries. A Raspberry Pi has no real-time clock and,
// offline, no time server: it boots with the time it last saved, hours or weeks behind,
// and would refuse every phone's entries as from the future. Peers state their clock in
// hello; a Clock moves forward to the latest of them (never back, at most MaxClockLead),
// so the box checks entries against the room's time, not its own stale one.
type Clock struct {
	sys  func() time.Time
	lead atomic.Int64 // ns ahead of sys
	log  *slog.Logger
}

// NewClock returns a Clock on the system time; log may be nil.
func NewClock(log *slog.Logger) *Clock {
	if log == nil {
		log = slog.Default()
	}
	return &Clock{sys: time.Now, log: log}
}

// Now is the system time plus what the peers showed it lags by.
func (c *Clock) Now() time.Time { return c.sys().Add(time.Duration(c.lead.Load())) }

// Observe takes a peer's stated time. Leads under a minute are ignored (clocks differ a
// little; the entries' 10-minute slack covers that).
func (c *Clock) Observe(peer time.Time) {
	lead := min(peer.Sub(c.sys()), MaxClockLead)
	if lead < time.Minute {
		return
	}
	for {
		old := c.lead.Load()
		if int64(lead) <= old {
			return
		}
		if c.lead.CompareAndSwap(old, int64(lead)) {
			c.log.Warn("the box's clock is behind its peers: checking entries against their time (no real-time clock?)",
				"behind", lead.Round(time.Second).String())
			return
		}
	}
}

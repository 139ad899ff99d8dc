package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// upgradeTimes, run in every document, records when the page's load reached ready
// (__readyAt), when a room was first listed (__listedAt) and when the upgrade of its entries database from an earlier version began and
// ended (__upgradeStart, __upgradeEnd), all in performance.now() time (from the navigation).
const upgradeTimes = `(() => {
  new MutationObserver((_, o) => { if (document.body && document.body.dataset.ready === '1') { window.__readyAt = performance.now(); o.disconnect(); } })
    .observe(document, { subtree: true, attributes: true, attributeFilter: ['data-ready'] });
  new MutationObserver((_, o) => { if (document.querySelector('.room-item')) { window.__listedAt = performance.now(); o.disconnect(); } })
    .observe(document, { subtree: true, childList: true });
  const open = IDBFactory.prototype.open;
  IDBFactory.prototype.open = function (name, ...rest) {
    const r = open.call(this, name, ...rest);
    if (name === 'chattorrent-history') {
      r.addEventListener('upgradeneeded', (ev) => { if (ev.oldVersion > 0) window.__upgradeStart = performance.now(); });
      r.addEventListener('success', () => { if (window.__upgradeStart && !window.__upgradeEnd) window.__upgradeEnd = performance.now(); });
    }
    return r;
  };
})();`

// BenchmarkBrowserUpgrade: a phone that used the page before 2026-12-06 holds a version 1
// database (a record per entry, no indexes), one that used it until 2026-12-07 a version 2
// one (a record per entry with three indexes), with a room of 100,000 entries; the current
// page regroups it into runs at its first load (version 3). Reports the upgrade (the
// versionchange transaction, upgrade-ms), the load to the room listed (listed-ms: the page
// answers while the upgrade runs), the load to ready (ready-ms), the click on the room to
// its newest message on screen (open-ms), and the load to ready once upgraded
// (ready-again-ms).
//
//	unshare -n sh -c 'ip link set lo up && exec go test ./web/e2e/ -run ^$ -bench BrowserUpgrade -benchtime 1x'
func BenchmarkBrowserUpgrade(b *testing.B) {
	const n = 100000
	room := strings.Repeat("9e", 16)
	entries := archive(b, room, n)
	for _, version := range []int{1, 2} {
		b.Run(fmt.Sprintf("from=v%d", version), func(b *testing.B) {
			u := newUserAt(b, "bench", "en-US", server.base, noDNS, func(u *user) { u.preload = upgradeTimes + "\n" + upgradeWatch })
			var upgradeMs, listedMs, readyMs, openMs, againMs float64
			for b.Loop() {
				b.StopTimer()
				u.writeOld(version, room, "Antigua", entries)
				b.StartTimer()
				u.do(chromedp.Navigate(u.base + "/"))
				u.waitLong(`document.body.dataset.ready === '1' && window.__readyAt > 0`, 10*time.Minute)
				if codes := evalJS[[]string](u, `window.__codes`); !strings.Contains(strings.Join(codes, " "), "storage-upgrading") {
					b.Fatalf("the page did not say it was updating its storage (notice codes %v)", codes)
				}
				upgradeMs = evalJS[float64](u, `window.__upgradeEnd - window.__upgradeStart`)
				readyMs = evalJS[float64](u, `window.__readyAt`)
				listedMs = evalJS[float64](u, `window.__listedAt || 0`)
				openMs = openRoomMs(u, room, n)
				u.do(chromedp.Reload())
				u.waitLong(`document.body.dataset.ready === '1' && window.__readyAt > 0`, 10*time.Minute)
				againMs = evalJS[float64](u, `window.__readyAt`)
			}
			if got := evalJS[int](u, fmt.Sprintf(`chattorrentStoredEntries(%q)`, room)); got != n {
				b.Fatalf("after the upgrade the page stores %d entries of the room, want %d", got, n)
			}
			b.ReportMetric(upgradeMs, "upgrade-ms")
			b.ReportMetric(listedMs, "listed-ms")
			b.ReportMetric(readyMs, "ready-ms")
			b.ReportMetric(openMs, "open-ms")
			b.ReportMetric(againMs, "ready-again-ms")
		})
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/chattorrent/chattorrent/store/history"
)

// The page's IndexedDB as pages before 2026-12-06 left it (commit 660f6cb's entries.js):
// database chattorrent-history at version 1, one object store "entries" without key path or
// indexes, each entry stored as the entry object under the key [room, entry id].
const (
	v1DB    = "chattorrent-history"
	v1Store = "entries"
)

// writeV1 leaves the page and, from a document of the same origin that runs none of the
// page's code (a script shown as text), replaces the page's entries database with a version
// 1 one holding entries, written with raw IndexedDB calls as the 660f6cb page wrote them,
// and the room in localStorage as that page kept it. The page is not loaded again: the
// caller does (the upgrade happens then).
func (u *user) writeV1(room, name string, entries []history.Entry) {
	u.writeOld(1, room, name, entries)
}

// writeOld is writeV1 for version 1 or 2: version 2 (pages of 2026-12-06 to 2026-12-07,
// b66e272's entries.js) is the same store, a record per entry, with its three indexes.
func (u *user) writeOld(version int, room, name string, entries []history.Entry) {
	u.t.Helper()
	u.do(chromedp.Navigate(u.base + "/js/i18n.js"))
	rooms, _ := json.Marshal([]map[string]any{{"id": room, "name": name, "created": time.Now().UnixMilli(), "peer": nil}})
	evalJS[chromedp.Void](u, fmt.Sprintf(`localStorage.setItem('chattorrent:v1:rooms', %s)`, js(string(rooms))))
	evalJS[chromedp.Void](u, fmt.Sprintf(`new Promise((resolve, reject) => {
  const del = indexedDB.deleteDatabase(%[1]q); // the current page made version 2 at its first load
  del.onerror = () => reject(del.error);
  del.onsuccess = () => {
    const r = indexedDB.open(%[1]q, %[3]d);
    r.onupgradeneeded = () => {
      const s = r.result.createObjectStore(%[2]q);
      if (%[3]d === 2) {
        s.createIndex('order', ['room', 'ts', 'author', 'seq']);
        s.createIndex('chain', ['room', 'author', 'seq']);
        s.createIndex('kind', ['room', 'kind']);
      }
    };
    r.onerror = () => reject(r.error);
    r.onsuccess = () => { r.result.close(); resolve(); };
  };
})`, v1DB, v1Store, version))
	for i := 0; i < len(entries); i += 5000 {
		b, _ := json.Marshal(entries[i:min(i+5000, len(entries))])
		evalJS[chromedp.Void](u, fmt.Sprintf(`new Promise((resolve, reject) => {
  const r = indexedDB.open(%q, %d);
  r.onerror = () => reject(r.error);
  r.onupgradeneeded = () => reject(new Error('no old database'));
  r.onsuccess = () => {
    const db = r.result;
    const tx = db.transaction(%[3]q, 'readwrite');
    for (const e of %[4]s) tx.objectStore(%[3]q).put(e, [%[5]q, e.id]);
    tx.oncomplete = () => { db.close(); resolve(); };
    tx.onerror = tx.onabort = () => { db.close(); reject(tx.error); };
  };
})`, v1DB, version, v1Store, b, room))
	}
}

// storedDB is what the page's entries database holds, read without upgrading it: its
// version and object stores; of the old store (versions 1 and 2) its indexes and every
// record (key and value); of the runs (version 3) the entries they hold, in key order.
type storedDB struct {
	Version int
	Stores  []string
	Indexes []string
	Keys    [][2]string
	Values  []history.Entry
	Runs    []history.Entry
}

func (u *user) storedDB() storedDB {
	u.t.Helper()
	return evalJS[storedDB](u, fmt.Sprintf(`new Promise((resolve, reject) => {
  const r = indexedDB.open(%q); // no version: the one on disk, no upgrade
  r.onerror = () => reject(r.error);
  r.onsuccess = () => {
    const db = r.result;
    const stores = [...db.objectStoreNames];
    const out = { version: db.version, stores, indexes: [], keys: [], values: [], runs: [] };
    if (!stores.length) { db.close(); return resolve(out); }
    const tx = db.transaction(stores);
    if (stores.includes(%q)) {
      const s = tx.objectStore(%[2]q);
      out.indexes = [...s.indexNames];
      s.getAllKeys().onsuccess = (ev) => { out.keys = ev.target.result; };
      s.getAll().onsuccess = (ev) => { out.values = ev.target.result; };
    }
    if (stores.includes('runs')) tx.objectStore('runs').getAll().onsuccess = (ev) => { out.runs = ev.target.result.flatMap((run) => run.entries); };
    tx.oncomplete = () => { db.close(); resolve(out); };
    tx.onerror = () => reject(tx.error);
  };
})`, v1DB, v1Store))
}

// upgradeWatch is a script run in every document of the page: it records the codes #notice
// takes (an info notice may be shown and hidden again within a frame).
const upgradeWatch = `window.__codes = [];
new MutationObserver((ms) => { for (const m of ms) if (m.target.id === 'notice' && m.target.dataset.code) window.__codes.push(m.target.dataset.code); })
  .observe(document, { subtree: true, attributes: true, attributeFilter: ['data-code'] });`

// failUpgrade, with upgradeWatch, gets in the way of the page's upgrade of its entries
// database: while the localStorage item e2e:fail-upgrade is set, the runs' lo index is built,
// then its creation throws, as an index the browser cannot build would; while
// e2e:hold-upgrade is set, the upgrade never ends (the versionchange transaction is kept
// busy with requests), as a long one on a slow phone would not before the person leaves.
const failUpgrade = `try {
  const fail = localStorage.getItem('e2e:fail-upgrade') === '1';
  const hold = localStorage.getItem('e2e:hold-upgrade') === '1';
  if (fail || hold) {
    const create = IDBObjectStore.prototype.createIndex;
    IDBObjectStore.prototype.createIndex = function (name, ...rest) {
      const index = create.call(this, name, ...rest);
      if (name === 'lo' && fail) throw new DOMException('e2e: the lo index cannot be built', 'UnknownError');
      if (name === 'lo' && hold) {
        const spin = () => { this.count().onsuccess = spin; };
        spin();
      }
      return index;
    };
  }
} catch {}`

// TestIndexedDBUpgrade: a room stored by the version 1 page (a record per entry, no
// indexes: 2,000 entries) or by the version 2 page (a record per entry with its indexes:
// 1,000) is regrouped into runs in place by the current page: the room is listed, opens on
// its newest message, scrolls back to its first in order, takes a new message, and a sync
// gives a new guest all of it. The page says it is updating its storage while it does.
func TestIndexedDBUpgrade(t *testing.T) {
	for _, v := range []struct {
		version, n int
		indexes    []string
	}{{1, 2000, nil}, {2, 1000, []string{"chain", "kind", "order"}}} {
		t.Run(fmt.Sprintf("v%d", v.version), func(t *testing.T) { upgradeRoom(t, v.version, v.n, v.indexes) })
	}
}

func upgradeRoom(t *testing.T, version, n int, indexes []string) {
	room := strings.Repeat("3e", 16)
	a := newUserAt(t, "A", "en-US", server.base, noDNS, func(u *user) { u.preload = upgradeWatch })
	entries := archive(t, room, n)
	a.writeOld(version, room, "Antigua", entries)
	if got := a.storedDB(); got.Version != version || !slices.Equal(slices.Sorted(slices.Values(got.Indexes)), indexes) || len(got.Values) != n {
		t.Fatalf("the version %d database holds version %d, indexes %v, %d entries", version, got.Version, got.Indexes, len(got.Values))
	}
	// A record no page could read back (no ts): the upgrade passes it over, it does not
	// fail on it (its run's keys could not be made).
	evalJS[chromedp.Void](a, fmt.Sprintf(`new Promise((resolve, reject) => {
  const r = indexedDB.open(%q);
  r.onerror = () => reject(r.error);
  r.onsuccess = () => {
    const db = r.result;
    const tx = db.transaction(%[2]q, 'readwrite');
    tx.objectStore(%[2]q).put({ room: %[3]q, author: %[4]q, seq: %[5]d, id: 'sin-ts', kind: 'text', body: 'x' }, [%[3]q, 'sin-ts']);
    tx.oncomplete = () => { db.close(); resolve(); };
    tx.onerror = tx.onabort = () => { db.close(); reject(tx.error); };
  };
})`, v1DB, v1Store, room, entries[0].Author, n+1))
	a.do(chromedp.Navigate(a.base + "/"))
	a.waitJS(`document.body.dataset.ready === '1'`)

	if got := evalJS[[]string](a, `window.__codes`); !slices.Contains(got, "storage-upgrading") {
		t.Errorf("the page never said it was updating its storage (notice codes %v)", got)
	}
	if code := evalJS[string](a, `document.getElementById('notice').hidden ? '' : document.getElementById('notice').dataset.code || ''`); code != "" {
		t.Errorf("after the upgrade the page shows notice %q: %s", code, a.text("#notice"))
	}
	a.waitJS(fmt.Sprintf(`!!document.querySelector('.room-item[data-room-id=%q]')`, room))
	a.openRoom(room)
	a.waitMessage(fmt.Sprintf("mensaje %d del archivo", n-1))
	if got := a.shownNumbers(); len(got) == 0 || got[len(got)-1] != n-1 || consecutive(got) != "" {
		t.Fatalf("A opens the upgraded room at %v…: %s", got[:min(3, len(got))], consecutive(got))
	}
	a.scrollToFirst(n, nil)

	a.say("después de actualizar")
	if got := evalJS[int](a, fmt.Sprintf(`chattorrentStoredEntries(%q)`, room)); got != n+1 {
		t.Fatalf("A stores %d entries of the room after writing, want %d", got, n+1)
	}
	if got := a.storedDB(); got.Version != 3 || !slices.Equal(slices.Sorted(slices.Values(got.Stores)), []string{"kinds", "runs"}) || len(got.Runs) != n+1 {
		t.Fatalf("after the upgrade the database is version %d with stores %v holding %d entries in runs", got.Version, got.Stores, len(got.Runs))
	}

	b := newUser(t, "B", "en-US")
	offer, _ := a.download(menuClick("#reconnect"))
	answer, _ := b.importAndDownload(offer)
	a.importFile(answer)
	b.waitStatus("connected")
	b.waitLong(fmt.Sprintf(`chattorrentStoredEntries(%q).then((c) => c >= %d)`, room, n+1), 3*time.Minute)
	b.waitMessage("después de actualizar")
	a.checkConsole()
	b.checkConsole()
}

// TestIndexedDBUpgradeAborted: an upgrade of a version 1 database cut short (the browser
// closed while it runs) or failed (an index cannot be built) is aborted whole by IndexedDB: the
// database is still version 1 without indexes, with every entry as it was. While it runs
// the page says it is updating its storage (storage-upgrading); when it fails the page
// says so (storage-upgrade) and still opens; the next load, once the index can be built,
// upgrades it.
func TestIndexedDBUpgradeAborted(t *testing.T) {
	const n = 1000
	room := strings.Repeat("4f", 16)
	entries := archive(t, room, n)
	a := newUserAt(t, "A", "en-US", server.base, noDNS, func(u *user) { u.preload = upgradeWatch + "\n" + failUpgrade })
	a.writeV1(room, "Antigua", entries)
	intact := func(when string) {
		t.Helper()
		got := a.storedDB()
		if got.Version != 1 || len(got.Indexes) != 0 {
			t.Fatalf("%s the database is version %d with indexes %v, want version 1 without", when, got.Version, got.Indexes)
		}
		want := map[string]history.Entry{}
		for _, e := range entries {
			want[e.ID] = e
		}
		stored := map[string]history.Entry{}
		for i, e := range got.Values {
			if k := got.Keys[i]; k != [2]string{room, e.ID} {
				t.Fatalf("%s record %d has key %v, want [%s %s]", when, i, k, room, e.ID)
			}
			stored[e.ID] = e
		}
		if len(got.Values) != n || !maps.Equal(stored, want) {
			t.Fatalf("%s the database holds %d records (%d distinct), not the %d entries written", when, len(got.Values), len(stored), n)
		}
	}

	// The browser is closed while the page upgrades (it said it was updating); then, at the
	// next start, the upgrade fails. Had the close kept any of the upgrade, the next start
	// would find version 2 and neither upgrade nor fail.
	evalJS[chromedp.Void](a, `localStorage.setItem('e2e:hold-upgrade', '1')`)
	a.do(chromedp.Navigate(a.base + "/"))
	a.waitJS(`document.getElementById('notice').dataset.code === 'storage-upgrading' && !document.getElementById('notice').hidden`)
	if msg := a.text("#notice"); !strings.Contains(msg, "Updating the stored history") {
		t.Errorf("while it upgrades the page says %q", msg)
	}
	evalJS[chromedp.Void](a, `localStorage.removeItem('e2e:hold-upgrade'); localStorage.setItem('e2e:fail-upgrade', '1')`)
	a.reopen()
	a.waitJS(`document.body.dataset.ready === '1'`)

	if code := evalJS[string](a, `document.getElementById('notice').dataset.code || ''`); code != "storage-upgrade" {
		t.Fatalf("after a failed upgrade the notice is %q (%s), want storage-upgrade", code, a.text("#notice"))
	}
	if msg := a.text("#notice"); !strings.Contains(msg, "kept as it was") || !strings.Contains(msg, "lo index cannot be built") {
		t.Errorf("the notice says %q: not that the history is kept, or not the cause", msg)
	}
	a.waitJS(fmt.Sprintf(`!!document.querySelector('.room-item[data-room-id=%q]')`, room))

	intact("after the failed upgrade")

	// The next load can build the index: the same data is upgraded and the room opens.
	evalJS[chromedp.Void](a, `localStorage.removeItem('e2e:fail-upgrade')`)
	a.do(chromedp.Reload())
	a.waitJS(`document.body.dataset.ready === '1'`)
	a.openRoom(room)
	a.waitMessage(fmt.Sprintf("mensaje %d del archivo", n-1))
	if got := evalJS[int](a, fmt.Sprintf(`chattorrentStoredEntries(%q)`, room)); got != n {
		t.Fatalf("after the upgrade A stores %d entries of the room, want %d", got, n)
	}
	if code := evalJS[string](a, `document.getElementById('notice').hidden ? '' : document.getElementById('notice').dataset.code || ''`); code == "storage-upgrade" || code == "storage-failed" {
		t.Errorf("after a good upgrade the page still shows %q: %s", code, a.text("#notice"))
	}
	a.checkConsole() // the failure is handled: no uncaught exception from the upgrade
}

// TestIndexedDBUpgradeBlocked: a tab of an earlier page that keeps the version 1 database
// open (pages before 2026-12-06 did not let go of it when a newer page asked) blocks the
// upgrade. The new page says so (close the other tabs), lists the rooms and answers
// meanwhile, and finishes once the old tab lets go: the room opens whole.
func TestIndexedDBUpgradeBlocked(t *testing.T) {
	const n = 300
	room := strings.Repeat("4f", 16)
	old := newUser(t, "A, old tab", "en-US")
	old.writeV1(room, "Bloqueada", archive(t, room, n))
	// The old tab holds version 1 open and never closes it when asked.
	evalJS[chromedp.Void](old, fmt.Sprintf(`new Promise((resolve, reject) => {
  const r = indexedDB.open(%q, 1);
  r.onerror = () => reject(r.error);
  r.onsuccess = () => { window.__old = r.result; resolve(); };
})`, v1DB))

	tabCtx, cancel := chromedp.NewContext(old.ctx)
	defer cancel()
	tab := &user{t: t, name: "A, new tab", lang: old.lang, profile: old.profile, dl: old.dl, base: old.base, rules: old.rules, ctx: tabCtx}
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatal(err)
	}
	tab.do(chromedp.Navigate(tab.base + "/"))
	tab.waitJS(`(() => { const n = document.getElementById('notice'); return !n.hidden && n.dataset.code === 'storage-upgrading' && n.textContent.includes('other tabs'); })()`)
	tab.waitJS(fmt.Sprintf(`!!document.querySelector('.room-item[data-room-id=%q]')`, room))
	tab.setName("Ana") // the page answers while its storage waits
	if evalJS[string](tab, `document.body.dataset.ready || ''`) == "1" {
		t.Fatal("the page says ready while its stored history is not read")
	}

	evalJS[chromedp.Void](old, `window.__old.close()`)
	tab.waitJS(`document.body.dataset.ready === '1'`)
	tab.waitJS(`document.getElementById('notice').hidden || document.getElementById('notice').dataset.code !== 'storage-upgrading'`)
	tab.openRoom(room)
	tab.waitMessage(fmt.Sprintf("mensaje %d del archivo", n-1))
	if got := tab.storedDB(); got.Version != 3 || len(got.Runs) != n {
		t.Fatalf("after the old tab let go the database is version %d with %d entries in runs", got.Version, len(got.Runs))
	}
}

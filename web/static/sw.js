// ChatTorrent's service worker: the page opens without the box (a phone that walked away
// from its Wi-Fi, a box switched off) from the app shell cached here, with every room and
// message the page keeps in its own storage; two such pages still connect by .torrent
// files.
//
// Network first, cache as the fallback: every GET of the shell (the page, its CSS, its
// modules, icons, manifest) goes to the box; its answer is used and kept, and only when the
// box does not answer (no route, refused, a 5xx, or no answer within NETWORK_MS while a
// cached copy exists) the cached copy is served. So a box that was updated is taken at the
// next load it is reachable for, and a page is never stuck on an old version
// (docs/ARCHITECTURE.md). Nothing under /api/ is touched (no respondWith: the browser
// fetches it as if there were no worker), nor /healthz, /ca.crt, /trust.
//
// At install the worker stores the whole shell as the box lists it at /shell.json, so a
// module the page loads only later (the verifier's worker) is there offline too.

const CACHE = 'chattorrent-shell-v1';
const NETWORK_MS = 4000;
const NOT_SHELL = new Set(['/healthz', '/ca.crt', '/trust', '/shell.json', '/sw.js']);

self.addEventListener('install', (ev) => {
  ev.waitUntil((async () => {
    const r = await fetch('/shell.json', { cache: 'no-store' });
    if (!r.ok) throw new Error(`/shell.json: ${r.status}`);
    const { files } = await r.json();
    const cache = await caches.open(CACHE);
    await cache.addAll(files.map((f) => new Request(f, { cache: 'no-cache' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (ev) => {
  ev.waitUntil((async () => {
    for (const k of await caches.keys()) {
      if (k.startsWith('chattorrent-shell') && k !== CACHE) await caches.delete(k);
    }
    await self.clients.claim();
  })());
});

function isShell(req, url) {
  return req.method === 'GET' && url.origin === self.location.origin
    && !url.pathname.startsWith('/api/') && !NOT_SHELL.has(url.pathname);
}

self.addEventListener('fetch', (ev) => {
  const req = ev.request;
  const url = new URL(req.url);
  if (!isShell(req, url)) return;
  const key = keyOf(req, url);
  const net = fetch(req);
  // Keep what the box answered (copied before the page reads the body).
  ev.waitUntil(net.then((r) => {
    if (!r.ok || r.type !== 'basic') return undefined;
    const copy = r.clone();
    return caches.open(CACHE).then((c) => c.put(key, copy));
  }).catch(() => {}));
  ev.respondWith(answer(key, net));
});

/** The cache key of a shell request: its path without the query (the page's test flags),
 * every navigation being the page itself. */
function keyOf(req, url) {
  return req.mode === 'navigate' || url.pathname === '/index.html' ? '/' : url.pathname;
}

/** The box's answer, or the cached copy when the box fails (or is slow and there is one). */
async function answer(key, net) {
  const cached = await caches.match(key, { cacheName: CACHE });
  if (!cached) return net;
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), NETWORK_MS);
  });
  try {
    const r = await Promise.race([net, late]);
    if (r && r.status < 500) return r; // a 404 too: the box says that file is gone
  } catch {
    // no box: the cached copy
  } finally {
    clearTimeout(timer);
  }
  return cached;
}

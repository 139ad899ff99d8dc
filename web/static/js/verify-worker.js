// Checks batches of entries (hashes, links and one Ed25519 signature per run: checkBatch)
// off the page's main thread, so a long history syncs without freezing the page.
// (Ed25519 in WebCrypto: the page starts this worker only after support.js found it.)
// Messages: {id, room, now, entries, known} → {id, results}; known maps "author seq" to
// the id stored there (verifier.js).
import { checkBatch } from './history.js';

self.addEventListener('message', async (ev) => {
  const { id, room, now, entries } = ev.data;
  const known = ev.data.known || {}; // a page of an older version sends none
  self.postMessage({ id, results: await checkBatch(entries, room, now, (a, seq) => known[`${a} ${seq}`]) });
});

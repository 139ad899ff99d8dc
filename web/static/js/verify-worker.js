// Checks entries (hashes and Ed25519 signatures) off the page's main thread, so a long
// history syncs without freezing the page. Messages: {id, room, now, entries} → {id, results}.
import { checkEntries } from './history.js';

self.addEventListener('message', async (ev) => {
  const { id, room, now, entries } = ev.data;
  self.postMessage({ id, results: await checkEntries(entries, room, now) });
});

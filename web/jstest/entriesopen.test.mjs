// Opening the stored entries (entries.js EntryStore.open): an open that waits (another tab
// upgrading the database) or an upgrade blocked by another tab is said through onUpgrade,
// and 'done' follows once the database is open; a quick open says nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EntryStore } from '../static/js/entries.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// An indexedDB whose open request settles only when the test says.
function pendingIDB() {
  const reqs = [];
  globalThis.indexedDB = { open: () => { const r = { result: null, error: null }; reqs.push(r); return r; } };
  const db = { objectStoreNames: { contains: () => true }, close() {} };
  return { reqs, open: () => { const r = reqs.at(-1); r.result = db; r.onsuccess(); } };
}

function store(waitMs) {
  const s = new EntryStore(null, 'test-open');
  if (s.channel) s.channel.close();
  s.waitMs = waitMs;
  const phases = [];
  s.onUpgrade = (p) => phases.push(p);
  return { s, phases };
}

test('an open that waits says so, then done once the database is open', async () => {
  const idb = pendingIDB();
  const { s, phases } = store(10);
  const opened = s.open();
  await sleep(40);
  assert.deepEqual(phases, ['wait']);
  idb.open();
  await opened;
  assert.deepEqual(phases, ['wait', 'done']);
});

test('an upgrade blocked by another tab says so, then done', async () => {
  const idb = pendingIDB();
  const { s, phases } = store(60000);
  const opened = s.open();
  await sleep(5);
  idb.reqs[0].onblocked();
  assert.deepEqual(phases, ['blocked']);
  idb.open();
  await opened;
  assert.deepEqual(phases, ['blocked', 'done']);
});

test('a quick open says nothing, and leaves no timer behind', async () => {
  const idb = pendingIDB();
  const { s, phases } = store(20);
  const opened = s.open();
  idb.open();
  await opened;
  await sleep(40);
  assert.deepEqual(phases, []);
});

test('an upgrade in this tab or a blocked one is not then called waiting', async () => {
  let idb = pendingIDB();
  let { s, phases } = store(10);
  let opened = s.open();
  const r = idb.reqs[0];
  r.result = { objectStoreNames: { contains: () => true } };
  r.transaction = { objectStore: () => ({ indexNames: { contains: () => true } }) };
  r.onupgradeneeded({});
  await sleep(40);
  assert.deepEqual(phases, ['start']);
  idb.open();
  await opened;
  assert.deepEqual(phases, ['start', 'done']);

  idb = pendingIDB();
  ({ s, phases } = store(10));
  opened = s.open();
  idb.reqs[0].onblocked();
  await sleep(40);
  assert.deepEqual(phases, ['blocked']);
  idb.open();
  await opened;
  assert.deepEqual(phases, ['blocked', 'done']);
});

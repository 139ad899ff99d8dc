import test from 'node:test';
import assert from 'node:assert/strict';
import { EntryWindow } from '../static/js/window.js';

// Entries of one author at ts i (the display order is ts, author, seq).
const room = 'ab'.repeat(16);
const entry = (i, author = 'A') => ({ room, author, seq: i + 1, ts: 1000 + i, id: `${author}${i}` });
const range = (from, to) => Array.from({ length: to - from }, (_, k) => entry(from + k));
const ts = (w) => w.entries.map((e) => e.ts - 1000);

test('window: opens at the newest page and counts what is before it', () => {
  const w = new EntryWindow({ page: 10, max: 30 });
  w.reset(range(90, 100), true, 100);
  assert.deepEqual(ts(w), range(90, 100).map((e) => e.ts - 1000));
  assert.equal(w.before, 90);
  assert.ok(w.atEnd && !w.atStart && w.loaded);
  const small = new EntryWindow({ page: 10, max: 30 });
  small.reset(range(0, 4), false, 4);
  assert.ok(small.atStart && small.atEnd);
  assert.equal(small.before, 0);
});

test('window: older pages go in front; past max the newest are let go', () => {
  const w = new EntryWindow({ page: 10, max: 30 });
  w.reset(range(90, 100), true, 100);
  assert.equal(w.prepend(range(80, 90), true), 0);
  assert.equal(w.prepend(range(70, 80), true), 0);
  assert.equal(w.before, 70);
  assert.equal(w.prepend(range(60, 70), true), 10);
  assert.deepEqual(ts(w), [...Array(30).keys()].map((k) => 60 + k));
  assert.ok(!w.atEnd, 'the newest were let go');
  assert.equal(w.before, 60);
  // Entries arriving now are not the window's (it does not reach the newest).
  assert.equal(w.add(entry(100)), false);
  // Down again: newer pages at the end, the oldest let go.
  assert.equal(w.append(range(90, 100), false), 10);
  assert.deepEqual(ts(w), [...Array(30).keys()].map((k) => 70 + k));
  assert.ok(w.atEnd && !w.atStart);
  assert.equal(w.before, 70);
  // To the first entry.
  for (let from = 60; from >= 0; from -= 10) w.prepend(range(from, from + 10), from > 0);
  assert.ok(w.atStart);
  assert.equal(w.before, 0);
  assert.equal(w.entries.length, 30);
  assert.equal(w.first().ts, 1000);
});

test('window: a page read twice (a race) adds nothing twice', () => {
  const w = new EntryWindow({ page: 10, max: 30 });
  w.reset(range(90, 100), true, 100);
  w.prepend(range(85, 95), true);
  assert.deepEqual(ts(w), [...Array(15).keys()].map((k) => 85 + k));
  assert.equal(new Set(w.entries.map((e) => e.id)).size, w.entries.length);
});

test('window: new entries join in display order and keep it bounded', () => {
  const w = new EntryWindow({ page: 10, max: 30 });
  assert.equal(w.add(entry(0)), false, 'nothing is taken before the window is read');
  w.reset(range(90, 100), true, 100);
  const late = { ...entry(95, 'B'), seq: 1 }; // ts 95, author B: after A's ts 95
  assert.equal(w.add(late), true);
  assert.equal(w.entries[6].id, late.id);
  assert.equal(w.add(late), false, 'once');
  assert.equal(w.add(entry(50)), false, 'older than the window, which does not reach the start');
  for (let i = 100; i < 140; i++) assert.equal(w.add(entry(i)), true);
  assert.equal(w.entries.length, 20, 'following the newest it keeps max - page');
  assert.equal(w.last().ts, 1139);
  assert.equal(w.before, 90 + 31); // 90 before it, and 51 held of which 31 let go
  assert.equal(w.get(entry(139).id).ts, 1139);
  assert.equal(w.get(entry(90).id), undefined);
});

test('window: a small room takes older arrivals too', () => {
  const w = new EntryWindow({ page: 10, max: 30 });
  w.reset(range(5, 8), false, 3);
  assert.equal(w.add(entry(1)), true);
  assert.deepEqual(ts(w), [1, 5, 6, 7]);
});

// Delivered marks (storage.js): one seq per room, whatever the room's size; the ids an
// earlier page kept are read and folded into it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Delivered, Storage } from '../static/js/storage.js';

class MemLS {
  constructor() { this.m = new Map(); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
  bytes() { let n = 0; for (const [k, v] of this.m) n += k.length + v.length; return n; }
}

const me = 'M'.repeat(43);
const other = 'O'.repeat(43);
const mine = (seq) => ({ author: me, seq, id: `${seq}`.padStart(64, 'a') });

test('an ack of my entry at seq k marks all of mine up to k, and no one else\'s', () => {
  const d = new Delivered();
  assert.equal(d.take([{ author: other, seq: 9, id: 'x' }], me), false);
  assert.equal(d.take([mine(3), mine(5)], me), true);
  assert.ok(d.has(mine(1)) && d.has(mine(5)) && !d.has(mine(6)));
  assert.equal(d.take([mine(4)], me), false, 'an older ack moves nothing');
});

test('what is kept does not grow with the room: 5,000 of my entries acked one by one', () => {
  const ls = new MemLS();
  const s = new Storage(ls);
  const d = s.delivered('r');
  let most = 0;
  for (let seq = 1; seq <= 5000; seq++) {
    d.take([mine(seq)], me);
    s.setDelivered('r', d);
    most = Math.max(most, ls.bytes());
  }
  assert.ok(most < 100, `${most} bytes kept`);
  assert.equal(s.delivered('r').seq, 5000);
});

test('ids an earlier page kept still mark, then fold into the seq and are removed', () => {
  const ls = new MemLS();
  ls.setItem('chattorrent:v1:room:r:delivered', JSON.stringify([mine(1).id, mine(2).id, 'junk']));
  const s = new Storage(ls);
  const d = s.delivered('r');
  assert.ok(d.has(mine(2)) && !d.has(mine(3)));
  d.fold([mine(1), mine(2)], me);
  s.setDelivered('r', d);
  assert.equal(ls.getItem('chattorrent:v1:room:r:delivered'), null);
  const again = s.delivered('r');
  assert.ok(again.has(mine(2)) && !again.has(mine(3)) && again.legacy.size === 0);
});

test('a stored seq that is not a positive integer reads as none', () => {
  for (const bad of ['"7"', '-1', '1.5', 'null', '{}']) {
    const ls = new MemLS();
    ls.setItem('chattorrent:v1:room:r:delivered-seq', bad);
    assert.equal(new Storage(ls).delivered('r').seq, 0, bad);
  }
});

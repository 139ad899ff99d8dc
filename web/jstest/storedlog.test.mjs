import test from 'node:test';
import assert from 'node:assert/strict';
import { Log } from '../static/js/history.js';

// A source shaped like entries.js's IndexedDB chains: it holds what was "stored", and
// counts reads, so a test sees the log reads slices, not the room.
class FakeStored {
  constructor(entries) {
    this.chains = new Map();
    for (const e of entries) {
      if (!this.chains.has(e.author)) this.chains.set(e.author, []);
      this.chains.get(e.author).push(e);
    }
    this.reads = 0;
    this.largest = 0;
  }

  async heads() {
    const heads = new Map();
    let size = 0;
    for (const [a, c] of this.chains) {
      heads.set(a, { seq: c.length, id: c[c.length - 1].id });
      size += c.length;
    }
    return { heads, size };
  }

  async at(author, seq) {
    this.reads++;
    return (this.chains.get(author) || [])[seq - 1];
  }

  async slice(author, from, n) {
    this.reads++;
    const out = (this.chains.get(author) || []).slice(from, from + n);
    this.largest = Math.max(this.largest, out.length);
    return out;
  }
}

const room = 'ab'.repeat(16);
function chain(author, n, ts0 = 0, step = 2) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push({ room, author, seq: i + 1, prev: i ? out[i - 1].id : '', ts: ts0 + i * step, kind: 'text', body: '', id: `${author}-${i + 1}` });
  }
  return out;
}

test('stored log: heads from the source, what a peer lacks in slices and in order', async () => {
  const a = chain('A', 1000, 0);
  const b = chain('B', 700, 1);
  const src = new FakeStored([...a, ...b]);
  const log = Log.open(room, src);
  await log.ready;
  assert.deepEqual(log.heads(), { A: 1000, B: 700 });
  assert.equal(log.size, 1700);
  assert.deepEqual(log.next('A'), { seq: 1001, prev: 'A-1000' });
  const got = [];
  for await (const e of log.missing({ A: 10 })) got.push(e);
  assert.equal(got.length, 990 + 700);
  for (let i = 1; i < got.length; i++) assert.ok(got[i - 1].ts <= got[i].ts, 'oldest first');
  assert.ok(src.largest <= 256, `a slice of ${src.largest} entries`);
});

test('stored log: entries taken but not stored yet are still sent, once', async () => {
  const src = new FakeStored(chain('A', 5));
  const log = Log.open(room, src);
  await log.ready;
  const more = chain('A', 8).slice(5); // seqs 6..8, not in the source
  for (const e of more) {
    assert.equal(log.checkChain(e), true);
    log.append(e);
  }
  const got = [];
  for await (const e of log.missing({})) got.push(e.seq);
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8]);
});

test('stored log: a fork needs the stored id, read by known()', async () => {
  const a = chain('A', 10);
  const log = Log.open(room, new FakeStored(a));
  await log.ready;
  const other = { ...a[3], id: 'A-4-other', body: 'x' };
  assert.equal(log.checkChain(other), false, 'not provably another without the stored id');
  assert.equal(log.forked('A'), false);
  const known = await log.known([other]);
  assert.deepEqual({ ...known }, { 'A 4': 'A-4', 'A 3': 'A-3' });
  assert.throws(() => log.checkChain(other, known), { code: 'fork' });
  assert.ok(log.forked('A'));
  assert.equal(log.checkChain(a[3], known), false, 'the stored one is held');
  assert.throws(() => log.checkChain({ ...a[0], seq: 12, id: 'A-12' }, known), { code: 'gap' });
  assert.throws(() => log.checkChain({ ...a[0], seq: 11, prev: 'A-9', id: 'A-11' }, known), { code: 'broken-chain' });
  assert.equal((await log.at('A', 7)).id, 'A-7');
  assert.equal(await log.at('A', 11), undefined);
});

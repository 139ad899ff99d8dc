// Replays store/history/testdata/chain_vectors.json (written by the Go tests) against
// history.js's checkBatch: one signature per run of an author's linked entries, the same
// verdict as Go's history.CheckBatch for every entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Log, checkBatch, checkEntry, HistoryError } from '../static/js/history.js';
import { inlineVerifier, knownIds } from '../static/js/verifier.js';
import { seqOrder } from '../static/js/session.js';

const v = JSON.parse(readFileSync(new URL('../../store/history/testdata/chain_vectors.json', import.meta.url)));

const verdict = (r) => (r ? { code: r.code, field: r.field || '', by: r.by || '' } : { code: '', field: '', by: '' });
const want = (w) => ({ code: w.code || '', field: w.field || '', by: w.by || '' });

function storedLog(c) {
  return Log.restore(v.room, c.stored || []);
}

for (const c of v.cases) {
  test(`chain vector: ${c.name}`, async () => {
    const log = storedLog(c);
    const got = await checkBatch(c.batch, v.room, v.now, (a, seq) => log.idAt(a, seq));
    assert.equal(got.length, c.batch.length);
    c.batch.forEach((e, i) => assert.deepEqual(verdict(got[i]), want(c.want[i]), `entry ${i} (seq ${e.seq})`));
    // The verifier's way (known ids as a plain object, as sent to the worker) agrees.
    const viaKnown = await inlineVerifier(c.batch, v.room, v.now, await knownIds(log, c.batch));
    assert.deepEqual(viaKnown.map(verdict), got.map(verdict));
  });
}

test('what checkBatch passes chains into the log in seqOrder', async () => {
  for (const c of v.cases) {
    const log = storedLog(c);
    const got = await checkBatch(c.batch, v.room, v.now, (a, seq) => log.idAt(a, seq));
    for (const i of seqOrder(c.batch)) {
      if (got[i]) continue;
      try {
        if (log.checkChain(c.batch[i])) log.append(c.batch[i]);
      } catch (err) {
        assert.ok(err instanceof HistoryError && (err.code === 'fork' || err.code === 'gap'), `${c.name}: ${err.message}`);
      }
    }
    if (c.want.every((w) => !w.code) && c.name !== 'entries at a stored seq' && c.name !== 'two entries at one seq in the batch') {
      const ids = new Set(c.batch.map((e) => e.id));
      for (const id of ids) assert.ok(log.has(id), `${c.name}: ${id} not stored`);
    }
  }
});

test('the vouched-for entry fails checkEntry on its own (the edge of PROTOCOL.md section 3)', async () => {
  const c = v.cases.find((x) => x.name === 'bad own signature vouched for by a later entry');
  await assert.rejects(checkEntry(c.batch[1], v.room, v.now), (err) => err.code === 'bad-signature');
});

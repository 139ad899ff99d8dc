import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, zip } from '../static/js/zip.js';

test('crc32: the check value and continuation', () => {
  const b = new TextEncoder().encode('123456789');
  assert.equal(crc32(b), 0xcbf43926);
  assert.equal(crc32(b.subarray(4), crc32(b.subarray(0, 4))), 0xcbf43926);
});

test('zip: stored entries at the offsets the central directory names', async () => {
  const files = [{ name: 'history.json', blob: new Blob(['{"a":1}']) }, { name: 'media/ñ.bin', blob: new Blob([new Uint8Array(3000).fill(7)]) }];
  const z = new Uint8Array(await (await zip(files, new Date(2026, 10, 25, 12, 0, 0))).arrayBuffer());
  const dv = new DataView(z.buffer);
  const end = z.length - 22;
  assert.equal(dv.getUint32(end, true), 0x06054b50);
  assert.equal(dv.getUint16(end + 10, true), 2);
  let cd = dv.getUint32(end + 16, true);
  for (const f of files) {
    assert.equal(dv.getUint32(cd, true), 0x02014b50);
    const nameLen = dv.getUint16(cd + 28, true);
    const local = dv.getUint32(cd + 42, true);
    assert.equal(new TextDecoder().decode(z.subarray(cd + 46, cd + 46 + nameLen)), f.name);
    assert.equal(dv.getUint32(local, true), 0x04034b50);
    const size = dv.getUint32(local + 18, true);
    const data = z.subarray(local + 30 + nameLen, local + 30 + nameLen + size);
    assert.deepEqual(data, new Uint8Array(await f.blob.arrayBuffer()));
    assert.equal(dv.getUint32(local + 14, true), crc32(data));
    cd += 46 + nameLen;
  }
});

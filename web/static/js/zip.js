// A ZIP writer (stored, no compression: media are compressed already) that builds a Blob
// from parts, so the files inside are never held in memory: each is read once, a MiB at a
// time, for its CRC-32. No ZIP64: the whole archive stays under 4 GiB.

const LIMIT = 0xffffffff;
const utf8 = new TextEncoder();

let table = null;
function crcTable() {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** CRC-32 (IEEE) of bytes, continuing from crc. */
export function crc32(bytes, crc = 0) {
  const tb = crcTable();
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = tb[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function blobCrc(blob) {
  let crc = 0;
  for (let off = 0; off < blob.size; off += 1 << 20) {
    crc = crc32(new Uint8Array(await blob.slice(off, off + (1 << 20)).arrayBuffer()), crc);
  }
  return crc;
}

function dosTime(d) {
  const time = (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1);
  const date = ((d.getFullYear() - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate();
  return { time, date };
}

export class ZipTooLarge extends Error {}

/** files: [{name, blob}] (names unique, '/'-separated); returns a Blob of the archive. */
export async function zip(files, now = new Date()) {
  const parts = [];
  const central = [];
  let offset = 0;
  const { time, date } = dosTime(now);
  for (const f of files) {
    const name = utf8.encode(f.name);
    const crc = await blobCrc(f.blob);
    const size = f.blob.size;
    if (offset + 30 + name.length + size > LIMIT) throw new ZipTooLarge('zip: over 4 GiB');
    const h = new DataView(new ArrayBuffer(30));
    h.setUint32(0, 0x04034b50, true);
    h.setUint16(4, 20, true); // version needed
    h.setUint16(6, 0x0800, true); // UTF-8 names
    h.setUint16(8, 0, true); // stored
    h.setUint16(10, time, true);
    h.setUint16(12, date, true);
    h.setUint32(14, crc, true);
    h.setUint32(18, size, true);
    h.setUint32(22, size, true);
    h.setUint16(26, name.length, true);
    h.setUint16(28, 0, true);
    parts.push(h.buffer, name, f.blob);
    const c = new DataView(new ArrayBuffer(46));
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 20, true);
    c.setUint16(6, 20, true);
    c.setUint16(8, 0x0800, true);
    c.setUint16(10, 0, true);
    c.setUint16(12, time, true);
    c.setUint16(14, date, true);
    c.setUint32(16, crc, true);
    c.setUint32(20, size, true);
    c.setUint32(24, size, true);
    c.setUint16(28, name.length, true);
    c.setUint32(42, offset, true);
    central.push(c.buffer, name);
    offset += 30 + name.length + size;
  }
  const cdSize = central.reduce((n, p) => n + p.byteLength, 0);
  if (offset + cdSize + 22 > LIMIT) throw new ZipTooLarge('zip: over 4 GiB');
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, files.length, true);
  end.setUint16(10, files.length, true);
  end.setUint32(12, cdSize, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end.buffer], { type: 'application/zip' });
}

// Names and file names refuse control (Cc) and format (Cf) characters: the page's rule
// (history.js validText/cleanText, files.js parseMeta/cleanName) against the vectors Go
// also replays (store/history/testdata/names_vectors.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { validText, cleanText, MAX_NAME } from '../static/js/history.js';
import { parseMeta, cleanName, FileError } from '../static/js/files.js';

const v = JSON.parse(readFileSync(new URL('../../store/history/testdata/names_vectors.json', import.meta.url), 'utf8'));

test('names: validText and cleanText', () => {
  assert.ok(v.names.length > 0);
  for (const c of v.names) {
    assert.equal(validText(c.text, MAX_NAME), c.valid, `validText(${JSON.stringify(c.text)})`);
    const clean = cleanText(c.text, MAX_NAME);
    assert.equal(clean, c.clean, `cleanText(${JSON.stringify(c.text)})`);
    if (clean !== '') assert.ok(validText(clean, MAX_NAME), `cleanText(${JSON.stringify(c.text)}) is valid`);
  }
});

test('the engine\'s Cf set is the vectors\' (as Go\'s is)', () => {
  const want = new Set(v.format_characters.map((h) => parseInt(h, 16)));
  const got = [];
  for (let r = 0; r <= 0x10ffff; r++) {
    if (r >= 0xd800 && r <= 0xdfff) continue;
    if (/\p{Cf}/u.test(String.fromCodePoint(r))) got.push(r);
  }
  assert.deepEqual(got, [...want]);
  for (const r of want) assert.equal(validText(`a${String.fromCodePoint(r)}b`, MAX_NAME), false, r.toString(16));
});

test('file names: parseMeta and cleanName', () => {
  const root = 'ab'.repeat(32);
  for (const c of v.file_names) {
    const body = JSON.stringify({ root, size: 1, name: c.name, type: '' });
    if (c.valid) assert.equal(parseMeta('file', body).name, c.name);
    else assert.throws(() => parseMeta('file', body), (e) => e instanceof FileError && e.code === 'bad-name', JSON.stringify(c.name));
    const clean = cleanName(c.name);
    assert.equal(clean, c.clean, `cleanName(${JSON.stringify(c.name)})`);
    parseMeta('file', JSON.stringify({ root, size: 1, name: clean, type: '' }));
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isolate, templateParts, parseAnswerEvent, ConsentList } from '../static/js/dropconsent.js';
import { STRINGS } from '../static/js/i18n.js';

test('a name in plain text is isolated and cannot carry its own bidi controls out', () => {
  assert.equal(isolate('Ana'), '\u2068Ana\u2069');
  // A right-to-left override and a stray pop in the name are removed, the name stays.
  assert.equal(isolate('\u202eevil\u2069 name'), '\u2068evil name\u2069');
  assert.equal(isolate('سارة'), '\u2068سارة\u2069');
});

test('templates split into text and placeholders', () => {
  assert.deepEqual(templateParts('{name} quiere unirse a «{room}»'), [
    { key: 'name' }, { text: ' quiere unirse a «' }, { key: 'room' }, { text: '»' },
  ]);
  assert.deepEqual(templateParts('no names'), [{ text: 'no names' }]);
  assert.deepEqual(templateParts(''), []);
});

test('the consent strings name the person and the code in both languages', () => {
  for (const lang of ['es', 'en']) {
    const s = STRINGS[lang];
    assert.deepEqual(templateParts(s.dropAsk).filter((p) => p.key).map((p) => p.key), ['name', 'room'], lang);
    assert.ok(s.dropWait.includes('{code}') && s.dropWait.includes('{name}'), lang);
    assert.ok(s.dropRejected.includes('{name}'), lang);
  }
  assert.equal(STRINGS.es.dropAccept, 'Aceptar');
  assert.equal(STRINGS.es.dropReject, 'Rechazar');
  assert.match(STRINGS.es.publishNote, /todo el mundo en esta wifi/);
  assert.match(STRINGS.en.publishNote, /everyone on this Wi-Fi/);
});

test('answer events: id and torrent bytes, anything else refused', () => {
  const bytes = new Uint8Array([100, 52, 58, 0, 255]);
  const data = JSON.stringify({ id: '0123456789abcdef', torrent: Buffer.from(bytes).toString('base64') });
  const got = parseAnswerEvent(data);
  assert.equal(got.id, '0123456789abcdef');
  assert.deepEqual([...got.bytes], [...bytes]);
  for (const bad of ['"AAAA"', '{"id":"x","torrent":"AAAA"}', '{"id":"0123456789abcdef"}', 'null', '<b>']) {
    assert.throws(() => parseAnswerEvent(bad), undefined, bad);
  }
});

test('waiting answers: once each, capped, removed one by one or by offer', () => {
  const c = new ConsentList(3);
  const item = (answerId, offerId = 'o1') => ({ answerId, offerId, name: answerId });
  assert.equal(c.add(item('a')), true);
  assert.equal(c.add(item('a')), false); // the stream sent it again
  assert.equal(c.add(item('b')), true);
  assert.equal(c.add(item('c', 'o2')), true);
  assert.equal(c.add(item('d')), false); // full
  assert.equal(c.key(), 'a,b,c');
  assert.equal(c.get('b').name, 'b');
  assert.equal(c.remove('b').answerId, 'b');
  assert.equal(c.remove('b'), undefined);
  c.dropOffer('o1');
  assert.deepEqual(c.items.map((x) => x.answerId), ['c']);
});

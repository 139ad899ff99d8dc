import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STRINGS, pickLang, translator } from '../static/js/i18n.js';

test('the seed\'s Spanish labels are kept verbatim', () => {
  const t = translator('es');
  assert.equal(t('newRoomName'), 'Nombre de la nueva sala');
  assert.equal(t('createRoom'), '1. Crear Sala & Exportar .torrent');
  assert.equal(t('importTorrent'), '2. Importar Archivo .torrent');
  assert.equal(t('waiting'), 'Esperando');
  assert.equal(t('exportHistory'), 'Exportar Historial (JSON)');
});

test('both languages have the same keys', () => {
  const keys = (o, p = '') => Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' ? keys(v, `${p}${k}.`) : [`${p}${k}`])).sort();
  assert.deepEqual(keys(STRINGS.es), keys(STRINGS.en));
});

test('language choice: stored, then browser, then English', () => {
  assert.equal(pickLang('es', ['en-US']), 'es');
  assert.equal(pickLang(null, ['fr-FR', 'es-AR']), 'es');
  assert.equal(pickLang(null, ['de']), 'en');
  assert.equal(pickLang('xx', []), 'en');
});

test('placeholders and unknown keys', () => {
  const t = translator('en');
  assert.equal(t('with', { name: 'Ana' }), 'with Ana');
  assert.equal(t('err.own-offer').startsWith('This is your own offer'), true);
  assert.equal(t('no.such.key'), 'no.such.key');
});

test('plural forms follow the count', () => {
  const es = translator('es');
  const en = translator('en');
  assert.equal(es('boxEntries', { n: 1 }), '1 mensaje');
  assert.equal(es('boxEntries', { n: 0 }), '0 mensajes');
  assert.equal(es('boxEntries', { n: 12 }), '12 mensajes');
  assert.equal(en('boxEntries', { n: 1 }), '1 message');
  assert.equal(en('boxEntries', { n: 2 }), '2 messages');
  assert.equal(en('boxEntries'), '{n} messages');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasEd25519 } from '../static/js/support.js';

test('Node has Ed25519 in WebCrypto', async () => {
  assert.equal(await hasEd25519(), true);
});

test('a WebCrypto without Ed25519 is detected, without throwing', async () => {
  const no = () => Promise.reject(new DOMException('Operation is not supported', 'NotSupportedError'));
  assert.equal(await hasEd25519({ generateKey: no, sign: no, verify: no, importKey: no }), false);
  assert.equal(await hasEd25519(null), false);
  const liar = { ...crypto.subtle, verify: async () => false,
    generateKey: (...a) => crypto.subtle.generateKey(...a), sign: (...a) => crypto.subtle.sign(...a) };
  assert.equal(await hasEd25519(liar), false);
});

test('one failed Ed25519 check is tried again before the browser is called too old', async () => {
  let calls = 0;
  const flaky = {
    generateKey: (...a) => (++calls === 1 ? Promise.reject(new DOMException('transient', 'OperationError')) : crypto.subtle.generateKey(...a)),
    sign: (...a) => crypto.subtle.sign(...a),
    verify: (...a) => crypto.subtle.verify(...a),
  };
  assert.equal(await hasEd25519(flaky), true);
  assert.equal(calls, 2);
});

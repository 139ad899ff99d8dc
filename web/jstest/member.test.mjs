import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { proofMessage, proveMember, PROOF_CONTEXT } from '../static/js/member.js';
import { toB64url, fromB64url } from '../static/js/history.js';

const vectors = JSON.parse(readFileSync(new URL('../testdata/member_vectors.json', import.meta.url)));

// The Go side (web/member_test.go TestProofVectors) checks the same vectors.
for (const v of vectors) {
  test(`proof vector ${v.origin}`, async () => {
    assert.equal(new TextDecoder().decode(proofMessage(v.origin, v.nonce)), v.message);
    const seed = Buffer.from(v.seed, 'hex');
    // PKCS#8 of an Ed25519 seed: a fixed 16-byte prefix, then the 32 bytes.
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
    const key = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
    const jwk = await crypto.subtle.exportKey('jwk', key);
    assert.equal(jwk.x, v.author);
    const sig = new Uint8Array(await crypto.subtle.sign('Ed25519', key, proofMessage(v.origin, v.nonce)));
    assert.equal(toB64url(sig), v.sig);
  });
}

test('proveMember signs the nonce with the page origin and sends the author', async () => {
  const kp = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const author = toB64url(new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey)));
  const nonce = 'ab'.repeat(32);
  let sent;
  const fetchFn = async (url, init) => {
    if (url === '/api/member/challenge') return { ok: true, json: async () => ({ nonce, context: PROOF_CONTEXT }) };
    sent = JSON.parse(init.body);
    assert.equal(init.headers['X-ChatTorrent'], '1');
    return { ok: true };
  };
  assert.equal(await proveMember({ author, privateKey: kp.privateKey }, { 'X-ChatTorrent': '1' }, 'https://box.local:8443', fetchFn), true);
  assert.equal(sent.author, author);
  assert.equal(sent.nonce, nonce);
  const ok = await crypto.subtle.verify('Ed25519', kp.publicKey, fromB64url(sent.sig), proofMessage('https://box.local:8443', nonce));
  assert.ok(ok);
});

test('proveMember refuses a malformed challenge without signing', async () => {
  let proofs = 0;
  const fetchFn = async (url) => {
    if (url === '/api/member/challenge') return { ok: true, json: async () => ({ nonce: '<b>', context: PROOF_CONTEXT }) };
    proofs++;
    return { ok: true };
  };
  assert.equal(await proveMember({ author: 'x', privateKey: null }, {}, 'https://b', fetchFn), false);
  assert.equal(proofs, 0);
});

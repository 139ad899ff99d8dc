// What the page needs from the browser that older ones lack. Ed25519 in WebCrypto signs and
// checks every entry (history.js, in the page and in verify-worker.js) and proves membership
// (member.js); it came in Safari/iOS 17, Chrome 137 (Android too) and Firefox 129. Older
// browsers reject it ("Operation is not supported", "Unrecognized name"): the page checks once
// at start and, without it, shows which versions it needs instead of the app.

/** Resolves true when crypto.subtle can generate an Ed25519 key, sign and verify with it.
 * A failure is tried once more before the page calls the browser too old: WebKitGTK failed
 * the check once in CI and passed it at every other start. */
export async function hasEd25519(subtle = globalThis.crypto && globalThis.crypto.subtle) {
  if (!subtle) return false;
  for (let attempt = 1; ; attempt++) {
    try {
      const kp = await subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
      const msg = new Uint8Array([1, 2, 3]);
      const sig = await subtle.sign({ name: 'Ed25519' }, kp.privateKey, msg);
      if ((await subtle.verify({ name: 'Ed25519' }, kp.publicKey, sig, msg)) === true) return true;
      if (attempt >= 2) return false;
    } catch (err) {
      if (attempt >= 2) return false;
      console.info('chattorrent: Ed25519 check failed, trying again:', err && err.name);
    }
  }
}

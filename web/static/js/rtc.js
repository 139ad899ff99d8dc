// WebRTC for ChatTorrent: non-trickle offers and answers (ICE gathering completes before
// the SDP is written into a .torrent), and the `chattorrent` DataChannel. ICE servers: the
// box's own STUN/TURN (GET /api/ice) when the box answers, so phones on a Wi-Fi that
// isolates clients still connect, relayed by the box; none when it does not (rooms work
// without the box). There is never a server on the internet.

export const CHANNEL = 'chattorrent';

// Messages that arrive before a session listens: Chromium can deliver the peer's first
// message before our 'open' handler (or our .then on the channel) has run, and a message
// event with no listener is lost. Every channel buffers from the moment it exists.
const early = new WeakMap(); // RTCDataChannel → {data: [], listener}

function buffer(channel) {
  channel.binaryType = 'arraybuffer'; // file pieces (files.js)
  const b = { data: [], listener: (ev) => b.data.push(ev.data) };
  channel.addEventListener('message', b.listener);
  early.set(channel, b);
}

/** Stops buffering and returns what arrived so far, oldest first. */
export function takeEarly(channel) {
  const b = early.get(channel);
  if (!b) return [];
  channel.removeEventListener('message', b.listener);
  early.delete(channel);
  return b.data;
}
const GATHER_TIMEOUT_MS = 15000;

export class RTCFailure extends Error {
  constructor(code, detail) {
    super(`rtc: ${code}${detail ? `: ${detail}` : ''}`);
    this.name = 'RTCFailure';
    this.code = code;
    this.detail = detail || '';
  }
}

// With ICE servers, gathering waits for their answers: a server that does not answer (the
// box unplugged, its port filtered) holds "complete" back for many seconds (Chromium
// retries STUN/TURN requests; PERFORMANCE.md). The SDP is then taken after
// SERVER_GATHER_MS if it has a candidate: the host candidates come first, and a relay
// that was too slow is one the peers could not have used anyway.
const SERVER_GATHER_MS = 3000;
// /api/ice gets this long; after it the page goes on with no servers.
const ICE_FETCH_MS = 1500;

/** The RTCConfiguration for a new connection: the box's ICE servers if it answers in
 * time, else none. Test-only: `?ice=relay` in the page's URL forces iceTransportPolicy
 * 'relay' (proves connections through the box's TURN; never used by the product). */
export async function rtcConfig() {
  const config = { iceServers: [] };
  try {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), ICE_FETCH_MS);
    try {
      const r = await fetch('/api/ice', { headers: { 'X-ChatTorrent': '1' }, signal: ctl.signal, cache: 'no-store' });
      if (r.ok) {
        const body = await r.json();
        if (Array.isArray(body.iceServers)) config.iceServers = body.iceServers.filter(validServer).slice(0, 4);
      }
    } finally {
      clearTimeout(timer);
    }
  } catch {
    // no box, a page opened from a file, a timeout: no servers
  }
  if (typeof location !== 'undefined' && new URLSearchParams(location.search).get('ice') === 'relay') {
    config.iceTransportPolicy = 'relay';
  }
  return config;
}

function validServer(s) {
  const urls = s && (Array.isArray(s.urls) ? s.urls : [s.urls]);
  return !!urls && urls.length > 0 && urls.every((u) => typeof u === 'string' && /^(stun|turn):/.test(u))
    && (s.username === undefined || typeof s.username === 'string')
    && (s.credential === undefined || typeof s.credential === 'string');
}

function newPeerConnection(config) {
  if (typeof RTCPeerConnection !== 'function') throw new RTCFailure('no-webrtc');
  return new RTCPeerConnection(config);
}

/** Resolves once ICE gathering is complete, or after the timeout (SERVER_GATHER_MS when
 * there are ICE servers) when at least one candidate was gathered; rejects with
 * gather-failed when there is none by GATHER_TIMEOUT_MS. */
function gathered(pc, config) {
  const hasServers = !!(config && config.iceServers && config.iceServers.length);
  return new Promise((resolve, reject) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const timers = [];
    const finish = (ok) => {
      timers.forEach(clearTimeout);
      pc.removeEventListener('icegatheringstatechange', check);
      if (ok) resolve();
      else reject(new RTCFailure('gather-failed'));
    };
    const hasCandidate = () => /^a=candidate:/m.test(pc.localDescription ? pc.localDescription.sdp : '');
    const check = () => {
      if (pc.iceGatheringState === 'complete') finish(true);
    };
    if (hasServers) {
      timers.push(setTimeout(() => {
        if (hasCandidate()) finish(true);
      }, SERVER_GATHER_MS));
    }
    timers.push(setTimeout(() => finish(hasCandidate()), GATHER_TIMEOUT_MS));
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/** Makes an offer with the chattorrent channel. Returns {pc, channel, sdp}. config is
 * for tests; by default rtcConfig(). */
export async function makeOffer(config) {
  config = config || (await rtcConfig());
  const pc = newPeerConnection(config);
  try {
    const channel = pc.createDataChannel(CHANNEL, { ordered: true });
    buffer(channel);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc, config);
    return { pc, channel, sdp: pc.localDescription.sdp };
  } catch (err) {
    pc.close();
    throw wrap(err);
  }
}

/** Answers an offer. Returns {pc, channel: Promise<RTCDataChannel>, sdp}. */
export async function makeAnswer(offerSdp, config) {
  config = config || (await rtcConfig());
  const pc = newPeerConnection(config);
  const channel = new Promise((resolve) => {
    pc.addEventListener('datachannel', (ev) => {
      if (ev.channel.label === CHANNEL) {
        buffer(ev.channel);
        resolve(ev.channel);
      } else ev.channel.close();
    });
  });
  try {
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc, config);
    return { pc, channel, sdp: pc.localDescription.sdp };
  } catch (err) {
    pc.close();
    throw wrap(err);
  }
}

/** Applies the guest's answer to our offer. */
export async function applyAnswer(pc, answerSdp) {
  try {
    await pc.setRemoteDescription({ type: 'answer', sdp: answerSdp });
  } catch (err) {
    throw wrap(err);
  }
}

function wrap(err) {
  return err instanceof RTCFailure ? err : new RTCFailure('rtc-failed', err && err.message);
}

/** The DTLS fingerprint of an SDP ("sha-256 AB:CD:…"), "" if none. */
export function sdpFingerprint(sdp) {
  const m = /^a=fingerprint:[ \t]*(.+?)[ \t]*$/m.exec(sdp || '');
  return m ? m[1].toLowerCase() : '';
}

/** A short code both people can read out loud: derived from both DTLS fingerprints, so a
 * man in the middle (who must use his own certificates) shows different codes on each side. */
export async function safetyCode(localSdp, remoteSdp) {
  const fps = [sdpFingerprint(localSdp), sdpFingerprint(remoteSdp)].sort().join('\n');
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`chattorrent-safety-v1\n${fps}`)));
  const n = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
  const digits = String(n % 1000000).padStart(6, '0');
  return `${digits.slice(0, 3)} ${digits.slice(3)}`;
}

// driver.mjs drives one Firefox (one user) for the Go e2e suite (web/e2e/firefox_test.go)
// over WebDriver BiDi with puppeteer-core. A test tool only: never part of the page.
//
// Protocol: one JSON object per line on stdin, {"id": N, "cmd": ..., ...}; one reply per
// line on stdout, {"id": N, "ok": true, "value": ...} or {"id": N, "ok": false, "error": "..."}.
// Commands:
//   open {url, lang, downloads, firefox}  start Firefox (fresh profile) and load url
//   eval {js}                             evaluate an expression (promises awaited), JSON value
//   waitJS {js, timeoutMs}                poll a predicate until true
//   type {selector, text}                 type into an element
//   click {selector}                      click an element
//   upload {selector, path}               set a file input's file (fires change)
//   reload {}                             reload the page (waits for its load event)
//   problems {}                           console errors and uncaught exceptions so far (cleared)
//   console {}                            the latest console lines
//   rtc {}                                every RTCPeerConnection the page made: its states and
//                                         ICE candidate pairs (for failure messages)
//   close {}                              close Firefox gracefully; the driver exits
import puppeteer from 'puppeteer-core';
import readline from 'node:readline';

let browser = null;
let page = null;
let problems = [];
let consoleLines = [];

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function open({ url, lang, downloads, firefox }) {
  browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: firefox,
    headless: true,
    acceptInsecureCerts: true, // the box's self-signed certificate
    protocol: 'webDriverBiDi',
    args: ['--width=1280', '--height=900'],
    extraPrefsFirefox: {
      // WebRTC in a loopback-only namespace: loopback candidates, and the microphone
      // permission (without it Gecko gathers only on the default-route interface: none here).
      'media.peerconnection.ice.loopback': true,
      'media.peerconnection.ice.obfuscate_host_addresses': false,
      'permissions.default.microphone': 1,
      'permissions.default.camera': 1,
      'media.navigator.permission.disabled': true,
      'media.navigator.streams.fake': true,
      'intl.accept_languages': lang,
      'intl.locale.requested': lang,
      // Downloads straight into the user's folder, never a dialog.
      'browser.download.dir': downloads,
      'browser.download.folderList': 2,
      'browser.download.useDownloadDir': true,
      'browser.download.always_ask_before_handling_new_types': false,
      'browser.download.start_downloads_in_tmp_dir': false,
      'browser.download.viewableInternally.enabledTypes': '',
      'browser.download.manager.showWhenStarting': false,
      'browser.helperApps.neverAsk.saveToDisk': 'application/x-bittorrent,application/json,application/octet-stream,audio/webm,audio/mp4,image/png,image/jpeg',
      // No traffic of Firefox's own.
      'network.dns.disableIPv6': true,
      'app.update.enabled': false,
      'datareporting.policy.dataSubmissionEnabled': false,
      'toolkit.telemetry.enabled': false,
      'browser.safebrowsing.malware.enabled': false,
      'browser.safebrowsing.phishing.enabled': false,
      'network.captive-portal-service.enabled': false,
      'network.connectivity-service.enabled': false,
    },
  });
  page = (await browser.pages())[0] ?? (await browser.newPage());
  page.setDefaultTimeout(60000);
  page.on('console', (m) => {
    const line = m.type() + ': ' + m.text();
    consoleLines.push(line);
    if (consoleLines.length > 40) consoleLines.shift();
    if (m.type() === 'error') problems.push('console.' + line);
  });
  page.on('pageerror', (e) => problems.push('uncaught: ' + (e?.message ?? String(e))));
  // Diagnostics only: keep every RTCPeerConnection the page makes, for the rtc command.
  await page.evaluateOnNewDocument(() => {
    const Orig = window.RTCPeerConnection;
    if (typeof Orig !== 'function') return;
    const all = [];
    window.__e2ePeerConnections = all;
    window.RTCPeerConnection = new Proxy(Orig, {
      construct(target, args) {
        const pc = Reflect.construct(target, args);
        // Weakly: the page must keep its connections alive itself (Gecko collects, and so
        // closes, an RTCPeerConnection nothing refers to).
        all.push(new WeakRef(pc));
        pc.__e2eChannels = [];
        const follow = (ch) => {
          const c = { ch, got: 0, sent: 0, events: [] };
          for (const ev of ['open', 'close', 'error']) ch.addEventListener(ev, () => c.events.push(ev + '@' + Math.round(performance.now())));
          ch.addEventListener('message', () => c.got++);
          const send = ch.send.bind(ch);
          ch.send = (d) => { c.sent++; return send(d); };
          pc.__e2eChannels.push(c);
        };
        const create = pc.createDataChannel.bind(pc);
        pc.createDataChannel = (...a) => { const ch = create(...a); follow(ch); return ch; };
        pc.addEventListener('datachannel', (ev) => follow(ev.channel));
        pc.__e2eEvents = [];
        for (const ev of ['iceconnectionstatechange', 'connectionstatechange', 'signalingstatechange']) {
          pc.addEventListener(ev, () => pc.__e2eEvents.push(ev.replace('statechange', '') + '=' + (ev === 'iceconnectionstatechange' ? pc.iceConnectionState : ev === 'connectionstatechange' ? pc.connectionState : pc.signalingState) + '@' + Math.round(performance.now())));
        }
        return pc;
      },
    });
  });
  await page.goto(url, { waitUntil: 'load' });
  return true;
}

async function rtcState() {
  return page.evaluate(async () => {
    const out = [];
    for (const ref of window.__e2ePeerConnections ?? []) {
      const pc = ref.deref();
      if (!pc) {
        out.push('collected (the page kept no reference to it)');
        continue;
      }
      const o = { signaling: pc.signalingState, gathering: pc.iceGatheringState, ice: pc.iceConnectionState, conn: pc.connectionState,
        sctp: pc.sctp ? pc.sctp.state : null, now: Math.round(performance.now()), events: pc.__e2eEvents,
        channels: (pc.__e2eChannels ?? []).map((c) => `${c.ch.label} ${c.ch.readyState} got ${c.got} sent ${c.sent} ${c.events.join(' ')}`), pairs: [] };
      try {
        const stats = await pc.getStats();
        const byId = new Map([...stats.values()].map((s) => [s.id, s]));
        for (const s of stats.values()) {
          if (s.type !== 'candidate-pair') continue;
          const l = byId.get(s.localCandidateId), r = byId.get(s.remoteCandidateId);
          o.pairs.push(`${s.state}${s.nominated ? ' nominated' : ''} ${l?.candidateType}/${l?.protocol} ${l?.address}:${l?.port} -> ${r?.candidateType} ${r?.address}:${r?.port} req ${s.requestsSent ?? '?'}/${s.responsesReceived ?? '?'}`);
        }
      } catch (e) {
        o.pairs.push('getStats: ' + e);
      }
      out.push(o);
    }
    return out;
  });
}

async function handle(msg) {
  switch (msg.cmd) {
    case 'open':
      return open(msg);
    case 'eval':
      // The expression runs as the body of an async function's return.
      return page.evaluate(`(async () => (${msg.js}))()`);
    case 'waitJS':
      await page.waitForFunction(msg.js, { polling: 50, timeout: msg.timeoutMs ?? 60000 });
      return true;
    case 'type':
      await page.type(msg.selector, msg.text);
      return true;
    case 'click':
      await page.click(msg.selector);
      return true;
    case 'upload': {
      const el = await page.waitForSelector(msg.selector);
      await el.uploadFile(msg.path);
      return true;
    }
    case 'reload':
      await page.reload({ waitUntil: 'load' });
      return true;
    case 'problems': {
      const p = problems;
      problems = [];
      return p;
    }
    case 'console':
      return consoleLines;
    case 'rtc':
      return rtcState();
    case 'tabs': {
      const out = [];
      for (const p of await browser.pages()) out.push({ url: p.url(), mine: p === page, visibility: await p.evaluate(() => document.visibilityState + ' focus=' + document.hasFocus()).catch((e) => String(e)) });
      return out;
    }
    case 'close':
      if (browser) await browser.close();
      browser = null;
      return true;
    default:
      throw new Error('unknown command ' + msg.cmd);
  }
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    let msg;
    try {
      msg = JSON.parse(line);
      const value = await handle(msg);
      reply({ id: msg.id, ok: true, value: value === undefined ? null : value });
    } catch (e) {
      reply({ id: msg?.id ?? 0, ok: false, error: String(e?.stack ?? e) });
    }
    if (msg?.cmd === 'close') process.exit(0);
  });
});
rl.on('close', async () => {
  await chain;
  if (browser) await browser.close().catch(() => {});
  process.exit(0);
});

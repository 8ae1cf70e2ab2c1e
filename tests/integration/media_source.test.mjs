// RTP from strangers on a call's PBX-side media port ([media] rtp_source;
// DESIGN.md "Trust"), with real media through rtcsipd: a fake browser
// (tests/integration/fake_browser.c: ICE, DTLS-SRTP and RTP on 127.0.0.1,
// made of rtcsipd's own webrtc/ modules) calls through Kamailio to SIPp
// (it_media_uas.xml), whose SDP names this test's UDP socket as the PBX's
// media: the test plays the PBX's RTP itself.  The attackers send RTP with
// plausible headers (and RTCP) to rtcsipd's PBX-side port, which they find
// the way a stranger would (here: in the INVITE SIPp got):
//   - a stranger on another host (127.0.0.66; the whole 127/8 is local);
//   - a spoofer on the PBX's own address (127.0.0.1) from another port.
// Every packet is told apart by its SSRC: browser 11111111, PBX 22222222
// (33333333 after a new SDP), stranger 66666666, spoofer 77777777.
//
//   - sdp (the default): before the PBX's first packet and while media
//     flows, nothing of the attackers reaches the browser and nothing of the
//     browser's reaches them; the call's audio is intact both ways, also
//     after the attack; the 'call ended' line counts them (rejected source).
//   - latch: the PBX sends from another port than its SDP's: learnt; the
//     stranger never is, before or after; a second trusted port does not
//     move it; a re-INVITE from the PBX with a new SDP learns anew (SIPp
//     sends it on the browser's INFO, relayed with dtmf_to_pbx = info).
//
// Under `meson test --setup valgrind` every wait on the daemon is
// VALGRIND_SLOWDOWN times longer, and packet counts are checked as at most
// what was sent and most of it: the slow daemon's socket buffers overflow
// during its stalls (the kernel drops), which is not rtcsipd's doing.
import test from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { withEnv, testsDir, waitFor, sleep, VALGRIND } from '../lib/harness.mjs';
import { uriOf } from '../lib/sipclient.mjs';
import {
  SLOW, DOMAIN, OFFER, ALICE, nb, gateway as startGateway, invite, finalResponse, bye, ended,
} from '../lib/calls.mjs';

const FAKE_BROWSER = process.env.FAKE_BROWSER || path.resolve(testsDir, '../build/tests/integration/fake_browser');
const RTP = [34400, 34499]; // rtcsipd's [media] port range in this file
const BROWSER_ICE = [34500, 34599]; // the fake browser's ICE ports
// The test's own media sockets: the PBX's SDP ports (RTP, RTCP = +1), the
// PBX's other ports, the attackers'.
const PORTS = { sdp: 34600, sdp2: 34602, real: 34610, second: 34612, spoofer: 34614, stranger: 34620 };
const PBX_HOST = '127.0.0.1';
const STRANGER_HOST = '127.0.0.66';
const SSRC = { browser: 0x11111111, pbx: 0x22222222, pbx2: 0x33333333, old: 0x44444444, stranger: 0x66666666,
  spoofer: 0x77777777 };
const hex = (n) => n.toString(16).padStart(8, '0');
const TEST_TIMEOUT = 90000 * SLOW;

// ---------------------------------------------------------------------------
// UDP: the PBX's media and the attackers.

// A UDP socket on HOST:PORT that records what reaches it: got = [{ ssrc, rtcp, from }].
async function udp(env, host, port) {
  const sock = dgram.createSocket('udp4');
  const got = [];
  sock.on('message', (m, from) => {
    if (m.length < 8) return;
    const rtcp = m[1] >= 192 && m[1] <= 223;
    got.push({ ssrc: m.length >= 12 && !rtcp ? m.readUInt32BE(8) : m.readUInt32BE(4), rtcp, from: `${from.address}:${from.port}` });
  });
  await new Promise((resolve, reject) => { sock.once('error', reject); sock.bind(port, host, resolve); });
  env.defer(() => new Promise((resolve) => { try { sock.close(resolve); } catch { resolve(); } }));
  const s = { sock, got, host, port };
  s.rtp = (ssrc) => got.filter((g) => !g.rtcp && g.ssrc === ssrc).length;
  return s;
}

let seqBase = 1;
// RTP (PCMU, 160 bytes) from S to 127.0.0.1:PORT every 20 ms with SSRC, and
// with RTCP an RR to PORT + 1 every 5th packet: { sent, rtp, stop() }.  sent
// counts datagrams (RTP and RTCP); ENV stops it at the latest.
function stream(env, s, port, ssrc, { rtcp = false } = {}) {
  let seq = seqBase;
  seqBase += 10000;
  let ts = 0;
  const st = { sent: 0, rtp: 0 };
  const timer = setInterval(() => {
    const p = Buffer.alloc(12 + 160, 0xd5);
    p[0] = 0x80;
    p[1] = 0;
    p.writeUInt16BE(seq++ & 0xffff, 2);
    p.writeUInt32BE((ts += 160) >>> 0, 4);
    p.writeUInt32BE(ssrc, 8);
    s.sock.send(p, port, PBX_HOST);
    st.sent++;
    st.rtp++;
    if (rtcp && seq % 5 === 0) {
      const rr = Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 0]);
      rr.writeUInt32BE(ssrc, 4);
      s.sock.send(rr, port + 1, PBX_HOST);
      st.sent++;
    }
  }, 20);
  st.stop = () => clearInterval(timer);
  env.defer(st.stop);
  return st;
}

// ---------------------------------------------------------------------------
// The fake browser (its SIP is alice's SipWsClient; its media this process).

async function fakeBrowser(env) {
  const proc = spawn(FAKE_BROWSER, BROWSER_ICE.map(String), { stdio: ['pipe', 'pipe', 'pipe'] });
  const fb = { proc, lines: [], stderr: '', stats: null, exited: false };
  proc.on('exit', () => { fb.exited = true; });
  proc.stderr.on('data', (d) => { if (fb.stderr.length < 65536) fb.stderr += d; });
  readline.createInterface({ input: proc.stdout }).on('line', (line) => {
    if (line.startsWith('stats ')) {
      const m = line.match(/^stats sent (\d+) rtcp-in (\d+) bad (\d+) ssrc ?(.*)$/);
      const ssrc = {};
      for (const kv of (m[4] || '').split(' ').filter(Boolean)) {
        const [k, v] = kv.split('=');
        ssrc[k] = Number(v);
      }
      fb.stats = { sent: Number(m[1]), rtcpIn: Number(m[2]), bad: Number(m[3]), ssrc };
    } else {
      fb.lines.push(line);
    }
  });
  env.defer(async () => {
    if (!fb.exited) {
      proc.stdin.end('quit\n');
      await waitFor(() => fb.exited, 3000).catch(() => proc.kill('SIGKILL'));
    }
  });
  const info = () => `fake browser: ${fb.lines.join(' | ')}\n${fb.stderr}`;
  fb.info = info;
  await waitFor(() => {
    if (fb.exited) throw new Error(`the fake browser exited: ${info()}`);
    return fb.lines.includes('gathered');
  }, 5000, { what: 'the fake browser to gather' });
  const value = (k) => fb.lines.find((l) => l.startsWith(`${k} `)).slice(k.length + 1);
  fb.ufrag = value('ufrag');
  fb.pwd = value('pwd');
  fb.fingerprint = value('fingerprint');
  fb.candidates = fb.lines.filter((l) => l.startsWith('candidate ')).map((l) => l.slice(10));
  // The browser's offer: Chromium's (lib/calls.mjs OFFER) with this one's ICE and DTLS.
  fb.offer = (version = 2) => {
    const [addr, port] = fb.candidates[0].split(' ').slice(4, 6);
    const out = [];
    for (const l of OFFER.split(/\r?\n/)) {
      if (!l || l.startsWith('a=candidate:')) continue;
      if (l.startsWith('o=')) out.push(l.replace(/^(o=\S+ \S+ )\d+/, `$1${version}`));
      else if (l.startsWith('c=')) out.push(`c=IN IP4 ${addr}`);
      else if (l.startsWith('m=audio ')) out.push(l.replace(/^m=audio \d+/, `m=audio ${port}`));
      else if (l.startsWith('a=ice-ufrag:')) out.push(`a=ice-ufrag:${fb.ufrag}`);
      else if (l.startsWith('a=ice-pwd:')) out.push(`a=ice-pwd:${fb.pwd}`);
      else if (l.startsWith('a=fingerprint:')) out.push(`a=fingerprint:${fb.fingerprint}`);
      else out.push(l);
      if (l.startsWith('a=rtcp:')) for (const c of fb.candidates) out.push(`a=${c}`);
    }
    return `${out.join('\r\n')}\r\n`;
  };
  // rtcsipd's answer: ICE and DTLS go.
  fb.start = (answer) => {
    const one = (re) => (answer.match(re) || [])[1];
    const cmds = [`remote-ufrag ${one(/^a=ice-ufrag:(\S+)/m)}`, `remote-pwd ${one(/^a=ice-pwd:(\S+)/m)}`,
      `remote-fingerprint ${one(/^a=fingerprint:(.+?)\r?$/m)}`, `remote-setup ${one(/^a=setup:(\S+)/m)}`,
      ...(answer.match(/^a=candidate:.+?(?=\r?$)/mg) || []).map((c) => `remote-candidate ${c.slice(2)}`), 'start'];
    proc.stdin.write(`${cmds.join('\n')}\n`);
  };
  fb.send = (on) => proc.stdin.write(`send ${on ? 'on' : 'off'}\n`);
  fb.rtp = (ssrc) => (fb.stats && fb.stats.ssrc[hex(ssrc)]) || 0;
  fb.seen = () => Object.keys((fb.stats && fb.stats.ssrc) || {});
  return fb;
}

// ---------------------------------------------------------------------------
// Signalling (alice's SipWsClient; invite, finalResponse, bye: lib/calls.mjs).

// An in-dialog request from the browser in the dialog of OK (the 200 to the INVITE).
function inDialog(alice, call, ok, method, cseq, body = '', type = 'application/sdp') {
  const routes = ok.all('record-route').reverse();
  alice.sendRaw(alice.buildRequest(method, {
    uri: uriOf(ok.get('contact')), to: ok.get('to'), callId: call.callId, cseq, body,
    contact: method === 'INVITE',
    headers: { ...(routes.length ? { Route: routes } : {}), ...(body ? { 'Content-Type': type } : {}) },
  }).text);
}

// The PBX-side RTP port rtcsipd offered, from the INVITE SIPp got.
async function pbxSidePort(uas) {
  const m = await waitFor(() => {
    let t = '';
    try { t = fs.readFileSync(uas.messageFile, 'utf8'); } catch { /* not yet */ }
    return t.match(/^\s*m=audio (\d+) RTP\/AVP /m);
  }, 10000 * SLOW, { what: 'the INVITE at SIPp (its SDP)' });
  return Number(m[1]);
}

// A call from the fake browser to sipp@DOMAIN through Kamailio, rtcsipd
// with [media] MEDIA.  Returns the pieces; the call is answered (ACKed)
// but its media not started.
async function callSetup(env, media = {}) {
  const uas = await env.startSipp({ scenario: 'it_media_uas.xml', timeoutSec: 80 * SLOW,
    vars: { RTP_PORT: PORTS.sdp, NEW_RTP_PORT: PORTS.sdp2, BYE_TIMEOUT_MS: 60000 * SLOW } });
  await uas.bound();
  const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE], sippRoutes: [{ user: 'sipp', port: uas.port }] });
  const { gw, alice } = await startGateway(env, kam.port, { rtp: RTP, overrides: { media } });
  const fb = await fakeBrowser(env);
  const call = invite(alice, { body: fb.offer() });
  const port = await pbxSidePort(uas);
  assert.ok(port >= RTP[0] && port <= RTP[1], `rtcsipd's PBX-side port ${port} in [media] ${RTP}`);
  return { uas, kam, gw, alice, fb, call, port };
}

async function answerAndStart(ctx) {
  const { alice, fb, call } = ctx;
  const ok = await finalResponse(alice, call, { ms: 10000 * SLOW });
  assert.equal(ok.status, 200, `${ok.status} ${ok.reason}`);
  inDialog(alice, call, ok, 'ACK', 1);
  fb.start(ok.body);
  await waitFor(() => {
    if (fb.exited || fb.lines.some((l) => l.startsWith('failed'))) throw new Error(`media: ${fb.info()}`);
    return fb.lines.includes('ready') && fb.stats;
  }, 15000 * SLOW, { what: 'ICE and DTLS-SRTP between the fake browser and rtcsipd' });
  ctx.ok = ok;
  return ok;
}

// Waits for FN() to reach N (at most MS ms), with WHAT in the failure.
const atLeast = (fn, n, ms, what) => waitFor(() => fn() >= n, ms, { what: `${what} (${n}; now ${fn()})` });

// FN() (packets counted at the receiver) is all of the SENT: exactly, or
// under valgrind most of them (see above).  Waits at most 3 s for them.
async function allOf(fn, sent, what) {
  await waitFor(() => fn() >= sent, 3000 * SLOW, { what }).catch((e) => { if (!VALGRIND) throw e; });
  if (VALGRIND) assert.ok(fn() <= sent && fn() >= sent * 0.3, `${what}: ${fn()} of ${sent} (valgrind)`);
  else assert.equal(fn(), sent, what);
}

// The figures of the 'call ended' line.
async function summary(gw) {
  const m = await ended(gw, 'BYE from the browser');
  const line = gw.logs().slice(m.index).split('\n')[0];
  const rejected = line.match(/rejected source (\d+)/);
  assert.ok(rejected, `'rejected source N' in the summary: ${line}`);
  return { line, rejected: Number(rejected[1]) };
}

// ---------------------------------------------------------------------------

test('sdp (default): RTP from a stranger before and after the PBX\'s media is dropped and the call\'s audio stays ' +
  'intact in both directions; the PBX\'s address from another port too; counted in the summary', { timeout: TEST_TIMEOUT },
(t) => withEnv('media-source-sdp', async (env) => {
  const pbx = await udp(env, PBX_HOST, PORTS.sdp);
  await udp(env, PBX_HOST, PORTS.sdp + 1); // the PBX's RTCP port: rtcsipd's RTCP arrives there
  const stranger = await udp(env, STRANGER_HOST, PORTS.stranger);
  const spoofer = await udp(env, PBX_HOST, PORTS.spoofer);
  const ctx = await callSetup(env);
  const { fb, gw, alice, call, port, uas } = ctx;

  // the attack starts as soon as the port is known: before the PBX's answer and media
  const attack = [stream(env, stranger, port, SSRC.stranger, { rtcp: true }),
    stream(env, spoofer, port, SSRC.spoofer, { rtcp: true })];
  await answerAndStart(ctx);
  // the browser's audio reaches the PBX's SDP address (and no one else) while the PBX sends nothing
  await atLeast(() => pbx.rtp(SSRC.browser), 25, 5000 * SLOW, 'the browser\'s audio at the PBX');
  await sleep(300);
  assert.deepEqual(fb.seen(), [], `nothing reaches the browser before the PBX sends: ${JSON.stringify(fb.stats)}`);

  // the PBX's audio, from its SDP port, while the attack goes on
  const audio = stream(env, pbx, port, SSRC.pbx);
  await atLeast(() => fb.rtp(SSRC.pbx), 50, 5000 * SLOW, 'the PBX\'s audio at the browser');
  await sleep(1000);
  for (const a of attack) a.stop();
  const attackSent = attack.reduce((n, a) => n + a.sent, 0);
  const during = { pbx: fb.rtp(SSRC.pbx), browser: pbx.rtp(SSRC.browser) };
  t.diagnostic(`attack: ${attackSent} datagrams; the browser got ${during.pbx} of the PBX, the PBX ${during.browser} of the browser`);

  // after the attack: the audio goes on both ways
  await atLeast(() => fb.rtp(SSRC.pbx), during.pbx + 25, 5000 * SLOW, 'the PBX\'s audio after the attack');
  await atLeast(() => pbx.rtp(SSRC.browser), during.browser + 25, 5000 * SLOW, 'the browser\'s audio after the attack');
  audio.stop();
  fb.send(false);
  await sleep(300);
  // every packet of the PBX reached the browser, and only those
  await allOf(() => fb.rtp(SSRC.pbx), audio.rtp, `the PBX's ${audio.rtp} packets at the browser`);
  assert.deepEqual(fb.seen(), [hex(SSRC.pbx)], `the browser got the PBX's stream only: ${JSON.stringify(fb.stats)}`);
  assert.equal(fb.stats.bad, 0, `nothing the browser could not unprotect: ${JSON.stringify(fb.stats)}`);
  // the browser's audio reached the PBX, from rtcsipd's port, and nothing else did
  const fromRtcsipd = `${PBX_HOST}:${port}`;
  const pbxRtp = pbx.got.filter((g) => !g.rtcp);
  assert.ok(pbxRtp.every((g) => g.ssrc === SSRC.browser && g.from === fromRtcsipd),
    `the PBX got the browser's stream from ${fromRtcsipd} only: ${JSON.stringify([...new Set(pbxRtp.map((g) => `${hex(g.ssrc)} from ${g.from}`))])}`);
  // (a few of the first packets may leave the browser before rtcsipd has its keys)
  assert.ok(pbxRtp.length <= fb.stats.sent && pbxRtp.length >= (VALGRIND ? fb.stats.sent * 0.3 : fb.stats.sent - 5),
    `the PBX got the browser's audio: ${pbxRtp.length} of ${fb.stats.sent}`);
  // the attackers got nothing
  assert.deepEqual(stranger.got, [], 'nothing reaches the stranger');
  assert.deepEqual(spoofer.got, [], 'nothing reaches the spoofer');

  const b = await bye(alice, call, ctx.ok, 2);
  assert.equal(b.status, 200, `BYE: ${b.status} ${b.reason}`);
  const s = await summary(gw);
  t.diagnostic(s.line);
  await allOf(() => s.rejected, attackSent, `every datagram of the attack counted: ${s.line}`);
  const r = await uas.result();
  assert.equal(r.code, 0, `SIPp:\n${nb(r.errors)}`);
}));

test('latch: learns the PBX\'s first packet from a trusted address (not its SDP port), never a stranger\'s; holds ' +
  'against a second trusted port; a re-INVITE with a new SDP learns anew', { timeout: TEST_TIMEOUT },
(t) => withEnv('media-source-latch', async (env) => {
  const sdpPort = await udp(env, PBX_HOST, PORTS.sdp);
  const sdpPort2 = await udp(env, PBX_HOST, PORTS.sdp2);
  const real = await udp(env, PBX_HOST, PORTS.real); // where the PBX's media really comes from (a NAT, a media server)
  const second = await udp(env, PBX_HOST, PORTS.second); // another trusted port
  const stranger = await udp(env, STRANGER_HOST, PORTS.stranger);
  const ctx = await callSetup(env, { rtp_source: 'latch', dtmf_to_pbx: 'info' });
  const { fb, gw, alice, call, port, uas } = ctx;

  const attack = stream(env, stranger, port, SSRC.stranger, { rtcp: true });
  await answerAndStart(ctx);
  // not latched yet: the browser's audio goes to the SDP's address
  await atLeast(() => sdpPort.rtp(SSRC.browser), 25, 5000 * SLOW, 'the browser\'s audio at the SDP\'s port');
  assert.deepEqual(fb.seen(), [], `the stranger is not learnt: ${JSON.stringify(fb.stats)}`);

  // the PBX's audio from another port: learnt; the browser's audio follows it
  let audio = stream(env, real, port, SSRC.pbx);
  await atLeast(() => fb.rtp(SSRC.pbx), 25, 5000 * SLOW, 'the PBX\'s audio at the browser');
  await atLeast(() => real.rtp(SSRC.browser), 25, 5000 * SLOW, 'the browser\'s audio at the learnt port');

  // latched: a second trusted port does not move it
  const other = stream(env, second, port, SSRC.spoofer);
  await sleep(1000);
  other.stop();
  const beforeReinvite = sdpPort.rtp(SSRC.browser);
  await sleep(200);
  assert.equal(sdpPort.rtp(SSRC.browser), beforeReinvite, 'nothing more to the SDP\'s port once latched');
  assert.equal(second.got.length, 0, 'nothing to the second trusted port');
  assert.deepEqual(fb.seen(), [hex(SSRC.pbx)], `the browser got the learnt stream only: ${JSON.stringify(fb.stats)}`);

  // a new SDP (the PBX's re-INVITE, port PORTS.sdp2): learns anew
  audio.stop();
  await sleep(200);
  await allOf(() => fb.rtp(SSRC.pbx), audio.rtp, `the learnt stream's ${audio.rtp} packets at the browser`);
  const firstStream = fb.rtp(SSRC.pbx);
  inDialog(alice, call, ctx.ok, 'INFO', 2, 'Signal=5\r\nDuration=100\r\n', 'application/dtmf-relay');
  const info = await finalResponse(alice, call, { method: 'INFO', cseq: 2, ms: 10000 * SLOW });
  assert.equal(info.status, 200, `INFO (SIPp's cue): ${info.status} ${info.reason}`);
  await gw.child.waitForOutput(/\[call-\d+\] state confirmed -> confirmed \(pbx-refresh/, 10000 * SLOW,
    'the PBX\'s re-INVITE answered by rtcsipd');
  await atLeast(() => sdpPort2.rtp(SSRC.browser), 10, 5000 * SLOW, 'the browser\'s audio at the new SDP\'s port');
  // now the second port sends first: it is learnt; the old source is not taken any more
  audio = stream(env, second, port, SSRC.pbx2);
  await atLeast(() => fb.rtp(SSRC.pbx2), 25, 5000 * SLOW, 'the PBX\'s new stream at the browser');
  const old = stream(env, real, port, SSRC.old);
  await atLeast(() => second.rtp(SSRC.browser), 25, 5000 * SLOW, 'the browser\'s audio at the newly learnt port');
  await sleep(1000);
  old.stop();
  attack.stop();
  audio.stop();
  fb.send(false);
  await sleep(300);
  await allOf(() => fb.rtp(SSRC.pbx2), audio.rtp, `the new stream's ${audio.rtp} packets at the browser`);
  assert.deepEqual(fb.seen().sort(), [hex(SSRC.pbx), hex(SSRC.pbx2)],
    `the browser got the two learnt streams only: ${JSON.stringify(fb.stats)}`);
  assert.equal(fb.rtp(SSRC.pbx), firstStream, 'nothing more of the first stream');
  assert.equal(fb.stats.bad, 0, `nothing the browser could not unprotect: ${JSON.stringify(fb.stats)}`);
  assert.deepEqual(stranger.got, [], 'nothing reaches the stranger');
  const fromRtcsipd = `${PBX_HOST}:${port}`;
  for (const s of [sdpPort, sdpPort2, real, second]) {
    assert.ok(s.got.filter((g) => !g.rtcp).every((g) => g.ssrc === SSRC.browser && g.from === fromRtcsipd),
      `${s.port}: the browser's audio from ${fromRtcsipd} only`);
  }

  const b = await bye(alice, call, ctx.ok, 3);
  assert.equal(b.status, 200, `BYE: ${b.status} ${b.reason}`);
  const s = await summary(gw);
  t.diagnostic(s.line);
  await allOf(() => s.rejected, attack.sent + other.sent + old.sent,
    `the stranger's ${attack.sent}, the second port's ${other.sent} and the old source's ${old.sent} counted: ${s.line}`);
  const r = await uas.result();
  assert.equal(r.code, 0, `SIPp:\n${nb(r.errors)}`);
}));

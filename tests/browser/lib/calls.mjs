// Scaffolding shared by the browser tests of calls through rtcsipd and
// Kamailio with media (browser/calls and midcall.test.mjs): headless Chromium
// with JsSIP or SIP.js registered as alice, SIPp (-rtp_echo) as the far end.
// Those files re-run themselves in a loopback-only network namespace before
// anything else: import this module (dynamically) after runInLoopbackNetns().
import assert from 'node:assert/strict';
import { waitFor, freePort, udpPortInUse, randomToken, VALGRIND_SLOWDOWN } from '../../lib/harness.mjs';
import { parseSip } from '../../lib/sipclient.mjs';
import { startWebServer, launchChromium } from './browser.mjs';
import { DOMAIN } from './steps.mjs';

export const SLOW = VALGRIND_SLOWDOWN;
// The page's user (one password per test file: each runs in its own process).
export const ALICE = { username: 'alice', password: `pw-${randomToken(8)}` };
export const ALICE_URI = `sip:alice@${DOMAIN}`;
export const SIPP_URI = `sip:sipp@${DOMAIN}`;

// ---------------------------------------------------------------------------
// Text helpers.

export function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// Text for an assertion message: no CR, no blank line (it goes into a TAP
// YAML block, which a blank line would end), the last 20000 characters.
export const block = (s) => {
  const t = String(s).replace(/\r/g, '').replace(/\n\s*(?=\n)/g, '').trimEnd();
  return t.length > 20000 ? `[...]\n${t.slice(-20000)}` : t;
};

// A one-line-per-message trace of the page's SIP: "out INVITE sip:..", "in 180 Ringing (1 INVITE)".
export function trace(msgs) {
  return msgs.map((m) => `${m.dir} ${m.isResponse ? `${m.status} ${m.reason} (${m.get('cseq')})` : `${m.method} ${m.uri}`}`)
    .join('\n');
}

// SIPp's message trace (-trace_msg) as [{ t (ms since the epoch), dir: 'sent'|'received', msg (parsed) }].
export function sippTrace(messages) {
  const out = [];
  const stamp = (t) => new Date(t.replace(' ', 'T').replace(/(\.\d{3})\d*$/, '$1')).getTime();
  const parts = messages.split(/^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\s*$/m);
  for (let i = 1; i + 1 < parts.length; i += 2) {
    const m = parts[i + 1].match(/^\s*\S+ message (sent|received)[^\n]*\n\s*\n?([\s\S]*)$/);
    if (!m) continue;
    let text = m[2].replace(/^\s+/, '').replace(/\r?\n/g, '\r\n');
    if (!text.includes('\r\n\r\n')) text += '\r\n\r\n';
    try {
      out.push({ t: stamp(parts[i]), dir: m[1], msg: parseSip(text) });
    } catch { /* not SIP */ }
  }
  return out;
}

export const sippRequests = (tr, method) => tr.filter((e) => e.dir === 'received' && !e.msg.isResponse &&
  (!method || e.msg.method === method));

export function sippSummary(tr) {
  return tr.map((e) => `${new Date(e.t).toISOString().slice(11, 23)} ${e.dir} ` +
    (e.msg.isResponse ? `${e.msg.status} (${e.msg.get('cseq')})` : `${e.msg.method} ${e.msg.uri}`)).join('\n');
}

// rtcsipd's log lines of call NAME ("call-N"); with no NAME, those of every call.
export const callLog = (gw, name) => (name
  ? gw.child.output.split('\n').filter((l) => l.includes(`[${name}]`)).join('\n')
  : gw.child.output.split('\n').filter((l) => /\[call-\d+\]/.test(l)).join('\n'));

// ---------------------------------------------------------------------------
// Setup.

// A UDP port P for SIPp's -rtp_echo (it binds P and P + 2) with both free now.
export async function sippMediaPort() {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p + 2 < 65535 && !(await udpPortInUse(p + 2)) && !(await udpPortInUse(p + 1))) return p;
  }
  throw new Error('no free port pair for SIPp\'s media');
}

// Kamailio (registrar; sip:sipp@DOMAIN routed to SIPP when given), rtcsipd in
// front of it (its [media] port range RTP, [min, max]: each test file has its
// own, and config OVERRIDES on top), the web server and Chromium.
export async function startAll(env, { rtp, sipp, overrides = {} }) {
  const kam = await env.startKamailio({
    domain: DOMAIN, users: [ALICE], sippRoutes: sipp ? [{ user: 'sipp', port: sipp.port }] : [],
  });
  const gw = await env.startRtcsipd({
    pbxPort: kam.port, domains: [DOMAIN],
    overrides: {
      ...overrides,
      media: { rtp_port_min: rtp[0], rtp_port_max: rtp[1], ...(overrides.media || {}) },
    },
  });
  const web = await startWebServer();
  env.defer(() => web.close());
  const browser = await launchChromium({ loopbackIce: true });
  env.defer(() => browser.close());
  return { kam, gw, web, browser };
}

// SIPp UAS (SCENARIO, VARS) as the far end of a call from the browser (behind Kamailio), echoing RTP.
export async function startSippUas(env, scenario, vars, timeoutSec = 40) {
  const mp = await sippMediaPort();
  const uas = await env.startSipp({ scenario, vars, args: ['-rtp_echo', '-mp', String(mp)],
    timeoutSec: timeoutSec * SLOW });
  await uas.bound();
  return uas;
}

// SIPp's outcome (after it exited), asserted: exit 0.  Returns its result with .trace.
export async function sippDone(run, what, ms) {
  const r = await run.result(ms);
  const tr = sippTrace(r.messages);
  assert.equal(r.code, 0, `${what}: SIPp's scenario (exit ${r.code}${r.timedOut ? ', killed: it did not end' : ''}):\n` +
    `${block(r.errors)}\n--- SIPp's messages ---\n${sippSummary(tr)}\n--- SIPp's output ---\n${block(r.output.slice(-3000))}`);
  r.trace = tr;
  return r;
}

// The library LIB of the page started and registered as alice through rtcsipd.
export async function startAndRegister(agent, lib, gw) {
  if (lib === 'jssip') {
    await agent.call('jssipStart', { url: gw.wssUrl, uri: ALICE_URI, password: ALICE.password, debug: true });
    const reg = await agent.waitForEvent('jssip', ['registered', 'registrationFailed', 'disconnected'], 15000);
    assert.equal(reg.type, 'registered', `JsSIP REGISTER through rtcsipd: ${JSON.stringify(reg)}`);
  } else {
    const st = await agent.call('sipjsStart', { url: gw.wssUrl, uri: ALICE_URI, user: 'alice', password: ALICE.password,
      debug: true });
    assert.equal(st.started, true, `SIP.js UserAgent started (WebSocket to rtcsipd): ${JSON.stringify(st)}`);
    const reg = await agent.waitForEvent('sipjs', ['registered', 'registrationFailed', 'registerError'], 15000);
    assert.equal(reg.type, 'registered', `SIP.js REGISTER through rtcsipd: ${JSON.stringify(reg)}`);
  }
}

// ---------------------------------------------------------------------------
// The page's call.

export const callEvents = (agent, lib) => agent.events(`${lib}-call`);

// Calls TARGET from LIB; OPTS: T.jssipCall's / T.sipjsCall's.
export async function placeCall(agent, lib, target, opts = {}) {
  if (lib === 'jssip') await agent.call('jssipCall', { target, ...opts });
  else await agent.call('sipjsCall', { target, ...opts });
}

// The first outcome of the page's call in its events EVS: 'confirmed' (JsSIP
// confirmed, SIP.js Established), or 'failed' / 'ended' / 'terminated'
// (SIP.js) with the event; null if none yet.
export function outcomeOf(evs, lib) {
  for (const e of evs) {
    if (lib === 'jssip') {
      if (e.type === 'confirmed') return { outcome: 'confirmed', e };
      if (e.type === 'failed' || e.type === 'ended') return { outcome: e.type, e };
    } else {
      if (e.type === 'state' && e.state === 'Established') return { outcome: 'confirmed', e };
      if ((e.type === 'state' && e.state === 'Terminated') || e.type === 'inviteError' || e.type === 'acceptError') {
        return { outcome: 'terminated', e };
      }
    }
  }
  return null;
}

// The event in EVS that ended the page's call (JsSIP ended/failed, SIP.js Terminated), if any.
export const endOf = (evs, lib) => evs.find((e) => (lib === 'jssip'
  ? e.type === 'ended' || e.type === 'failed' : e.type === 'state' && e.state === 'Terminated'));

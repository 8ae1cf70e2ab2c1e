// In the middle of a call through rtcsipd and Kamailio, from headless
// Chromium with JsSIP and SIP.js (npm releases), the far end a SIPp UAS
// behind Kamailio (tests/integration/sipp/mid_*.xml), as a PBX behaves:
//   - session timers: the PBX answers 422 (Min-SE 6) to rtcsipd's
//     Session-Expires 4; rtcsipd retries with 6 by itself (the browser never
//     sees the 422), then refreshes the session toward the PBX (UPDATE or
//     re-INVITE, twice within 4 s each);
//   - hold and resume from the browser (JsSIP hold()/unhold(), SIP.js
//     invite({ hold })): re-INVITEs relayed with a=sendonly / a=sendrecv,
//     rtcsipd stops sending media to the browser while held (SIPp still
//     echoes), no new ICE or DTLS;
//   - hold and resume from the PBX (re-INVITE a=sendonly, or c=0.0.0.0):
//     relayed to the browser, which answers recvonly; media stops and resumes;
//   - DTMF: JsSIP INFO / RFC 2833 (RTCDTMFSender) and SIP.js INFO become RFC 4733
//     events toward the PBX (read by the test from its own UDP socket, which
//     SIPp's SDP points at), or INFOs with [media] dtmf_to_pbx = info;
//   - early media: 183 with SDP, 3 s before the 200 (and a 180 after the 183):
//     the browser gets RTP before its call is confirmed;
//   - ICE restart from the browser: answered by rtcsipd itself (new ICE
//     credentials), media goes on, the PBX sees no re-INVITE;
//   - blind transfer: JsSIP refer() / SIP.js refer() -> REFER to SIPp, 202, NOTIFY (sipfrag 200)
//     back to the browser.
//
// Runs in a loopback-only network namespace with Chromium's loopback ICE (see
// calls.test.mjs and lib/browser.mjs).
import { runInLoopbackNetns, startWebServer, launchChromium, withAgentPage } from './lib/browser.mjs';

// Re-runs this file in a fresh network namespace with only lo (the parent
// exits here); must come before node:test is loaded.
await runInLoopbackNetns();

const { default: test } = await import('node:test');
const { default: assert } = await import('node:assert/strict');
const { default: dgram } = await import('node:dgram');
const { default: fs } = await import('node:fs');
const { withEnv, waitFor, sleep, VALGRIND_SLOWDOWN } = await import('../lib/harness.mjs');
const { DOMAIN, sipFrames } = await import('./lib/steps.mjs');
const {
  SIPP_URI, escapeRe, block, trace, sippTrace, sippRequests, sippSummary, callLog, startAll: startAllOn,
  startSippUas: startSippUasOn, sippDone, startAndRegister, callEvents, placeCall, outcomeOf, endOf,
} = await import('./lib/calls.mjs');

const SLOW = VALGRIND_SLOWDOWN;
const RTP_PORTS = [23000, 23999]; // rtcsipd's [media] rtp_port_min/max here (calls.test.mjs: 22000-22999)
const TEST_TIMEOUT = 45000 * SLOW;
const FLOWING = 50; // RTP packets the browser must have received before a mid-call step (1 s of 20 ms packets)
const IN_FLIGHT = 5; // packets that may still arrive after a hold took effect
const SETTLE_MS = 800; // after a re-INVITE's answer: packets in flight arrive, the bridge switches
const WINDOW_MS = 2000; // the window in which inbound RTP is counted (100 packets when flowing)
const LIBS = [
  { lib: 'jssip', name: 'JsSIP' },
  { lib: 'sipjs', name: 'SIP.js' },
];

// ---------------------------------------------------------------------------
// Text helpers (the others: lib/calls.mjs).

// SIPp's trace so far (it writes it as it goes).
function sippTraceNow(run) {
  try { return sippTrace(fs.readFileSync(run.messageFile, 'utf8')); } catch { return []; }
}

// ---------------------------------------------------------------------------
// rtcsipd's log.

// The call's name in rtcsipd's log ("call-N"), from its INVITE line for CALLID; null if none.
function callName(gw, callId) {
  const m = gw.child.output.match(new RegExp(`\\[(call-\\d+)\\] INVITE .*Call-ID ${escapeRe(callId)}(\\s|$)`));
  return m ? m[1] : null;
}

// ---------------------------------------------------------------------------
// Setup.

// Kamailio (sip:sipp@DOMAIN routed to SIPP), rtcsipd (config OVERRIDES on top
// of the RTP port range) in front of it, the web server and Chromium.
const startAll = (env, { sipp, overrides = {} } = {}) => startAllOn(env, { rtp: RTP_PORTS, sipp, overrides });

// SIPp UAS (SCENARIO, VARS) behind Kamailio, echoing RTP on its media port.
const startSippUas = (env, scenario, vars, timeoutSec = 40) =>
  startSippUasOn(env, scenario, { RING_MS: 200, BYE_TIMEOUT_MS: 20000 * SLOW, ...vars }, timeoutSec);

// ---------------------------------------------------------------------------
// The page's call.

const midEvents = (agent, lib) => agent.events(`${lib}-mid`);

// What a failure message needs: the page's call events and SIP trace, rtcsipd's
// lines of the call, SIPp's trace so far.
async function info(ctx) {
  const { agent, lib, gw, uas } = ctx;
  const evs = [...await callEvents(agent, lib).catch(() => []), ...await midEvents(agent, lib).catch(() => [])]
    .map((e) => JSON.stringify(e).slice(0, 400)).join('\n');
  const msgs = sipFrames(await agent.frames().catch(() => []));
  const inv = msgs.find((m) => m.dir === 'out' && m.method === 'INVITE') ||
    msgs.find((m) => m.dir === 'in' && m.method === 'INVITE');
  const name = inv ? callName(gw, inv.get('call-id')) : null;
  return `--- ${lib} events ---\n${block(evs)}\n--- page SIP ---\n${trace(msgs)}\n` +
    `--- rtcsipd ${name || 'calls'} ---\n${block(callLog(gw, name).slice(-8000))}` +
    (uas ? `\n--- SIPp so far ---\n${sippSummary(sippTraceNow(uas))}` : '');
}

// Throws an error whose message is WHAT, then the state of everything (info()).
async function fail(ctx, what) {
  assert.fail(`${what}\n${await info(ctx)}`);
}

// Waits at most MS ms for COND (async, truthy ends); on timeout fails with WHAT and info().
async function expect(ctx, cond, ms, what) {
  try {
    return await waitFor(cond, ms, { interval: 50, what });
  } catch (e) {
    return fail(ctx, e.message);
  }
}

// The first outcome of the page's call: 'confirmed', or 'failed'/'ended'/'terminated' with the event.
async function callOutcome(agent, lib) {
  return outcomeOf(await callEvents(agent, lib), lib);
}

async function callEnded(agent, lib) {
  return endOf(await callEvents(agent, lib), lib) || null;
}

// Places the page's call to SIPp and waits until it is confirmed (fails otherwise).  Returns CTX.
async function callAndConfirm(ctx, opts = {}) {
  const { agent, lib } = ctx;
  await placeCall(agent, lib, SIPP_URI, opts);
  const r = await expect(ctx, () => callOutcome(agent, lib), 20000 * SLOW, `the ${lib} call to be answered`);
  if (r.outcome !== 'confirmed') await fail(ctx, `${ctx.LIB}: the call was not answered: ${JSON.stringify(r.e)}`);
  await agent.call(lib === 'jssip' ? 'jssipWatch' : 'sipjsWatch');
  return ctx;
}

const stats = (ctx) => ctx.agent.call('callStats', { lib: ctx.lib });

// Waits until the browser has received more than N RTP packets more than it
// had when called; returns the stats then.
async function rtpFlowing(ctx, n = FLOWING, what = 'RTP to reach the browser', { ms = 10000 * SLOW } = {}) {
  const base = (await stats(ctx))?.in.packetsReceived || 0;
  return expect(ctx, async () => {
    const s = await stats(ctx);
    return s && s.in.packetsReceived - base > n ? s : null;
  }, ms, `${what} (> ${n} packets)`);
}

// Inbound RTP packets the browser counts in WINDOW_MS: { n, before, after }.
async function inboundIn(ctx, ms = WINDOW_MS) {
  const before = await stats(ctx);
  await sleep(ms);
  const after = await stats(ctx);
  return { n: after.in.packetsReceived - before.in.packetsReceived, before, after };
}

async function hangup(ctx) {
  const { agent, lib } = ctx;
  await agent.call(lib === 'jssip' ? 'jssipHangup' : 'sipjsHangup');
  await expect(ctx, () => callEnded(agent, lib), 5000 * SLOW, `the ${lib} call to end`);
}

async function stopAgent(ctx) {
  await ctx.agent.call(ctx.lib === 'jssip' ? 'jssipStop' : 'sipjsStop').catch(() => {});
}

// The page's SIP messages, parsed.
const pageSip = async (ctx) => sipFrames(await ctx.agent.frames());

const isInvite = (m) => !m.isResponse && m.method === 'INVITE';
const inviteResponse = (m, cseq) => m.isResponse && m.get('cseq') === cseq;
const ufrag = (sdp) => (sdp.match(/^a=ice-ufrag:(\S+)/m) || [])[1];

// The page's re-INVITE (the Nth out-of-the-page INVITE after the first) and rtcsipd's final response to it.
async function pageReinvite(ctx, n, ms) {
  return expect(ctx, async () => {
    const msgs = await pageSip(ctx);
    const invs = msgs.filter((m) => m.dir === 'out' && isInvite(m));
    const inv = invs[n];
    if (!inv) return null;
    const final = msgs.find((m) => m.dir === 'in' && inviteResponse(m, inv.get('cseq')) && m.status >= 200);
    return final ? { inv, final, msgs } : null;
  }, ms, `rtcsipd's final response to the page's re-INVITE #${n}`);
}

// The Nth INVITE from rtcsipd to the page after the first (a call from the
// browser: the first re-INVITE is n = 0) and the page's final response.
async function reinviteToPage(ctx, n, ms) {
  return expect(ctx, async () => {
    const msgs = await pageSip(ctx);
    const inv = msgs.filter((m) => m.dir === 'in' && isInvite(m))[n];
    if (!inv) return null;
    const final = msgs.find((m) => m.dir === 'out' && inviteResponse(m, inv.get('cseq')) && m.status >= 200);
    return final ? { inv, final, msgs } : null;
  }, ms, `a re-INVITE #${n} from rtcsipd answered by the page`);
}

// Runs BODY(ctx) with everything started: SIPp UAS (scenario, vars), Kamailio,
// rtcsipd (overrides), a page registered as alice with LIB.
function midcallTest(title, { lib, LIB, scenario, vars, overrides, timeoutSec = 40 }, body) {
  test(title, { timeout: TEST_TIMEOUT }, (t) => withEnv(`browser-midcall-${lib}`, async (env) => {
    const uas = await startSippUas(env, scenario, typeof vars === 'function' ? await vars(env) : vars, timeoutSec);
    const { gw, web, browser } = await startAll(env, { sipp: uas, overrides });
    const slug = title.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 40);
    await withAgentPage(browser, web, `midcall-${lib}-${slug}`, async (agent) => {
      const ctx = { t, env, lib, LIB, uas, gw, agent };
      await startAndRegister(agent, lib, gw);
      await body(ctx);
      await stopAgent(ctx);
    });
  }));
}

// ---------------------------------------------------------------------------
// 1. Session timers: 422 absorbed, refreshes by rtcsipd.

const SESSION_EXPIRES = 4;
const MIN_SE = 2;
const PBX_MIN_SE = 6;

for (const { lib, name: LIB } of LIBS) {
  midcallTest(`${LIB}: the PBX answers 422 (Min-SE ${PBX_MIN_SE}) to Session-Expires ${SESSION_EXPIRES}: rtcsipd ` +
    `retries with ${PBX_MIN_SE}, the browser never sees the 422, and rtcsipd refreshes the session twice`, {
    lib, LIB, scenario: 'mid_422.xml',
    vars: { MIN_SE: PBX_MIN_SE, REFRESH_TIMEOUT_MS: 4000 * SLOW },
    overrides: { sip: { session_expires: SESSION_EXPIRES, min_se: MIN_SE } },
  }, async (ctx) => {
    const { t, uas, agent } = ctx;
    await callAndConfirm(ctx);
    // Two refreshes at SIPp (they come every ~3 s), the page's call still up; then hang up.
    const refreshes = await expect(ctx, () => {
      const tr = sippTraceNow(uas);
      const reqs = sippRequests(tr).filter((e) => e.msg.method === 'UPDATE' || e.msg.method === 'INVITE').slice(2);
      return reqs.length >= 2 ? reqs : null;
    }, 10000 * SLOW, 'two session refreshes from rtcsipd at SIPp');
    t.diagnostic(`${LIB}: refreshes: ${refreshes.map((e) => e.msg.method).join(', ')}`);
    const ended = await callEnded(agent, lib);
    if (ended) await fail(ctx, `${LIB}: the page's call ended during the refreshes: ${JSON.stringify(ended)}`);
    await hangup(ctx);

    const msgs = await pageSip(ctx);
    const got = msgs.filter((m) => m.dir === 'in' && m.isResponse).map((m) => `${m.status} (${m.get('cseq')})`);
    assert.ok(!got.some((s) => s.startsWith('422')), `${LIB}: the 422 stayed in rtcsipd:\n${trace(msgs)}`);
    const evs = await callEvents(agent, lib);
    assert.ok(!evs.some((e) => e.type === 'failed' || e.type === 'rejected'), `${LIB}: no failure: ${JSON.stringify(evs)}`);

    const s = await sippDone(uas, LIB, 10000 * SLOW);
    const invs = sippRequests(s.trace, 'INVITE');
    const first = invs[0].msg;
    const retry = invs[1].msg;
    assert.match(first.get('session-expires') || '', new RegExp(`^${SESSION_EXPIRES}\\b`),
      `${LIB}: the first INVITE carries rtcsipd's Session-Expires (${SESSION_EXPIRES}):\n${block(first.raw)}`);
    assert.match(first.get('min-se') || '', new RegExp(`^${MIN_SE}\\b`),
      `${LIB}: the first INVITE carries rtcsipd's Min-SE (${MIN_SE}):\n${block(first.raw)}`);
    assert.equal(retry.get('call-id'), first.get('call-id'), `${LIB}: the retry is the same call`);
    assert.ok(parseInt(retry.get('cseq'), 10) > parseInt(first.get('cseq'), 10), `${LIB}: the retry has a new CSeq`);
    assert.match(retry.get('session-expires') || '', new RegExp(`^${PBX_MIN_SE}\\b`),
      `${LIB}: the retry's Session-Expires:\n${block(retry.raw)}`);
    assert.match(retry.get('min-se') || '', new RegExp(`^${PBX_MIN_SE}\\b`),
      `${LIB}: the retry's Min-SE is the 422's (RFC 4028 7.4):\n${block(retry.raw)}`);
    assert.ok(retry.body && /^m=audio /m.test(retry.body), `${LIB}: the retry carries the offer`);
    const methods = sippRequests(s.trace).map((e) => e.msg.method);
    const reinvites = refreshes.filter((e) => e.msg.method === 'INVITE').length;
    assert.equal(methods.filter((m) => m === 'ACK').length, 2 + reinvites,
      `${LIB}: SIPp got the ACKs (422, 200${reinvites ? ', refreshes' : ''}):\n${sippSummary(s.trace)}`);
    assert.equal(methods[methods.length - 1], 'BYE', `${LIB}: the BYE last:\n${sippSummary(s.trace)}`);
  });
}

// ---------------------------------------------------------------------------
// 2. Hold and resume from the browser.

for (const { lib, name: LIB } of LIBS) {
  midcallTest(`${LIB} holds and resumes: re-INVITEs relayed a=sendonly / a=sendrecv, no media to the browser while ` +
    'held, no new ICE or DTLS', {
    lib, LIB, scenario: 'mid_hold_uas.xml', vars: { REINVITE_TIMEOUT_MS: 15000 * SLOW },
  }, async (ctx) => {
    const { t, agent } = ctx;
    await callAndConfirm(ctx);
    const s0 = await rtpFlowing(ctx);
    const answer0 = (await pageSip(ctx)).find((m) => m.dir === 'in' && m.isResponse && m.status === 200 &&
      /INVITE$/.test(m.get('cseq')));

    if (lib === 'jssip') assert.equal(await agent.call('jssipHold', { hold: true }), true, 'JsSIP hold() started');
    else await agent.call('sipjsReinvite', { hold: true });
    const hold = await pageReinvite(ctx, 1, 8000 * SLOW);
    assert.match(hold.inv.body, /^a=sendonly\r?$/m, `${LIB}: the hold offer:\n${block(hold.inv.body)}`);
    if (hold.final.status !== 200) await fail(ctx, `${LIB}: rtcsipd's answer to the hold re-INVITE: ${hold.final.status}`);
    assert.match(hold.final.body, /^a=(recvonly|inactive)\r?$/m, `${LIB}: rtcsipd's answer to hold:\n${block(hold.final.body)}`);
    assert.equal(ufrag(hold.final.body), ufrag(answer0.body), `${LIB}: the same ICE credentials in rtcsipd's answer`);
    await sleep(SETTLE_MS);
    const held = await inboundIn(ctx);
    t.diagnostic(`${LIB}: held: ${held.n} packets in ${WINDOW_MS} ms`);
    assert.ok(held.n <= IN_FLIGHT, `${LIB}: while held, rtcsipd sends the browser no RTP (SIPp still echoes): ` +
      `${held.n} packets in ${WINDOW_MS} ms\n${await info(ctx)}`);

    if (lib === 'jssip') assert.equal(await agent.call('jssipHold', { hold: false }), true, 'JsSIP unhold() started');
    else await agent.call('sipjsReinvite', { hold: false });
    const resume = await pageReinvite(ctx, 2, 8000 * SLOW);
    assert.match(resume.inv.body, /^a=sendrecv\r?$/m, `${LIB}: the resume offer:\n${block(resume.inv.body)}`);
    if (resume.final.status !== 200) await fail(ctx, `${LIB}: rtcsipd's answer to the resume: ${resume.final.status}`);
    assert.match(resume.final.body, /^a=sendrecv\r?$/m, `${LIB}: rtcsipd's answer to resume:\n${block(resume.final.body)}`);
    await sleep(SETTLE_MS);
    const resumed = await inboundIn(ctx);
    t.diagnostic(`${LIB}: resumed: ${resumed.n} packets in ${WINDOW_MS} ms`);
    assert.ok(resumed.n > FLOWING, `${LIB}: media to the browser again after resume: ${resumed.n} packets in ` +
      `${WINDOW_MS} ms\n${await info(ctx)}`);

    const s1 = resumed.after;
    assert.equal(s1.connectionState, 'connected', `${LIB}: ${JSON.stringify(s1)}`);
    assert.equal(s1.dtlsState, 'connected', `${LIB}: DTLS: ${JSON.stringify(s1)}`);
    assert.equal(s1.pairId, s0.pairId, `${LIB}: the same selected candidate pair (no ICE restart)`);
    assert.equal(s1.pairChanges, s0.pairChanges, `${LIB}: no new candidate pair selected`);
    assert.equal(s1.in.ssrc, s0.in.ssrc, `${LIB}: the same inbound SSRC`);
    await hangup(ctx);
    const s = await sippDone(ctx.uas, LIB, 10000 * SLOW);
    assert.deepEqual(sippRequests(s.trace).map((e) => e.msg.method), ['INVITE', 'ACK', 'INVITE', 'ACK', 'INVITE', 'ACK', 'BYE'],
      `${LIB}: what SIPp got:\n${sippSummary(s.trace)}`);
  });
}

// ---------------------------------------------------------------------------
// 3. Hold and resume from the PBX.

const PBX_HOLDS = [
  { lib: 'jssip', LIB: 'JsSIP', style: 'a=sendonly', c: '[media_ip]', attr: 'a=sendonly', answerRe: 'a=recvonly',
    pageRe: /^a=sendonly\r?$/m },
  { lib: 'sipjs', LIB: 'SIP.js', style: 'a=sendonly', c: '[media_ip]', attr: 'a=sendonly', answerRe: 'a=recvonly',
    pageRe: /^a=sendonly\r?$/m },
  // RFC 2543 hold: c=0.0.0.0 and no direction (a=ptime fills the attribute's line)
  { lib: 'jssip', LIB: 'JsSIP', style: 'c=IN IP4 0.0.0.0', c: '0.0.0.0', attr: 'a=ptime:20',
    answerRe: 'a=(recvonly|inactive)', pageRe: /^a=(sendonly|inactive)\r?$/m },
];

for (const h of PBX_HOLDS) {
  const { lib, LIB } = h;
  midcallTest(`The PBX holds (${h.style}) and resumes ${LIB}'s call: re-INVITEs relayed to the browser, answered ` +
    `${h.answerRe} / a=sendrecv, media stops and resumes`, {
    lib, LIB, scenario: 'mid_hold_pbx_uas.xml',
    vars: { HOLD_AFTER_MS: 3000, HELD_MS: 4000, HOLD_C: h.c, HOLD_ATTR: h.attr, HOLD_ANSWER_RE: h.answerRe,
      ANSWER_TIMEOUT_MS: 5000 * SLOW },
  }, async (ctx) => {
    const { t } = ctx;
    await callAndConfirm(ctx);
    const s0 = await rtpFlowing(ctx);
    const hold = await reinviteToPage(ctx, 0, 8000 * SLOW);
    assert.match(hold.inv.body, h.pageRe, `${LIB}: rtcsipd's hold offer to the page:\n${block(hold.inv.body)}`);
    assert.equal(hold.final.status, 200, `${LIB}: the page accepted the hold`);
    assert.match(hold.final.body, /^a=(recvonly|inactive)\r?$/m, `${LIB}: the page's answer:\n${block(hold.final.body)}`);
    await sleep(SETTLE_MS);
    const held = await inboundIn(ctx, 1800);
    t.diagnostic(`${LIB}: held: ${held.n} packets in 1800 ms`);
    assert.ok(held.n <= IN_FLIGHT, `${LIB}: no media while the PBX holds the call: ${held.n} packets\n${await info(ctx)}`);

    const resume = await reinviteToPage(ctx, 1, 8000 * SLOW);
    assert.match(resume.inv.body, /^a=sendrecv\r?$/m, `${LIB}: rtcsipd's resume offer:\n${block(resume.inv.body)}`);
    assert.equal(resume.final.status, 200, `${LIB}: the page accepted the resume`);
    await sleep(SETTLE_MS);
    const resumed = await inboundIn(ctx);
    t.diagnostic(`${LIB}: resumed: ${resumed.n} packets in ${WINDOW_MS} ms`);
    assert.ok(resumed.n > FLOWING, `${LIB}: media again after the resume: ${resumed.n} packets\n${await info(ctx)}`);
    assert.equal(resumed.after.pairId, s0.pairId, `${LIB}: the same selected candidate pair`);
    assert.equal(resumed.after.dtlsState, 'connected', `${LIB}: DTLS`);
    await hangup(ctx);
    const s = await sippDone(ctx.uas, LIB, 10000 * SLOW);
    const oks = s.trace.filter((e) => e.dir === 'received' && e.msg.isResponse && e.msg.status === 200 &&
      /INVITE$/.test(e.msg.get('cseq')));
    assert.equal(oks.length >= 2, true, `${LIB}: two 200s at SIPp:\n${sippSummary(s.trace)}`);
  });
}

// ---------------------------------------------------------------------------
// 4. DTMF.

// A UDP socket on 127.0.0.1 that collects RTP: { port, packets: [{ pt, ts, seq, payload }], close() }.
async function rtpSink(env) {
  const sock = dgram.createSocket('udp4');
  const packets = [];
  sock.on('message', (buf) => {
    if (buf.length < 12 || (buf[0] >> 6) !== 2) return;
    const pt = buf[1] & 0x7f;
    if (pt >= 72 && pt <= 76) return; // RTCP
    const cc = buf[0] & 0x0f;
    packets.push({ pt, seq: buf.readUInt16BE(2), ts: buf.readUInt32BE(4), payload: buf.subarray(12 + 4 * cc) });
  });
  await new Promise((res, rej) => { sock.once('error', rej); sock.bind(0, '127.0.0.1', res); });
  env.defer(() => new Promise((res) => sock.close(res)));
  return { port: sock.address().port, packets };
}

// The RFC 4733 events among PACKETS (payload type PT): [{ code, ended, packets }] in order, one per RTP timestamp.
function dtmfEvents(packets, pt = 101) {
  const byTs = new Map();
  for (const p of packets) {
    if (p.pt !== pt || p.payload.length < 4) continue;
    const e = byTs.get(p.ts) || { code: p.payload[0], ended: false, packets: 0 };
    e.packets++;
    if (p.payload[1] & 0x80) e.ended = true;
    byTs.set(p.ts, e);
  }
  return [...byTs.values()];
}

const TONES = '1234#';
const TONES_TITLE = '1234 and hash'; // no '#' in a test's name: TAP cuts it there
const CODES = [1, 2, 3, 4, 11];

async function sendDtmf(ctx, mode) {
  if (ctx.lib === 'sipjs') return ctx.agent.call('sipjsDtmf', { tones: TONES });
  const r = await ctx.agent.call('jssipDtmf', { tones: TONES, transportType: mode });
  if (!r.ok) await fail(ctx, `JsSIP sendDTMF: ${r.error}`);
  if (mode === 'RFC2833' && !r.canInsertDTMF) {
    await fail(ctx, 'JsSIP RFC2833: the RTCDTMFSender cannot send (no telephone-event in rtcsipd\'s answer?)');
  }
  return r;
}

const DTMF_CASES = [
  { lib: 'jssip', LIB: 'JsSIP', mode: 'INFO', toPbx: 'rfc4733' },
  { lib: 'sipjs', LIB: 'SIP.js', mode: 'INFO', toPbx: 'rfc4733' },
  { lib: 'jssip', LIB: 'JsSIP', mode: 'RFC2833', toPbx: 'rfc4733' },
  { lib: 'jssip', LIB: 'JsSIP', mode: 'INFO', toPbx: 'info' },
  { lib: 'sipjs', LIB: 'SIP.js', mode: 'INFO', toPbx: 'info' },
  { lib: 'jssip', LIB: 'JsSIP', mode: 'RFC2833', toPbx: 'info' },
];

for (const d of DTMF_CASES) {
  const { lib, LIB } = d;
  let sink = null;
  midcallTest(`${LIB} sends DTMF ${TONES_TITLE} by ${d.mode}, [media] dtmf_to_pbx = ${d.toPbx}: the PBX gets ` +
    (d.toPbx === 'info' ? 'five INFOs (application/dtmf-relay)' : 'RFC 4733 events (payload type 101) 1 2 3 4 11, each ended'), {
    lib, LIB, scenario: 'mid_dtmf_uas.xml',
    vars: async (env) => {
      sink = await rtpSink(env);
      return { RTP_PORT: sink.port };
    },
    overrides: d.toPbx === 'info' ? { media: { dtmf_to_pbx: 'info' } } : {},
  }, async (ctx) => {
    const { t, uas } = ctx;
    await callAndConfirm(ctx);
    // rtcsipd sends the browser's audio to the test's socket.
    await expect(ctx, () => sink.packets.filter((p) => p.pt === 0).length > 25, 8000 * SLOW,
      'PCMU from rtcsipd at the test\'s RTP socket');
    const pageDtmf = await sendDtmf(ctx, d.mode);
    t.diagnostic(`${LIB}: ${JSON.stringify(pageDtmf)}`);
    if (d.toPbx === 'rfc4733') {
      const evs = await expect(ctx, () => {
        const e = dtmfEvents(sink.packets);
        return e.length >= CODES.length && e.slice(0, CODES.length).every((x) => x.ended) ? e : null;
      }, 8000 * SLOW, `five ended RFC 4733 events at the test's socket (payload types seen: ` +
        `${[...new Set(sink.packets.map((p) => p.pt))]})`).catch(async (e) => {
        const got = dtmfEvents(sink.packets);
        throw new Error(`${e.message}\nevents: ${JSON.stringify(got)}; payload types: ` +
          `${JSON.stringify([...new Set(sink.packets.map((p) => p.pt))])}`);
      });
      t.diagnostic(`${LIB}: events ${JSON.stringify(evs)}`);
      assert.deepEqual(evs.map((e) => e.code), CODES, `${LIB}: the events, in order`);
      await sleep(300);
      await hangup(ctx);
      const s = await sippDone(uas, LIB, 10000 * SLOW);
      assert.equal(sippRequests(s.trace, 'INFO').length, 0, `${LIB}: no INFO reached the PBX (dtmf_to_pbx = rfc4733):\n` +
        `${sippSummary(s.trace)}`);
    } else {
      await expect(ctx, () => {
        const r = sippRequests(sippTraceNow(uas), 'INFO');
        return r.length >= TONES.length ? r : null;
      }, 8000 * SLOW, `${TONES.length} INFOs at SIPp (RFC 4733 events at the test's RTP socket meanwhile: ` +
        `${JSON.stringify(dtmfEvents(sink.packets).map((e) => e.code))})`);
      await sleep(500);
      await hangup(ctx);
      const s = await sippDone(uas, LIB, 10000 * SLOW);
      const all = sippRequests(s.trace, 'INFO');
      assert.equal(all.length, TONES.length, `${LIB}: one INFO per tone:\n${sippSummary(s.trace)}`);
      const signals = all.map((e) => {
        assert.match(e.msg.get('content-type') || '', /^application\/dtmf-relay/i, `${LIB}: INFO Content-Type`);
        const m = (e.msg.body || '').match(/Signal\s*=\s*(\S)/);
        return m && m[1];
      });
      assert.deepEqual(signals, TONES.split(''), `${LIB}: the INFOs' Signal=, in order:\n${all.map((e) => e.msg.body).join('\n')}`);
      t.diagnostic(`${LIB}: INFO bodies: ${JSON.stringify(all.map((e) => e.msg.body))}`);
      assert.equal(dtmfEvents(sink.packets).length, 0, `${LIB}: no RFC 4733 events toward the PBX as well ` +
        `(dtmf_to_pbx = info): ${JSON.stringify(dtmfEvents(sink.packets))}`);
    }
  });
}

// ---------------------------------------------------------------------------
// 5. Early media.

const EARLY_MS = 3000;
const EARLY_CASES = [
  { lib: 'jssip', LIB: 'JsSIP', scenario: 'mid_early_uas.xml', what: '183 with SDP' },
  { lib: 'sipjs', LIB: 'SIP.js', scenario: 'mid_early_uas.xml', what: '183 with SDP' },
  { lib: 'jssip', LIB: 'JsSIP', scenario: 'mid_early180_uas.xml', what: '183 with SDP, then 180' },
  { lib: 'sipjs', LIB: 'SIP.js', scenario: 'mid_early180_uas.xml', what: '183 with SDP, then 180' },
];

for (const c of EARLY_CASES) {
  const { lib, LIB } = c;
  midcallTest(`Early media to ${LIB} (${c.what}, ${EARLY_MS} ms before the 200): RTP reaches the browser before ` +
    'the call is confirmed', {
    lib, LIB, scenario: c.scenario, vars: { EARLY_MS, EARLY_AFTER_RINGING_MS: EARLY_MS - 1000 },
  }, async (ctx) => {
    const { t, agent } = ctx;
    if (lib === 'jssip') await agent.call('jssipCall', { target: SIPP_URI });
    else await agent.call('sipjsCall', { target: SIPP_URI, earlyMedia: true });
    let early = 0;
    let last = null;
    const r = await expect(ctx, async () => {
      const o = await callOutcome(agent, lib);
      if (o) return o;
      last = await stats(ctx).catch(() => null);
      if (last) early = Math.max(early, last.in.packetsReceived || 0);
      return null;
    }, 20000 * SLOW, `the ${lib} call to be answered`);
    if (r.outcome !== 'confirmed') await fail(ctx, `${LIB}: the call was not answered: ${JSON.stringify(r.e)}`);
    const msgs = await pageSip(ctx);
    const prov = msgs.filter((m) => m.dir === 'in' && m.isResponse && m.status > 100 && m.status < 200);
    t.diagnostic(`${LIB}: ${early} packets before confirmed; provisional: ${prov.map((m) => m.status)}; last ${JSON.stringify(last)}`);
    const p183 = prov.find((m) => m.status === 183);
    assert.ok(p183, `${LIB}: SIPp's 183 relayed:\n${trace(msgs)}`);
    assert.match(p183.body || '', /^a=ice-ufrag:/m, `${LIB}: the 183 carries rtcsipd's WebRTC SDP:\n${block(p183.raw)}`);
    if (c.scenario === 'mid_early180_uas.xml') assert.ok(prov.some((m) => m.status === 180), `${LIB}: the 180 relayed`);
    assert.ok(early > FLOWING, `${LIB}: RTP packets received before the call was confirmed: ${early} (> ${FLOWING})\n` +
      `${await info(ctx)}`);
    const after = await inboundIn(ctx, 1500);
    assert.ok(after.n > 30, `${LIB}: media goes on after the 200: ${after.n} packets in 1500 ms\n${await info(ctx)}`);
    await hangup(ctx);
    await sippDone(ctx.uas, LIB, 10000 * SLOW);
  });
}

// ---------------------------------------------------------------------------
// 6. ICE restart from the browser: rtcsipd answers it, the PBX sees nothing.

for (const { lib, name: LIB } of LIBS) {
  midcallTest(`${LIB} restarts ICE (re-INVITE with new ICE credentials): rtcsipd answers with new ones itself, ` +
    'media goes on, SIPp gets no re-INVITE', {
    lib, LIB, scenario: 'call_uas_answer.xml', vars: { HOLD_MS: 0 },
  }, async (ctx) => {
    const { t, agent } = ctx;
    await callAndConfirm(ctx);
    const s0 = await rtpFlowing(ctx);
    const first = (await pageSip(ctx)).filter((m) => isInvite(m) && m.dir === 'out')[0];
    const answer0 = (await pageSip(ctx)).find((m) => m.dir === 'in' && inviteResponse(m, first.get('cseq')) &&
      m.status === 200);
    if (lib === 'jssip') {
      assert.equal(await agent.call('jssipRenegotiate', { iceRestart: true }), true, 'JsSIP renegotiate() started');
    } else {
      await agent.call('sipjsReinvite', { iceRestart: true });
    }
    const re = await pageReinvite(ctx, 1, 8000 * SLOW);
    assert.notEqual(ufrag(re.inv.body), ufrag(first.body), `${LIB}: the re-INVITE has new ICE credentials`);
    if (re.final.status !== 200) await fail(ctx, `${LIB}: rtcsipd's answer to the ICE restart: ${re.final.status}`);
    assert.ok(ufrag(re.final.body), `${LIB}: ICE credentials in rtcsipd's answer:\n${block(re.final.body)}`);
    assert.notEqual(ufrag(re.final.body), ufrag(answer0.body), `${LIB}: rtcsipd's answer has new ICE credentials`);
    await expect(ctx, async () => {
      const evs = await midEvents(agent, lib);
      return evs.find((e) => e.type === (lib === 'jssip' ? 'renegotiateDone' : 'reinviteAccepted'));
    }, 5000 * SLOW, `${LIB} to accept the answer`);
    await sleep(SETTLE_MS);
    const after = await inboundIn(ctx);
    t.diagnostic(`${LIB}: after the ICE restart: ${after.n} packets in ${WINDOW_MS} ms, pair ${s0.pairId} -> ` +
      `${after.after.pairId}, remote ufrag ${s0.remoteUfrag} -> ${after.after.remoteUfrag}`);
    assert.equal(after.after.remoteUfrag, ufrag(re.final.body), `${LIB}: the browser uses rtcsipd's new credentials`);
    assert.equal(after.after.connectionState, 'connected', `${LIB}: ${JSON.stringify(after.after)}`);
    assert.ok(after.n > FLOWING, `${LIB}: media after the ICE restart: ${after.n} packets in ${WINDOW_MS} ms\n` +
      `${await info(ctx)}`);
    await hangup(ctx);
    const s = await sippDone(ctx.uas, LIB, 10000 * SLOW);
    assert.deepEqual(sippRequests(s.trace).map((e) => e.msg.method), ['INVITE', 'ACK', 'BYE'],
      `${LIB}: SIPp saw nothing of the ICE restart:\n${sippSummary(s.trace)}`);
  });
}

// ---------------------------------------------------------------------------
// 7. Blind transfer (JsSIP refer, SIP.js refer).

const REFER_TO = `sip:bob@${DOMAIN}`;

midcallTest(`JsSIP transfers the call (REFER to ${REFER_TO}): SIPp answers 202 and NOTIFYs 200, JsSIP's refer is accepted`, {
  lib: 'jssip', LIB: 'JsSIP', scenario: 'mid_refer_uas.xml',
  vars: { REFER_TO: 'sip:bob@', REFER_TIMEOUT_MS: 15000 * SLOW, ANSWER_TIMEOUT_MS: 5000 * SLOW },
}, async (ctx) => {
  const { t, agent } = ctx;
  await callAndConfirm(ctx);
  await agent.call('jssipRefer', { target: REFER_TO });
  const acc = await expect(ctx, async () => (await midEvents(agent, 'jssip')).find((e) => e.type === 'refer-accepted' ||
    e.type === 'refer-failed' || e.type === 'refer-requestFailed'), 8000 * SLOW, 'JsSIP\'s refer to be accepted or fail');
  t.diagnostic(`JsSIP: ${JSON.stringify(await midEvents(agent, 'jssip'))}`);
  if (acc.type !== 'refer-accepted') await fail(ctx, `JsSIP's refer: ${JSON.stringify(acc)}`);
  const msgs = await pageSip(ctx);
  const notify = msgs.find((m) => m.dir === 'in' && m.method === 'NOTIFY');
  assert.ok(notify, `the NOTIFY reached the page:\n${trace(msgs)}`);
  assert.match(notify.body || '', /^SIP\/2\.0 200/, 'the sipfrag');
  await hangup(ctx);
  const s = await sippDone(ctx.uas, 'JsSIP', 10000 * SLOW);
  const refer = sippRequests(s.trace, 'REFER')[0];
  assert.match(refer.msg.get('refer-to'), new RegExp(escapeRe(REFER_TO)), 'Refer-To at SIPp');
});

midcallTest(`SIP.js transfers the call (REFER to ${REFER_TO}): SIPp answers 202 and NOTIFYs 200, SIP.js's refer is accepted`, {
  lib: 'sipjs', LIB: 'SIP.js', scenario: 'mid_refer_uas.xml',
  vars: { REFER_TO: 'sip:bob@', REFER_TIMEOUT_MS: 15000 * SLOW, ANSWER_TIMEOUT_MS: 5000 * SLOW },
}, async (ctx) => {
  const { t, agent } = ctx;
  await callAndConfirm(ctx);
  assert.equal(await agent.call('sipjsRefer', { target: REFER_TO }), true, 'SIP.js refer() sent the REFER');
  const acc = await expect(ctx, async () => (await midEvents(agent, 'sipjs')).find((e) => e.type === 'refer-accepted' ||
    e.type === 'refer-rejected' || e.type === 'refer-error'), 8000 * SLOW, 'SIP.js\'s refer to be accepted or fail');
  if (acc.type !== 'refer-accepted') await fail(ctx, `SIP.js's refer: ${JSON.stringify(acc)}`);
  assert.equal(acc.status, 202, `SIP.js's refer answered 202: ${JSON.stringify(acc)}`);
  const n = await expect(ctx, async () => (await midEvents(agent, 'sipjs')).find((e) => e.type === 'refer-notify'),
    8000 * SLOW, 'the NOTIFY of the refer to reach SIP.js\'s onNotify');
  t.diagnostic(`SIP.js: ${JSON.stringify(await midEvents(agent, 'sipjs'))}`);
  assert.match(n.body, /^SIP\/2\.0 200/, 'the sipfrag (onNotify)');
  assert.match(n.subscriptionState || '', /^terminated/, 'Subscription-State (onNotify)');
  const msgs = await pageSip(ctx);
  const notify = msgs.find((m) => m.dir === 'in' && m.method === 'NOTIFY');
  assert.ok(notify, `the NOTIFY reached the page:\n${trace(msgs)}`);
  assert.match(notify.body || '', /^SIP\/2\.0 200/, 'the sipfrag');
  await expect(ctx, async () => (await pageSip(ctx)).find((m) => m.dir === 'out' && m.isResponse &&
    m.get('cseq') === notify.get('cseq') && m.status === 200), 5000 * SLOW, 'SIP.js to answer the NOTIFY 200');
  await hangup(ctx);
  const s = await sippDone(ctx.uas, 'SIP.js', 10000 * SLOW);
  const refer = sippRequests(s.trace, 'REFER')[0];
  assert.match(refer.msg.get('refer-to'), new RegExp(escapeRe(REFER_TO)), 'Refer-To at SIPp');
});

#!/usr/bin/env node
// Checks the reference gateway (reference.mjs: Kamailio websocket + rtpengine)
// with a real WebRTC peer, before the benchmark trusts its figures:
//   1. headless Chromium + JsSIP registers alice through the reference to the
//      Kamailio registrar, calls sip:sipp@example.com (SIPp -rtp_echo): the
//      call is answered, DTLS connects, the echoed audio comes back
//      (inbound-rtp packetsReceived), rtpengine holds the call; JsSIP hangs
//      up, and rtpengine no longer holds it;
//   2. SIPp calls alice through the registrar and the reference: the page
//      gets a WebRTC offer from rtpengine, answers, audio both ways, SIPp
//      hangs up, rtpengine lets the call go.
// Prints, for each call, the page's timeline (answer -> ICE -> DTLS connected).
//
//   node tests/bench/reference/check.mjs      (root: it runs in a loopback-only network namespace)
//   REFERENCE_VERBOSE=1: Kamailio and rtpengine log everything (SDP included);
//   REFERENCE_KEEP_LOGS=DIR: the logs and configs are copied to DIR at the end, even on success.
//
// Not a meson test: needs packaging/install-deps.sh --bench.  Exit 0 when all is well.
import { runInLoopbackNetns, startWebServer, launchChromium, withAgentPage } from '../../browser/lib/browser.mjs';

// Chromium's ICE on 127.0.0.1 only: the whole check runs in a fresh network
// namespace whose only interface is lo (the parent exits here).
await runInLoopbackNetns();

const { default: assert } = await import('node:assert/strict');
const { default: fs } = await import('node:fs');
const { default: path } = await import('node:path');
const { withEnv, waitFor, LOOPBACK } = await import('../../lib/harness.mjs');
const { DOMAIN, sipFrames } = await import('../../browser/lib/steps.mjs');
const {
  ALICE, SIPP_URI, block, trace, sippMediaPort, startSippUas, sippDone, sippRequests, sippSummary, sippTrace,
  startAndRegister, callEvents, placeCall, outcomeOf, endOf,
} = await import('../../browser/lib/calls.mjs');
const { startReference } = await import('./reference.mjs');

const RTP_PORTS = [23000, 23999]; // rtpengine's range here (the browser tests use 21000-22999)
const MIN_PACKETS = 100; // 2 s of 20 ms packets
const INCOMING_HOLD_MS = 8000;
const TOTAL_MS = 150000;

const overall = setTimeout(() => {
  process.stderr.write(`check.mjs: not done after ${TOTAL_MS} ms, giving up\n`);
  process.exit(2); // the harness kills every child on exit
}, TOTAL_MS);
overall.unref();

const log = (s) => process.stdout.write(`${s}\n`);

// Records in the page (src 'pc') what every RTCPeerConnection goes through:
// setLocalDescription/setRemoteDescription, ICE, DTLS transport and
// connection states, each with the page's Date.now() (the test's clock too).
function instrumentPeerConnections() {
  const T = window.T;
  if (window.__pcInstrumented) return;
  window.__pcInstrumented = true;
  const Native = window.RTCPeerConnection;
  class Watched extends Native {
    constructor(...args) {
      super(...args);
      const rec = (type, d) => T.record('pc', type, d);
      rec('created');
      const watchDtls = () => {
        for (const x of [...this.getSenders(), ...this.getReceivers()]) {
          const tr = x.transport;
          if (!tr || tr.__watched) continue;
          tr.__watched = true;
          rec('dtls', { state: tr.state });
          tr.addEventListener('statechange', () => rec('dtls', { state: tr.state }));
        }
      };
      this.addEventListener('iceconnectionstatechange', () => rec('ice', { state: this.iceConnectionState }));
      this.addEventListener('connectionstatechange', () => rec('connection', { state: this.connectionState }));
      this.addEventListener('signalingstatechange', () => { rec('signaling', { state: this.signalingState }); watchDtls(); });
      for (const m of ['setLocalDescription', 'setRemoteDescription']) {
        const orig = this[m].bind(this);
        this[m] = async (desc, ...rest) => {
          rec(m, { sdpType: desc && desc.type });
          const r = await orig(desc, ...rest);
          rec(`${m}Done`, { sdpType: desc && desc.type });
          watchDtls();
          return r;
        };
      }
    }
  }
  window.RTCPeerConnection = Watched;
}

const first = (evs, type, pred = () => true) => evs.find((e) => e.type === type && pred(e));

// The page's timeline of its call: every pc event and the INVITE/200 frames, relative to T0.
function timeline(pcEvents, msgs, t0) {
  const rows = pcEvents.map((e) => ({ t: e.t, what: `pc ${e.type}${e.state ? ` ${e.state}` : ''}${e.sdpType ? ` (${e.sdpType})` : ''}` }));
  for (const m of msgs) {
    if (m.method === 'INVITE' || (m.isResponse && /INVITE$/.test(m.get('cseq')))) {
      rows.push({ t: m.t, what: `${m.dir === 'out' ? 'sent' : 'received'} ${m.isResponse ? `${m.status} (INVITE)` : 'INVITE'}` });
    }
  }
  return rows.sort((a, b) => a.t - b.t).map((r) => `  ${String(r.t - t0).padStart(6)} ms  ${r.what}`).join('\n');
}

// sipFrames() without the frame times: put them back (same order).
function sipFramesWithTime(frames) {
  const out = [];
  for (const f of frames) {
    const [m] = sipFrames([f]);
    if (m) { m.t = f.t; out.push(m); }
  }
  return out;
}

async function rtpengineHolds(ref, callId) {
  return (await ref.calls()).includes(callId);
}

async function pageMedia(agent) {
  const r = await agent.call('callMedia', { lib: 'jssip', minPackets: MIN_PACKETS, timeoutMs: 10000 }, 20000);
  return r;
}

function checkMedia(r, what) {
  const info = JSON.stringify({ conn: r.connectionState, dtls: r.dtlsState, srtp: r.srtpCipher, pair: r.pair,
    out: r.out, in: r.in, analyser: r.analyser, ms: r.elapsedMs });
  log(`${what}: media ${info}`);
  assert.equal(r.connectionState, 'connected', `${what}: peer connection: ${info}`);
  assert.equal(r.dtlsState, 'connected', `${what}: DTLS: ${info}`);
  assert.ok(r.pair && /^127\.0\.0\.1:/.test(r.pair.local), `${what}: local candidate on 127.0.0.1: ${info}`);
  const pm = r.pair.remote.match(/^127\.0\.0\.1:(\d+) /);
  assert.ok(pm && Number(pm[1]) >= RTP_PORTS[0] && Number(pm[1]) <= RTP_PORTS[1],
    `${what}: rtpengine's candidate in ${RTP_PORTS.join('-')}: ${info}`);
  assert.ok(r.out.packetsSent > MIN_PACKETS, `${what}: RTP sent: ${info}`);
  assert.ok(r.in.packetsReceived > MIN_PACKETS, `${what}: RTP received back (SIPp's echo through rtpengine): ${info}`);
}

await withEnv('bench-reference-check', async (env) => {
  if (process.env.REFERENCE_KEEP_LOGS) {
    const dest = path.resolve(process.env.REFERENCE_KEEP_LOGS);
    env.defer(() => {
      fs.cpSync(env.dir, dest, { recursive: true });
      log(`logs copied to ${dest}`);
    });
  }
  // ---- the far end, the registrar, the reference, the browser
  const uas = await startSippUas(env, 'call_uas_answer.xml', { RING_MS: 200, HOLD_MS: 0, BYE_TIMEOUT_MS: 40000 });
  const ringing = await startSippUas(env, 'call_uas_cancel.xml', { CANCEL_TIMEOUT_MS: 60000 }, 90);
  const BOB = { username: 'bob', password: `pw-${Math.random().toString(36).slice(2, 10)}` };
  const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE, BOB],
    sippRoutes: [{ user: 'sipp', port: uas.port }, { user: 'sippcancel', port: ringing.port }] });
  const ref = await startReference(env, { pbxHost: LOOPBACK, pbxPort: kam.port, domain: DOMAIN,
    rtpPortMin: RTP_PORTS[0], rtpPortMax: RTP_PORTS[1], children: 2 });
  const pids = ref.pids();
  log(`reference: ${ref.wsUrl}; kamailio pids ${pids.kamailio.join(' ')}; rtpengine pid ${pids.rtpengine.join(' ')}`);
  const rtpVersion = (await ref.ng({ command: 'ping' })).result;
  assert.equal(rtpVersion, 'pong', 'rtpengine answers ng ping');
  const web = await startWebServer();
  env.defer(() => web.close());
  const browser = await launchChromium({ loopbackIce: true });
  env.defer(() => browser.close());
  const gw = { wssUrl: ref.wsUrl }; // what startAndRegister reads

  // ---- 1. browser -> SIPp
  await withAgentPage(browser, web, 'reference-out', async (agent) => {
    await agent.page.evaluate(instrumentPeerConnections);
    await startAndRegister(agent, 'jssip', gw);
    log('1. JsSIP registered alice through the reference');
    await placeCall(agent, 'jssip', SIPP_URI);
    const out = await waitFor(async () => outcomeOf(await callEvents(agent, 'jssip'), 'jssip'), 20000,
      { interval: 50, what: 'the call to be answered or to fail' });
    const msgs = sipFramesWithTime(await agent.frames());
    assert.equal(out.outcome, 'confirmed', `the call to SIPp: ${JSON.stringify(out.e)}\n${trace(msgs)}`);
    const invite = msgs.find((m) => m.dir === 'out' && m.method === 'INVITE');
    const ok = msgs.find((m) => m.dir === 'in' && m.isResponse && m.status === 200 && /INVITE$/.test(m.get('cseq')));
    assert.match(ok.body, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m, `rtpengine's answer to the browser:\n${block(ok.body)}`);
    assert.match(ok.body, /^a=rtcp-mux\r?$/m, `rtcp-mux in the answer:\n${block(ok.body)}`);
    assert.match(ok.body, /^a=fingerprint:/m, `DTLS in the answer:\n${block(ok.body)}`);
    const callId = invite.get('call-id');
    assert.ok(await rtpengineHolds(ref, callId), 'rtpengine holds the call');

    const media = await pageMedia(agent);
    checkMedia(media, '1. browser -> SIPp');

    const pcEv = await agent.events('pc');
    const t0 = invite.t;
    log(`1. timeline (from the INVITE sent):\n${timeline(pcEv, msgs, t0)}`);
    const dtlsUp = first(pcEv, 'dtls', (e) => e.state === 'connected');
    log(`1. 200 OK received -> DTLS connected: ${dtlsUp ? dtlsUp.t - ok.t : '?'} ms`);

    await agent.call('jssipHangup');
    await waitFor(async () => endOf(await callEvents(agent, 'jssip'), 'jssip'), 5000, { what: 'the call to end' });
    await waitFor(async () => !(await rtpengineHolds(ref, callId)), 5000,
      { interval: 100, what: 'rtpengine to delete the call after the BYE' });
    log('1. hung up: rtpengine no longer holds the call (ng list)');
    const s = await sippDone(uas, 'browser -> SIPp', 10000);
    const inv = sippRequests(s.trace, 'INVITE')[0].msg;
    assert.match(inv.body, /^m=audio \d+ RTP\/AVP /m, `the offer SIPp got is plain RTP/AVP:\n${block(inv.body)}`);
    for (const re of [/^a=ice-/m, /^a=candidate/m, /^a=fingerprint/m, /^a=rtcp-mux/m, /^a=crypto/m]) {
      assert.doesNotMatch(inv.body, re, `no ${re.source.slice(1)} toward SIPp:\n${block(inv.body)}`);
    }
    assert.deepEqual(sippRequests(s.trace).map((e) => e.msg.method), ['INVITE', 'ACK', 'BYE'], sippSummary(s.trace));
    log('1. SIPp got INVITE (plain RTP/AVP), ACK, BYE');
    await agent.call('jssipStop');
  });

  // ---- 2. SIPp -> browser
  await withAgentPage(browser, web, 'reference-in', async (agent) => {
    await agent.page.evaluate(instrumentPeerConnections);
    await startAndRegister(agent, 'jssip', gw);
    await agent.call('jssipAcceptCalls', {});
    log('2. JsSIP registered alice through the reference, answering calls');
    const mp = await sippMediaPort();
    const uac = await env.startSipp({
      scenario: 'call_uac.xml', remote: `${LOOPBACK}:${kam.port}`,
      args: ['-s', 'alice', '-rtp_echo', '-mp', String(mp)],
      vars: { DOMAIN, ANSWER_TIMEOUT_MS: 15000, HOLD_MS: INCOMING_HOLD_MS, BYE_TIMEOUT_MS: 5000 },
      timeoutSec: 40,
    });
    const inc = await waitFor(async () => (await callEvents(agent, 'jssip')).find((e) => e.type === 'incoming'),
      15000, { interval: 50, what: 'the INVITE to reach the page' }).catch(async (e) => {
      const r = await uac.result(2000).catch(() => null);
      throw new Error(`${e.message}\n--- SIPp ---\n${r ? `${block(r.errors)}\n${sippSummary(sippTrace(r.messages))}` : ''}`);
    });
    assert.match(inc.sdp, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m, `rtpengine's offer to the page:\n${block(inc.sdp)}`);
    assert.match(inc.sdp, /^a=setup:actpass\r?$/m, `a=setup:actpass:\n${block(inc.sdp)}`);
    assert.match(inc.sdp, /^a=rtcp-mux\r?$/m, `a=rtcp-mux:\n${block(inc.sdp)}`);
    assert.match(inc.sdp, /^a=candidate:/m, `ICE candidates:\n${block(inc.sdp)}`);
    const out = await waitFor(async () => outcomeOf(await callEvents(agent, 'jssip'), 'jssip'), 15000,
      { interval: 50, what: 'the incoming call to be confirmed' });
    assert.equal(out.outcome, 'confirmed', `the call from SIPp: ${JSON.stringify(out.e)}`);
    assert.ok(await rtpengineHolds(ref, inc.callId), 'rtpengine holds the call');

    const media = await pageMedia(agent);
    checkMedia(media, '2. SIPp -> browser');

    const msgs = sipFramesWithTime(await agent.frames());
    const invite = msgs.find((m) => m.dir === 'in' && m.method === 'INVITE');
    const ok = msgs.find((m) => m.dir === 'out' && m.isResponse && m.status === 200 && /INVITE$/.test(m.get('cseq')));
    const pcEv = await agent.events('pc');
    log(`2. timeline (from the INVITE received):\n${timeline(pcEv, msgs, invite.t)}`);
    const answered = first(pcEv, 'setLocalDescriptionDone', (e) => e.sdpType === 'answer');
    const iceUp = first(pcEv, 'ice', (e) => e.state === 'connected');
    const dtlsUp = first(pcEv, 'dtls', (e) => e.state === 'connected');
    const connUp = first(pcEv, 'connection', (e) => e.state === 'connected');
    const d = (a, b) => (a && b ? `${b.t - a.t} ms` : '?');
    log(`2. incoming call: answer (setLocalDescription done) -> ICE connected ${d(answered, iceUp)}, ` +
      `-> DTLS connected ${d(answered, dtlsUp)}; 200 OK sent -> DTLS connected ${d(ok, dtlsUp)}; ` +
      `INVITE received -> connected ${d(invite, connUp)}`);

    await waitFor(async () => endOf(await callEvents(agent, 'jssip'), 'jssip'), INCOMING_HOLD_MS + 8000,
      { interval: 100, what: 'SIPp to hang up' });
    await waitFor(async () => !(await rtpengineHolds(ref, inc.callId)), 5000,
      { interval: 100, what: 'rtpengine to delete the call after SIPp\'s BYE' });
    log('2. SIPp hung up: rtpengine no longer holds the call (ng list)');
    const s = await sippDone(uac, 'SIPp -> browser', 15000);
    const ans = s.trace.find((e) => e.dir === 'received' && e.msg.isResponse && e.msg.status === 200 &&
      /INVITE$/.test(e.msg.get('cseq')));
    assert.match(ans.msg.body, /^m=audio \d+ RTP\/AVP /m, `the answer SIPp got is plain RTP/AVP:\n${block(ans.msg.body)}`);
    assert.doesNotMatch(ans.msg.body, /^a=(ice-|candidate|fingerprint|crypto)/m, `nothing WebRTC toward SIPp:\n${block(ans.msg.body)}`);
    log('2. SIPp got a plain RTP/AVP answer');
    await agent.call('jssipStop');
  });
  // ---- 3. browser -> SIPp, cancelled while ringing
  await withAgentPage(browser, web, 'reference-cancel', async (agent) => {
    await startAndRegister(agent, 'jssip', gw);
    await placeCall(agent, 'jssip', `sip:sippcancel@${DOMAIN}`);
    await waitFor(async () => sipFrames(await agent.frames()).find((m) => m.dir === 'in' && m.isResponse &&
      m.status === 180), 15000, { interval: 50, what: 'the 180 to reach the page' });
    const invite = sipFrames(await agent.frames()).find((m) => m.dir === 'out' && m.method === 'INVITE');
    const callId = invite.get('call-id');
    assert.ok(await rtpengineHolds(ref, callId), 'rtpengine holds the ringing call');
    await agent.call('jssipHangup');
    const end = await waitFor(async () => endOf(await callEvents(agent, 'jssip'), 'jssip'), 8000,
      { interval: 50, what: 'the cancelled call to end' });
    assert.equal(end.cause, 'Canceled', JSON.stringify(end));
    const final = await waitFor(async () => sipFrames(await agent.frames()).find((m) => m.dir === 'in' && m.isResponse &&
      m.status >= 300 && /INVITE$/.test(m.get('cseq'))), 5000, { interval: 50, what: 'the final response to the INVITE' });
    assert.equal(final.status, 487, 'the cancelled INVITE\'s final response');
    await waitFor(async () => !(await rtpengineHolds(ref, callId)), 5000,
      { interval: 100, what: 'rtpengine to delete the call after the CANCEL' });
    const s = await sippDone(ringing, 'cancelled call', 10000);
    assert.deepEqual(sippRequests(s.trace).map((e) => e.msg.method), ['INVITE', 'CANCEL', 'ACK'], sippSummary(s.trace));
    log('3. JsSIP cancelled while SIPp rang: 487 to the page, CANCEL at SIPp, rtpengine no longer holds the call');
    await agent.call('jssipStop');
  });

  // ---- 4. a browser that is gone
  await withAgentPage(browser, web, 'reference-gone', async (agent) => {
    await agent.call('jssipStart', { url: ref.wsUrl, uri: `sip:bob@${DOMAIN}`, password: BOB.password });
    const reg = await agent.waitForEvent('jssip', ['registered', 'registrationFailed', 'disconnected'], 15000);
    assert.equal(reg.type, 'registered', `bob's REGISTER through the reference: ${JSON.stringify(reg)}`);
    await agent.page.close(); // its WebSocket goes, its registration stays at the PBX
    await new Promise((r) => setTimeout(r, 500));
    const r = await env.runSipp({
      scenario: 'it_call_uac_fail.xml', remote: `${LOOPBACK}:${kam.port}`, args: ['-s', 'bob'],
      vars: { DOMAIN, EXPECT: 480, EXPECT_ALT: 410, ANSWER_TIMEOUT_MS: 10000 }, timeoutSec: 15,
    });
    assert.equal(r.code, 0, `SIPp's call to bob, who is gone, fails 480/410:\n${block(r.errors)}\n${sippSummary(sippTrace(r.messages))}`);
    log(`4. SIPp called bob (page gone): ${r.responses.filter((c) => c >= 200).join(', ')} from the reference`);
  });

  assert.equal((await ref.calls()).length, 0, 'rtpengine holds no call at the end');
  log('check.mjs: the reference gateway works (both directions, CANCEL, a browser that is gone)');
});

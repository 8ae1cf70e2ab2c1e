// Real calls through rtcsipd and Kamailio, with media, from headless Chromium
// with JsSIP and SIP.js (npm releases).  The page registers alice through
// rtcsipd (wss://) to Kamailio; the far end is SIPp with -rtp_echo, so the
// browser hears its own fake microphone (a beep) after the round trip
// browser -> (ICE/DTLS-SRTP) rtcsipd -> (plain RTP) SIPp -> rtcsipd -> browser.
//
// For each library:
//   - a call to sip:sipp@example.com (Kamailio routes it to a SIPp UAS,
//     call_uas_answer.xml): the plain offer SIPp gets, RTP both ways (getStats
//     > 200 packets each way), the beep back (WebAudio analyser), BYE from the
//     browser -> BYE to SIPp, rtcsipd's end-of-call summary;
//   - a call from SIPp (call_uac.xml) to alice: the WebRTC offer the page
//     gets, the page answers, media both ways, BYE from SIPp -> the page's
//     session ends;
//   - in both: the page's DTLS connected within DTLS_WITHIN_MS of the SIP
//     answer (the page's peer connection states against its SIP frames);
//   - CANCEL while SIPp rings (call_uas_cancel.xml): 487 to the browser;
//   - 486 from SIPp (call_uas_reject.xml): the browser's call fails, Busy;
//   - the page closed mid-call: SIPp gets the BYE within 2 s (SIPp's scenario
//     expects it in a window that opens before the page closes, and the test
//     measures page close -> BYE in SIPp's message trace).
// And a JsSIP call whose offer carries a wrong a=fingerprint: rtcsipd's DTLS
// check fails, the call ends on both sides (BYE to SIPp, BYE to the page),
// cause "media failed", and nothing reaches SIPp.
//
// Runs in a loopback-only network namespace with Chromium's loopback ICE (see
// echo.test.mjs and lib/browser.mjs), so that every ICE candidate is 127.0.0.1.
import { runInLoopbackNetns, startWebServer, launchChromium, withAgentPage } from './lib/browser.mjs';

// Re-runs this file in a fresh network namespace with only lo (the parent
// exits here); must come before node:test is loaded.
await runInLoopbackNetns();

const { default: test } = await import('node:test');
const { default: assert } = await import('node:assert/strict');
const { withEnv, waitFor, sleep, udpPortInUse, VALGRIND_SLOWDOWN } = await import('../lib/harness.mjs');
const { DOMAIN, sipFrames } = await import('./lib/steps.mjs');
const {
  SIPP_URI, escapeRe, block, trace, sippTrace, sippRequests, sippSummary, callLog, sippMediaPort,
  startAll: startAllOn, startSippUas, sippDone, startAndRegister, callEvents, placeCall, outcomeOf, endOf,
} = await import('./lib/calls.mjs');

const SLOW = VALGRIND_SLOWDOWN;
const MIN_PACKETS = 200; // 20 ms packets: 4 s of audio each way
const MEDIA_TIMEOUT_MS = 12000;
const SILENCE_RMS = 0.01; // the fake device's beep comes back at ~0.3 RMS
const RTP_PORTS = [22000, 22999]; // rtcsipd's [media] rtp_port_min/max here (echo.test.mjs: 21000-21999)
const BYE_WITHIN_MS = 2000 * SLOW; // a closed page: SIPp has the BYE within this
const INCOMING_HOLD_MS = 9000; // a call from SIPp lasts this long after the ACK, then SIPp hangs up
const TEST_TIMEOUT = 60000 * SLOW;
// The page's DTLS is connected at most this long after the SIP answer (its
// own 200 in a call from the PBX, rtcsipd's in a call from the page).  On
// 127.0.0.1 it takes 20-60 ms: one libnice pacing tick (Ta, 20 ms) before
// rtcsipd's first check, the check, the DTLS flights.  It took 250-275 ms
// when rtcsipd dropped its answer to the browser's early ClientHello
// (ICE not connected yet on its side) and waited for its DTLS retransmission
// timer (250 ms): a bound below 250 ms fails that; 150 ms leaves the rest
// for a loaded 2-core machine.
const DTLS_WITHIN_MS = 150 * SLOW;
const LIBS = [
  { lib: 'jssip', name: 'JsSIP' },
  { lib: 'sipjs', name: 'SIP.js' },
];

// ---------------------------------------------------------------------------
// rtcsipd's log.
//   [call-N] INVITE sipp@example.com from alice on <conn>, Call-ID <id>
//   [call-N] INVITE from the PBX for alice on <conn>, Call-ID <id>
//   [call-N] state A -> B (event; actions)
//   [call-N] call ended: cause C, S s[ (not answered)], browser->rtcsipd ..., rtcsipd->browser ...,
//     pbx->rtcsipd ..., rtcsipd->pbx ..., srtp auth failures N, not forwarded N (REASON N, ...)

const legRe = (name) => `${name} (?<${name.replace(/\W/g, '')}Rtp>\\d+) rtp/\\d+ bytes \\d+ rtcp`;
const SUMMARY_RE = new RegExp('call ended: cause (?<cause>.*?), (?<secs>[\\d.]+) s(?<unanswered> \\(not answered\\))?, ' +
  `${legRe('browser->rtcsipd')}, ${legRe('rtcsipd->browser')}, ${legRe('pbx->rtcsipd')}, ${legRe('rtcsipd->pbx')}, ` +
  'srtp auth failures (?<authFailures>\\d+), not forwarded (?<notForwarded>\\d+)');

// The figures of rtcsipd's "call ended" LINE: { cause, secs, answered, browserrtcsipdRtp (browser->rtcsipd),
// rtcsipdbrowserRtp, pbxrtcsipdRtp, rtcsipdpbxRtp, authFailures, notForwarded }.
function parseSummary(line) {
  const m = line.match(SUMMARY_RE);
  assert.ok(m, `rtcsipd's end-of-call line has the summary format (${SUMMARY_RE}): ${line}`);
  const g = { ...m.groups };
  for (const k of Object.keys(g)) if (k !== 'cause' && k !== 'unanswered') g[k] = Number(g[k]);
  g.answered = !g.unanswered;
  return g;
}

// Waits (at most MS ms) for a line matching RE in rtcsipd's output after
// character FROM; returns the line.
async function waitForDaemonLine(gw, re, from, ms, what) {
  return waitFor(() => {
    const m = gw.child.output.slice(from).match(new RegExp(`^.*${re.source}.*$`, `m${re.flags.replace('m', '')}`));
    return m && m[0];
  }, ms, { interval: 20, what: `rtcsipd to log ${what} (${re})` }).catch((e) => {
    throw new Error(`${e.message}\n--- rtcsipd output ---\n${block(gw.child.output.slice(from).slice(-6000))}`);
  });
}

// The call's name in rtcsipd's log ("call-N"), from its INVITE line for CALLID.
async function callName(gw, callId) {
  const line = await waitForDaemonLine(gw, new RegExp(`\\[(call-\\d+)\\] INVITE .*Call-ID ${escapeRe(callId)}(\\s|$)`),
    0, 3000 * SLOW, 'the call\'s INVITE line');
  return line.match(/\[(call-\d+)\]/)[1];
}

// rtcsipd's end of call NAME: the summary, parsed, with the cause checked against CAUSE (a string or RegExp).
async function callEnded(gw, name, cause, what) {
  const line = await waitForDaemonLine(gw, new RegExp(`\\[${name}\\] call ended: `), 0, 5000 * SLOW,
    `the end of ${name}`);
  const sum = parseSummary(line);
  sum.line = line;
  const info = `${line}\n--- rtcsipd [${name}] ---\n${block(callLog(gw, name))}`;
  if (cause instanceof RegExp) assert.match(sum.cause, cause, `${what}: end cause: ${info}`);
  else assert.equal(sum.cause, cause, `${what}: end cause: ${info}`);
  assert.match(gw.child.output, new RegExp(`\\[${name}\\] state \\S+ -> \\S+ \\(`), `${what}: state changes logged`);
  return sum;
}

// ---------------------------------------------------------------------------
// Setup.

// Kamailio (registrar; sip:sipp@DOMAIN routed to SIPP when given), rtcsipd in
// front of it, the web server and Chromium.
const startAll = (env, { sipp } = {}) => startAllOn(env, { rtp: RTP_PORTS, sipp });

// SIPp calls alice through Kamailio (call_uac.xml), echoing RTP.
async function startSippUac(env, kam, vars, timeoutSec = 40) {
  const mp = await sippMediaPort();
  return env.startSipp({
    scenario: 'call_uac.xml', remote: `127.0.0.1:${kam.port}`,
    args: ['-s', 'alice', '-rtp_echo', '-mp', String(mp)],
    vars: { DOMAIN, ANSWER_TIMEOUT_MS: 15000 * SLOW, HOLD_MS: INCOMING_HOLD_MS, BYE_TIMEOUT_MS: 5000 * SLOW, ...vars },
    timeoutSec: timeoutSec * SLOW,
  });
}

// ---------------------------------------------------------------------------
// The page's call.

// What a failure message needs: the page's call events and SIP trace, rtcsipd's lines of call NAME.
async function pageInfo(agent, lib, gw, name) {
  const events = (await callEvents(agent, lib).catch(() => [])).map((e) => JSON.stringify(e)).join('\n');
  const msgs = sipFrames(await agent.frames().catch(() => []));
  return `--- ${lib} call events ---\n${block(events)}\n--- page SIP ---\n${trace(msgs)}\n` +
    `--- rtcsipd ${name || 'calls'} ---\n${block(callLog(gw, name))}`;
}

// The first outcome of the page's call: 'confirmed' (JsSIP confirmed, SIP.js
// Established), or 'failed' / 'ended' / 'terminated' (SIP.js) with the event.
async function callOutcome(agent, lib, ms) {
  return waitFor(async () => outcomeOf(await callEvents(agent, lib), lib), ms,
    { interval: 50, what: `the ${lib} call to be answered or to fail` });
}

// Waits (at most MS ms) for the page's call to end; returns the event (JsSIP ended/failed, SIP.js Terminated).
async function callEnd(agent, lib, ms) {
  return waitFor(async () => endOf(await callEvents(agent, lib), lib), ms,
    { interval: 50, what: `the ${lib} call to end` });
}

// The page's outgoing INVITE (the first) and rtcsipd's final response to it.
function outgoingExchange(frames) {
  const msgs = sipFrames(frames);
  const invite = msgs.find((m) => m.dir === 'out' && m.method === 'INVITE');
  const final = invite && msgs.find((m) => m.dir === 'in' && m.isResponse && m.status >= 200 &&
    m.get('call-id') === invite.get('call-id') && /\bINVITE$/.test(m.get('cseq')));
  return { msgs, invite, final };
}

// Asserts the page's call to TARGET is answered (after placeCall); returns { invite, answer, name }.
async function expectAnswered(agent, lib, gw, what) {
  const r = await callOutcome(agent, lib, 20000 * SLOW);
  const { msgs, invite, final } = outgoingExchange(await agent.frames());
  assert.ok(invite, `${what}: the page sent an INVITE:\n${trace(msgs)}`);
  if (!final || final.status !== 200 || r.outcome !== 'confirmed') {
    const hint = final && final.status === 501 ? ' (rtcsipd does not handle calls through the PBX yet?)' : '';
    assert.fail(`${what}: the call was not answered: ${JSON.stringify(r.e)}; rtcsipd's final response: ` +
      `${final ? `${final.status} ${final.reason}` : 'none'}${hint}\n${await pageInfo(agent, lib, gw)}` +
      (final ? `\n--- final response ---\n${block(final.raw)}` : ''));
  }
  const name = await callName(gw, invite.get('call-id'));
  return { invite, answer: final, name };
}

// rtcsipd's WebRTC SDP (answer or offer to the page), checked; returns its port.
function checkWebrtcSdp(sdp, what) {
  assert.match(sdp, /^m=audio [1-9]\d* UDP\/TLS\/RTP\/SAVPF [\d ]+\r?$/m, `${what}: a WebRTC audio m= line:\n${block(sdp)}`);
  assert.match(sdp, /^a=ice-ufrag:\S+/m, `${what}: ICE credentials:\n${block(sdp)}`);
  assert.match(sdp, /^a=fingerprint:sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}\r?$/m, `${what}: a DTLS fingerprint:\n${block(sdp)}`);
  assert.match(sdp, /^a=rtcp-mux\r?$/m, `${what}: rtcp-mux:\n${block(sdp)}`);
  const cands = sdp.match(/^a=candidate:.*$/gm) || [];
  assert.ok(cands.length > 0, `${what}: ICE candidates:\n${block(sdp)}`);
  for (const c of cands) {
    const f = c.trim().split(' ');
    assert.equal(f[4], '127.0.0.1', `${what}: candidate on 127.0.0.1 only: ${c}`);
    assert.ok(Number(f[5]) >= RTP_PORTS[0] && Number(f[5]) <= RTP_PORTS[1],
      `${what}: candidate port in [media] ${RTP_PORTS.join('..')}: ${c}`);
  }
}

// A plain SDP (to SIPp), checked: RTP/AVP on 127.0.0.1, a port in the range,
// no WebRTC lines.  Returns { port, pts }.
function checkPlainSdp(sdp, what) {
  const ms = sdp.match(/^m=.*$/mg) || [];
  assert.equal(ms.length, 1, `${what}: one m= line:\n${block(sdp)}`);
  const m = ms[0].trim().match(/^m=audio (\d+) RTP\/AVP ([\d ]+)$/);
  assert.ok(m, `${what}: m=audio PORT RTP/AVP ...: ${ms[0]}`);
  const port = Number(m[1]);
  assert.ok(port >= RTP_PORTS[0] && port <= RTP_PORTS[1], `${what}: port ${port} in [media] ${RTP_PORTS.join('..')}`);
  assert.match(sdp, /^c=IN IP4 127\.0\.0\.1\s*$/m, `${what}: c=IN IP4 127.0.0.1:\n${block(sdp)}`);
  for (const re of [/^a=ice-/m, /^a=candidate/m, /^a=fingerprint/m, /^a=setup/m, /^a=rtcp-mux/m]) {
    assert.doesNotMatch(sdp, re, `${what}: no ${re.source.slice(1)} line:\n${block(sdp)}`);
  }
  return { port, pts: m[2].split(' ') };
}

// The media of the page's call, measured in the page (T.callMedia), asserted:
// ICE on 127.0.0.1 with rtcsipd's port in range, > MINPACKETS RTP each way,
// and (HEAR) the beep back.
async function checkMedia(t, agent, lib, gw, name, what, { minPackets = MIN_PACKETS, timeoutMs = MEDIA_TIMEOUT_MS,
  hear = true } = {}) {
  const r = await agent.call('callMedia', { lib, minPackets, timeoutMs }, timeoutMs + 10000);
  const info = () => `${JSON.stringify(r)}\n${block(callLog(gw, name))}`;
  t.diagnostic(`${what} media: ${JSON.stringify({ out: r.out, in: r.in, pair: r.pair, analyser: r.analyser, ms: r.elapsedMs })}`);
  assert.equal(r.connectionState, 'connected', `${what}: peer connection state: ${info()}`);
  assert.equal(r.dtlsState, 'connected', `${what}: DTLS: ${info()}`);
  assert.ok(r.pair, `${what}: a selected candidate pair: ${info()}`);
  assert.match(r.pair.local, /^127\.0\.0\.1:/, `${what}: local candidate: ${info()}`);
  const pm = r.pair.remote.match(/^127\.0\.0\.1:(\d+) /);
  assert.ok(pm, `${what}: rtcsipd's candidate on 127.0.0.1: ${info()}`);
  const port = Number(pm[1]);
  assert.ok(port >= RTP_PORTS[0] && port <= RTP_PORTS[1], `${what}: rtcsipd's ICE port ${port} in ` +
    `[media] rtp_port_min..max ${RTP_PORTS.join('..')}: ${info()}`);
  assert.ok(r.out.packetsSent > minPackets, `${what}: RTP packets sent > ${minPackets}: ${info()}`);
  assert.ok(r.in.packetsReceived > minPackets,
    `${what}: RTP packets received (SIPp's echo, through rtcsipd) > ${minPackets} within ${timeoutMs} ms: ${info()}`);
  if (hear) {
    assert.ok(r.source.totalAudioEnergy > 0, `${what}: the fake microphone is not silent: ${info()}`);
    const energy = (r.in.totalAudioEnergy || 0) > (r.in.energyStart || 0) || r.in.audioLevelMax > 0;
    assert.ok(r.analyser.rmsMax > SILENCE_RMS || energy,
      `${what}: the beep comes back (remote audio RMS ${r.analyser.rmsMax} > ${SILENCE_RMS}): ${info()}`);
  }
  r.daemonPort = port;
  return r;
}

// rtcsipd's summary of a call that carried media both ways.
function checkSummaryMedia(sum, what, min = MIN_PACKETS) {
  const info = sum.line;
  assert.ok(sum.answered, `${what}: answered: ${info}`);
  assert.ok(sum.browserrtcsipdRtp > min, `${what}: browser->rtcsipd > ${min} RTP: ${info}`);
  assert.ok(sum.rtcsipdpbxRtp > min, `${what}: rtcsipd->pbx > ${min} RTP: ${info}`);
  assert.ok(sum.pbxrtcsipdRtp > min, `${what}: pbx->rtcsipd > ${min} RTP (SIPp's echo): ${info}`);
  assert.ok(sum.rtcsipdbrowserRtp > min, `${what}: rtcsipd->browser > ${min} RTP: ${info}`);
  assert.equal(sum.authFailures, 0, `${what}: no SRTP authentication failures: ${info}`);
}

// The INVITE SIPp got (a call from the browser), checked against the page's INVITE.
function checkInviteAtSipp(tr, pageInvite, what) {
  const inv = sippRequests(tr, 'INVITE')[0];
  assert.ok(inv, `${what}: SIPp got an INVITE:\n${sippSummary(tr)}`);
  const m = inv.msg;
  assert.equal(m.uri, SIPP_URI, `${what}: the browser's Request-URI at SIPp`);
  assert.equal(m.get('call-id'), pageInvite.get('call-id'), `${what}: the browser's Call-ID at SIPp`);
  assert.equal(m.get('from'), pageInvite.get('from'), `${what}: the browser's From at SIPp`);
  assert.equal(m.get('to'), pageInvite.get('to'), `${what}: the browser's To at SIPp`);
  assert.ok(!m.raw.includes('.invalid'), `${what}: nothing of the browser's WebSocket addressing:\n${block(m.raw)}`);
  const offer = checkPlainSdp(m.body, `${what}: the offer SIPp got`);
  // The codecs both support, with the payload types the browser offered.
  for (const codec of ['opus/48000/2', 'G722/8000', 'PCMU/8000', 'PCMA/8000', 'telephone-event/8000']) {
    const re = new RegExp(`^a=rtpmap:(\\d+) ${escapeRe(codec)}\\s*$`, 'm');
    const theirs = pageInvite.body.match(re);
    const ours = m.body.match(re);
    assert.ok(ours, `${what}: ${codec} offered to SIPp:\n${block(m.body)}`);
    assert.ok(offer.pts.includes(ours[1]), `${what}: ${codec} (${ours[1]}) on the m= line: ${offer.pts}`);
    if (theirs) assert.equal(ours[1], theirs[1], `${what}: ${codec} with the browser's payload type`);
  }
  return m;
}

// When the media of the page's call CALLID (rtcsipd's NAME) became ready,
// against the SIP answer: for a call from the PBX the page's 200 to rtcsipd's
// INVITE (when the page sent it), for a call from the page rtcsipd's 200 (when
// the page got it).  In the page: its peer connection's ICE connected, its
// DTLS transport connected, its connection state connected (tap.js); in
// rtcsipd's log (when its lines came out): ICE connected, the pair selected,
// DTLS done ("browser media ready").  Returns those times in ms after the
// answer (null: not seen), waiting at most MS for the page's DTLS.
async function mediaTiming(agent, gw, name, callId, ms = 5000 * SLOW) {
  const msgs = sipFrames(await agent.frames());
  const answer = msgs.find((m) => m.isResponse && m.status === 200 && m.get('call-id') === callId &&
    /\bINVITE$/.test(m.get('cseq')));
  assert.ok(answer, `the 200 to the INVITE ${callId} went over the page's WebSocket:\n${trace(msgs)}`);
  const states = await waitFor(async () => {
    const all = await agent.pcStates();
    const last = all.length ? all[all.length - 1].pc : 0; // the call's: the newest peer connection
    const mine = all.filter((e) => e.pc === last);
    return mine.some((e) => e.kind === 'dtls' && e.state === 'connected') ? mine : null;
  }, ms, { interval: 20, what: 'the page\'s DTLS transport to be connected' });
  const first = (kind, re) => {
    const e = states.find((x) => x.kind === kind && re.test(x.state));
    return e ? Math.round((e.t - answer.t) * 10) / 10 : null;
  };
  // rtcsipd's line comes out when the page's DTLS is done, or just before;
  // its time is when the harness read it: an upper bound
  await waitFor(() => new RegExp(`\\[${name}\\] browser media ready`).test(gw.child.output), 2000 * SLOW,
    { interval: 20, what: 'rtcsipd to log its DTLS done' }).catch(() => null);
  const daemon = (re) => {
    const m = new RegExp(`^.*\\[${name}\\] ${re.source}.*$`, 'm').exec(gw.child.output);
    const t = m && gw.child.timeOf(m.index);
    return t ? Math.round((t - answer.t) * 10) / 10 : null;
  };
  if (process.env.RTCSIPD_TIMING_TRACE) {
    const re = new RegExp(process.env.RTCSIPD_TIMING_TRACE === 'all' ? '^.+$' : `^.*\\[${name}\\].*$`, 'mg');
    const lines = [];
    for (let m; (m = re.exec(gw.child.output));) lines.push(`${(gw.child.timeOf(m.index) - answer.t).toFixed(1)} ${m[0]}`);
    for (const e of states) lines.push(`${(e.t - answer.t).toFixed(1)} page ${e.kind} ${e.state}`);
    for (const m of msgs) lines.push(`${(m.t - answer.t).toFixed(1)} page ${m.dir} ${m.isResponse ? m.status : m.method} ${m.get('cseq')}`);
    console.log(lines.sort((a, b) => parseFloat(a) - parseFloat(b)).join('\n'));
  }
  return {
    pageIce: first('ice', /^(connected|completed)$/),
    pageDtls: first('dtls', /^connected$/),
    pageConnected: first('connection', /^connected$/),
    daemonIce: daemon(/ice \S+ -> connected/),
    daemonPair: daemon(/ice selected pair/),
    daemonDtls: daemon(/browser media ready/),
  };
}

// ---------------------------------------------------------------------------
// Browser -> SIPp: media, BYE from the browser.

for (const { lib, name: LIB } of LIBS) {
  test(`${LIB} calls SIPp through rtcsipd and Kamailio: plain offer to SIPp, RTP both ways and the beep back (SIPp -rtp_echo), BYE from the browser`,
    { timeout: TEST_TIMEOUT }, (t) => withEnv(`browser-calls-out-${lib}`, async (env) => {
      const uas = await startSippUas(env, 'call_uas_answer.xml',
        { RING_MS: 200, HOLD_MS: 0, BYE_TIMEOUT_MS: 30000 * SLOW });
      const { gw, web, browser } = await startAll(env, { sipp: uas });
      await withAgentPage(browser, web, `calls-out-${lib}`, async (agent) => {
        await startAndRegister(agent, lib, gw);
        await placeCall(agent, lib, SIPP_URI);
        const { invite, answer, name } = await expectAnswered(agent, lib, gw, LIB);
        checkWebrtcSdp(answer.body, `${LIB}: rtcsipd's answer`);
        assert.match(answer.body, /^a=setup:(active|passive)\r?$/m, `${LIB}: a=setup in the answer`);
        const early = sipFrames(await agent.frames()).filter((m) => m.dir === 'in' && m.isResponse && m.status < 200 &&
          m.get('call-id') === invite.get('call-id')).map((m) => m.status);
        assert.equal(early[0], 100, `${LIB}: 100 Trying from rtcsipd first (got ${early})`);
        assert.ok(early.includes(180), `${LIB}: SIPp's 180 relayed to the page (got ${early})`);
        const timing = await mediaTiming(agent, gw, name, invite.get('call-id'));
        t.diagnostic(`${LIB} media ready, ms after rtcsipd's 200: ${JSON.stringify(timing)}`);
        assert.ok(timing.pageDtls <= DTLS_WITHIN_MS, `${LIB}: the page's DTLS connected ${timing.pageDtls} ms ` +
          `after rtcsipd's 200 (at most ${DTLS_WITHIN_MS}): ${JSON.stringify(timing)}\n${block(callLog(gw, name))}`);

        const media = await checkMedia(t, agent, lib, gw, name, LIB);

        await agent.call(lib === 'jssip' ? 'jssipHangup' : 'sipjsHangup');
        const end = await callEnd(agent, lib, 5000);
        if (lib === 'jssip') assert.equal(end.originator, 'local', JSON.stringify(end));
        const msgs = sipFrames(await agent.frames());
        const bye = msgs.find((m) => m.dir === 'out' && m.method === 'BYE');
        assert.ok(bye, `${LIB} sent a BYE:\n${trace(msgs)}`);
        const byeResp = await waitFor(async () => sipFrames(await agent.frames()).find((m) => m.dir === 'in' &&
          m.isResponse && /\bBYE$/.test(m.get('cseq'))), 5000, { interval: 50, what: 'a response to the BYE' });
        assert.equal(byeResp.status, 200, `rtcsipd's answer to the BYE:\n${block(byeResp.raw)}`);

        const sum = await callEnded(gw, name, 'BYE from the browser', LIB);
        t.diagnostic(`rtcsipd: ${sum.line}`);
        checkSummaryMedia(sum, LIB);
        assert.ok(sum.rtcsipdbrowserRtp >= media.in.packetsReceived,
          `${LIB}: the browser received only what rtcsipd sent: ${sum.line}`);
        const s = await sippDone(uas, LIB, 10000 * SLOW);
        assert.deepEqual(sippRequests(s.trace).map((e) => e.msg.method), ['INVITE', 'ACK', 'BYE'],
          `${LIB}: what SIPp got:\n${sippSummary(s.trace)}`);
        checkInviteAtSipp(s.trace, invite, LIB);
        const byeAtSipp = sippRequests(s.trace, 'BYE')[0].msg;
        assert.equal(byeAtSipp.get('call-id'), invite.get('call-id'), `${LIB}: the BYE at SIPp is the call's`);
        await waitFor(async () => !(await udpPortInUse(media.daemonPort)), 3000 * SLOW,
          { interval: 50, what: `rtcsipd to close its ICE port ${media.daemonPort}` });
        await agent.call(lib === 'jssip' ? 'jssipStop' : 'sipjsStop');
      });
    }));
}

// ---------------------------------------------------------------------------
// SIPp -> browser: the page answers, media, BYE from SIPp.

for (const { lib, name: LIB } of LIBS) {
  test(`SIPp calls alice (${LIB}) through Kamailio and rtcsipd: WebRTC offer to the page, answered, RTP both ways, BYE from SIPp ends the page's session`,
    { timeout: TEST_TIMEOUT }, (t) => withEnv(`browser-calls-in-${lib}`, async (env) => {
      const { kam, gw, web, browser } = await startAll(env);
      await withAgentPage(browser, web, `calls-in-${lib}`, async (agent) => {
        await startAndRegister(agent, lib, gw);
        await agent.call(lib === 'jssip' ? 'jssipAcceptCalls' : 'sipjsAcceptCalls', {});
        const uac = await startSippUac(env, kam, {});

        const inc = await waitFor(async () => (await callEvents(agent, lib)).find((e) => e.type === 'incoming'),
          15000 * SLOW, { interval: 50, what: 'the INVITE to reach the page' }).catch(async (e) => {
          const r = await uac.result(2000).catch(() => null);
          throw new Error(`${e.message}\n--- SIPp ---\n${r ? `${block(r.errors)}\n${sippSummary(sippTrace(r.messages))}` : ''}` +
            `\n${await pageInfo(agent, lib, gw)}`);
        });
        assert.equal(inc.from, SIPP_URI, 'the caller: SIPp');
        checkWebrtcSdp(inc.sdp, `${LIB}: rtcsipd's offer`);
        assert.match(inc.sdp, /^a=setup:actpass\r?$/m, `${LIB}: a=setup:actpass in the offer:\n${block(inc.sdp)}`);
        assert.match(inc.sdp, /^a=rtpmap:0 PCMU\/8000\r?$/m, `${LIB}: PCMU (SIPp's codec) offered:\n${block(inc.sdp)}`);
        const name = await callName(gw, inc.callId);

        const r = await callOutcome(agent, lib, 15000 * SLOW);
        assert.equal(r.outcome, 'confirmed', `${LIB}: the answered call: ${JSON.stringify(r.e)}\n` +
          `${await pageInfo(agent, lib, gw, name)}`);
        const timing = await mediaTiming(agent, gw, name, inc.callId);
        t.diagnostic(`${LIB} media ready, ms after the page's 200: ${JSON.stringify(timing)}`);
        assert.ok(timing.pageDtls <= DTLS_WITHIN_MS, `${LIB}: the page's DTLS connected ${timing.pageDtls} ms ` +
          `after its 200 (at most ${DTLS_WITHIN_MS}): ${JSON.stringify(timing)}\n${block(callLog(gw, name))}`);

        const media = await checkMedia(t, agent, lib, gw, name, LIB,
          { timeoutMs: Math.min(MEDIA_TIMEOUT_MS, INCOMING_HOLD_MS - 1500) });

        // SIPp hangs up INCOMING_HOLD_MS after its ACK.
        const end = await callEnd(agent, lib, INCOMING_HOLD_MS + 5000 * SLOW).catch(async (e) => {
          throw new Error(`${e.message}\n${await pageInfo(agent, lib, gw, name)}`);
        });
        if (lib === 'jssip') {
          assert.equal(end.type, 'ended', JSON.stringify(end));
          assert.equal(end.originator, 'remote', JSON.stringify(end));
        }
        const msgs = sipFrames(await agent.frames());
        const bye = msgs.find((m) => m.dir === 'in' && m.method === 'BYE');
        assert.ok(bye, `rtcsipd sent the page a BYE:\n${trace(msgs)}`);
        assert.equal(bye.get('call-id'), inc.callId, 'the BYE is for the call');
        const sum = await callEnded(gw, name, 'BYE from the PBX', LIB);
        t.diagnostic(`rtcsipd: ${sum.line}`);
        checkSummaryMedia(sum, LIB);

        const s = await sippDone(uac, LIB, 15000 * SLOW);
        const ok = s.trace.find((e) => e.dir === 'received' && e.msg.isResponse && e.msg.status === 200 &&
          /INVITE$/.test(e.msg.get('cseq')));
        assert.ok(ok, `SIPp got a 200 to its INVITE:\n${sippSummary(s.trace)}`);
        const ans = checkPlainSdp(ok.msg.body, `${LIB}: rtcsipd's answer to SIPp`);
        assert.equal(ans.pts[0], '0', `${LIB}: PCMU in the answer to SIPp: ${ans.pts}`);
        await waitFor(async () => !(await udpPortInUse(media.daemonPort)), 3000 * SLOW,
          { interval: 50, what: `rtcsipd to close its ICE port ${media.daemonPort}` });
        await agent.call(lib === 'jssip' ? 'jssipStop' : 'sipjsStop');
      });
    }));
}

// ---------------------------------------------------------------------------
// SIPp -> browser, then an ICE restart from the page: rtcsipd is the ICE
// controlling agent in this direction (it offered), and answers the restart
// itself; media goes on.

test('SIPp calls alice (JsSIP), answered; JsSIP restarts ICE: rtcsipd (ICE controlling) answers with new credentials, media goes on, SIPp sees nothing',
  { timeout: TEST_TIMEOUT }, (t) => withEnv('browser-calls-in-restart', async (env) => {
    const lib = 'jssip';
    const { kam, gw, web, browser } = await startAll(env);
    await withAgentPage(browser, web, 'calls-in-restart', async (agent) => {
      await startAndRegister(agent, lib, gw);
      await agent.call('jssipAcceptCalls', {});
      const uac = await startSippUac(env, kam, {});
      const inc = await waitFor(async () => (await callEvents(agent, lib)).find((e) => e.type === 'incoming'),
        15000 * SLOW, { interval: 50, what: 'the INVITE to reach the page' });
      const name = await callName(gw, inc.callId);
      const r = await callOutcome(agent, lib, 15000 * SLOW);
      assert.equal(r.outcome, 'confirmed', `the answered call: ${JSON.stringify(r.e)}\n${await pageInfo(agent, lib, gw, name)}`);
      const flowing = async (what, base) => waitFor(async () => {
        const st = await agent.call('callStats', { lib });
        return st && st.connectionState === 'connected' && st.in.packetsReceived > base + 25 ? st : null;
      }, 5000 * SLOW, { interval: 100, what }).catch(async (e) => {
        throw new Error(`${e.message}\n${await pageInfo(agent, lib, gw, name)}`);
      });
      const s0 = await flowing('RTP to reach the page', 0);

      assert.equal(await agent.call('jssipRenegotiate', { iceRestart: true }), true, 'JsSIP renegotiate() started');
      await agent.waitForEvent('jssip-mid', ['renegotiateDone'], 8000 * SLOW);
      const msgs = sipFrames(await agent.frames());
      const reinv = msgs.find((m) => m.dir === 'out' && m.method === 'INVITE');
      assert.ok(reinv, `the page's re-INVITE:\n${trace(msgs)}`);
      const ok = msgs.find((m) => m.dir === 'in' && m.isResponse && m.status === 200 && m.get('cseq') === reinv.get('cseq'));
      assert.ok(ok, `rtcsipd's 200 to the re-INVITE:\n${trace(msgs)}`);
      const uf = (sdp) => (sdp.match(/^a=ice-ufrag:(\S+)/m) || [])[1];
      const answer0 = msgs.find((m) => m.dir === 'out' && m.isResponse && m.status === 200 &&
        m.get('call-id') === inc.callId && /\bINVITE$/.test(m.get('cseq')));
      assert.notEqual(uf(reinv.body), uf(answer0.body), 'the re-INVITE has new ICE credentials');
      assert.notEqual(uf(ok.body), uf(inc.sdp), `rtcsipd's answer has new ICE credentials:\n${block(ok.body)}`);
      const s1 = await flowing('RTP to reach the page after the ICE restart', s0.in.packetsReceived);
      await sleep(1000);
      const s2 = await agent.call('callStats', { lib });
      t.diagnostic(`after the ICE restart: ${JSON.stringify({ before: s0, after: s2 })}`);
      assert.equal(s2.remoteUfrag, uf(ok.body), 'the page uses rtcsipd\'s new credentials');
      assert.equal(s2.connectionState, 'connected', JSON.stringify(s2));
      assert.ok(s2.in.packetsReceived > s1.in.packetsReceived + 25, `media goes on: ${JSON.stringify({ s1, s2 })}`);
      assert.ok(!/ICE restart failed/.test(callLog(gw, name)), `rtcsipd's ICE restart:\n${block(callLog(gw, name))}`);

      // SIPp hangs up INCOMING_HOLD_MS after its ACK.
      await callEnd(agent, lib, INCOMING_HOLD_MS + 5000 * SLOW);
      const s = await sippDone(uac, 'ICE restart', 15000 * SLOW);
      const reqs = s.trace.filter((e) => e.dir === 'received' && !e.msg.isResponse).map((e) => e.msg.method);
      assert.deepEqual(reqs, [], `SIPp saw nothing of the ICE restart:\n${sippSummary(s.trace)}`);
      await agent.call('jssipStop');
    });
  }));

// ---------------------------------------------------------------------------
// CANCEL before the answer; 486.

for (const { lib, name: LIB } of LIBS) {
  test(`${LIB} cancels its call while SIPp rings: CANCEL to SIPp, 487 to the browser`,
    { timeout: TEST_TIMEOUT }, () => withEnv(`browser-calls-cancel-${lib}`, async (env) => {
      const uas = await startSippUas(env, 'call_uas_cancel.xml', { CANCEL_TIMEOUT_MS: 20000 * SLOW });
      const { gw, web, browser } = await startAll(env, { sipp: uas });
      await withAgentPage(browser, web, `calls-cancel-${lib}`, async (agent) => {
        await startAndRegister(agent, lib, gw);
        await placeCall(agent, lib, SIPP_URI);
        // SIPp's 180 on the page's WebSocket; then the library's own 'progress'
        // (checked at the end: without it the CANCEL is still tested).
        const ringing = await waitFor(async () => sipFrames(await agent.frames()).find((m) => m.dir === 'in' &&
          m.isResponse && m.status === 180), 15000 * SLOW, { interval: 50, what: 'the 180 to reach the page' })
          .catch(async (e) => { throw new Error(`${e.message}\n${await pageInfo(agent, lib, gw)}`); });
        await sleep(300);
        const progress = (await callEvents(agent, lib)).find((e) => e.type === 'progress');
        await agent.call(lib === 'jssip' ? 'jssipHangup' : 'sipjsHangup');
        const end = await callEnd(agent, lib, 8000 * SLOW).catch(async (e) => {
          throw new Error(`${e.message}\n${await pageInfo(agent, lib, gw)}`);
        });
        if (lib === 'jssip') {
          assert.equal(end.type, 'failed', JSON.stringify(end));
          assert.equal(end.cause, 'Canceled', JSON.stringify(end));
        }
        const { msgs, invite } = outgoingExchange(await agent.frames());
        const name = await callName(gw, invite.get('call-id'));
        assert.ok(msgs.some((m) => m.dir === 'out' && m.method === 'CANCEL'), `${LIB} sent a CANCEL:\n${trace(msgs)}`);
        const final = await waitFor(async () => outgoingExchange(await agent.frames()).final, 5000 * SLOW,
          { interval: 50, what: 'the final response to the INVITE' });
        assert.equal(final.status, 487, `${LIB}: the INVITE's final response:\n${trace(msgs)}`);
        const cancelResp = sipFrames(await agent.frames()).find((m) => m.dir === 'in' && m.isResponse &&
          /\bCANCEL$/.test(m.get('cseq')));
        assert.ok(cancelResp && cancelResp.status === 200, `200 to the CANCEL:\n${trace(msgs)}`);
        const sum = await callEnded(gw, name, 'CANCEL from the browser', LIB);
        assert.ok(!sum.answered, `not answered: ${sum.line}`);
        const s = await sippDone(uas, LIB, 10000 * SLOW);
        assert.deepEqual(sippRequests(s.trace).map((e) => e.msg.method), ['INVITE', 'CANCEL', 'ACK'],
          `${LIB}: what SIPp got:\n${sippSummary(s.trace)}`);
        // A 1xx with a To tag makes an early dialog: it must carry a Contact
        // (RFC 3261 12.1.1); SIP.js drops one without.
        const dropped = agent.console.filter((l) => /1xx .*without a Contact/i.test(l));
        assert.ok(progress, `${LIB} signalled SIPp's 180 (progress event)` +
          `${ringing.get('contact') ? '' : '; rtcsipd\'s 180 to the browser has no Contact header'}` +
          `${dropped.length ? `; ${LIB} says: ${dropped.join(' / ')}` : ''}:\n${block(ringing.raw)}`);
        await agent.call(lib === 'jssip' ? 'jssipStop' : 'sipjsStop');
      });
    }));

  test(`${LIB} calls SIPp, which answers 486: the browser's call fails Busy`,
    { timeout: TEST_TIMEOUT }, () => withEnv(`browser-calls-486-${lib}`, async (env) => {
      const uas = await startSippUas(env, 'call_uas_reject.xml', { RING_MS: 300, STATUS: 486, REASON: 'Busy Here' });
      const { gw, web, browser } = await startAll(env, { sipp: uas });
      await withAgentPage(browser, web, `calls-486-${lib}`, async (agent) => {
        await startAndRegister(agent, lib, gw);
        await placeCall(agent, lib, SIPP_URI);
        const end = await callEnd(agent, lib, 15000 * SLOW).catch(async (e) => {
          throw new Error(`${e.message}\n${await pageInfo(agent, lib, gw)}`);
        });
        const evs = await callEvents(agent, lib);
        if (lib === 'jssip') {
          assert.equal(end.type, 'failed', JSON.stringify(end));
          assert.equal(end.originator, 'remote', JSON.stringify(end));
          assert.equal(end.cause, 'Busy', JSON.stringify(end)); // JsSIP.C.causes.BUSY
        } else {
          const rej = evs.find((e) => e.type === 'rejected');
          assert.ok(rej, `SIP.js: the INVITE rejected: ${JSON.stringify(evs)}`);
          assert.equal(rej.status, 486, JSON.stringify(rej));
        }
        const { msgs, invite, final } = outgoingExchange(await agent.frames());
        assert.ok(final, `a final response:\n${trace(msgs)}`);
        assert.equal(final.status, 486, `${LIB}: the INVITE's final response:\n${trace(msgs)}`);
        assert.ok(msgs.some((m) => m.dir === 'in' && m.status === 180), `${LIB}: the 180 came first:\n${trace(msgs)}`);
        const name = await callName(gw, invite.get('call-id'));
        const sum = await callEnded(gw, name, 'PBX answered 486', LIB);
        assert.ok(!sum.answered, `not answered: ${sum.line}`);
        const s = await sippDone(uas, LIB, 10000 * SLOW);
        assert.deepEqual(sippRequests(s.trace).map((e) => e.msg.method), ['INVITE', 'ACK'],
          `${LIB}: what SIPp got:\n${sippSummary(s.trace)}`);
        await agent.call(lib === 'jssip' ? 'jssipStop' : 'sipjsStop');
      });
    }));
}

// ---------------------------------------------------------------------------
// The page closed mid-call: SIPp has the BYE within BYE_WITHIN_MS.
//
// SIPp (call_uas_answer.xml) waits HOLD_MS after the ACK, during which a BYE
// fails its scenario, then expects the BYE within BYE_WITHIN_MS + SLACK_MS.
// rtcsipd ACKs SIPp's 200 before it answers the browser, so SIPp's window
// opens before the page's call is confirmed + HOLD_MS; the page is closed
// SLACK_MS after that, and the test measures page close -> BYE in SIPp's trace.

const HOLD_MS = 4000;
const SLACK_MS = 300;

for (const { lib, name: LIB } of LIBS) {
  test(`${LIB}: the page closed mid-call -> SIPp gets rtcsipd's BYE within ${BYE_WITHIN_MS} ms`,
    { timeout: TEST_TIMEOUT }, (t) => withEnv(`browser-calls-closed-${lib}`, async (env) => {
      const uas = await startSippUas(env, 'call_uas_answer.xml',
        { RING_MS: 200, HOLD_MS, BYE_TIMEOUT_MS: BYE_WITHIN_MS + 2 * SLACK_MS });
      const { gw, web, browser } = await startAll(env, { sipp: uas });
      await withAgentPage(browser, web, `calls-closed-${lib}`, async (agent) => {
        await startAndRegister(agent, lib, gw);
        await placeCall(agent, lib, SIPP_URI);
        const { name } = await expectAnswered(agent, lib, gw, LIB);
        const confirmedAt = (await callOutcome(agent, lib, 1000)).e.t; // the page's clock is ours
        const r = await checkMedia(t, agent, lib, gw, name, LIB, { minPackets: 50, timeoutMs: HOLD_MS - 1000, hear: false });
        assert.ok(await udpPortInUse(r.daemonPort), 'rtcsipd holds its ICE port during the call');

        const wait = confirmedAt + HOLD_MS + SLACK_MS - Date.now();
        assert.ok(wait > 0, `the media check ended before the page was to be closed (${wait} ms late)`);
        await sleep(wait);
        const closedAt = Date.now();
        await agent.page.close(); // no BYE from the page: its WebSocket just goes
        const sum = await callEnded(gw, name, 'WebSocket closed', LIB);
        t.diagnostic(`rtcsipd, ${Date.now() - closedAt} ms after the page closed: ${sum.line}`);
        assert.ok(sum.answered && sum.rtcsipdpbxRtp > 50 && sum.pbxrtcsipdRtp > 50, `media flowed: ${sum.line}`);

        const s = await sippDone(uas, LIB, 10000 * SLOW);
        const ack = sippRequests(s.trace, 'ACK')[0];
        const bye = sippRequests(s.trace, 'BYE')[0];
        assert.ok(ack && bye, `SIPp got the ACK and the BYE:\n${sippSummary(s.trace)}`);
        t.diagnostic(`SIPp: ACK ${ack.t - confirmedAt} ms from the page's confirmed, BYE ${bye.t - closedAt} ms ` +
          'after the page closed');
        assert.ok(ack.t + HOLD_MS <= closedAt, `SIPp's window for the BYE opened (ACK + ${HOLD_MS} ms) before the ` +
          `page closed: ACK at ${ack.t}, closed at ${closedAt}`);
        assert.ok(bye.t - closedAt <= BYE_WITHIN_MS, `SIPp got the BYE ${bye.t - closedAt} ms after the page closed ` +
          `(at most ${BYE_WITHIN_MS})`);
        await waitFor(async () => !(await udpPortInUse(r.daemonPort)), 3000 * SLOW,
          { interval: 50, what: `rtcsipd to close its ICE port ${r.daemonPort}` });
        assert.ok(gw.child.running, 'rtcsipd still runs');
      });
    }));
}

// ---------------------------------------------------------------------------
// A wrong DTLS fingerprint in the browser's offer.

test('JsSIP offers a wrong a=fingerprint: rtcsipd\'s DTLS check fails, the call ends on both sides (media failed), nothing reaches SIPp',
  { timeout: TEST_TIMEOUT }, (t) => withEnv('browser-calls-bad-fingerprint', async (env) => {
    const uas = await startSippUas(env, 'call_uas_answer.xml', { RING_MS: 200, HOLD_MS: 0, BYE_TIMEOUT_MS: 20000 * SLOW });
    const { gw, web, browser } = await startAll(env, { sipp: uas });
    await withAgentPage(browser, web, 'calls-bad-fingerprint', async (agent) => {
      await startAndRegister(agent, 'jssip', gw);
      await placeCall(agent, 'jssip', SIPP_URI, { badFingerprint: true });
      const end = await callEnd(agent, 'jssip', 20000 * SLOW).catch(async (e) => {
        throw new Error(`${e.message}\n${await pageInfo(agent, 'jssip', gw)}`);
      });
      const evs = await callEvents(agent, 'jssip');
      const mod = evs.find((e) => e.type === 'sdpModified');
      assert.ok(mod, `the offer was modified: ${JSON.stringify(evs)}`);
      const { msgs, invite, final } = outgoingExchange(await agent.frames());
      assert.ok(invite.body.includes(`a=fingerprint:sha-256 ${mod.fingerprint}`),
        `the INVITE carries the wrong fingerprint:\n${block(invite.body)}`);
      const name = await callName(gw, invite.get('call-id'));
      t.diagnostic(`JsSIP: ${JSON.stringify(end)}; final response ${final ? final.status : 'none'}`);
      if (final && final.status === 200) {
        // Answered, then ended by rtcsipd: a BYE to the page.
        assert.equal(end.type, 'ended', JSON.stringify(end));
        assert.equal(end.originator, 'remote', `rtcsipd ended the call: ${JSON.stringify(end)}`);
        assert.ok(msgs.some((m) => m.dir === 'in' && m.method === 'BYE'), `rtcsipd sent the page a BYE:\n${trace(msgs)}`);
      } else {
        assert.ok(final && final.status >= 400, `an error response to the page:\n${trace(msgs)}`);
        assert.equal(end.type, 'failed', JSON.stringify(end));
      }
      const sum = await callEnded(gw, name, /^media failed/, 'wrong fingerprint');
      t.diagnostic(`rtcsipd: ${sum.line}`);
      assert.equal(sum.rtcsipdpbxRtp, 0, `no media from the browser reached SIPp: ${sum.line}`);
      assert.equal(sum.rtcsipdbrowserRtp, 0, `no media to the browser: ${sum.line}`);
      assert.match(callLog(gw, name), /fingerprint/i, `rtcsipd says why:\n${block(callLog(gw, name))}`);
      const s = await sippDone(uas, 'wrong fingerprint', 10000 * SLOW);
      assert.deepEqual(sippRequests(s.trace).map((e) => e.msg.method), ['INVITE', 'ACK', 'BYE'],
        `SIPp's call was ended by rtcsipd:\n${sippSummary(s.trace)}`);
      await agent.call('jssipStop');
    });
  }));

// The built-in echo target with real WebRTC media: JsSIP and SIP.js (npm
// releases) in headless Chromium call sip:echo@example.com through rtcsipd
// (wss://, no REGISTER needed); rtcsipd answers the INVITE itself (200 OK with
// a WebRTC answer: ICE by libnice, DTLS-SRTP) and reflects the browser's RTP.
// Chromium's fake microphone beeps; the test checks that RTP flows both ways
// over 127.0.0.1 and that the beep comes back (a WebAudio AnalyserNode on the
// remote track: Chromium 156's inbound-rtp audioLevel/totalAudioEnergy stay 0
// for a muted <audio> element, the analyser does not), then hangs up (BYE) and
// checks that rtcsipd ends the call.  A page closed mid-call (WebSocket gone,
// no BYE) must make rtcsipd free the call within 2 s.
//
// Runs in a loopback-only network namespace with Chromium's loopback ICE
// (runInLoopbackNetns + launchChromium({ loopbackIce: true }), see
// ice-loopback.test.mjs), so that every ICE candidate is 127.0.0.1.
import { runInLoopbackNetns, startWebServer, launchChromium, withAgentPage } from './lib/browser.mjs';

// Re-runs this file in a fresh network namespace with only lo (the parent
// exits here); must come before node:test is loaded.
await runInLoopbackNetns();

const { default: test } = await import('node:test');
const { default: assert } = await import('node:assert/strict');
const { withEnv, startPbxAndGateway, waitFor, udpPortInUse, VALGRIND_SLOWDOWN } = await import('../lib/harness.mjs');
const { DOMAIN, sipFrames } = await import('./lib/steps.mjs');

const ECHO = `sip:echo@${DOMAIN}`;
const CALLER = `sip:alice@${DOMAIN}`;
const MIN_PACKETS = 200; // 20 ms packets: 4 s of audio each way
const MEDIA_TIMEOUT_MS = 15000;
const SILENCE_RMS = 0.01; // the fake device's beep comes back at ~0.3 RMS
const RTP_PORTS = [21000, 21999]; // rtcsipd's [media] rtp_port_min/max here
// A closed page: the call is freed within this (longer under `meson test --setup valgrind`).
const FREE_WITHIN_MS = 2000 * VALGRIND_SLOWDOWN;

// rtcsipd's log lines of an echo call (gateway/echo.c, id "echo-N"):
//   [echo-N] INVITE echo from <uri> on <ws conn>, Call-ID <id>
//   [echo-N] call ended: cause <cause>, <secs> s[ (not answered)], browser->rtcsipd <n> rtp/<n> bytes
//     <n> rtcp, rtcsipd->browser <n> rtp/<n> bytes <n> rtcp, srtp auth failures <n>, not forwarded <n> (<reason> <n>, ...)
const inviteLineRe = (callId) => new RegExp(`\\[(echo-\\d+)\\] INVITE \\S+ from .*Call-ID ${escapeRe(callId)}(\\s|$)`);
const endLineRe = (name) => new RegExp(`\\[${name}\\] call ended: `);
const SUMMARY_RE = new RegExp('call ended: cause (?<cause>.*?), (?<secs>[\\d.]+) s(?<unanswered> \\(not answered\\))?, ' +
  'browser->rtcsipd (?<inRtp>\\d+) rtp/(?<inBytes>\\d+) bytes (?<inRtcp>\\d+) rtcp, ' +
  'rtcsipd->browser (?<outRtp>\\d+) rtp/(?<outBytes>\\d+) bytes (?<outRtcp>\\d+) rtcp, ' +
  'srtp auth failures (?<authFailures>\\d+), not forwarded (?<notForwarded>\\d+)');

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// The summary of LINE (rtcsipd's "call ended" line) as numbers; fails when it does not parse.
function parseSummary(line) {
  const m = line.match(SUMMARY_RE);
  assert.ok(m, `rtcsipd's end-of-call line has the summary format (${SUMMARY_RE}): ${line}`);
  const g = { ...m.groups };
  for (const k of ['secs', 'inRtp', 'inBytes', 'inRtcp', 'outRtp', 'outBytes', 'outRtcp', 'authFailures', 'notForwarded']) {
    g[k] = Number(g[k]);
  }
  g.answered = !g.unanswered;
  return g;
}

// The echo call's name in rtcsipd's log ("echo-N"), from its INVITE line for INVITE's Call-ID.
async function echoCallName(gw, invite) {
  const line = await waitForDaemonLine(gw, inviteLineRe(invite.get('call-id')), 0, 2000 * VALGRIND_SLOWDOWN,
    'the echo call\'s INVITE line');
  return line.match(/\[(echo-\d+)\]/)[1];
}

// Asserts the summary of an echo call that carried media both ways and ended with CAUSE.
function checkSummary(line, cause, media, what) {
  const sum = parseSummary(line);
  const info = `${line}\n(browser: ${JSON.stringify(media)})`;
  assert.equal(sum.cause, cause, `${what}: end cause: ${info}`);
  assert.ok(sum.answered, `${what}: the call was answered: ${info}`);
  assert.ok(sum.inRtp > MIN_PACKETS, `${what}: rtcsipd received > ${MIN_PACKETS} RTP packets: ${info}`);
  assert.ok(sum.outRtp > MIN_PACKETS, `${what}: rtcsipd reflected > ${MIN_PACKETS} RTP packets: ${info}`);
  assert.ok(sum.outRtp <= sum.inRtp, `${what}: rtcsipd sent back no more than it received: ${info}`);
  assert.ok(sum.outRtp >= media.in.packetsReceived, `${what}: the browser received only what rtcsipd sent: ${info}`);
  assert.equal(sum.authFailures, 0, `${what}: no SRTP authentication failures: ${info}`);
  return sum;
}

// rtcsipd's UDP port of the call (its end of the selected ICE pair, as T.callMedia reports it).
const daemonPort = (media) => Number(media.pair.remote.match(/^127\.0\.0\.1:(\d+) /)[1]);

async function startAll(env) {
  // rtcsipd's RTP/ICE ports: a range below the kernel's ephemeral ports (where
  // the harness's and Chromium's ports come from), checked on the ICE pair.
  const { kam, gw } = await startPbxAndGateway(env, {
    domain: DOMAIN,
    rtcsipd: { overrides: { media: { rtp_port_min: RTP_PORTS[0], rtp_port_max: RTP_PORTS[1] } } },
  });
  const web = await startWebServer();
  env.defer(() => web.close());
  const browser = await launchChromium({ loopbackIce: true });
  env.defer(() => browser.close());
  return { kam, gw, web, browser };
}

// Text for an assertion message: no CR, no blank line (it goes into a TAP
// YAML block, which a blank line would end).
const block = (s) => String(s).replace(/\r/g, '').replace(/\n\s*(?=\n)/g, '').trimEnd();

// A one-line trace of the page's SIP messages: "out INVITE sip:..", "in 501 (1 INVITE)".
function trace(msgs) {
  return msgs.map((m) => `${m.dir} ${m.isResponse ? `${m.status} ${m.reason} (${m.get('cseq')})` : `${m.method} ${m.uri}`}`)
    .join('\n');
}

// Checks the INVITE the page sent and rtcsipd's final answer to it.  When the
// answer is not 2xx (501 while the echo target is not implemented), fails with
// the status line and the SIP trace.  Returns { invite, answer }.
function checkInviteExchange(frames, what) {
  const msgs = sipFrames(frames);
  const invite = msgs.find((m) => m.dir === 'out' && m.method === 'INVITE');
  assert.ok(invite, `${what}: the page sent an INVITE:\n${trace(msgs)}`);
  assert.equal(invite.uri, ECHO, `${what}: INVITE Request-URI`);
  assert.match(invite.body, /^m=audio /m, `${what}: the INVITE carries an audio offer`);
  assert.match(invite.body, /^a=fingerprint:/m, `${what}: a DTLS-SRTP offer`);
  const callId = invite.get('call-id');
  const final = msgs.find((m) => m.dir === 'in' && m.isResponse && m.status >= 200 &&
    m.get('call-id') === callId && /\bINVITE$/.test(m.get('cseq')));
  assert.ok(final, `${what}: a final response to the INVITE reached the page:\n${trace(msgs)}`);
  if (final.status >= 300) {
    const hint = final.status === 501 ? ' (the echo target is not implemented in rtcsipd yet)' : '';
    assert.fail(`${what}: rtcsipd answered the INVITE to ${ECHO} with ` +
      `"${final.status} ${final.reason}"${hint}\n--- SIP ---\n${trace(msgs)}\n--- final response ---\n${block(final.raw)}`);
  }
  assert.equal(final.status, 200, `${what}: 200 OK to the INVITE`);
  assert.match(final.get('content-type') || '', /^application\/sdp/i, `${what}: 200 OK with SDP`);
  const sdp = final.body;
  assert.match(sdp, /^m=audio [1-9]\d* (UDP\/TLS\/)?RTP\/SAVPF /m, `${what}: a WebRTC audio answer:\n${sdp}`);
  assert.match(sdp, /^a=ice-ufrag:/m, `${what}: ICE credentials in the answer:\n${sdp}`);
  assert.match(sdp, /^a=fingerprint:sha-256 /m, `${what}: a DTLS fingerprint in the answer:\n${sdp}`);
  assert.match(sdp, /^a=setup:(active|passive)$/m, `${what}: a=setup in the answer:\n${sdp}`);
  const cands = sdp.match(/^a=candidate:.*$/gm) || [];
  assert.ok(cands.length > 0, `${what}: the answer has ICE candidates:\n${sdp}`);
  for (const c of cands) {
    assert.equal(c.split(' ')[4], '127.0.0.1', `${what}: candidate on 127.0.0.1 only: ${c}`);
  }
  return { invite, answer: final, msgs };
}

// The media of the call, measured in the page (T.callMedia), asserted.
// For failure messages: what the page measured (R), the call's events in the
// page and rtcsipd's log lines of the call NAME.
async function mediaInfo(agent, lib, r, gw, name) {
  const events = (await agent.events(`${lib}-call`).catch(() => [])).map((e) => JSON.stringify(e)).join('\n');
  const daemon = gw.child.output.split('\n').filter((l) => l.includes(`[${name}]`)).join('\n');
  return `${JSON.stringify(r)}\n--- ${lib} call events ---\n${events}\n--- rtcsipd [${name}] ---\n${daemon}`;
}

async function checkEchoMedia(t, agent, lib, what, gw, name) {
  const r = await agent.call('callMedia', { lib, minPackets: MIN_PACKETS, timeoutMs: MEDIA_TIMEOUT_MS },
    MEDIA_TIMEOUT_MS + 10000);
  const info = await mediaInfo(agent, lib, r, gw, name);
  t.diagnostic(`${what} media: ${JSON.stringify(r)}`);
  assert.equal(r.connectionState, 'connected', `${what}: peer connection state: ${info}`);
  assert.equal(r.dtlsState, 'connected', `${what}: DTLS: ${info}`);
  assert.ok(r.pair, `${what}: a selected candidate pair: ${info}`);
  assert.match(r.pair.local, /^127\.0\.0\.1:/, `${what}: local candidate: ${info}`);
  assert.match(r.pair.remote, /^127\.0\.0\.1:\d+ /, `${what}: rtcsipd's candidate: ${info}`);
  const port = daemonPort(r);
  assert.ok(port >= RTP_PORTS[0] && port <= RTP_PORTS[1], `${what}: rtcsipd's ICE port ${port} in ` +
    `[media] rtp_port_min..max ${RTP_PORTS.join('..')}: ${info}`);
  assert.ok(r.out.packetsSent > MIN_PACKETS, `${what}: RTP packets sent > ${MIN_PACKETS}: ${info}`);
  assert.ok(r.in.packetsReceived > MIN_PACKETS,
    `${what}: RTP packets received back > ${MIN_PACKETS} within ${MEDIA_TIMEOUT_MS} ms: ${info}`);
  assert.ok(r.source.totalAudioEnergy > 0, `${what}: the fake microphone is not silent: ${info}`);
  const energy = (r.in.totalAudioEnergy || 0) > (r.in.energyStart || 0) || r.in.audioLevelMax > 0;
  assert.ok(r.analyser.rmsMax > SILENCE_RMS || energy,
    `${what}: the beep comes back (remote audio RMS ${r.analyser.rmsMax} > ${SILENCE_RMS}): ${info}`);
  return r;
}

// Waits (at most MS ms) until rtcsipd no longer holds 127.0.0.1:PORT (udp).
async function waitPortFreed(port, ms, what) {
  await waitFor(async () => !(await udpPortInUse(port)), ms,
    { interval: 50, what: `${what}: rtcsipd to close its ICE socket 127.0.0.1:${port}` });
}

// Waits (at most MS ms) for a line matching RE in rtcsipd's output after
// character FROM; returns the line.
async function waitForDaemonLine(gw, re, from, ms, what) {
  return waitFor(() => {
    const m = gw.child.output.slice(from).match(new RegExp(`^.*${re.source}.*$`, `m${re.flags.replace('m', '')}`));
    return m && m[0];
  }, ms, { interval: 20, what: `rtcsipd to log ${what} (${re})` }).catch((e) => {
    throw new Error(`${e.message}\n--- rtcsipd output since the step ---\n${block(gw.child.output.slice(from).slice(-6000))}`);
  });
}

// After the page hung up: the page's BYE got 200, rtcsipd logged the end of
// call NAME (after log offset MARK) with its figures, and its ICE port is free.
async function checkByeEndsCall(t, agent, gw, name, media, mark, lib) {
  const msgs = sipFrames(await agent.frames());
  const bye = msgs.find((m) => m.dir === 'out' && m.method === 'BYE');
  assert.ok(bye, `${lib} sent a BYE:\n${trace(msgs)}`);
  const byeResp = await waitFor(async () => sipFrames(await agent.frames()).find((m) => m.dir === 'in' &&
    m.isResponse && m.get('call-id') === bye.get('call-id') && /\bBYE$/.test(m.get('cseq'))), 5000,
  { interval: 50, what: 'a response to the BYE' });
  assert.equal(byeResp.status, 200, `rtcsipd's answer to the BYE:\n${block(byeResp.raw)}`);
  const line = await waitForDaemonLine(gw, endLineRe(name), mark, 3000 * VALGRIND_SLOWDOWN, 'the end of the call');
  t.diagnostic(`rtcsipd: ${line}`);
  checkSummary(line, 'BYE from the browser', media, lib);
  await waitPortFreed(daemonPort(media), 3000 * VALGRIND_SLOWDOWN, 'after the BYE');
}

test('JsSIP calls echo: 200 OK with a WebRTC answer, RTP and the beep reflected over 127.0.0.1, BYE',
  { timeout: 60000 }, (t) => withEnv('browser-echo-jssip', async (env) => {
    const { gw, web, browser } = await startAll(env);
    await withAgentPage(browser, web, 'echo-jssip', async (agent) => {
      await agent.call('jssipStart', { url: gw.wssUrl, uri: CALLER, register: false, debug: true });
      const conn = await agent.waitForEvent('jssip', ['connected', 'disconnected'], 10000);
      assert.equal(conn.type, 'connected', `JsSIP's WebSocket to rtcsipd: ${JSON.stringify(conn)}`);

      await agent.call('jssipCall', { target: ECHO });
      const ev = await agent.waitForEvent('jssip-call', ['confirmed', 'failed', 'ended'], 20000);
      const { invite, answer } = checkInviteExchange(await agent.frames(), 'JsSIP');
      assert.equal(ev.type, 'confirmed', `JsSIP session: ${JSON.stringify(ev)}`);
      t.diagnostic(`answer SDP: ${answer.body.trim().split(/\r?\n/).join(' | ')}`);
      const name = await echoCallName(gw, invite);

      const media = await checkEchoMedia(t, agent, 'jssip', 'JsSIP', gw, name);

      const mark = gw.child.output.length;
      await agent.call('jssipHangup');
      const end = await agent.waitForEvent('jssip-call', ['ended', 'failed'], 5000);
      assert.equal(end.type, 'ended', JSON.stringify(end));
      assert.equal(end.originator, 'local', JSON.stringify(end));
      await checkByeEndsCall(t, agent, gw, name, media, mark, 'JsSIP');

      await agent.call('jssipStop');
    });
  }));

test('SIP.js calls echo: Established, RTP and the beep reflected over 127.0.0.1, BYE',
  { timeout: 60000 }, (t) => withEnv('browser-echo-sipjs', async (env) => {
    const { gw, web, browser } = await startAll(env);
    await withAgentPage(browser, web, 'echo-sipjs', async (agent) => {
      const st = await agent.call('sipjsStart', { url: gw.wssUrl, uri: CALLER, register: false, debug: true });
      assert.equal(st.started, true, `SIP.js UserAgent started (WebSocket to rtcsipd): ${JSON.stringify(st)}`);

      await agent.call('sipjsCall', { target: ECHO });
      // 'rejected' (a final non-2xx) is followed by Terminated.
      const ev = await waitFor(async () => (await agent.events('sipjs-call')).find((e) => e.type === 'inviteError' ||
        (e.type === 'state' && (e.state === 'Established' || e.state === 'Terminated'))), 20000,
      { interval: 50, what: 'SIP.js session Established or Terminated' });
      const { invite, answer } = checkInviteExchange(await agent.frames(), 'SIP.js');
      assert.equal(ev.state, 'Established', `SIP.js session: ${JSON.stringify(await agent.events('sipjs-call'))}`);
      t.diagnostic(`answer SDP: ${answer.body.trim().split(/\r?\n/).join(' | ')}`);
      const name = await echoCallName(gw, invite);

      const media = await checkEchoMedia(t, agent, 'sipjs', 'SIP.js', gw, name);

      const mark = gw.child.output.length;
      await agent.call('sipjsHangup');
      await waitFor(async () => (await agent.events('sipjs-call'))
        .find((e) => e.type === 'state' && e.state === 'Terminated'), 5000,
      { interval: 50, what: 'SIP.js session Terminated after bye()' });
      await checkByeEndsCall(t, agent, gw, name, media, mark, 'SIP.js');

      await agent.call('sipjsStop');
    });
  }));

test(`a page closed mid-call: rtcsipd frees the echo call within ${FREE_WITHIN_MS} ms`,
  { timeout: 60000 }, (t) => withEnv('browser-echo-page-closed', async (env) => {
    const { gw, web, browser } = await startAll(env);
    await withAgentPage(browser, web, 'echo-page-closed', async (agent) => {
      await agent.call('jssipStart', { url: gw.wssUrl, uri: CALLER, register: false, debug: true });
      const conn = await agent.waitForEvent('jssip', ['connected', 'disconnected'], 10000);
      assert.equal(conn.type, 'connected', JSON.stringify(conn));
      await agent.call('jssipCall', { target: ECHO });
      const ev = await agent.waitForEvent('jssip-call', ['confirmed', 'failed', 'ended'], 20000);
      const { invite } = checkInviteExchange(await agent.frames(), 'JsSIP');
      assert.equal(ev.type, 'confirmed', JSON.stringify(ev));
      const name = await echoCallName(gw, invite);
      // Media flows (a shorter check: the point here is the release).
      const r = await agent.call('callMedia', { lib: 'jssip', minPackets: 50, timeoutMs: 8000 }, 15000);
      const info = await mediaInfo(agent, 'jssip', r, gw, name);
      assert.ok(r.pair && r.in.packetsReceived > 50, `RTP comes back before the page closes: ${info}`);
      assert.ok(await udpPortInUse(daemonPort(r)), `rtcsipd holds its ICE port during the call: ${info}`);

      const mark = gw.child.output.length;
      const closedAt = Date.now();
      await agent.page.close(); // no BYE: the WebSocket just goes
      const line = await waitForDaemonLine(gw, endLineRe(name), mark, FREE_WITHIN_MS, 'the release of the call');
      t.diagnostic(`rtcsipd, ${Date.now() - closedAt} ms after the page closed: ${line}`);
      const sum = parseSummary(line);
      assert.equal(sum.cause, 'WebSocket closed', line);
      assert.ok(sum.answered && sum.outRtp > 50, line);
      await waitPortFreed(daemonPort(r), Math.max(100, FREE_WITHIN_MS - (Date.now() - closedAt)),
        'after the page closed');
      assert.ok(gw.child.running, 'rtcsipd still runs');
    });
  }));

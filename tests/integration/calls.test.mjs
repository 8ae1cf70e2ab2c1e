// Calls through rtcsipd without a browser: a fake browser (SipWsClient over
// ws://) on one side, SIPp as the PBX (directly, or behind Kamailio) on the
// other.  The browser's offer is one captured from Chromium
// (tests/unit/data/sdp/chromium-jssip-audio.sdp, candidates on 192.0.2.2), so
// ICE never completes: these tests check the signalling both ways, the SDP
// translation as each side sees it, every way a call ends (rtcsipd's
// "[call-N] call ended: cause ..." line), and that calls leave no file
// descriptors or ports behind.  tests/browser/calls.test.mjs does calls with
// real media.
//
// Under `meson test --setup valgrind` every wait on the daemon is
// VALGRIND_SLOWDOWN times longer.
import test from 'node:test';
import assert from 'node:assert/strict';
import { withEnv, randomToken, waitFor, sleep, openFds, udpSockets } from '../lib/harness.mjs';
import { params, uriOf, digestAuthorization, parseChallenge, webrtcAnswer } from '../lib/sipclient.mjs';
import {
  SLOW, DOMAIN, SIPP_URI, ALICE, tagOf, nb, traced, gateway as startGateway, sippCallsAlice as sippCalls,
  invite, responsesTo, finalResponse, bye, ended,
} from '../lib/calls.mjs';

const BROWSER_FINGERPRINT = 'DC:F8:AB:36'; // the start of the offer's a=fingerprint
const RTP_MIN = 31500; // this file's [media] port range (echo.test.mjs has 31300-31399)
const RTP_MAX = 31599;
const TEST_TIMEOUT = 60000 * SLOW;

const inRange = (port) => port >= RTP_MIN && port <= RTP_MAX;

// ---------------------------------------------------------------------------
// Setup.

// The browser side: rtcsipd in front of PBXPORT, and alice connected over ws.
const gateway = (env, pbxPort, { limits = {}, media = {}, register = false } = {}) => startGateway(env, pbxPort, {
  rtp: [RTP_MIN, RTP_MAX], register, overrides: { media, limits: { max_message_size: 65536, ...limits } },
});

// A call from the browser: SIPp UAS SCENARIO (with VARS) as the PBX itself
// (kamailio: false) or behind Kamailio, which routes sip:sipp@DOMAIN to it.
async function outgoingSetup(env, { scenario, vars = {}, kamailio = false, calls = 1, limits = {},
  media = {}, timeoutSec = 30 }) {
  const uas = await env.startSipp({ scenario, vars, calls, timeoutSec: timeoutSec * SLOW });
  await uas.bound();
  let kam = null;
  if (kamailio) {
    kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE], sippRoutes: [{ user: 'sipp', port: uas.port }] });
  }
  const { gw, alice } = await gateway(env, kam ? kam.port : uas.port, { limits, media });
  return { uas, kam, gw, alice };
}

// A call from the PBX: Kamailio (the registrar), rtcsipd, alice registered.
async function incomingSetup(env, { limits = {} } = {}) {
  const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE] });
  const { gw, alice } = await gateway(env, kam.port, { limits, register: true });
  return { kam, gw, alice };
}

// SIPp calls alice@DOMAIN through Kamailio with SCENARIO (it_call_uac*.xml).
const sippCallsAlice = (env, kam, scenario, vars = {}, timeoutSec = 20) =>
  sippCalls(env, kam, scenario, { HOLD_MS: 500, ...vars }, timeoutSec);

// ---------------------------------------------------------------------------
// The browser's side of a call (SipWsClient speaks the transactions by hand;
// invite, finalResponse and bye: lib/calls.mjs).

// ACK for RESP (a final response to CALL's INVITE): a 2xx ACK is a new
// transaction to the Contact (through the Record-Route); a non-2xx ACK
// reuses the INVITE's branch and Request-URI.
function ack(alice, call, resp, cseq = call.cseq) {
  const ok = resp.status < 300;
  const routes = resp.all('record-route').reverse();
  alice.sendRaw(alice.buildRequest('ACK', {
    uri: ok ? uriOf(resp.get('contact')) : call.uri, to: resp.get('to'), callId: call.callId, cseq,
    contact: false, branch: ok ? undefined : call.branch, headers: ok && routes.length ? { Route: routes } : {},
  }).text);
}

// How alice answers requests from rtcsipd.  PLAN for an INVITE: 'answer'
// (180, then 200 with a WebRTC answer after RING_MS), 'ring' (180 only),
// or a status (486).  A CANCEL gets 200, and the INVITE it cancels 487.
// Every other request gets 200.
function answerCalls(alice, plan, { ringMs = 200 } = {}) {
  const calls = new Map(); // Call-ID -> { invite, toTag }
  alice.answer = (req) => {
    if (req.method === 'INVITE') {
      const c = { invite: req, toTag: randomToken(10) };
      calls.set(req.get('call-id'), c);
      const send = (status, reason, headers = {}, body = '') =>
        alice.sendRaw(alice.buildResponse(req, status, reason, headers, body, c.toTag));
      if (typeof plan === 'number') {
        send(plan, plan === 486 ? 'Busy Here' : 'Declined');
        return null;
      }
      send(180, 'Ringing', { Contact: `<${alice.contactUri}>` });
      if (plan === 'answer') {
        c.timer = setTimeout(() => {
          c.answer = webrtcAnswer(req.body);
          send(200, 'OK', { Contact: `<${alice.contactUri}>`, 'Content-Type': 'application/sdp' }, c.answer);
        }, ringMs);
      }
      return null;
    }
    if (req.method === 'CANCEL') {
      const c = calls.get(req.get('call-id'));
      if (c) {
        clearTimeout(c.timer);
        alice.sendRaw(alice.buildResponse(req, 200, 'OK', {}, '', c.toTag));
        alice.sendRaw(alice.buildResponse(c.invite, 487, 'Request Terminated', {}, '', c.toTag));
        return null;
      }
      return { status: 481, reason: 'Call/Transaction Does Not Exist' };
    }
    return { status: 200, reason: 'OK' };
  };
  return calls;
}

// ---------------------------------------------------------------------------
// Checks.

// rtcsipd's WebRTC SDP (to the browser): checks what every one must have.
function checkWebrtcSdp(sdp, what) {
  assert.match(sdp, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF [\d ]+\r$/m, `${what}: one WebRTC audio m= line\n${nb(sdp)}`);
  assert.equal((sdp.match(/^m=/mg) || []).length, 1, `${what}: one m= line`);
  assert.match(sdp, /^a=ice-ufrag:\S+\r$/m, `${what}: ice-ufrag`);
  assert.match(sdp, /^a=ice-pwd:\S+\r$/m, `${what}: ice-pwd`);
  assert.match(sdp, /^a=fingerprint:sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}\r$/m, `${what}: fingerprint`);
  assert.ok(!sdp.includes(BROWSER_FINGERPRINT), `${what}: rtcsipd's own fingerprint, not the browser's`);
  assert.match(sdp, /^a=rtcp-mux\r$/m, `${what}: rtcp-mux`);
  const cands = sdp.match(/^a=candidate:.*$/mg) || [];
  assert.ok(cands.length >= 1, `${what}: at least one candidate`);
  for (const c of cands) {
    const f = c.trim().split(' ');
    assert.equal(f[4], '127.0.0.1', `${what}: candidate on 127.0.0.1: ${c}`);
    assert.ok(inRange(Number(f[5])), `${what}: candidate port in [media] ${RTP_MIN}-${RTP_MAX}: ${c}`);
  }
}

// A plain SDP (to the PBX): RTP/AVP on 127.0.0.1, a port in the range, no WebRTC lines.
function checkPlainSdp(sdp, what) {
  const ms = sdp.match(/^m=.*$/mg) || [];
  assert.equal(ms.length, 1, `${what}: one m= line\n${nb(sdp)}`);
  const m = ms[0].trim().match(/^m=audio (\d+) RTP\/AVP ([\d ]+)$/);
  assert.ok(m, `${what}: m=audio PORT RTP/AVP ...: ${ms[0]}`);
  assert.ok(inRange(Number(m[1])), `${what}: port ${m[1]} in [media] ${RTP_MIN}-${RTP_MAX}`);
  assert.match(sdp, /^c=IN IP4 127\.0\.0\.1\s*$/m, `${what}: c=IN IP4 127.0.0.1`);
  for (const re of [/^a=ice-/m, /^a=candidate/m, /^a=fingerprint/m, /^a=setup/m, /^a=rtcp-mux/m,
    /^a=ssrc/m, /^a=extmap/m, /^a=end-of-candidates/m]) {
    assert.doesNotMatch(sdp, re, `${what}: no ${re.source.slice(1)} line\n${nb(sdp)}`);
  }
  return { port: Number(m[1]), pts: m[2].split(' ') };
}

// ---------------------------------------------------------------------------
// Browser -> PBX.

test('browser -> PBX: the INVITE reaches the PBX with a plain offer, 180 and the 200 (WebRTC answer) come back, ACK, BYE from the browser',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-out-basic', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas.xml',
      vars: { RING_MS: 300, BYE_TIMEOUT_MS: 10000 * SLOW } });
    const call = invite(alice, { headers: { 'X-Test': 'not-for-the-pbx' } });
    const resp = await finalResponse(alice, call);
    assert.equal(resp.status, 200, `${resp.status} ${resp.reason}`);
    const early = resp.provisional.map((r) => r.status);
    assert.equal(early[0], 100, `100 Trying first (got ${early})`);
    assert.ok(early.includes(180), `180 relayed to the browser (got ${early})`);
    assert.equal(resp.get('call-id'), call.callId);
    assert.equal(tagOf(resp.get('from')), alice.fromTag);
    assert.ok(tagOf(resp.get('to')), 'a To tag');
    assert.equal(resp.all('via').length, 1, 'only the browser\'s Via');
    assert.ok(resp.get('contact'), 'a Contact');
    assert.equal(resp.get('content-type'), 'application/sdp');
    checkWebrtcSdp(resp.body, 'the answer to the browser');
    assert.match(resp.body, /^a=setup:(active|passive)\r$/m);
    assert.match(resp.body, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF 0( |\r)/m, 'PCMU, as the PBX answered, first');
    assert.match(resp.body, /^a=rtpmap:0 PCMU\/8000\r$/m);
    ack(alice, call, resp);
    await sleep(300);
    const b = await bye(alice, call, resp, 2);
    assert.equal(b.status, 200, `BYE: ${b.status} ${b.reason}`);
    await ended(gw, 'BYE from the browser');

    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS (INVITE, ACK, BYE):\n${nb(s.errors)}\n${nb(s.messages)}`);
    assert.deepEqual(s.requests.map((r) => r.split(' ')[0]), ['INVITE', 'ACK', 'BYE']);
    const inv = traced(s.requests[0]);
    assert.equal(inv.uri, SIPP_URI, 'the browser\'s Request-URI');
    assert.equal(inv.get('call-id'), call.callId, 'the browser\'s Call-ID');
    assert.equal(inv.get('from'), call.sent.get('from'), 'the browser\'s From, with its tag');
    assert.equal(inv.get('to'), call.sent.get('to'), 'the browser\'s To');
    assert.equal(inv.get('cseq'), '1 INVITE', 'the browser\'s CSeq number');
    assert.equal(inv.all('via').length, 1, 'one Via: rtcsipd\'s');
    assert.match(inv.get('via'), new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${gw.ports.sip};(.*;)?branch=z9hG4bK`));
    assert.match(uriOf(inv.get('contact')), new RegExp(`^sip:([^@;>]+@)?127\\.0\\.0\\.1:${gw.ports.sip}(;|$)`),
      `rtcsipd's own Contact: ${inv.get('contact')}`);
    assert.ok(!s.requests[0].includes('.invalid'), 'nothing of the browser\'s WebSocket addressing');
    assert.equal(inv.get('content-type'), 'application/sdp');
    const offer = checkPlainSdp(inv.body, 'the offer to the PBX');
    // the browser offered opus 111, red 63, G722 9, PCMU 0, PCMA 8, CN 13, telephone-event 110 and 126
    for (const pt of offer.pts) {
      assert.ok(['111', '9', '0', '8', '110', '126'].includes(pt), `payload type ${pt} (no red, no CN) in ${offer.pts}`);
    }
    for (const pt of ['111', '9', '0', '8']) assert.ok(offer.pts.includes(pt), `offered codec ${pt} kept: ${offer.pts}`);
    assert.ok(offer.pts.includes('126') || offer.pts.includes('110'), `telephone-event kept: ${offer.pts}`);
    assert.match(inv.body, /^a=rtpmap:111 opus\/48000\/2\s*$/m);
    assert.match(inv.body, /^a=rtpmap:9 G722\/8000\s*$/m);
    assert.match(inv.body, /^a=rtpmap:0 PCMU\/8000\s*$/m);
    assert.match(inv.body, /^a=rtpmap:8 PCMA\/8000\s*$/m);
    const ackAtPbx = traced(s.requests[1]);
    assert.equal(ackAtPbx.get('call-id'), call.callId);
    assert.match(ackAtPbx.get('cseq'), /^1 ACK$/);
    assert.match(gw.logs(), /\[call-\d+\] state \S+ -> \S+ \(/, 'state changes logged');
    assert.match(gw.logs(), /\[call-\d+\] call ended: cause BYE from the browser, [\d.]+ s, browser->rtcsipd /);
  }));

test('browser -> PBX through Kamailio: the PBX hangs up, the browser gets the BYE over its WebSocket',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-out-pbx-bye', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas_bye.xml', kamailio: true,
      vars: { HOLD_MS: 500, BYE_TIMEOUT_MS: 5000 * SLOW } });
    const call = invite(alice);
    const resp = await finalResponse(alice, call);
    assert.equal(resp.status, 200, `${resp.status} ${resp.reason}`);
    assert.ok(resp.provisional.some((r) => r.status === 180), '180 relayed');
    checkWebrtcSdp(resp.body, 'the answer to the browser');
    ack(alice, call, resp);
    const b = await alice.waitForRequest((r) => r.method === 'BYE' && r.get('call-id') === call.callId, 8000 * SLOW);
    assert.equal(tagOf(b.get('to')), alice.fromTag, 'To tag: the browser\'s');
    assert.equal(tagOf(b.get('from')), tagOf(resp.get('to')), 'From tag: the one of the 200');
    assert.match(b.get('cseq'), /^\d+ BYE$/);
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS (its BYE answered 200):\n${nb(s.errors)}\n${nb(s.messages)}`);
    await ended(gw, 'BYE from the PBX');
  }));

test('browser -> PBX through Kamailio: 180 then 486 from the PBX is relayed to the browser',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-out-486', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas_reject.xml', kamailio: true,
      vars: { STATUS: 486, REASON: 'Busy Here' } });
    const call = invite(alice);
    const resp = await finalResponse(alice, call);
    assert.equal(resp.status, 486, `${resp.status} ${resp.reason}`);
    assert.ok(resp.provisional.some((r) => r.status === 180), '180 relayed first');
    assert.equal(resp.all('via').length, 1, 'only the browser\'s Via');
    ack(alice, call, resp);
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS (ACK for its 486):\n${nb(s.errors)}\n${nb(s.messages)}`);
    await ended(gw, 'PBX answered 486');
  }));

const AUTH_CASES = [
  { status: 407, reason: 'Proxy Authentication Required', challenge: 'Proxy-Authenticate',
    credentials: 'Proxy-Authorization' },
  { status: 401, reason: 'Unauthorized', challenge: 'WWW-Authenticate', credentials: 'Authorization' },
];
for (const a of AUTH_CASES) {
  test(`browser -> PBX through Kamailio: a ${a.status} goes back to the browser with its ${a.challenge}, and the retried INVITE's ${a.credentials} reaches the PBX unchanged`,
    { timeout: TEST_TIMEOUT }, () => withEnv(`calls-out-${a.status}`, async (env) => {
      const nonce = randomToken(24);
      const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas_auth.xml', kamailio: true,
        vars: { DOMAIN, NONCE: nonce, BYE_TIMEOUT_MS: 10000 * SLOW, STATUS: a.status, REASON: a.reason,
          CHALLENGE: a.challenge, CREDENTIALS: a.credentials,
          AUTH_RE: `^ *Digest username=&quot;alice&quot;, realm=&quot;${DOMAIN}&quot;, nonce=&quot;${nonce}&quot;` } });
      const call = invite(alice);
      const r1 = await finalResponse(alice, call);
      assert.equal(r1.status, a.status, `${r1.status} ${r1.reason}`);
      // Without the challenge the browser could not go on; the test does (with the
      // challenge SIPp sent), to check the rest too, and fails on it at the end.
      const relayed = r1.get(a.challenge.toLowerCase());
      const chal = relayed || `Digest realm="${DOMAIN}", nonce="${nonce}", qop="auth", algorithm=MD5`;
      ack(alice, call, r1);
      const auth = digestAuthorization({ challenge: parseChallenge(chal), method: 'INVITE', uri: SIPP_URI,
        username: 'alice', password: ALICE.password });
      const retry = invite(alice, { callId: call.callId, cseq: 2, headers: { [a.credentials]: auth } });
      const r2 = await finalResponse(alice, retry);
      assert.equal(r2.status, 200, `the retried INVITE: ${r2.status} ${r2.reason}`);
      checkWebrtcSdp(r2.body, 'the answer to the browser');
      ack(alice, retry, r2);
      await sleep(200);
      const b = await bye(alice, retry, r2, 3);
      assert.equal(b.status, 200, `BYE: ${b.status} ${b.reason}`);
      const s = await uas.result();
      assert.equal(s.code, 0, `SIPp UAS (${a.status}, then the INVITE with credentials):\n${nb(s.errors)}\n${nb(s.messages)}`);
      const invites = s.requests.filter((r) => r.startsWith('INVITE ')).map(traced);
      assert.equal(invites.length, 2, `two INVITEs at the PBX, got ${invites.length}`);
      assert.equal(invites[0].get(a.credentials.toLowerCase()), undefined, 'no credentials in the first');
      assert.equal(invites[1].get(a.credentials.toLowerCase()), auth, `${a.credentials} unchanged`);
      assert.equal(invites[1].get('call-id'), call.callId, 'same Call-ID');
      assert.equal(invites[1].get('cseq'), '2 INVITE', 'the browser\'s new CSeq');
      assert.equal(invites[1].uri, SIPP_URI);
      checkPlainSdp(invites[1].body, 'the second offer to the PBX');
      await ended(gw, 'BYE from the browser');
      assert.ok(relayed, `the PBX's ${a.challenge} comes back to the browser; the ${a.status} was:\n${nb(r1.raw)}`);
      assert.equal(parseChallenge(relayed).nonce, nonce, 'the PBX\'s own challenge, unchanged');
    }));
}

test('browser -> PBX: CANCEL while it rings -> 200 to the CANCEL, CANCEL to the PBX, 487 to the browser',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-out-cancel', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas_cancel.xml',
      vars: { CANCEL_TIMEOUT_MS: 10000 * SLOW } });
    const call = invite(alice);
    await waitFor(() => responsesTo(alice, call).some((r) => r.status === 180), 8000 * SLOW,
      { what: 'the 180' });
    alice.sendRaw(alice.buildRequest('CANCEL', { uri: call.uri, callId: call.callId, cseq: call.cseq,
      branch: call.branch, contact: false }).text);
    const c = await waitFor(() => responsesTo(alice, call, 'CANCEL').find((r) => r.status >= 200), 5000 * SLOW,
      { what: 'an answer to the CANCEL' });
    assert.equal(c.status, 200, `CANCEL: ${c.status} ${c.reason}`);
    const resp = await finalResponse(alice, call);
    assert.equal(resp.status, 487, `${resp.status} ${resp.reason}`);
    ack(alice, call, resp);
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS (CANCEL, then the ACK for its 487):\n${nb(s.errors)}\n${nb(s.messages)}`);
    assert.deepEqual(s.requests.map((r) => r.split(' ')[0]), ['INVITE', 'CANCEL', 'ACK']);
    await ended(gw, 'CANCEL from the browser');
  }));

test('browser -> PBX: a PBX that never answers -> 408 to the browser after [limits] transaction_timeout',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-out-no-answer', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas_silent.xml',
      vars: { HOLD_MS: 12000 * SLOW }, limits: { transaction_timeout: 3 } });
    const t0 = Date.now();
    const call = invite(alice);
    const resp = await finalResponse(alice, call, { ms: 15000 * SLOW });
    const ms = Date.now() - t0;
    assert.equal(resp.status, 408, `${resp.status} ${resp.reason}`);
    assert.ok(resp.provisional.some((r) => r.status === 100), '100 Trying at once');
    assert.ok(ms >= 2500, `408 after ${ms} ms, not before transaction_timeout (3 s)`);
    assert.ok(ms <= 3000 + 3000 * SLOW, `408 after ${ms} ms, about transaction_timeout (3 s)`);
    ack(alice, call, resp);
    await ended(gw, 'no answer from the PBX');
    await uas.stop();
    const s = await uas.result();
    assert.ok(s.requests.some((r) => r.startsWith('INVITE ')), 'the INVITE reached the PBX');
  }));

test('browser -> PBX: the browser\'s WebSocket closes mid-call -> BYE to the PBX',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-out-ws-closed', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas.xml',
      vars: { RING_MS: 0, BYE_TIMEOUT_MS: 10000 * SLOW } });
    const call = invite(alice);
    const resp = await finalResponse(alice, call);
    assert.equal(resp.status, 200, `${resp.status} ${resp.reason}`);
    ack(alice, call, resp);
    await sleep(300);
    await alice.close(1000);
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS must get a BYE:\n${nb(s.errors)}\n${nb(s.messages)}`);
    await ended(gw, 'WebSocket closed');
  }));

// ICE toward the fake browser (192.0.2.2) never completes: after its ICE
// timeout rtcsipd gives the call up and hangs up both sides.
test('browser -> PBX: ICE never completes -> BYE to the browser and to the PBX ("media failed")',
  { timeout: 90000 * SLOW }, () => withEnv('calls-out-media-failed', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas.xml',
      vars: { RING_MS: 0, BYE_TIMEOUT_MS: 45000 * SLOW }, timeoutSec: 60 });
    const call = invite(alice);
    const resp = await finalResponse(alice, call);
    assert.equal(resp.status, 200, `${resp.status} ${resp.reason}`);
    ack(alice, call, resp);
    const b = await alice.waitForRequest((r) => r.method === 'BYE' && r.get('call-id') === call.callId,
      45000 * SLOW);
    assert.equal(tagOf(b.get('to')), alice.fromTag);
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS must get a BYE:\n${nb(s.errors)}\n${nb(s.messages)}`);
    await ended(gw, 'media failed');
  }));

// Neither side sends a packet (the fake browser has no media, the SIPp UAS
// sends no RTP): [media] media_timeout ends the call on both sides, well
// before the ICE timeout would.
test('browser -> PBX: no packet from either side for [media] media_timeout -> BYE to both ("media timeout")',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-out-media-timeout', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas.xml',
      vars: { RING_MS: 0, BYE_TIMEOUT_MS: 20000 * SLOW }, media: { media_timeout: 2 } });
    const call = invite(alice);
    const resp = await finalResponse(alice, call);
    assert.equal(resp.status, 200, `${resp.status} ${resp.reason}`);
    ack(alice, call, resp);
    const t0 = Date.now();
    const b = await alice.waitForRequest((r) => r.method === 'BYE' && r.get('call-id') === call.callId,
      20000 * SLOW);
    const waited = Date.now() - t0;
    assert.ok(waited >= 1500, `the BYE came after the media timeout, not before (${waited} ms)`);
    assert.equal(tagOf(b.get('to')), alice.fromTag);
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS must get a BYE:\n${nb(s.errors)}\n${nb(s.messages)}`);
    await ended(gw, 'media timeout');
    assert.match(gw.logs(), /\[call-\d+\] no media for 2000 ms/);
  }));

// 1 warm-up call, then 20 more: afterwards rtcsipd holds exactly the file
// descriptors and UDP sockets it held after the warm-up, and none in the
// [media] port range.
test('21 calls in a row through Kamailio (INVITE/200/ACK/BYE) leave no file descriptors or ports behind',
  { timeout: 150000 * SLOW }, () => withEnv('calls-out-no-leaks', async (env) => {
    const N = 20;
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas.xml', kamailio: true,
      calls: N + 1, timeoutSec: 120, vars: { RING_MS: 0, BYE_TIMEOUT_MS: 10000 * SLOW } });
    const pid = gw.child.pid;
    const rtpSockets = () => udpSockets(pid).filter((u) => inRange(u.port));
    const fdsText = (fds) => fds.map((f) => `${f.fd} -> ${f.target}`).join('\n');
    let inCall = null;
    const oneCall = async (i) => {
      const call = invite(alice, { callId: `leak-${i}-${randomToken(8)}@test` });
      const resp = await finalResponse(alice, call);
      assert.equal(resp.status, 200, `call ${i}: ${resp.status} ${resp.reason}`);
      ack(alice, call, resp);
      if (i === 0) inCall = rtpSockets();
      const b = await bye(alice, call, resp, 2);
      assert.equal(b.status, 200, `call ${i} BYE: ${b.status} ${b.reason}`);
      await waitFor(() => (gw.logs().match(/\[call-\d+\] call ended: /g) || []).length >= i + 1, 10000 * SLOW,
        { what: `the end of call ${i}` });
    };
    await oneCall(0);
    assert.ok(inCall.length >= 1, `during a call rtcsipd holds UDP sockets in ${RTP_MIN}-${RTP_MAX}: ` +
      `${JSON.stringify(udpSockets(pid))}`);
    await waitFor(() => rtpSockets().length === 0, 5000 * SLOW, { what: 'the warm-up call\'s ports to close' });
    const fds0 = openFds(pid);
    const udp0 = udpSockets(pid);
    for (let i = 1; i <= N; i++) await oneCall(i);
    // the last call's sockets may close a moment after its BYE
    await waitFor(() => openFds(pid).length <= fds0.length && rtpSockets().length === 0, 5000 * SLOW,
      { what: 'the file descriptors to come back to the warm-up count' }).catch(() => {});
    const fds1 = openFds(pid);
    const udp1 = udpSockets(pid);
    assert.deepEqual(rtpSockets(), [], `no UDP socket left in ${RTP_MIN}-${RTP_MAX}`);
    assert.equal(fds1.length, fds0.length,
      `file descriptors after the warm-up call:\n${fdsText(fds0)}\nafter ${N} more:\n${fdsText(fds1)}`);
    assert.equal(udp1.length, udp0.length,
      `UDP sockets after the warm-up call: ${JSON.stringify(udp0)}\nafter ${N} more: ${JSON.stringify(udp1)}`);
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS (${N + 1} calls):\n${nb(s.errors)}`);
    const endings = gw.logs().match(/\[call-\d+\] call ended: cause BYE from the browser/g) || [];
    assert.equal(endings.length, N + 1, `${N + 1} calls ended by the browser's BYE`);
  }));

// ---------------------------------------------------------------------------
// PBX -> browser.

test('PBX -> browser: the registered browser gets a WebRTC offer, answers 180 and 200, SIPp gets a plain answer; BYE from the PBX',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-in-answered', async (env) => {
    const { kam, gw, alice } = await incomingSetup(env);
    const calls = answerCalls(alice, 'answer', { ringMs: 300 });
    const run = await sippCallsAlice(env, kam, 'it_call_uac.xml', { HOLD_MS: 500 });
    const inv = await alice.waitForRequest((r) => r.method === 'INVITE', 8000 * SLOW);
    const sdp = inv.body;
    checkWebrtcSdp(sdp, 'the offer to the browser');
    assert.match(sdp, /^a=setup:actpass\r$/m, 'the offerer says actpass');
    const pts = sdp.match(/^m=audio \d+ UDP\/TLS\/RTP\/SAVPF ([\d ]+)\r$/m)[1].split(' ');
    assert.ok(pts.includes('0') && pts.includes('8'), `PCMU and PCMA from the PBX's offer: ${pts}`);
    assert.equal(uriOf(inv.get('to')), `sip:alice@${DOMAIN}`);
    assert.equal(uriOf(inv.get('from')), SIPP_URI);
    assert.match(inv.uri, new RegExp(`^${alice.contactUri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      'Request-URI: the browser\'s Contact');
    const c = calls.get(inv.get('call-id'));
    const r = await run.result();
    assert.equal(r.code, 0, `SIPp UAC (180, 200, ACK, BYE answered):\n${nb(r.errors)}\n${nb(r.messages)}`);
    assert.ok(r.responses.includes(180), `SIPp got 180: ${r.responses}`);
    assert.ok(r.responses.includes(200), `SIPp got 200: ${r.responses}`);
    const ok = r.messages.split(/^-{10,}.*$/m).find((b) => /received[^\n]*\n\s*SIP\/2\.0 200 OK[\s\S]*CSeq: 1 INVITE/.test(b));
    assert.ok(ok, 'the 200 in SIPp\'s trace');
    checkPlainSdp(ok.slice(ok.indexOf('v=0')), 'the answer to the PBX');
    assert.match(ok, /^m=audio \d+ RTP\/AVP 0( |\s*$)/m, 'PCMU first, as the browser answered');
    const acks = alice.requests.filter((q) => q.method === 'ACK' && q.get('call-id') === inv.get('call-id'));
    assert.equal(acks.length, 1, 'rtcsipd ACKs the browser\'s 200');
    assert.equal(tagOf(acks[0].get('to')), c.toTag);
    await alice.waitForRequest((q) => q.method === 'BYE' && q.get('call-id') === inv.get('call-id'), 5000 * SLOW);
    await ended(gw, 'BYE from the PBX');
  }));

test('PBX -> browser: the browser answers 486, SIPp gets 486',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-in-486', async (env) => {
    const { kam, gw, alice } = await incomingSetup(env);
    answerCalls(alice, 486);
    const r = await (await sippCallsAlice(env, kam, 'it_call_uac_fail.xml', { EXPECT: 486, EXPECT_ALT: 486 })).result();
    assert.equal(r.code, 0, `SIPp UAC expecting 486:\n${nb(r.errors)}\n${nb(r.messages)}`);
    assert.equal(r.responses.filter((s) => s >= 200).join(), '486');
    const inv = alice.requests.find((q) => q.method === 'INVITE');
    await waitFor(() => alice.requests.some((q) => q.method === 'ACK' && q.get('call-id') === inv.get('call-id')),
      3000 * SLOW, { what: 'rtcsipd\'s ACK for the 486' });
    await ended(gw, 'browser answered 486');
  }));

test('PBX -> browser: no answer within [limits] ring_timeout -> 480 or 408 to the PBX, CANCEL to the browser',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-in-ring-timeout', async (env) => {
    const { kam, gw, alice } = await incomingSetup(env, { limits: { ring_timeout: 3 } });
    answerCalls(alice, 'ring');
    const t0 = Date.now();
    const r = await (await sippCallsAlice(env, kam, 'it_call_uac_fail.xml',
      { EXPECT: 480, EXPECT_ALT: 408, ANSWER_TIMEOUT_MS: 12000 * SLOW })).result();
    assert.equal(r.code, 0, `SIPp UAC expecting 480 or 408:\n${nb(r.errors)}\n${nb(r.messages)}`);
    assert.ok(r.responses.includes(180), `the browser's 180 relayed: ${r.responses}`);
    const ms = r.responseTimes[r.responses.findIndex((s) => s >= 200)] - t0;
    assert.ok(ms >= 2500, `final answer after ${ms} ms, not before ring_timeout (3 s)`);
    const inv = alice.requests.find((q) => q.method === 'INVITE');
    const cancel = await alice.waitForRequest((q) => q.method === 'CANCEL' && q.get('call-id') === inv.get('call-id'),
      3000 * SLOW);
    assert.equal(params(cancel.get('via')).branch, params(inv.get('via')).branch, 'CANCEL: the INVITE\'s branch');
    await ended(gw, 'no answer from the browser');
  }));

test('PBX -> browser: the PBX cancels while it rings -> CANCEL to the browser, 487 to the PBX',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-in-cancel', async (env) => {
    const { kam, gw, alice } = await incomingSetup(env);
    answerCalls(alice, 'ring');
    const r = await (await sippCallsAlice(env, kam, 'it_call_uac_cancel.xml', { HOLD_MS: 300 })).result();
    assert.equal(r.code, 0, `SIPp UAC (180, CANCEL -> 200, 487):\n${nb(r.errors)}\n${nb(r.messages)}`);
    const inv = alice.requests.find((q) => q.method === 'INVITE');
    await alice.waitForRequest((q) => q.method === 'CANCEL' && q.get('call-id') === inv.get('call-id'), 3000 * SLOW);
    await ended(gw, 'CANCEL from the PBX');
  }));

test('PBX -> browser: a browser that is gone -> 480 to the PBX',
  { timeout: TEST_TIMEOUT }, () => withEnv('calls-in-gone', async (env) => {
    const { kam, alice } = await incomingSetup(env);
    await alice.close(1000);
    const r = await (await sippCallsAlice(env, kam, 'it_call_uac_fail.xml',
      { EXPECT: 480, EXPECT_ALT: 480, ANSWER_TIMEOUT_MS: 3000 * SLOW })).result();
    assert.equal(r.code, 0, `SIPp UAC expecting 480:\n${nb(r.errors)}\n${nb(r.messages)}`);
    assert.equal(r.responses.filter((s) => s >= 200).join(), '480');
  }));

// In the middle of a call through rtcsipd, without a browser: a fake browser
// (SipWsClient over ws://) on one side, SIPp as the PBX (directly, or behind
// Kamailio for calls from the PBX) on the other, as in calls.test.mjs.  No
// media: ICE toward the fake browser never completes and ends the call
// ("media failed") about 7 s after the answer, so each test's mid-call part
// is over within ~5 s of the answer.  tests/browser/midcall.test.mjs covers
// the same features with Chromium and real media.
//   - transfer from the PBX: REFER relayed to the browser (202 to SIPp), the
//     browser's NOTIFY relayed back;
//   - DTMF to the browser as SIP INFO ([media] dtmf_to_browser = info);
//   - a re-INVITE without SDP from the browser, answered by rtcsipd itself;
//   - hold from the browser (a=sendonly), relayed to the PBX; glare with the
//     PBX's own re-INVITE (491 to the PBX);
//   - session timers: a refresh that fails (481), a PBX that never refreshes.
//
// Under `meson test --setup valgrind` every wait on the daemon is
// VALGRIND_SLOWDOWN times longer.
import test from 'node:test';
import assert from 'node:assert/strict';
import { withEnv, freePort, randomToken, waitFor, sleep } from '../lib/harness.mjs';
import { uriOf, webrtcAnswer } from '../lib/sipclient.mjs';
import {
  SLOW, DOMAIN, OFFER, ALICE, tagOf, nb, traced, gateway as startGateway, sippCallsAlice,
  invite, responsesTo, finalResponse, bye as byeFromBrowser, ended,
} from '../lib/calls.mjs';

// The same offer putting the call on hold: a=sendonly, the o= version one up.
const HOLD_OFFER = OFFER.replace(/^a=sendrecv\r?$/m, 'a=sendonly\r')
  .replace(/^(o=\S+ \S+ )(\d+)/m, (m, a, v) => `${a}${Number(v) + 1}`);
const RTP_MIN = 31600; // this file's [media] port range (calls.test.mjs has 31500-31599)
const RTP_MAX = 31699;
const TEST_TIMEOUT = 40000 * SLOW;

const cseqNumber = (msg) => Number(msg.get('cseq').split(' ')[0]);
const line = (sdp, re) => (sdp.match(re) || [])[0];

// ---------------------------------------------------------------------------
// Setup.

const gateway = (env, pbxPort, { overrides = {}, register = false } = {}) =>
  startGateway(env, pbxPort, { rtp: [RTP_MIN, RTP_MAX], overrides, register });

// A call from the browser to SIPp UAS SCENARIO, the PBX itself.
async function outgoingSetup(env, { scenario, vars = {}, overrides = {}, timeoutSec = 20 }) {
  const uas = await env.startSipp({ scenario, vars, timeoutSec: timeoutSec * SLOW });
  await uas.bound();
  const { gw, alice } = await gateway(env, uas.port, { overrides });
  return { uas, gw, alice };
}

// A call from the PBX: Kamailio (the registrar), rtcsipd, alice registered and
// answering calls (180, then 200 with a WebRTC answer); SIPp UAC SCENARIO
// calls alice through Kamailio.
async function incomingCall(env, { scenario, vars = {}, overrides = {}, timeoutSec = 20 }) {
  const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE] });
  const { gw, alice } = await gateway(env, kam.port, { overrides, register: true });
  const calls = answerCalls(alice);
  const run = await sippCallsAlice(env, kam, scenario, vars, timeoutSec);
  const inv = await alice.waitForRequest((r) => r.method === 'INVITE', 8000 * SLOW);
  const c = await waitFor(() => calls.get(inv.get('call-id')).answer && calls.get(inv.get('call-id')), 5000 * SLOW,
    { what: 'alice to answer' });
  return { kam, gw, alice, run, inv, call: c };
}

// How alice answers: an INVITE gets 180, then 200 with a WebRTC answer;
// REFER gets 202; everything else 200.
function answerCalls(alice) {
  const calls = new Map(); // Call-ID -> { invite, toTag, answer }
  alice.answer = (req) => {
    if (req.method === 'INVITE' && !tagOf(req.get('to'))) {
      const c = { invite: req, toTag: randomToken(10) };
      calls.set(req.get('call-id'), c);
      const send = (status, reason, headers = {}, body = '') =>
        alice.sendRaw(alice.buildResponse(req, status, reason, headers, body, c.toTag));
      send(180, 'Ringing', { Contact: `<${alice.contactUri}>` });
      setTimeout(() => {
        c.answer = webrtcAnswer(req.body);
        send(200, 'OK', { Contact: `<${alice.contactUri}>`, 'Content-Type': 'application/sdp' }, c.answer);
      }, 100);
      return null;
    }
    if (req.method === 'REFER') return { status: 202, reason: 'Accepted' };
    return { status: 200, reason: 'OK' };
  };
  return calls;
}

// ---------------------------------------------------------------------------
// The browser's side of a call from the browser (invite, finalResponse and
// byeFromBrowser: lib/calls.mjs).

// An in-dialog request from the browser (the dialog of the 200 OK), sent
// without waiting for its answer.
function inDialog(alice, call, ok, method, cseq, { body = '', headers = {} } = {}) {
  const routes = ok.all('record-route').reverse();
  const { text } = alice.buildRequest(method, {
    uri: uriOf(ok.get('contact')), to: ok.get('to'), callId: call.callId, cseq, body,
    contact: method === 'INVITE' ? true : false,
    headers: { ...(routes.length ? { Route: routes } : {}), ...(body ? { 'Content-Type': 'application/sdp' } : {}),
      ...headers },
  });
  alice.sendRaw(text);
}

// The ACK for OK, the 200 to the INVITE with CSeq CSEQ (with BODY, an SDP answer, if any).
function ack(alice, call, ok, cseq, body = '') {
  inDialog(alice, call, ok, 'ACK', cseq, { body });
}

// ---------------------------------------------------------------------------
// Checks.

// The blocks of SIPp's trace that are messages received, as text.
const receivedBlocks = (s) => s.messages.split(/^-{10,}.*$/m).filter((b) => /message received/.test(b));

// ---------------------------------------------------------------------------
// PBX -> browser.

test('transfer from the PBX: REFER -> 202 to the PBX, REFER to the browser in its dialog; the browser\'s NOTIFY (sipfrag 200) reaches the PBX',
  { timeout: TEST_TIMEOUT }, () => withEnv('midcall-refer', async (env) => {
    const REFER_TO = `sip:carol@${DOMAIN}`;
    const { gw, alice, run, inv, call } = await incomingCall(env, { scenario: 'it_mid_uac_refer.xml',
      vars: { HOLD_MS: 300, REFER_TO, NOTIFY_TIMEOUT_MS: 5000 * SLOW } });
    const callId = inv.get('call-id');
    const refer = await alice.waitForRequest((r) => r.method === 'REFER' && r.get('call-id') === callId,
      5000 * SLOW);
    assert.equal(uriOf(refer.get('refer-to')), REFER_TO, `Refer-To: ${refer.get('refer-to')}`);
    assert.equal(tagOf(refer.get('to')), call.toTag, 'REFER: To tag = the browser\'s own tag');
    assert.equal(tagOf(refer.get('from')), tagOf(inv.get('from')), 'REFER: From tag = rtcsipd\'s tag of the INVITE');
    assert.ok(cseqNumber(refer) > cseqNumber(inv), `REFER CSeq ${refer.get('cseq')} above the INVITE's ${inv.get('cseq')}`);
    assert.match(refer.get('cseq'), /^\d+ REFER$/);
    // the browser (alice answered 202 already) reports the outcome
    const routes = inv.all('record-route');
    const n = await alice.request('NOTIFY', {
      uri: uriOf(inv.get('contact')), to: inv.get('from'), from: inv.get('to'), fromTag: call.toTag,
      callId, cseq: 1, body: 'SIP/2.0 200 OK\r\n',
      headers: { Event: 'refer', 'Subscription-State': 'terminated;reason=noresource',
        'Content-Type': 'message/sipfrag;version=2.0', ...(routes.length ? { Route: routes } : {}) },
    });
    assert.equal(n.status, 200, `NOTIFY: ${n.status} ${n.reason}`);
    const r = await run.result();
    assert.equal(r.code, 0, `SIPp UAC (REFER -> 202, NOTIFY):\n${nb(r.errors)}\n${nb(r.messages)}`);
    assert.ok(r.responses.includes(202), `SIPp got 202 for its REFER: ${r.responses}`);
    const notify = r.requests.filter((q) => q.startsWith('NOTIFY ')).map(traced)[0];
    assert.ok(notify, 'the NOTIFY at SIPp');
    assert.equal(notify.get('event'), 'refer');
    assert.match(notify.get('subscription-state'), /^terminated;\s*reason=noresource$/);
    assert.match(notify.get('content-type'), /^message\/sipfrag/);
    assert.match(notify.body, /^SIP\/2\.0 200 OK/);
    assert.match(tagOf(notify.get('to')) || '', /SIPpTag00/, `NOTIFY in SIPp's dialog (To: SIPp's tag): ${notify.get('to')}`);
    assert.equal(notify.get('call-id'), callId, 'NOTIFY: the call\'s Call-ID');
    await ended(gw, 'BYE from the PBX');
    assert.match(gw.logs(), /REFER from the PBX relayed to the browser/);
  }));

test('DTMF to the browser as INFO ([media] dtmf_to_browser = info): INFO from the PBX -> 200, INFO Signal=5 to the browser',
  { timeout: TEST_TIMEOUT }, () => withEnv('midcall-info', async (env) => {
    const { gw, alice, run, inv, call } = await incomingCall(env, { scenario: 'it_mid_uac_info.xml',
      vars: { HOLD_MS: 500, DIGIT: '5' }, overrides: { media: { dtmf_to_browser: 'info' } } });
    const callId = inv.get('call-id');
    const info = await alice.waitForRequest((r) => r.method === 'INFO' && r.get('call-id') === callId, 5000 * SLOW);
    assert.equal(info.get('content-type'), 'application/dtmf-relay');
    assert.match(info.body, /^Signal=5\r?$/m, `INFO body:\n${info.body}`);
    assert.equal(tagOf(info.get('to')), call.toTag, 'INFO in the browser\'s dialog');
    const r = await run.result();
    assert.equal(r.code, 0, `SIPp UAC (INFO -> 200):\n${nb(r.errors)}\n${nb(r.messages)}`);
    assert.deepEqual(r.responses.filter((s) => s >= 200), [200, 200, 200], 'INVITE, INFO and BYE answered 200');
    await ended(gw, 'BYE from the PBX');
    assert.match(gw.logs(), /DTMF 5 to the browser as info/i);
  }));

test('session timer, the PBX the refresher: 200 with Session-Expires: 4;refresher=uac, Require: timer; no refresh -> BYE to both',
  { timeout: TEST_TIMEOUT }, () => withEnv('midcall-timer-silent', async (env) => {
    const { gw, alice, run, inv } = await incomingCall(env, { scenario: 'it_mid_uac_timer.xml',
      vars: { SE: 4, BYE_TIMEOUT_MS: 8000 * SLOW } });
    const t0 = Date.now(); // about when alice answered
    const callId = inv.get('call-id');
    const b = await alice.waitForRequest((q) => q.method === 'BYE' && q.get('call-id') === callId, 8000 * SLOW);
    const ms = b.receivedAt - t0;
    // RFC 4028 10: the refresher's deadline is SE minus min(32, SE/3) s, i.e. ~2.7 s here
    assert.ok(ms >= 2000, `BYE ${ms} ms after the answer: not before the session timer ran out`);
    assert.ok(ms <= 4500 * SLOW, `BYE ${ms} ms after the answer: within Session-Expires (4 s)`);
    const r = await run.result();
    assert.equal(r.code, 0, `SIPp UAC (200 with the timer, then a BYE):\n${nb(r.errors)}\n${nb(r.messages)}`);
    const ok = receivedBlocks(r).find((x) => /SIP\/2\.0 200 OK[\s\S]*CSeq: 1 INVITE/.test(x));
    assert.match(ok, /^\s*Session-Expires:\s*4;\s*refresher=uac\s*$/mi, 'Session-Expires in the 200');
    assert.match(ok, /^\s*Require:.*\btimer\b/mi, 'Require: timer in the 200');
    assert.ok(r.requests.some((q) => q.startsWith('BYE ')), 'BYE at SIPp');
    await ended(gw, 'session timer: no refresh from the PBX');
  }));

// ---------------------------------------------------------------------------
// Browser -> PBX.

test('re-INVITE without SDP from the browser: 200 with rtcsipd\'s SDP (same ICE and fingerprint), the PBX sees nothing',
  { timeout: TEST_TIMEOUT }, () => withEnv('midcall-reinvite-nosdp', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_call_uas.xml',
      vars: { RING_MS: 0, BYE_TIMEOUT_MS: 10000 * SLOW } });
    const call = invite(alice);
    const ok1 = await finalResponse(alice, call);
    assert.equal(ok1.status, 200, `${ok1.status} ${ok1.reason}`);
    ack(alice, call, ok1, 1);
    await sleep(300);
    inDialog(alice, call, ok1, 'INVITE', 2);
    const ok2 = await finalResponse(alice, call, { cseq: 2, ms: 5000 * SLOW });
    assert.equal(ok2.status, 200, `re-INVITE: ${ok2.status} ${ok2.reason}`);
    assert.equal(ok2.get('content-type'), 'application/sdp');
    assert.match(ok2.body, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF [\d ]+\r$/m, `rtcsipd's offer:\n${nb(ok2.body)}`);
    for (const re of [/^a=ice-ufrag:.*$/m, /^a=ice-pwd:.*$/m, /^a=fingerprint:.*$/m]) {
      assert.ok(line(ok2.body, re), `${re.source} in the 200`);
      assert.equal(line(ok2.body, re), line(ok1.body, re), `${re.source}: as in the first answer`);
    }
    ack(alice, call, ok2, 2, webrtcAnswer(ok2.body, { setup: 'active' }));
    await sleep(700);
    assert.ok(!alice.requests.some((q) => q.method === 'BYE'), 'the call goes on: no BYE to the browser');
    assert.doesNotMatch(gw.logs(), /call ended/, 'the call goes on');
    const b = await byeFromBrowser(alice, call, ok1, 3);
    assert.equal(b.status, 200, `BYE: ${b.status} ${b.reason}`);
    await ended(gw, 'BYE from the browser');
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS:\n${nb(s.errors)}\n${nb(s.messages)}`);
    assert.deepEqual(s.requests.map((q) => q.split(' ')[0]), ['INVITE', 'ACK', 'BYE'], 'no re-INVITE at the PBX');
  }));

test('hold from the browser: re-INVITE a=sendonly -> the PBX gets a plain re-INVITE a=sendonly, answers recvonly -> 200 a=recvonly',
  { timeout: TEST_TIMEOUT }, () => withEnv('midcall-hold', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_mid_uas_hold.xml',
      vars: { REINVITE_TIMEOUT_MS: 5000 * SLOW, BYE_TIMEOUT_MS: 10000 * SLOW } });
    const call = invite(alice);
    const ok1 = await finalResponse(alice, call);
    assert.equal(ok1.status, 200, `${ok1.status} ${ok1.reason}`);
    ack(alice, call, ok1, 1);
    await sleep(300);
    inDialog(alice, call, ok1, 'INVITE', 2, { body: HOLD_OFFER });
    const ok2 = await finalResponse(alice, call, { cseq: 2, ms: 6000 * SLOW });
    assert.equal(ok2.status, 200, `hold re-INVITE: ${ok2.status} ${ok2.reason}`);
    assert.match(ok2.body, /^a=recvonly\r$/m, `the answer to the browser:\n${nb(ok2.body)}`);
    assert.match(ok2.body, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m);
    ack(alice, call, ok2, 2);
    await sleep(300);
    const b = await byeFromBrowser(alice, call, ok1, 3);
    assert.equal(b.status, 200, `BYE: ${b.status} ${b.reason}`);
    await ended(gw, 'BYE from the browser');
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS (re-INVITE sendonly -> 200 recvonly):\n${nb(s.errors)}\n${nb(s.messages)}`);
    assert.deepEqual(s.requests.map((q) => q.split(' ')[0]), ['INVITE', 'ACK', 'INVITE', 'ACK', 'BYE']);
    const first = traced(s.requests[0]);
    const re = traced(s.requests[2]);
    assert.equal(re.get('call-id'), call.callId);
    const port = (sdp) => (sdp.match(/^m=audio (\d+) RTP\/AVP /m) || [])[1];
    assert.ok(port(re.body), `plain RTP/AVP in the re-INVITE:\n${nb(re.body)}`);
    assert.equal(port(re.body), port(first.body), 'the same RTP port as the first offer');
    assert.match(re.body, /^a=sendonly\s*$/m);
    assert.doesNotMatch(re.body, /^a=(ice-|fingerprint|candidate)/m, 'no WebRTC lines toward the PBX');
    assert.match(gw.logs(), /\[call-\d+\] state confirmed -> reoffer-to-pbx \(browser-reoffer/);
  }));

test('glare: the PBX\'s re-INVITE crosses the browser\'s -> 491 to the PBX, then the browser\'s gets its 200',
  { timeout: TEST_TIMEOUT }, () => withEnv('midcall-glare', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_mid_uas_glare.xml',
      vars: { REINVITE_TIMEOUT_MS: 5000 * SLOW, ANSWER_TIMEOUT_MS: 3000 * SLOW, BYE_TIMEOUT_MS: 10000 * SLOW } });
    const call = invite(alice);
    const ok1 = await finalResponse(alice, call);
    assert.equal(ok1.status, 200, `${ok1.status} ${ok1.reason}`);
    ack(alice, call, ok1, 1);
    await sleep(300);
    inDialog(alice, call, ok1, 'INVITE', 2, { body: HOLD_OFFER });
    const ok2 = await finalResponse(alice, call, { cseq: 2, ms: 6000 * SLOW });
    assert.equal(ok2.status, 200, `hold re-INVITE: ${ok2.status} ${ok2.reason}`);
    assert.match(ok2.body, /^a=recvonly\r$/m, `the answer to the browser:\n${nb(ok2.body)}`);
    ack(alice, call, ok2, 2);
    await sleep(300);
    assert.ok(!alice.requests.some((q) => q.method === 'INVITE'), 'the PBX\'s re-INVITE does not reach the browser');
    const b = await byeFromBrowser(alice, call, ok1, 3);
    assert.equal(b.status, 200, `BYE: ${b.status} ${b.reason}`);
    await ended(gw, 'BYE from the browser');
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS (its re-INVITE -> 491, then 200 to the browser's):\n${nb(s.errors)}\n${nb(s.messages)}`);
    assert.ok(s.responses.includes(491), `SIPp got 491: ${s.responses}`);
  }));

test('session refresh that fails: the PBX answers rtcsipd\'s refresh 481 -> BYE to the PBX and to the browser',
  { timeout: TEST_TIMEOUT }, () => withEnv('midcall-refresh-481', async (env) => {
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_mid_uas_timer481.xml',
      vars: { SE: 4, REFRESH_TIMEOUT_MS: 5000 * SLOW, BYE_TIMEOUT_MS: 5000 * SLOW },
      overrides: { sip: { session_expires: 4, min_se: 2 } } });
    const call = invite(alice);
    const ok1 = await finalResponse(alice, call);
    assert.equal(ok1.status, 200, `${ok1.status} ${ok1.reason}`);
    ack(alice, call, ok1, 1);
    const t0 = Date.now();
    const b = await alice.waitForRequest((q) => q.method === 'BYE' && q.get('call-id') === call.callId, 6000 * SLOW);
    const ms = b.receivedAt - t0;
    assert.ok(ms >= 1500, `BYE ${ms} ms after the ACK: not before the refresh (due at ~2 s)`);
    assert.ok(ms < 5000 * SLOW, `BYE ${ms} ms after the ACK`);
    assert.equal(tagOf(b.get('to')), alice.fromTag, 'BYE in the browser\'s dialog');
    await ended(gw, 'session timer: refresh failed: 481');
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS (refresh -> 481, then BYE):\n${nb(s.errors)}\n${nb(s.messages)}`);
    const methods = s.requests.map((q) => q.split(' ')[0]);
    assert.ok(['UPDATE', 'INVITE'].includes(methods[2]), `a refresh (UPDATE or re-INVITE): ${methods}`);
    assert.ok(methods.includes('BYE'), `BYE at SIPp: ${methods}`);
    const inv = traced(s.requests[0]);
    assert.match(inv.get('session-expires') || '', /^4\b/, `Session-Expires in rtcsipd's INVITE: ${inv.get('session-expires')}`);
  }));

// An UPDATE from the PBX before it answers (its early media moves to another
// port): rtcsipd answers it itself with a plain SDP (browsers refuse offers
// in an early dialog), the call goes on and is answered.
test('UPDATE before the answer: the PBX moves its early media -> 200 with rtcsipd\'s plain answer, the call is answered',
  { timeout: TEST_TIMEOUT }, () => withEnv('midcall-early-update', async (env) => {
    const newPort = await freePort();
    const { uas, gw, alice } = await outgoingSetup(env, { scenario: 'it_mid_uas_early_update.xml',
      vars: { NEW_PORT: newPort, BYE_TIMEOUT_MS: 10000 * SLOW } });
    const call = invite(alice);
    const ok1 = await finalResponse(alice, call);
    assert.equal(ok1.status, 200, `${ok1.status} ${ok1.reason}`);
    assert.ok(responsesTo(alice, call, 'INVITE', 1).some((r) => r.status === 183), '183 relayed');
    ack(alice, call, ok1, 1);
    await sleep(300);
    const b = await byeFromBrowser(alice, call, ok1, 2);
    assert.equal(b.status, 200, `BYE: ${b.status} ${b.reason}`);
    await ended(gw, 'BYE from the browser');
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS (183, UPDATE -> 200 with SDP, 200):\n${nb(s.errors)}\n${nb(s.messages)}`);
    assert.match(gw.logs(), /\[call-\d+\] state to-pbx-early -> to-pbx-early \(pbx-(reoffer|refresh); UPDATE_MEDIA\|ANSWER_REOFFER_PBX\)/);
    assert.match(gw.logs(), new RegExp(`\\[call-\\d+\\] media: PBX at 127\\.0\\.0\\.1:${newPort},`),
      'the RTP toward the PBX follows its new port');
  }));

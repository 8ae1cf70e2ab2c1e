// Attended transfer through rtcsipd, signalling only (no browser): a fake
// browser (SipWsClient over ws://) on one side, Kamailio with SIPp (and, for
// an INVITE SIPp cannot make, a tiny UDP user agent in this file) on the
// other.  rtcsipd is a B2BUA, so a dialog has one identity toward the browser
// and another toward the PBX; what these tests check is that a Replaces
// crossing rtcsipd is rewritten from the one to the other:
//   - REFER from the browser whose Refer-To carries ?Replaces= naming its
//     other call (browser dialog) -> the PBX gets that call's PBX dialog;
//   - INVITE from the PBX with Replaces naming a PBX dialog -> the browser
//     gets that call's browser dialog (to-tag: the browser's own, RFC 3891).
// ICE toward the fake browser never completes (its candidate is 192.0.2.2),
// which ends a call ~7 s after its answer ("media failed"): each test does
// its work within a few seconds of the answers.
//
// Under `meson test --setup valgrind` every wait on the daemon is
// VALGRIND_SLOWDOWN times longer.
import test from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import { withEnv, randomToken, waitFor, LOOPBACK } from '../lib/harness.mjs';
import { SipWsClient, parseSip, uriOf, webrtcAnswer } from '../lib/sipclient.mjs';
import {
  SLOW, DOMAIN, ALICE, tagOf, nb, traced, gateway as startGateway, invite as sendInvite, responsesTo,
  finalResponse,
} from '../lib/calls.mjs';

const RTP_MIN = 31700; // this file's [media] port range
const RTP_MAX = 31799;
const TEST_TIMEOUT = 60000 * SLOW;

const untagged = (nameAddr) => nameAddr.replace(/;tag=[^;>]*$/, '');

// The blocks of SIPp's trace (sent and received), parsed: [{ dir, msg }].
function traceBlocks(messages) {
  const out = [];
  for (const b of messages.split(/^-{10,}.*$/m)) {
    const m = b.match(/^\s*\S+ message (sent|received)[^\n]*\n\s*\n?([\s\S]*)$/);
    if (!m) continue;
    try {
      out.push({ dir: m[1], msg: traced(m[2].replace(/^\s+/, '').replace(/\s+$/, '')) });
    } catch { /* not SIP */ }
  }
  return out;
}

// "CALLID;to-tag=X;from-tag=Y" (a Replaces value) -> { callId, toTag, fromTag, order }
function parseReplaces(value) {
  const [callId, ...ps] = value.split(';').map((s) => s.trim());
  const kv = ps.map((p) => p.split('=').map((s) => s.trim()));
  const get = (k) => (kv.find(([n]) => n.toLowerCase() === k) || [])[1];
  return { callId, toTag: get('to-tag'), fromTag: get('from-tag'), order: kv.map(([n]) => n.toLowerCase()) };
}

// ---------------------------------------------------------------------------
// Setup.

const gateway = (env, pbxPort, { register = false } = {}) =>
  startGateway(env, pbxPort, { rtp: [RTP_MIN, RTP_MAX], register });

// ---------------------------------------------------------------------------
// The browser's side of a call from the browser (finalResponse: lib/calls.mjs).

// Sends an INVITE to URI with its own From tag; returns { callId, uri, fromTag, sent, ... }.
const invite = (alice, uri) => sendInvite(alice, { uri, fromTag: randomToken(10) });

// A request in CALL's dialog (the 200 RESP to its INVITE gave the remote target and tag).
function inDialog(alice, call, resp, method, cseq, headers = {}, body = '') {
  const routes = resp.all('record-route').reverse();
  return alice.buildRequest(method, {
    uri: uriOf(resp.get('contact')), to: resp.get('to'), callId: call.callId, cseq, fromTag: call.fromTag,
    contact: method === 'ACK' || method === 'BYE' ? false : true, body,
    headers: { ...(routes.length ? { Route: routes } : {}), ...headers },
  });
}

function ack(alice, call, resp) {
  alice.sendRaw(inDialog(alice, call, resp, 'ACK', 1).text);
}

// Sends a request in CALL's dialog and resolves with its final response.
function request(alice, call, resp, method, cseq, headers = {}, body = '') {
  const routes = resp.all('record-route').reverse();
  return alice.request(method, {
    uri: uriOf(resp.get('contact')), to: resp.get('to'), callId: call.callId, cseq, fromTag: call.fromTag,
    contact: method === 'BYE' ? false : true, body,
    headers: { ...(routes.length ? { Route: routes } : {}), ...headers },
  });
}

// ---------------------------------------------------------------------------
// A minimal SIP user agent over UDP on 127.0.0.1, as the PBX side, for the
// INVITE (with Replaces) a SIPp scenario cannot make in a second dialog.
// It sends everything to Kamailio (PROXYPORT), ACKs final responses to its
// INVITEs, and answers every request it gets with 200.
class UdpUa {
  static async open(env, proxyPort) {
    const ua = new UdpUa(proxyPort);
    await new Promise((resolve, reject) => {
      ua.sock.once('error', reject);
      ua.sock.bind(0, LOOPBACK, resolve);
    });
    ua.port = ua.sock.address().port;
    env.defer(() => ua.sock.close());
    return ua;
  }

  constructor(proxyPort) {
    this.proxyPort = proxyPort;
    this.sock = dgram.createSocket('udp4');
    this.responses = [];
    this.requests = [];
    this.sock.on('message', (buf) => {
      let msg;
      try { msg = parseSip(buf.toString('utf8')); } catch { return; }
      if (msg.isResponse) {
        this.responses.push(msg);
        return;
      }
      this.requests.push(msg);
      if (msg.method !== 'ACK') this.send(this.reply(msg, 200, 'OK'));
    });
  }

  send(text) {
    this.sock.send(text, this.proxyPort, LOOPBACK);
  }

  reply(req, status, reason) {
    return [`SIP/2.0 ${status} ${reason}`, ...req.all('via').map((v) => `Via: ${v}`),
      `From: ${req.get('from')}`, `To: ${req.get('to')}`, `Call-ID: ${req.get('call-id')}`,
      `CSeq: ${req.get('cseq')}`, 'Content-Length: 0', '', ''].join('\r\n');
  }

  build(method, { uri, to, from, callId, cseq, branch = `z9hG4bK${randomToken(16)}`, headers = {}, body = '' }) {
    const lines = [`${method} ${uri} SIP/2.0`, `Via: SIP/2.0/UDP ${LOOPBACK}:${this.port};branch=${branch};rport`,
      'Max-Forwards: 70', `From: ${from}`, `To: ${to}`, `Call-ID: ${callId}`, `CSeq: ${cseq} ${method}`,
      `Contact: <sip:pbx@${LOOPBACK}:${this.port}>`];
    for (const [k, v] of Object.entries(headers)) {
      for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
    }
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    return { text: `${lines.join('\r\n')}\r\n\r\n${body}`, branch };
  }

  // Sends an INVITE to USER@DOMAIN with a plain offer; resolves with its final
  // response (after ACKing it) and returns { dialog, final }.
  async invite(user, headers = {}, ms = 10000 * SLOW) {
    const d = {
      uri: `sip:${user}@${DOMAIN}`, callId: `${randomToken(12)}@pbx`, fromTag: randomToken(10),
      from: '', to: `<sip:${user}@${DOMAIN}>`,
    };
    d.from = `<sip:pbx@${DOMAIN}>;tag=${d.fromTag}`;
    const body = ['v=0', `o=pbx 1 1 IN IP4 ${LOOPBACK}`, 's=-', `c=IN IP4 ${LOOPBACK}`, 't=0 0',
      'm=audio 39000 RTP/AVP 0 8 101', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16', 'a=sendrecv', ''].join('\r\n');
    const { text, branch } = this.build('INVITE', { uri: d.uri, to: d.to, from: d.from, callId: d.callId, cseq: 1,
      headers: { 'Content-Type': 'application/sdp', Supported: 'replaces', ...headers }, body });
    d.branch = branch;
    this.send(text);
    const mine = () => this.responses.filter((r) => r.get('call-id') === d.callId && r.get('cseq') === '1 INVITE');
    // UDP: retransmit the INVITE until a provisional or final response comes
    const retrans = setInterval(() => { if (!mine().length) this.send(text); }, 500);
    let final;
    try {
      final = await waitFor(() => mine().find((r) => r.status >= 200), ms,
        { what: `a final response to the INVITE ${d.callId} from the PBX side` });
    } finally {
      clearInterval(retrans);
    }
    d.to = final.get('to');
    if (final.status < 300) {
      d.routes = final.all('record-route').reverse();
      d.target = uriOf(final.get('contact'));
      this.send(this.build('ACK', { uri: d.target, to: d.to, from: d.from, callId: d.callId, cseq: 1,
        headers: d.routes.length ? { Route: d.routes } : {} }).text);
    } else {
      // non-2xx: hop by hop, the INVITE's branch and Request-URI
      this.send(this.build('ACK', { uri: d.uri, to: d.to, from: d.from, callId: d.callId, cseq: 1, branch }).text);
    }
    return { dialog: d, final };
  }

  async bye(d, ms = 8000 * SLOW) {
    const { text } = this.build('BYE', { uri: d.target, to: d.to, from: d.from, callId: d.callId, cseq: 2,
      headers: d.routes.length ? { Route: d.routes } : {} });
    this.send(text);
    return waitFor(() => this.responses.find((r) => r.get('call-id') === d.callId && r.get('cseq') === '2 BYE'
      && r.status >= 200), ms, { what: 'the answer to the PBX side\'s BYE' });
  }
}

// ---------------------------------------------------------------------------
// Browser -> PBX: REFER with Replaces.

test('attended transfer from the browser: REFER in call 1 with Replaces naming call 2 reaches the PBX with call 2\'s PBX dialog; 202 and the NOTIFY come back; a Replaces naming no call gets 400',
  { timeout: TEST_TIMEOUT }, () => withEnv('transfer-refer-replaces', async (env) => {
    const bob = await env.startSipp({ scenario: 'it_xfer_uas_refer.xml', timeoutSec: 30 * SLOW, vars: {
      RING_MS: 0, REFER_TIMEOUT_MS: 10000 * SLOW, ANSWER_TIMEOUT_MS: 5000 * SLOW, BYE_TIMEOUT_MS: 10000 * SLOW } });
    const carol = await env.startSipp({ scenario: 'it_call_uas.xml', timeoutSec: 30 * SLOW,
      vars: { RING_MS: 0, BYE_TIMEOUT_MS: 15000 * SLOW } });
    await bob.bound();
    await carol.bound();
    const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE],
      sippRoutes: [{ user: 'bob', port: bob.port }, { user: 'carol', port: carol.port }] });
    const { gw, alice } = await gateway(env, kam.port);

    // two calls, both answered
    const call1 = invite(alice, `sip:bob@${DOMAIN}`);
    const call2 = invite(alice, `sip:carol@${DOMAIN}`);
    const resp1 = await finalResponse(alice, call1);
    const resp2 = await finalResponse(alice, call2);
    assert.equal(resp1.status, 200, `call 1 (bob): ${resp1.status} ${resp1.reason}`);
    assert.equal(resp2.status, 200, `call 2 (carol): ${resp2.status} ${resp2.reason}`);
    ack(alice, call1, resp1);
    ack(alice, call2, resp2);
    const rtcsipdTag2 = tagOf(resp2.get('to'));
    assert.ok(rtcsipdTag2, 'a To tag on call 2\'s 200');

    const referredBy = `<sip:alice@${DOMAIN}>`;
    const replacesUri = (callId, toTag, fromTag) => `<sip:carol@${DOMAIN}?Replaces=` +
      `${encodeURIComponent(`${callId};to-tag=${toTag};from-tag=${fromTag}`)}>`;

    // a Replaces that names no call: 400 here, nothing to the PBX
    const bad = await request(alice, call1, resp1, 'REFER', 2, {
      'Refer-To': replacesUri(`nosuch-${randomToken(8)}@test`, rtcsipdTag2, call2.fromTag),
      'Referred-By': referredBy });
    assert.equal(bad.status, 400, `REFER with a Replaces naming no call: ${bad.status} ${bad.reason}`);

    // call 2's dialog as the browser knows it (JsSIP: call-id;to-tag=remote;from-tag=local)
    const refer = await request(alice, call1, resp1, 'REFER', 3, {
      'Refer-To': replacesUri(call2.callId, rtcsipdTag2, call2.fromTag), 'Referred-By': referredBy });
    assert.equal(refer.status, 202, `REFER: ${refer.status} ${refer.reason}`);
    const notify = await alice.waitForRequest((r) => r.method === 'NOTIFY' && r.get('call-id') === call1.callId,
      5000 * SLOW);
    assert.equal(notify.get('event'), 'refer', 'NOTIFY: Event: refer');
    assert.match(notify.get('subscription-state'), /^terminated\b/, 'NOTIFY: Subscription-State: terminated');
    assert.match(notify.get('content-type'), /^message\/sipfrag\b/, 'NOTIFY: message/sipfrag');
    assert.match(notify.body, /^SIP\/2\.0 200 OK\r?\n?/, `NOTIFY body: ${nb(notify.body)}`);
    assert.equal(tagOf(notify.get('to')), call1.fromTag, 'NOTIFY: To tag = the browser\'s From tag in call 1');
    assert.equal(tagOf(notify.get('from')), tagOf(resp1.get('to')), 'NOTIFY: From tag = rtcsipd\'s tag in call 1');

    // hang up both
    const [b1, b2] = await Promise.all([request(alice, call1, resp1, 'BYE', 4),
      request(alice, call2, resp2, 'BYE', 2)]);
    assert.equal(b1.status, 200, `BYE call 1: ${b1.status} ${b1.reason}`);
    assert.equal(b2.status, 200, `BYE call 2: ${b2.status} ${b2.reason}`);

    const [s1, s2] = await Promise.all([bob.result(), carol.result()]);
    assert.equal(s1.code, 0,
      `SIPp bob (INVITE, ACK, REFER -> 202, NOTIFY, BYE):\n${nb(s1.errors)}\n${nb(s1.messages)}`);
    assert.equal(s2.code, 0, `SIPp carol (INVITE, ACK, BYE):\n${nb(s2.errors)}\n${nb(s2.messages)}`);
    const refers = s1.requests.filter((r) => r.startsWith('REFER ')).map(traced);
    assert.equal(refers.length, 1, `one REFER at the PBX (not the one naming no call), got ${refers.length}:\n` +
      `${nb(s1.requests.join('\n'))}`);
    const atPbx = refers[0];

    // call 2 as the PBX (carol) knows it
    const carolBlocks = traceBlocks(s2.messages);
    const inv2 = carolBlocks.find((b) => b.dir === 'received' && b.msg.method === 'INVITE').msg;
    const ok2 = carolBlocks.find((b) => b.dir === 'sent' && b.msg.status === 200 &&
      b.msg.get('cseq') === '1 INVITE').msg;
    const pbxToTag2 = tagOf(ok2.get('to'));
    const pbxFromTag2 = tagOf(inv2.get('from'));
    assert.equal(inv2.get('call-id'), call2.callId, 'call 2 keeps the browser\'s Call-ID toward the PBX');
    assert.equal(pbxFromTag2, call2.fromTag, 'call 2 keeps the browser\'s From tag toward the PBX');
    assert.notEqual(pbxToTag2, rtcsipdTag2, 'the PBX\'s To tag in call 2 is not rtcsipd\'s own toward the browser');

    const referTo = atPbx.get('refer-to');
    assert.equal(uriOf(referTo).split('?')[0], `sip:carol@${DOMAIN}`, `Refer-To target kept: ${referTo}`);
    const m = uriOf(referTo).match(/[?&]Replaces=([^&]*)/i);
    assert.ok(m, `Refer-To with ?Replaces=: ${referTo}`);
    const rp = parseReplaces(decodeURIComponent(m[1]));
    assert.equal(rp.callId, call2.callId, `Replaces Call-ID: ${referTo}`);
    assert.equal(rp.toTag, pbxToTag2, `Replaces to-tag = the PBX's (carol's) To tag in call 2: ${referTo}`);
    assert.equal(rp.fromTag, pbxFromTag2, `Replaces from-tag = rtcsipd's From tag toward carol: ${referTo}`);
    assert.equal(atPbx.get('referred-by'), referredBy, 'Referred-By passed on');
    assert.equal(atPbx.get('call-id'), call1.callId, 'the REFER in call 1\'s dialog toward the PBX');
    assert.match(gw.logs(), /\[call-\d+\] REFER with Replaces: call-\d+ as the PBX knows it/);
  }));

// A browser may name only its own calls in a Replaces (as an INVITE with
// Replaces from the PBX may replace only a call with the same browser): a
// REFER naming another WebSocket connection's call must not reach the PBX
// with that call's PBX dialog, which would let the transfer target take it over.
test('REFER with Replaces naming a call of another WebSocket connection: 400, nothing to the PBX',
  { timeout: TEST_TIMEOUT },
  () => withEnv('transfer-refer-other-conn', async (env) => {
    const bob = await env.startSipp({ scenario: 'it_call_uas.xml', timeoutSec: 30 * SLOW,
      vars: { RING_MS: 0, BYE_TIMEOUT_MS: 15000 * SLOW } });
    const carol = await env.startSipp({ scenario: 'it_call_uas.xml', timeoutSec: 30 * SLOW,
      vars: { RING_MS: 0, BYE_TIMEOUT_MS: 15000 * SLOW } });
    await bob.bound();
    await carol.bound();
    const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE],
      sippRoutes: [{ user: 'bob', port: bob.port }, { user: 'carol', port: carol.port }] });
    const { gw, alice } = await gateway(env, kam.port);
    const mallory = await SipWsClient.connect(gw.wsUrl, { user: 'mallory', domain: DOMAIN,
      transactionTimeoutMs: 8000 * SLOW });
    env.defer(() => mallory.close());

    const call1 = invite(mallory, `sip:bob@${DOMAIN}`);
    const call2 = invite(alice, `sip:carol@${DOMAIN}`);
    const resp1 = await finalResponse(mallory, call1);
    const resp2 = await finalResponse(alice, call2);
    assert.equal(resp1.status, 200, `mallory's call (bob): ${resp1.status} ${resp1.reason}`);
    assert.equal(resp2.status, 200, `alice's call (carol): ${resp2.status} ${resp2.reason}`);
    ack(mallory, call1, resp1);
    ack(alice, call2, resp2);
    // alice's call, exactly as alice knows it
    const replaces = `${call2.callId};to-tag=${tagOf(resp2.get('to'))};from-tag=${call2.fromTag}`;
    request(mallory, call1, resp1, 'REFER', 2,
      { 'Refer-To': `<sip:carol@${DOMAIN}?Replaces=${encodeURIComponent(replaces)}>` }).catch(() => null);
    // the answer comes at once; a REFER that went to the PBX gets none from this SIPp (its 408 comes late)
    const refer = await waitFor(() => responsesTo(mallory, call1, 'REFER', 2).find((r) => r.status >= 200),
      2000 * SLOW, { what: 'the answer to the REFER' }).catch(() => null);
    const b2 = await request(alice, call2, resp2, 'BYE', 2);
    assert.equal(b2.status, 200, `BYE alice's call: ${b2.status} ${b2.reason}`);
    await request(mallory, call1, resp1, 'BYE', 3).catch(() => null);
    const s1 = await bob.result();
    await carol.result();
    const refers = s1.requests.filter((r) => r.startsWith('REFER '));
    // assert.ok: a message without the blank line assert.equal would add (it would end the TAP YAML block)
    assert.ok(refer && refer.status === 400, nb(`REFER naming another connection's call: ` +
      `${refer ? `${refer.status} ${refer.reason}` : 'no answer'}; at the PBX:\n${refers.join('\n')}\nrtcsipd:\n` +
      `${gw.logs().split('\n').filter((l) => /REFER/.test(l)).join('\n')}`));
    assert.ok(refers.length === 0, `no REFER at the PBX, got ${refers.length}`);
  }));

// ---------------------------------------------------------------------------
// PBX -> browser: INVITE with Replaces.

// How alice answers INVITEs: 180 then 200 with a WebRTC answer at once; her
// To tag per Call-ID is kept.  Everything else gets 200.
function answerInvites(alice) {
  const calls = new Map(); // Call-ID -> { invite, toTag }
  alice.answer = (req) => {
    if (req.method !== 'INVITE') return { status: 200, reason: 'OK' };
    const c = { invite: req, toTag: randomToken(10) };
    calls.set(req.get('call-id'), c);
    const contact = { Contact: `<${alice.contactUri}>` };
    alice.sendRaw(alice.buildResponse(req, 180, 'Ringing', contact, '', c.toTag));
    alice.sendRaw(alice.buildResponse(req, 200, 'OK', { ...contact, 'Content-Type': 'application/sdp' },
      webrtcAnswer(req.body), c.toTag));
    return null;
  };
  return calls;
}

test('INVITE with Replaces from the PBX: the browser gets Replaces naming the call as it knows it, answers; its BYE on the old call reaches the PBX',
  { timeout: TEST_TIMEOUT }, () => withEnv('transfer-invite-replaces', async (env) => {
    const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE] });
    const { gw, alice } = await gateway(env, kam.port, { register: true });
    const calls = answerInvites(alice);
    const pbx = await UdpUa.open(env, kam.port);
    const sipp = await env.startSipp({
      scenario: 'it_xfer_uac_replaced.xml', remote: `${LOOPBACK}:${kam.port}`, args: ['-s', 'alice'],
      vars: { DOMAIN, ANSWER_TIMEOUT_MS: 8000 * SLOW, BYE_TIMEOUT_MS: 15000 * SLOW }, timeoutSec: 30 * SLOW,
    });

    // call 1 as the browser knows it
    const inv1 = await alice.waitForRequest((r) => r.method === 'INVITE', 8000 * SLOW);
    const c1 = calls.get(inv1.get('call-id'));
    await waitFor(() => alice.requests.some((r) => r.method === 'ACK' && r.get('call-id') === c1.invite.get('call-id')),
      5000 * SLOW, { what: 'rtcsipd\'s ACK for call 1' });
    // call 1 as the PBX (SIPp) knows it: the 200 SIPp received, from its trace
    const ok1 = await waitFor(() => {
      let text = '';
      try { text = fs.readFileSync(sipp.messageFile, 'utf8'); } catch { return null; }
      const b = traceBlocks(text).find((x) => x.dir === 'received' && x.msg.status === 200 &&
        x.msg.get('cseq') === '1 INVITE');
      return b && b.msg;
    }, 5000 * SLOW, { what: 'the 200 of call 1 in SIPp\'s trace' });
    const pbxCallId1 = ok1.get('call-id');
    const rtcsipdTagToPbx = tagOf(ok1.get('to'));
    const sippTag = tagOf(ok1.get('from'));
    assert.equal(inv1.get('call-id'), pbxCallId1, 'call 1 keeps the PBX\'s Call-ID toward the browser');
    const rtcsipdTagToBrowser = tagOf(inv1.get('from'));
    assert.notEqual(rtcsipdTagToBrowser, sippTag, 'rtcsipd\'s own From tag toward the browser');

    // the second INVITE, replacing call 1 (RFC 3891: to-tag = the recipient's, rtcsipd's, tag)
    const second = pbx.invite('alice', { Replaces: `${pbxCallId1};to-tag=${rtcsipdTagToPbx};from-tag=${sippTag}` });
    const inv2 = await alice.waitForRequest((r) => r.method === 'INVITE' && r.get('call-id') !== pbxCallId1,
      8000 * SLOW);
    const { dialog, final } = await second;
    assert.equal(final.status, 200, `the INVITE with Replaces: ${final.status} ${final.reason}`);
    assert.equal(inv2.get('call-id'), dialog.callId, 'the new call keeps the PBX\'s Call-ID');
    assert.notEqual(tagOf(inv2.get('from')), dialog.fromTag, 'rtcsipd\'s own From tag in the new call');
    const rpText = inv2.get('replaces');
    assert.ok(rpText, `a Replaces header in the INVITE to the browser:\n${nb(inv2.raw)}`);
    const rp = parseReplaces(rpText);
    assert.equal(rp.callId, pbxCallId1, `Replaces: call 1's Call-ID as the browser knows it: ${rpText}`);
    assert.equal(rp.toTag, c1.toTag, `Replaces to-tag = the browser's own tag in call 1 (RFC 3891): ${rpText}`);
    assert.equal(rp.fromTag, rtcsipdTagToBrowser, `Replaces from-tag = rtcsipd's tag in call 1: ${rpText}`);
    assert.deepEqual(rp.order, ['to-tag', 'from-tag'], `Replaces parameters: ${rpText}`);
    await waitFor(() => alice.requests.some((r) => r.method === 'ACK' && r.get('call-id') === dialog.callId),
      5000 * SLOW, { what: 'rtcsipd\'s ACK for the new call' });

    // the browser ends the replaced call, as JsSIP does: the BYE reaches SIPp
    const routes = inv1.all('record-route');
    const bye1 = await alice.request('BYE', { uri: uriOf(inv1.get('contact')), to: inv1.get('from'),
      from: untagged(inv1.get('to')), fromTag: c1.toTag, callId: pbxCallId1, cseq: 1, contact: false,
      headers: routes.length ? { Route: routes } : {} });
    assert.equal(bye1.status, 200, `BYE on call 1: ${bye1.status} ${bye1.reason}`);
    const s = await sipp.result();
    assert.equal(s.code, 0, `SIPp UAC (call 1: 200, ACK, then the BYE):\n${nb(s.errors)}\n${nb(s.messages)}`);
    assert.ok(s.requests.some((r) => r.startsWith('BYE ')), 'SIPp got the BYE of call 1');

    // the new call ends from the PBX side
    const b2 = await pbx.bye(dialog);
    assert.equal(b2.status, 200, `BYE on the new call: ${b2.status} ${b2.reason}`);
    await alice.waitForRequest((r) => r.method === 'BYE' && r.get('call-id') === dialog.callId, 5000 * SLOW);
    assert.match(gw.logs(), /\[call-\d+\] replaces call-\d+/);
  }));

test('INVITE with Replaces from the PBX naming no call: 481 to the PBX, nothing to the browser',
  { timeout: TEST_TIMEOUT }, () => withEnv('transfer-invite-replaces-481', async (env) => {
    const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE] });
    const { gw, alice } = await gateway(env, kam.port, { register: true });
    answerInvites(alice);
    const pbx = await UdpUa.open(env, kam.port);
    const { final } = await pbx.invite('alice',
      { Replaces: `nosuch-${randomToken(8)}@pbx;to-tag=${randomToken(8)};from-tag=${randomToken(8)}` });
    assert.equal(final.status, 481, `${final.status} ${final.reason}`);
    assert.ok(!alice.requests.some((r) => r.method === 'INVITE'), 'no INVITE to the browser');
    assert.match(gw.logs(), /\[call-\d+\] INVITE with Replaces: no such call with this browser, 481/);
  }));

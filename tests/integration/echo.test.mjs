// The built-in echo target ([sip] echo_user): an INVITE from a browser to
// sip:echo@DOMAIN is answered by rtcsipd itself, with no PBX involved.  No
// real browser here: the offer is one captured from Chromium (candidates on
// 192.0.2.2, which nobody answers), so ICE never completes; the test checks
// the signalling, the SDP answer, and that every way of ending the call
// frees it (rtcsipd's "call ended" summary line).  tests/browser/echo.test.mjs
// does the same with real media.
import test from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { withEnv, freePort, randomToken, testsDir, waitFor } from '../lib/harness.mjs';
import { SipWsClient, uriOf, params } from '../lib/sipclient.mjs';

const DOMAIN = 'example.com';
const ECHO = `sip:echo@${DOMAIN}`;
const OFFER = fs.readFileSync(path.join(testsDir, 'unit/data/sdp/chromium-jssip-audio.sdp'), 'utf8');
const RTP_MIN = 31300;
const RTP_MAX = 31399;

async function setup(env, overrides = {}) {
  // the PBX is never contacted: a free port with nothing behind it
  const gw = await env.startRtcsipd({
    pbxPort: await freePort(), domains: [DOMAIN],
    overrides: { media: { rtp_port_min: RTP_MIN, rtp_port_max: RTP_MAX }, ...overrides },
  });
  const alice = await SipWsClient.connect(gw.wsUrl, { user: 'alice', domain: DOMAIN });
  env.defer(() => alice.close());
  return { gw, alice };
}

function invite(alice, { uri = ECHO, callId = `${randomToken(12)}@test`, body = OFFER } = {}) {
  const opts = { uri, callId, cseq: 1, body, headers: { 'Content-Type': 'application/sdp' } };
  return { callId, opts, answer: alice.request('INVITE', opts) };
}

function ack(alice, callId, resp, cseq = 1, uri = uriOf(resp.get('contact'))) {
  alice.sendRaw(alice.buildRequest('ACK', { uri, to: resp.get('to'),
    callId, cseq, contact: false }).text);
}

const ended = (gw, cause) => gw.child.waitForOutput(
  new RegExp(`\\[echo-\\d+\\] call ended: cause ${cause}`), 15000, `call ended: cause ${cause}`);

test('INVITE to the echo user: 100, 200 with a WebRTC answer, ACK, BYE -> 200 and the call ends',
  { timeout: 60000 }, () => withEnv('echo-basic', async (env) => {
    const { gw, alice } = await setup(env);
    const { callId, answer } = invite(alice);
    const resp = await answer;
    assert.equal(resp.status, 200, `${resp.status} ${resp.reason}`);
    assert.ok(resp.provisional.some((p) => p.status === 100), '100 Trying first');
    assert.equal(resp.get('call-id'), callId);
    assert.ok(params(resp.get('to').replace(/<[^>]*>/, '')).tag, 'a To tag');
    assert.match(resp.get('contact'), /^<sip:rtcsipd@127\.0\.0\.1;transport=ws>$/);
    assert.equal(resp.get('content-type'), 'application/sdp');
    const sdp = resp.body;
    assert.match(sdp, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF 111 110\r$/m, 'opus (pt 111) + telephone-event/48000 (pt 110) from the offer');
    assert.match(sdp, /^a=rtpmap:111 opus\/48000\/2\r$/m);
    assert.match(sdp, /^a=setup:(active|passive)\r$/m);
    assert.match(sdp, /^a=fingerprint:sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}\r$/m);
    assert.doesNotMatch(sdp, /DC:F8:AB:36/, 'our own fingerprint, not the browser\'s');
    assert.match(sdp, /^a=ice-ufrag:\S+\r$/m);
    assert.match(sdp, /^a=ice-pwd:\S+\r$/m);
    assert.match(sdp, /^a=rtcp-mux\r$/m);
    assert.match(sdp, /^a=sendrecv\r$/m);
    const cands = sdp.match(/^a=candidate:.*$/mg) || [];
    assert.ok(cands.length >= 1, 'at least one candidate');
    for (const c of cands) {
      const f = c.split(' ');
      assert.equal(f[4], '127.0.0.1', `candidate on 127.0.0.1: ${c}`);
      assert.ok(Number(f[5]) >= RTP_MIN && Number(f[5]) <= RTP_MAX, `port in [media] range: ${c}`);
    }
    ack(alice, callId, resp);
    const bye = await alice.request('BYE', { uri: uriOf(resp.get('contact')), to: resp.get('to'),
      callId, cseq: 2 });
    assert.equal(bye.status, 200, `BYE: ${bye.status} ${bye.reason}`);
    await ended(gw, 'BYE from the browser');
    assert.match(gw.logs(), /\[echo-\d+\] state confirmed -> ended /);
    assert.match(gw.logs(), /call ended: cause BYE from the browser, [\d.]+ s, browser->rtcsipd 0 rtp\/0 bytes 0 rtcp, rtcsipd->browser 0 rtp\/0 bytes 0 rtcp, srtp auth failures 0/);
  }));

test('INFO in the dialog -> 200, re-INVITE -> 488, BYE -> 200',
  { timeout: 60000 }, () => withEnv('echo-in-dialog', async (env) => {
    const { gw, alice } = await setup(env);
    const { callId, answer } = invite(alice);
    const resp = await answer;
    assert.equal(resp.status, 200);
    ack(alice, callId, resp);
    const target = uriOf(resp.get('contact'));
    const info = await alice.request('INFO', { uri: target, to: resp.get('to'), callId, cseq: 2,
      body: 'Signal=1\r\nDuration=100\r\n', headers: { 'Content-Type': 'application/dtmf-relay' } });
    assert.equal(info.status, 200);
    const reinvite = await alice.request('INVITE', { uri: target, to: resp.get('to'), callId, cseq: 3,
      body: OFFER, headers: { 'Content-Type': 'application/sdp' } });
    assert.equal(reinvite.status, 488);
    ack(alice, callId, reinvite, 3, target);
    const bye = await alice.request('BYE', { uri: target, to: resp.get('to'), callId, cseq: 4 });
    assert.equal(bye.status, 200);
    await ended(gw, 'BYE from the browser');
  }));

// With nothing behind the [pbx] port, a call that goes to the PBX ends with
// 503 (ICMP port unreachable) and not with rtcsipd's echo answer.
const toPbx = (gw, user) => gw.child.waitForOutput(
  new RegExp(`\\[call-\\d+\\] INVITE ${user}@${DOMAIN} from alice`), 5000, `a call to ${user} via the PBX`);

test('echo_user empty switches the echo off: INVITEs to echo and to another user go to the PBX',
  { timeout: 60000 }, () => withEnv('echo-off', async (env) => {
    const { gw, alice } = await setup(env, { sip: { echo_user: '' } });
    const r1 = await invite(alice).answer;
    assert.equal(r1.status, 503, `${r1.status} ${r1.reason}`);
    await toPbx(gw, 'echo');
    const r2 = await invite(alice, { uri: `sip:bob@${DOMAIN}` }).answer;
    assert.equal(r2.status, 503, `${r2.status} ${r2.reason}`);
    await toPbx(gw, 'bob');
    assert.doesNotMatch(gw.logs(), /\[echo-\d+\]/, 'no echo call');
  }));

test('a configured echo_user, and an INVITE to it without SDP -> 488',
  { timeout: 60000 }, () => withEnv('echo-user', async (env) => {
    const { alice } = await setup(env, { sip: { echo_user: 'mirror' } });
    assert.equal((await invite(alice).answer).status, 503, 'echo is not the echo user any more: to the PBX');
    const r = await invite(alice, { uri: `sip:mirror@${DOMAIN}`, body: '' }).answer;
    assert.equal(r.status, 488);
    const ok = await invite(alice, { uri: `sip:mirror@${DOMAIN}` }).answer;
    assert.equal(ok.status, 200);
  }));

// A STUN server that never answers holds the answer back for about 2 s
// (ice.h: gathering waits for it), time for the CANCEL to arrive first.
test('CANCEL before the answer: 200 to the CANCEL and 487 to the INVITE, ACK',
  { timeout: 60000 }, () => withEnv('echo-cancel', async (env) => {
    const { gw, alice } = await setup(env, { media: { rtp_port_min: RTP_MIN, rtp_port_max: RTP_MAX,
      stun_servers: `stun:127.0.0.1:${await freePort()}` } });
    const callId = `${randomToken(12)}@test`;
    const inv = alice.buildRequest('INVITE', { uri: ECHO, callId, cseq: 1, body: OFFER,
      headers: { 'Content-Type': 'application/sdp' } });
    const cancel = alice.buildRequest('CANCEL', { uri: ECHO, callId, cseq: 1, branch: inv.branch,
      contact: false });
    alice.sendRaw(inv.text);
    alice.sendRaw(cancel.text);
    const final = await waitFor(() => alice.responses.find((r) => r.get('call-id') === callId &&
      /INVITE$/.test(r.get('cseq')) && r.status >= 200), 5000, { what: 'a final answer to the INVITE' });
    const cancelResp = await waitFor(() => alice.responses.find((r) => r.get('call-id') === callId &&
      /CANCEL$/.test(r.get('cseq'))), 5000, { what: 'an answer to the CANCEL' });
    assert.equal(cancelResp.status, 200);
    assert.equal(final.status, 487, `${final.status} ${final.reason}`);
    assert.ok(params(final.get('to').replace(/<[^>]*>/, '')).tag, 'a To tag on the 487');
    ack(alice, callId, final, 1, ECHO);
    await ended(gw, 'CANCEL from the browser');
    assert.match(gw.logs(), /\[echo-\d+\] state to-pbx-trying -> ended \(CANCEL from the browser\)/);
    assert.match(gw.logs(), /call ended: cause CANCEL from the browser, [\d.]+ s \(not answered\)/);
  }));

test('the WebSocket closes mid-call: the call is freed', { timeout: 60000 },
  () => withEnv('echo-ws-close', async (env) => {
    const { gw, alice } = await setup(env);
    const { callId, answer } = invite(alice);
    const resp = await answer;
    assert.equal(resp.status, 200);
    ack(alice, callId, resp);
    await alice.close(1000);
    await ended(gw, 'WebSocket closed');
  }));

test('ICE never completes: rtcsipd sends the browser a BYE and frees the call', { timeout: 60000 },
  () => withEnv('echo-media-failed', async (env) => {
    const { gw, alice } = await setup(env);
    const { callId, opts, answer } = invite(alice);
    const resp = await answer;
    assert.equal(resp.status, 200);
    ack(alice, callId, resp);
    const bye = await alice.waitForRequest((r) => r.method === 'BYE', 20000);
    assert.equal(bye.uri, `${alice.contactUri};ob`, 'Request-URI: the browser\'s Contact URI');
    assert.equal(bye.get('call-id'), callId);
    assert.match(bye.get('via'), /^SIP\/2\.0\/WS 127\.0\.0\.1;branch=z9hG4bK/);
    assert.equal(params(bye.get('from').replace(/<[^>]*>/, '')).tag,
      params(resp.get('to').replace(/<[^>]*>/, '')).tag, 'From tag = our To tag');
    assert.equal(params(bye.get('to').replace(/<[^>]*>/, '')).tag, alice.fromTag, 'To tag = the browser\'s');
    assert.equal(uriOf(bye.get('to')), alice.aor);
    assert.match(bye.get('cseq'), /^\d+ BYE$/);
    assert.ok(opts);
    await ended(gw, 'media failed');
  }));

// libnice and Sofia-SIP both export stun_message_length(); with Sofia's
// loaded first, libnice builds empty checks and never sends one (see the
// order of deps in meson.build).  A UDP socket posing as the browser's
// candidate must receive rtcsipd's STUN binding requests.
test('rtcsipd sends ICE connectivity checks to the browser\'s candidate', { timeout: 60000 },
  () => withEnv('echo-ice-checks', async (env) => {
    const { alice } = await setup(env);
    const sock = dgram.createSocket('udp4');
    env.defer(() => sock.close());
    const got = [];
    sock.on('message', (m) => got.push(m));
    await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
    const body = OFFER.replace('192.0.2.2 52351 typ host', `127.0.0.1 ${sock.address().port} typ host`);
    const { callId, answer } = invite(alice, { body });
    const resp = await answer;
    assert.equal(resp.status, 200);
    ack(alice, callId, resp);
    await waitFor(() => got.length > 0, 5000, { what: 'a STUN binding request from rtcsipd' });
    const m = got[0];
    assert.equal(m.readUInt16BE(0), 0x0001, 'a STUN Binding request');
    assert.equal(m.readUInt32BE(4), 0x2112A442, 'the STUN magic cookie');
  }));

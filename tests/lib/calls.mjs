// Scaffolding shared by the integration tests of calls through rtcsipd
// without a browser (integration/calls, midcall and transfer.test.mjs): a fake
// browser (SipWsClient over ws://) on one side, SIPp (directly, or behind
// Kamailio) as the PBX on the other.  The browser's offer is one captured
// from Chromium (tests/unit/data/sdp/chromium-jssip-audio.sdp, candidates on
// 192.0.2.2), so ICE never completes.
//
// Under `meson test --setup valgrind` every wait on the daemon is
// VALGRIND_SLOWDOWN (SLOW) times longer.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomToken, testsDir, waitFor, VALGRIND_SLOWDOWN } from './harness.mjs';
import { SipWsClient, parseSip, params, uriOf } from './sipclient.mjs';

export const SLOW = VALGRIND_SLOWDOWN;
export const DOMAIN = 'example.com';
export const SIPP_URI = `sip:sipp@${DOMAIN}`;
export const OFFER = fs.readFileSync(path.join(testsDir, 'unit/data/sdp/chromium-jssip-audio.sdp'), 'utf8');
// The browser's user (one password per test file: each runs in its own process).
export const ALICE = { username: 'alice', password: `pw-${randomToken(8)}` };

export const tagOf = (nameAddr) => params(nameAddr.replace(/<[^>]*>/, '')).tag;

// Text for an assertion message, without blank lines (they would end the TAP YAML block).
// Long texts (SIPp's traces) keep their last 30000 characters.
export const nb = (text) => {
  const t = String(text).replace(/\r/g, '').replace(/\n\s*(?=\n)/g, '').trimEnd();
  return t.length > 30000 ? `[...]\n${t.slice(-30000)}` : t;
};

// A message from SIPp's message trace, parsed.
export function traced(text) {
  const t = text.replace(/\r?\n/g, '\r\n');
  return parseSip(t.includes('\r\n\r\n') ? t : `${t}\r\n\r\n`);
}

// ---------------------------------------------------------------------------
// Setup.

// The browser side: rtcsipd in front of PBXPORT, its [media] port range RTP
// ([min, max]: each test file has its own) and the config OVERRIDES on top,
// and alice connected over ws (registered when REGISTER).
export async function gateway(env, pbxPort, { rtp, overrides = {}, register = false }) {
  const gw = await env.startRtcsipd({
    pbxPort, domains: [DOMAIN],
    overrides: {
      ...overrides,
      media: { rtp_port_min: rtp[0], rtp_port_max: rtp[1], ...(overrides.media || {}) },
    },
  });
  const alice = await SipWsClient.connect(gw.wsUrl, { user: 'alice', password: ALICE.password, domain: DOMAIN,
    transactionTimeoutMs: 8000 * SLOW });
  env.defer(() => alice.close());
  if (register) {
    const { response } = await alice.register({ expires: 600 });
    assert.equal(response.status, 200, `alice REGISTER: ${response.status} ${response.reason}`);
  }
  return { gw, alice };
}

// SIPp calls alice@DOMAIN through Kamailio with SCENARIO (a UAC scenario).
export function sippCallsAlice(env, kam, scenario, vars = {}, timeoutSec = 20) {
  return env.startSipp({
    scenario, remote: `127.0.0.1:${kam.port}`, args: ['-s', 'alice'],
    vars: { DOMAIN, ANSWER_TIMEOUT_MS: 8000 * SLOW, BYE_TIMEOUT_MS: 5000 * SLOW, ...vars },
    timeoutSec: timeoutSec * SLOW,
  });
}

// ---------------------------------------------------------------------------
// The browser's side of a call from the browser (SipWsClient speaks the
// transactions by hand).

// Sends an INVITE (with its own From tag FROMTAG if given, else alice's);
// returns the call { callId, uri, cseq, branch, fromTag, sent (parsed) }.
export function invite(alice, { uri = SIPP_URI, callId = `${randomToken(12)}@test`, cseq = 1, body = OFFER,
  headers = {}, fromTag } = {}) {
  const { text, branch } = alice.buildRequest('INVITE', { uri, callId, cseq, body, fromTag,
    headers: { 'Content-Type': 'application/sdp', Supported: 'timer,ice,replaces,outbound', ...headers } });
  alice.sendRaw(text);
  return { callId, uri, cseq, branch, fromTag, sent: parseSip(text) };
}

export const responsesTo = (alice, call, method = 'INVITE', cseq = call.cseq) => alice.responses.filter((r) =>
  r.get('call-id') === call.callId && r.get('cseq') === `${cseq} ${method}`);

// The final response to CALL's request METHOD with CSEQ, within MS (with
// .provisional: the 1xx before it).
export async function finalResponse(alice, call, { method = 'INVITE', cseq = call.cseq, ms = 10000 * SLOW } = {}) {
  const f = await waitFor(() => responsesTo(alice, call, method, cseq).find((r) => r.status >= 200), ms,
    { what: `a final response to ${method} ${call.callId} (CSeq ${cseq})` });
  f.provisional = responsesTo(alice, call, method, cseq).filter((r) => r.status < 200);
  return f;
}

// BYE from the browser in the dialog of RESP (the 200 to CALL's INVITE); resolves with its final response.
export function bye(alice, call, resp, cseq) {
  const routes = resp.all('record-route').reverse();
  return alice.request('BYE', { uri: uriOf(resp.get('contact')), to: resp.get('to'), callId: call.callId, cseq,
    contact: false, headers: routes.length ? { Route: routes } : {} });
}

// ---------------------------------------------------------------------------
// Checks.

// rtcsipd's log line at the end of a call.
export const ended = (gw, cause, ms = 15000 * SLOW) => gw.child.waitForOutput(
  new RegExp(`\\[call-\\d+\\] call ended: cause ${cause}`), ms, `call ended: cause ${cause}`);

// Steps shared by the browser tests against rtcsipd + Kamailio.
import assert from 'node:assert/strict';
import { parseSip, parseChallenge } from '../../lib/sipclient.mjs';
import { startWebServer, launchChromium } from './browser.mjs';

export const DOMAIN = 'example.com';

// The web server and Chromium of one test, stopped when ENV closes.
export async function startBrowserSide(env) {
  const web = await startWebServer();
  env.defer(() => web.close());
  const browser = await launchChromium();
  env.defer(() => browser.close());
  return { web, browser };
}

// SIPp sends one MESSAGE with BODY to USER@DOMAIN through Kamailio and
// expects the final response EXPECT; returns SIPp's result (harness SippRun).
export function sippMessage(env, kam, { user = 'alice', expect, body = 'ping', timeoutMs = 3000 }) {
  return env.runSipp({
    scenario: 'message_uac.xml', remote: `127.0.0.1:${kam.port}`, args: ['-s', user],
    vars: { DOMAIN, EXPECT: expect, TIMEOUT_MS: timeoutMs, BODY: body }, timeoutSec: 6,
  });
}

// The SIP messages of the page's WebSocket frames, parsed, with their direction.
export function sipFrames(frames) {
  const out = [];
  for (const f of frames) {
    try {
      const m = parseSip(f.data);
      m.dir = f.dir;
      m.t = f.t;
      out.push(m);
    } catch { /* keep-alive or not SIP */ }
  }
  return out;
}

const cseqNum = (m) => Number(m.get('cseq').split(/\s+/)[0]);

// Asserts that the page's REGISTER was challenged by the PBX (401 with a
// Digest challenge for DOMAIN, passed through rtcsipd) and that the library
// answered it with credentials for USER and got EXPECT (200, or 401/403 for a
// wrong password).  Returns { challenge, authorized, final }.
export function assertDigestExchange(frames, { user, expect = 200 }) {
  const msgs = sipFrames(frames);
  const trace = () => msgs.map((m) => `${m.dir} ${m.isResponse ? `${m.status} (${m.get('cseq')})` : `${m.method} ${m.uri}`}`)
    .join('\n');
  const firstReg = msgs.find((m) => m.dir === 'out' && m.method === 'REGISTER');
  assert.ok(firstReg, `the page sent a REGISTER:\n${trace()}`);
  assert.equal(firstReg.get('authorization'), undefined, 'the first REGISTER carries no credentials');
  const callId = firstReg.get('call-id');
  const mine = msgs.filter((m) => m.get('call-id') === callId);
  const challenge = mine.find((m) => m.dir === 'in' && m.isResponse && m.status === 401);
  assert.ok(challenge, `the PBX's 401 challenge reached the page:\n${trace()}`);
  assert.equal(cseqNum(challenge), cseqNum(firstReg));
  const chal = parseChallenge(challenge.get('www-authenticate'));
  assert.equal(chal.realm, DOMAIN, 'challenge realm');
  const authorized = mine.find((m) => m.dir === 'out' && m.method === 'REGISTER' && m.get('authorization'));
  assert.ok(authorized, `the page answered the challenge with credentials:\n${trace()}`);
  const cred = parseChallenge(authorized.get('authorization'));
  assert.equal(cred.username, user);
  assert.equal(cred.realm, DOMAIN);
  assert.equal(cred.nonce, chal.nonce, 'credentials for the challenge\'s nonce');
  assert.equal(cseqNum(authorized), cseqNum(firstReg) + 1, 'CSeq + 1 on the authorized REGISTER');
  const final = mine.find((m) => m.dir === 'in' && m.isResponse && m.status >= 200 &&
    cseqNum(m) === cseqNum(authorized));
  assert.ok(final, `a final response to the authorized REGISTER:\n${trace()}`);
  if (Array.isArray(expect)) assert.ok(expect.includes(final.status), `final ${final.status}, expected ${expect}`);
  else assert.equal(final.status, expect, `final response to the authorized REGISTER:\n${trace()}`);
  return { challenge, authorized, final };
}

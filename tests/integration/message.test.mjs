// MESSAGE both ways between a browser (SIP over WebSocket) behind rtcsipd and
// a SIP phone (SIPp) behind Kamailio, and what the PBX sees when the browser
// is gone.
import test from 'node:test';
import assert from 'node:assert/strict';
import { withEnv, startPbxAndGateway, freePort, randomToken } from '../lib/harness.mjs';
import { SipWsClient, uriOf } from '../lib/sipclient.mjs';

const DOMAIN = 'example.com';
const ALICE = { username: 'alice', password: `pw-${randomToken(8)}` };

async function setup(env) {
  const uasPort = await freePort();
  const { kam, gw } = await startPbxAndGateway(env, {
    domain: DOMAIN, users: [ALICE], sippRoutes: [{ user: 'sipp', port: uasPort }],
  });
  const alice = await SipWsClient.connect(gw.wsUrl, { user: 'alice', password: ALICE.password, domain: DOMAIN });
  env.defer(() => alice.close());
  const { response } = await alice.register({ expires: 600 });
  assert.equal(response.status, 200, `alice REGISTER: ${response.status} ${response.reason}`);
  return { kam, gw, alice, uasPort };
}

// SIPp sends a MESSAGE to alice@DOMAIN via Kamailio and expects EXPECT within TIMEOUT_MS.
function messageToAlice(env, kam, { expect, body = 'hi', timeoutMs = 3000 }) {
  return env.runSipp({
    scenario: 'message_uac.xml', remote: `127.0.0.1:${kam.port}`, args: ['-s', 'alice'],
    vars: { DOMAIN, EXPECT: expect, TIMEOUT_MS: timeoutMs, BODY: body }, timeoutSec: 6,
  });
}

test('MESSAGE from the PBX reaches the browser, and the browser\'s MESSAGE reaches the PBX',
  { timeout: 90000 }, () => withEnv('message-both-ways', async (env) => {
    const { kam, alice, uasPort } = await setup(env);

    // PBX -> browser.
    const body = `hello alice ${randomToken(6)}`;
    const uac = await messageToAlice(env, kam, { expect: 200, body });
    assert.deepEqual(uac.responses, [200], `SIPp must see the browser's 200:\n${uac.messages}`);
    assert.equal(uac.code, 0, uac.errors);
    const got = alice.requests.filter((r) => r.method === 'MESSAGE');
    assert.equal(got.length, 1, `exactly one MESSAGE delivered, got ${got.length}`);
    const m = got[0];
    assert.equal(m.uri, alice.contactUri, 'Request-URI restored to the browser\'s Contact URI');
    assert.equal(m.body, `${body}\r\n`, 'body unchanged (SIPp ends it with CRLF)');
    assert.equal(Number(m.get('content-length')), Buffer.byteLength(m.body));
    assert.equal(m.get('content-type'), 'text/plain');
    assert.equal(uriOf(m.get('from')), `sip:sipp@${DOMAIN}`);
    assert.equal(uriOf(m.get('to')), `sip:alice@${DOMAIN}`);
    assert.match(m.get('via'), /^SIP\/2\.0\/WSS? /, 'the top Via is rtcsipd\'s WebSocket hop');
    assert.ok(m.all('via').length >= 2, 'the PBX-side Vias are kept below it');

    // Browser -> PBX.
    const uas = await env.startSipp({
      scenario: 'message_uas.xml', port: uasPort, vars: { BODY_RE: '^hello sipp, alice here$' },
      timeoutSec: 10,
    });
    await uas.bound();
    const res = await alice.message(`sip:sipp@${DOMAIN}`, 'hello sipp, alice here');
    assert.equal(res.status, 200, `alice's MESSAGE: ${res.status} ${res.reason}`);
    assert.equal(res.all('via').length, 1, 'only the browser\'s Via comes back');
    const s = await uas.result();
    assert.equal(s.code, 0, `SIPp UAS:\n${s.errors}\n${s.messages}`);
    assert.equal(s.requests.length, 1, `SIPp got ${s.requests.length} MESSAGEs`);
    assert.match(s.requests[0], /^MESSAGE sip:sipp@example\.com SIP\/2\.0\r?\n/);
    assert.match(s.requests[0], /^From: [^\r\n]*<sip:alice@example\.com>/m);
    assert.doesNotMatch(s.requests[0], /\.invalid/, 'no browser-side .invalid address leaks to the PBX side');
  }));

for (const how of ['closes its WebSocket', 'drops its TCP connection']) {
  test(`a browser that ${how}: the PBX gets 480 within a second`, { timeout: 60000 }, () =>
    withEnv(`message-gone-${how.split(' ')[0]}`, async (env) => {
      const { kam, alice } = await setup(env);
      if (how.startsWith('closes')) {
        const ci = await alice.close(1000);
        assert.equal(ci.code, 1000);
      } else {
        alice.ws.terminate();
        await alice.waitClosed(2000);
      }
      const r = await messageToAlice(env, kam, { expect: 480, timeoutMs: 1000 });
      assert.deepEqual(r.responses, [480], `SIPp must get 480:\n${r.messages}`);
      assert.equal(r.code, 0, r.errors);
      const ms = r.responseTimes[0] - r.sentTimes[0];
      assert.ok(ms >= 0 && ms < 1000, `480 came ${ms} ms after the MESSAGE`);
    }));
}

test('a browser that closes while a MESSAGE waits for its answer: the PBX gets 480 within a second',
  { timeout: 60000 }, () => withEnv('message-gone-pending', async (env) => {
    const { kam, alice } = await setup(env);
    alice.answer = () => null; // received, never answered
    const run = await env.startSipp({
      scenario: 'message_uac.xml', remote: `127.0.0.1:${kam.port}`, args: ['-s', 'alice'],
      vars: { DOMAIN, EXPECT: 480, TIMEOUT_MS: 5000, BODY: 'anyone?' }, timeoutSec: 8,
    });
    await alice.waitForRequest((q) => q.method === 'MESSAGE', 5000);
    const t0 = Date.now();
    await alice.close(1001);
    const r = await run.result();
    assert.deepEqual(r.responses, [480], `SIPp must get 480:\n${r.messages}`);
    assert.equal(r.code, 0, r.errors);
    assert.ok(r.responseTimes[0] - t0 < 1000, `480 came ${r.responseTimes[0] - t0} ms after the close`);
  }));

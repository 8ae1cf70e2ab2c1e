// Self-check of the real peers the other integration tests rely on, without
// rtcsipd: Kamailio challenges REGISTER (digest, realm example.com), routes a
// MESSAGE to the static SIPp user, answers 404 for an unknown user.  When this
// fails, the other suites' failures are about the test setup, not rtcsipd.
import test from 'node:test';
import assert from 'node:assert/strict';
import { withEnv, freePort } from '../lib/harness.mjs';

const DOMAIN = 'example.com';

test('kamailio challenges REGISTER with digest for its realm', { timeout: 60000 }, () =>
  withEnv('peers-register', async (env) => {
    const kam = await env.startKamailio({ domain: DOMAIN, users: [{ username: 'alice', password: 'pw-a' }] });
    const r = await env.runSipp({
      scenario: 'register_uac.xml', vars: { DOMAIN }, remote: `127.0.0.1:${kam.port}`,
      args: ['-s', 'alice'], timeoutSec: 5,
    });
    assert.deepEqual(r.responses, [401], r.messages);
    assert.equal(r.code, 0, `sipp failed:\n${r.errors}\n${r.output}`);
  }));

test('kamailio relays MESSAGE to the static SIPp user and 404s unknown users', { timeout: 60000 }, () =>
  withEnv('peers-message', async (env) => {
    const uasPort = await freePort();
    const kam = await env.startKamailio({
      domain: DOMAIN, users: [{ username: 'alice', password: 'pw-a' }],
      sippRoutes: [{ user: 'sipp', port: uasPort }],
    });
    const uas = await env.startSipp({
      scenario: 'message_uas.xml', port: uasPort, vars: { BODY_RE: '^hello sipp[[:space:]]*$' }, timeoutSec: 10,
    });
    await uas.bound();
    const t0 = Date.now();
    const uac = await env.runSipp({
      scenario: 'message_uac.xml', remote: `127.0.0.1:${kam.port}`, args: ['-s', 'sipp'],
      vars: { DOMAIN, EXPECT: 200, TIMEOUT_MS: 3000, BODY: 'hello sipp' }, timeoutSec: 5,
    });
    assert.deepEqual(uac.responses, [200], uac.messages);
    assert.equal(uac.code, 0, `uac failed:\n${uac.errors}`);
    // the harness reads when each response arrived from SIPp's trace
    assert.ok(uac.sentTimes[0] >= t0 - 5 && uac.responseTimes[0] >= uac.sentTimes[0] &&
      uac.responseTimes[0] <= Date.now(),
      `response time ${uac.responseTimes[0]} not within [${t0}, now]`);
    const s = await uas.result();
    assert.equal(s.code, 0, `uas failed:\n${s.errors}\n${s.messages}`);
    assert.equal(s.requests.length, 1);
    assert.match(s.requests[0], /^MESSAGE sip:sipp@example\.com SIP\/2\.0/);

    const nobody = await env.runSipp({
      scenario: 'message_uac.xml', remote: `127.0.0.1:${kam.port}`, args: ['-s', 'nobody'],
      vars: { DOMAIN, EXPECT: 404, TIMEOUT_MS: 3000, BODY: 'hello' }, timeoutSec: 5,
    });
    assert.deepEqual(nobody.responses, [404], nobody.messages);
    assert.equal(nobody.code, 0);
  }));

// The PBX side over TCP and TLS: REGISTER through rtcsipd to Kamailio, and a
// MESSAGE back from the PBX to the browser over the same transport.  With TLS,
// the PBX's certificate is checked against [pbx] tls_directory/cafile.pem.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { withEnv, randomToken, makeSelfSignedCert } from '../lib/harness.mjs';
import { SipWsClient, uriOf } from '../lib/sipclient.mjs';

const DOMAIN = 'example.com';
const ALICE = { username: 'alice', password: `pw-${randomToken(8)}` };

function sippMessage(env, kam, body) {
  return env.runSipp({
    scenario: 'message_uac.xml', remote: `127.0.0.1:${kam.port}`, args: ['-s', 'alice'],
    vars: { DOMAIN, EXPECT: 200, TIMEOUT_MS: 4000, BODY: body }, timeoutSec: 8,
  });
}

// A Sofia-SIP TLS directory: cafile.pem (whom to trust) and agent.pem (our own key + certificate).
function tlsDirectory(env, caCertFile) {
  const dir = path.join(env.dir, `tls-${randomToken(4)}`);
  fs.mkdirSync(dir);
  const own = makeSelfSignedCert(dir, 'rtcsipd');
  fs.writeFileSync(path.join(dir, 'agent.pem'), fs.readFileSync(own.key, 'utf8') + fs.readFileSync(own.cert, 'utf8'));
  fs.copyFileSync(caCertFile, path.join(dir, 'cafile.pem'));
  return dir;
}

async function registerAndReceive(env, kam, gw, proto) {
  const c = await SipWsClient.connect(gw.wsUrl, { user: 'alice', password: ALICE.password, domain: DOMAIN });
  env.defer(() => c.close());
  const { challenge, response } = await c.register({ expires: 300 });
  assert.equal(challenge && challenge.status, 401, 'the PBX challenged the REGISTER');
  assert.equal(response.status, 200, `REGISTER over ${proto}: ${response.status} ${response.reason}`);
  assert.equal(uriOf(response.get('contact')), c.contactUri);
  assert.match(kam.child.output, new RegExp(`recv REGISTER sip:${DOMAIN} from 127\\.0\\.0\\.1:\\d+ over ${proto}`),
    `Kamailio received the REGISTER over ${proto}`);

  const body = `over ${proto} ${randomToken(6)}`;
  const r = await sippMessage(env, kam, body);
  assert.deepEqual(r.responses, [200], r.messages);
  const m = c.requests.find((q) => q.method === 'MESSAGE');
  assert.ok(m, 'the browser got the MESSAGE');
  assert.equal(m.body, `${body}\r\n`, 'SIPp ends the body with CRLF');
  return c;
}

test('PBX over TCP: REGISTER with digest auth, MESSAGE back', { timeout: 60000 }, () =>
  withEnv('pbx-tcp', async (env) => {
    const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE], tcp: true });
    const gw = await env.startRtcsipd({ pbxPort: kam.port, domains: [DOMAIN],
      overrides: { pbx: { transport: 'tcp' } } });
    await registerAndReceive(env, kam, gw, 'tcp');
  }));

test('PBX over TLS with its certificate verified: REGISTER, MESSAGE back', { timeout: 60000 }, () =>
  withEnv('pbx-tls', async (env) => {
    const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE], tls: true });
    const gw = await env.startRtcsipd({ pbxPort: kam.tlsPort, domains: [DOMAIN],
      overrides: { pbx: { transport: 'tls', tls_directory: tlsDirectory(env, kam.tls.cert) } } });
    assert.doesNotMatch(gw.logs(), /NOT verified/, 'with a cafile.pem the PBX is verified');
    await registerAndReceive(env, kam, gw, 'tls');
  }));

// Sofia-SIP 1.12.11 closes a TLS connection whose certificate fails the check
// without telling the transaction, so the answer comes when the transaction
// times out (timer F, 64*T1 = 32 s): a 408, never a hang, and the REGISTER
// never reaches the untrusted peer.
test('PBX over TLS with a certificate that is not trusted: the REGISTER never reaches it, the browser gets 408',
  { timeout: 60000 }, () => withEnv('pbx-tls-untrusted', async (env) => {
    const kam = await env.startKamailio({ domain: DOMAIN, users: [ALICE], tls: true });
    const stranger = makeSelfSignedCert(env.dir, 'stranger');
    const gw = await env.startRtcsipd({ pbxPort: kam.tlsPort, domains: [DOMAIN],
      overrides: { pbx: { transport: 'tls', tls_directory: tlsDirectory(env, stranger.cert) } } });
    const c = await SipWsClient.connect(gw.wsUrl, { user: 'alice', password: ALICE.password, domain: DOMAIN });
    env.defer(() => c.close());
    c.transactionTimeoutMs = 40000;
    const t0 = Date.now();
    const { challenge, response } = await c.register({ expires: 300 });
    const took = Date.now() - t0;
    assert.equal(challenge, null, 'no challenge can come from an untrusted PBX');
    assert.equal(response.status, 408, `${response.status} ${response.reason}`);
    assert.ok(took < 36000, `answered in ${took} ms`);
    assert.doesNotMatch(kam.child.output, /recv REGISTER/, 'Kamailio never got the REGISTER');
    assert.equal(c.ws.readyState, 1, 'the WebSocket stays open');
  }));

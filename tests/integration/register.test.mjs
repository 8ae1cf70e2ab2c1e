// REGISTER from a browser (SIP over WebSocket, as JsSIP sends it) through
// rtcsipd to a Kamailio registrar with digest authentication.
import test from 'node:test';
import assert from 'node:assert/strict';
import { withEnv, startPbxAndGateway, randomToken } from '../lib/harness.mjs';
import { SipWsClient, parseChallenge, params, uriOf } from '../lib/sipclient.mjs';

const DOMAIN = 'example.com';
const ALICE = { username: 'alice', password: `pw-${randomToken(8)}` };

// A MESSAGE from SIPp to USER@DOMAIN through Kamailio; returns SIPp's result.
function sippMessage(env, kam, user, expect, body = 'ping') {
  return env.runSipp({
    scenario: 'message_uac.xml', remote: `127.0.0.1:${kam.port}`, args: ['-s', user],
    vars: { DOMAIN, EXPECT: expect, TIMEOUT_MS: 3000, BODY: body }, timeoutSec: 6,
  });
}

function assertOnlyOurVia(client, msg) {
  const vias = msg.all('via');
  assert.equal(vias.length, 1, `expected only the client's Via in the response, got ${JSON.stringify(vias)}`);
  assert.match(vias[0], new RegExp(`^SIP/2\\.0/WSS? ${client.viaHost.replace(/\./g, '\\.')};`));
}

test('REGISTER: 401 challenge from the PBX, 200 with credentials, refresh, un-REGISTER',
  { timeout: 90000 }, () => withEnv('register-flow', async (env) => {
    const { kam, gw } = await startPbxAndGateway(env, { domain: DOMAIN, users: [ALICE] });
    const c = await SipWsClient.connect(gw.wsUrl, { user: 'alice', password: ALICE.password, domain: DOMAIN });
    env.defer(() => c.close());
    assert.equal(c.protocol, 'sip', 'the server must accept the "sip" subprotocol');

    // Before registering, the PBX does not know alice.
    const before = await sippMessage(env, kam, 'alice', 404);
    assert.deepEqual(before.responses, [404], 'Kamailio must not know alice before she registers');

    const { challenge, response } = await c.register({ expires: 600 });

    // The PBX's challenge, passed through unchanged.
    assert.ok(challenge, `expected a 401 challenge first, got ${response.status} ${response.reason}`);
    assert.equal(challenge.status, 401);
    const chal = parseChallenge(challenge.get('www-authenticate'));
    assert.equal(chal.realm, DOMAIN);
    assert.ok(chal.nonce && chal.nonce.length >= 8, `nonce: ${chal.nonce}`);
    assertOnlyOurVia(c, challenge);
    assert.equal(challenge.get('call-id'), c.reg.callId);
    assert.equal(challenge.get('cseq'), `${c.reg.cseq - 1} REGISTER`);

    // Registered: the Contact is the browser's own, not rtcsipd's rewritten one.
    assert.equal(response.status, 200, `REGISTER with credentials: ${response.status} ${response.reason}`);
    assertOnlyOurVia(c, response);
    assert.equal(response.get('call-id'), c.reg.callId);
    assert.equal(response.get('cseq'), `${c.reg.cseq} REGISTER`);
    const contacts = response.all('contact');
    assert.equal(contacts.length, 1, `one binding expected: ${JSON.stringify(contacts)}`);
    assert.equal(uriOf(contacts[0]), c.contactUri);
    const exp = Number(params(contacts[0].replace(/<[^>]*>/, '')).expires);
    assert.ok(exp > 0 && exp <= 600, `Contact expires=${exp}`);

    // Kamailio routes to alice now: a MESSAGE from SIPp reaches the browser.
    const to = await sippMessage(env, kam, 'alice', 200, 'are you there');
    assert.deepEqual(to.responses, [200], to.messages);
    assert.equal(to.code, 0);
    assert.ok(c.requests.some((r) => r.method === 'MESSAGE'), 'the browser got the MESSAGE');

    // Refresh: same Call-ID, CSeq + 1, the credentials of the last challenge.
    const callId = c.reg.callId;
    const cseq = c.reg.cseq;
    const refresh = await c.register({ expires: 600, reuseCredentials: true });
    assert.equal(refresh.response.status, 200, `refresh: ${refresh.response.status} ${refresh.response.reason}`);
    assert.equal(refresh.challenge, null, 'the Authorization of a refresh must reach the PBX unchanged');
    assert.equal(refresh.response.get('call-id'), callId);
    assert.equal(refresh.response.get('cseq'), `${cseq + 1} REGISTER`);
    const rc = refresh.response.all('contact');
    assert.equal(rc.length, 1, JSON.stringify(rc));
    assert.equal(uriOf(rc[0]), c.contactUri);

    // Un-REGISTER.
    const un = await c.register({ expires: 0, reuseCredentials: true });
    assert.equal(un.response.status, 200, `un-REGISTER: ${un.response.status} ${un.response.reason}`);
    assert.equal(un.response.get('cseq'), `${c.reg.cseq} REGISTER`);
    const left = un.response.all('contact').filter((x) => uriOf(x) === c.contactUri &&
      Number(params(x.replace(/<[^>]*>/, '')).expires) > 0);
    assert.deepEqual(left, [], 'no live binding after un-REGISTER');

    // Kamailio no longer knows alice.
    const after = await sippMessage(env, kam, 'alice', 404);
    assert.deepEqual(after.responses, [404], after.messages);
    assert.equal(after.code, 0);
    assert.equal(c.ws.readyState, 1, 'the WebSocket stays open');
  }));

test('REGISTER with a wrong password is refused and leaves no binding', { timeout: 60000 }, () =>
  withEnv('register-wrong-password', async (env) => {
    const { kam, gw } = await startPbxAndGateway(env, { domain: DOMAIN, users: [ALICE] });
    const c = await SipWsClient.connect(gw.wsUrl, { user: 'alice', password: 'not-the-password', domain: DOMAIN });
    env.defer(() => c.close());

    const { challenge, response } = await c.register({ expires: 600 });
    assert.ok(challenge, 'challenged first');
    assert.ok(response.status === 401 || response.status === 403,
      `wrong password must get 401 or 403, got ${response.status} ${response.reason}`);
    assert.equal(response.get('cseq'), `${c.reg.cseq} REGISTER`);

    const after = await sippMessage(env, kam, 'alice', 404);
    assert.deepEqual(after.responses, [404], 'Kamailio must not have a binding for alice');
    assert.deepEqual(c.requests.filter((r) => r.method === 'MESSAGE'), []);

    // The same connection can still register with the right password.
    c.password = ALICE.password;
    const ok = await c.register({ expires: 600 });
    assert.equal(ok.response.status, 200, `${ok.response.status} ${ok.response.reason}`);
  }));

test('REGISTER over wss:// (self-signed certificate made at start)', { timeout: 60000 }, () =>
  withEnv('register-wss', async (env) => {
    const { kam, gw } = await startPbxAndGateway(env, { domain: DOMAIN, users: [ALICE] });
    const c = await SipWsClient.connect(gw.wssUrl, { user: 'alice', password: ALICE.password, domain: DOMAIN });
    env.defer(() => c.close());
    assert.equal(c.protocol, 'sip');
    assert.equal(c.ws._socket.encrypted, true, 'wss must be TLS');

    const { challenge, response } = await c.register({ expires: 300 });
    assert.equal(challenge && challenge.status, 401);
    assert.equal(response.status, 200, `${response.status} ${response.reason}`);
    assert.equal(uriOf(response.get('contact')), c.contactUri);

    const to = await sippMessage(env, kam, 'alice', 200, 'over tls');
    assert.deepEqual(to.responses, [200], to.messages);
    const m = c.requests.find((r) => r.method === 'MESSAGE');
    assert.ok(m, 'MESSAGE delivered over wss');
    assert.match(m.get('via'), /^SIP\/2\.0\/WSS /, 'rtcsipd\'s Via toward a wss flow says WSS');
  }));

// Bad input on the WebSocket edge: each case on its own connection, while a
// second, registered browser keeps working throughout.
import test from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { withEnv, startPbxAndGateway, randomToken, waitFor, withTimeout } from '../lib/harness.mjs';
import { SipWsClient, parseSip, params } from '../lib/sipclient.mjs';

const DOMAIN = 'example.com';
const ALICE = { username: 'alice', password: `pw-${randomToken(8)}` };

// Opens a WebSocket with PROTOCOLS and resolves with the HTTP status of a
// refused upgrade, or 101 with the protocol chosen when it was accepted.
function upgrade(url, protocols) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
    ws.on('unexpected-response', (req, res) => {
      resolve({ status: res.statusCode });
      req.destroy();
    });
    ws.on('open', () => {
      resolve({ status: 101, protocol: ws.protocol });
      ws.terminate();
    });
    ws.on('error', (e) => reject(e));
  }), 5000, `upgrade with ${JSON.stringify(protocols)}`);
}

const rawRequest = (lines, body = '') => lines.join('\r\n') + '\r\n\r\n' + body;

test('bad input on one WebSocket does not disturb another', { timeout: 100000 }, (t) =>
  withEnv('badinput', async (env) => {
    const { kam, gw } = await startPbxAndGateway(env, { domain: DOMAIN, users: [ALICE] });
    const good = await SipWsClient.connect(gw.wsUrl, { user: 'alice', password: ALICE.password, domain: DOMAIN });
    env.defer(() => good.close());
    const reg = await good.register({ expires: 600 });
    assert.equal(reg.response.status, 200, `alice REGISTER: ${reg.response.status}`);

    // The registered browser still works: OPTIONS to rtcsipd itself gets 200.
    let checks = 0;
    const goodStillWorks = async () => {
      assert.equal(good.ws.readyState, WebSocket.OPEN, 'the registered connection is still open');
      const r = await good.options(`sip:${gw.host}`);
      assert.equal(r.status, 200, `OPTIONS on the good connection: ${r.status} ${r.reason}`);
      checks++;
    };
    const bad = async () => {
      const b = await SipWsClient.connect(gw.wsUrl, { user: 'mallory', domain: DOMAIN });
      env.defer(() => b.close());
      return b;
    };
    // Each case runs in turn; a failing case is remembered (with its error)
    // and the others still run.  (No nested t.test(): meson's TAP parser does
    // not read node's indented subtest output.)
    const failures = [];
    const sub = async (name, fn) => {
      try {
        await fn();
        t.diagnostic(`ok: ${name}`);
      } catch (e) {
        failures.push(`${name}: ${e.stack || e.message}`);
      }
    };

    await sub('OPTIONS to rtcsipd itself is answered 200 locally', async () => {
      await goodStillWorks();
      assert.doesNotMatch(kam.child.output, /recv OPTIONS sip:127\.0\.0\.1 from/,
        'the OPTIONS must not be forwarded to the PBX');
    });

    await sub('a text frame that is not SIP closes the WebSocket with 1002', async () => {
      const b = await bad();
      b.sendRaw('hello, this is not SIP at all\r\n\r\n');
      const ci = await b.waitClosed(3000);
      assert.equal(ci.code, 1002);
      await goodStillWorks();
    });

    await sub('a request without a Via gets 400 naming it, over its flow, which stays open', async () => {
      const b = await bad();
      const callId = randomToken(16);
      b.sendRaw(rawRequest([
        `OPTIONS sip:${DOMAIN} SIP/2.0`,
        'Max-Forwards: 70',
        `From: <sip:mallory@${DOMAIN}>;tag=${randomToken(8)}`,
        `To: <sip:${DOMAIN}>`,
        `Call-ID: ${callId}`,
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
      ]));
      const r = await waitFor(() => b.responses.find((x) => x.get('call-id') === callId), 3000,
        { what: 'the 400 to the request without Via' });
      assert.equal(r.status, 400);
      assert.match(r.get('warning') || '', /missing Via header/);
      assert.equal(r.get('via'), undefined, 'no Via to copy');
      assert.equal(b.closeInfo, null, 'the WebSocket stays open');
      await goodStillWorks();
    });

    await sub('a request line and a Via with broken headers get 400 Bad Request', async () => {
      const b = await bad();
      const branch = `z9hG4bK${randomToken(12)}`;
      b.sendRaw(rawRequest([
        `MESSAGE sip:alice@${DOMAIN} SIP/2.0`,
        `Via: SIP/2.0/WSS ${randomToken(8)}.invalid;branch=${branch}`,
        'Max-Forwards: 70',
        `From: <sip:mallory@${DOMAIN}>;tag=${randomToken(8)}`,
        `To: <sip:alice@${DOMAIN}>`,
        `Call-ID: ${randomToken(16)}`,
        'CSeq: this-is-no-number MESSAGE',
        'Content-Type: text/plain',
        'Content-Length: 2',
      ], 'hi'));
      const frame = await b.waitForFrame((f) => /^SIP\/2\.0 /.test(f), 3000);
      const r = parseSip(frame);
      assert.equal(r.status, 400, `got ${r.status} ${r.reason}`);
      assert.equal(params(r.get('via')).branch, branch, 'the 400 answers our request (Via branch)');
      // The connection stays usable after a 400.
      await withTimeout(new Promise((res) => setTimeout(res, 100)), 1000);
      assert.equal(b.ws.readyState, WebSocket.OPEN, 'a 400 does not close the WebSocket');
      const o = await b.options(`sip:${gw.host}`);
      assert.equal(o.status, 200);
      await b.close();
      assert.ok(!good.requests.some((q) => q.method === 'MESSAGE'), 'the broken MESSAGE was not delivered');
      await goodStillWorks();
    });

    await sub('a message over max_message_size closes the WebSocket with 1009', async () => {
      const b = await bad();
      const body = 'x'.repeat(200 * 1024);
      b.sendRaw(rawRequest([
        `MESSAGE sip:alice@${DOMAIN} SIP/2.0`,
        `Via: SIP/2.0/WSS ${randomToken(8)}.invalid;branch=z9hG4bK${randomToken(12)}`,
        'Max-Forwards: 70',
        `From: <sip:mallory@${DOMAIN}>;tag=${randomToken(8)}`,
        `To: <sip:alice@${DOMAIN}>`,
        `Call-ID: ${randomToken(16)}`,
        'CSeq: 1 MESSAGE',
        'Content-Type: text/plain',
        `Content-Length: ${body.length}`,
      ], body));
      const ci = await b.waitClosed(5000);
      assert.equal(ci.code, 1009);
      assert.ok(!good.requests.some((q) => q.method === 'MESSAGE'), 'the oversized MESSAGE was not delivered');
      await goodStillWorks();
    });

    await sub('REGISTER and MESSAGE for a domain not served get 403 and never reach the PBX', async () => {
      const b = await SipWsClient.connect(gw.wsUrl, { user: 'eve', password: 'x', domain: 'foreign.example' });
      const { challenge, response } = await b.register({ expires: 600 });
      assert.equal(challenge, null, 'no challenge: the PBX is not asked');
      assert.equal(response.status, 403, `REGISTER foreign.example: ${response.status} ${response.reason}`);
      const m = await b.message('sip:bob@foreign.example', 'relay me');
      assert.equal(m.status, 403, `MESSAGE to foreign.example: ${m.status} ${m.reason}`);
      await b.close();
      assert.doesNotMatch(kam.child.output, /foreign\.example/, 'Kamailio never saw foreign.example');
      await goodStillWorks();
    });

    await sub('a double CRLF keepalive is answered with a single CRLF', async () => {
      const b = await bad();
      b.sendRaw('\r\n\r\n');
      const pong = await b.waitForFrame(() => true, 3000);
      assert.equal(pong, '\r\n');
      assert.equal(b.ws.readyState, WebSocket.OPEN);
      // ... and the keepalive of the registered connection too
      const n = good.frames.length;
      good.sendRaw('\r\n\r\n');
      assert.equal(await good.waitForFrame(() => true, 3000, n), '\r\n');
      await b.close();
      await goodStillWorks();
    });

    await sub('an upgrade without the "sip" subprotocol is refused with HTTP 400', async () => {
      assert.deepEqual(await upgrade(gw.wsUrl, undefined), { status: 400 }, 'no subprotocol');
      assert.deepEqual(await upgrade(gw.wsUrl, ['chat']), { status: 400 }, 'subprotocol "chat"');
      assert.deepEqual(await upgrade(gw.wsUrl, ['sip']), { status: 101, protocol: 'sip' }, 'subprotocol "sip"');
      await goodStillWorks();
    });

    assert.deepEqual(failures, [], `cases failed:\n${failures.join('\n\n')}`);

    // Finally: the registered browser still receives requests from the PBX.
    const r = await env.runSipp({
      scenario: 'message_uac.xml', remote: `127.0.0.1:${kam.port}`, args: ['-s', 'alice'],
      vars: { DOMAIN, EXPECT: 200, TIMEOUT_MS: 3000, BODY: 'still there?' }, timeoutSec: 6,
    });
    assert.deepEqual(r.responses, [200], r.messages);
    assert.equal(checks, 8, 'every case checked the good connection');
  }));

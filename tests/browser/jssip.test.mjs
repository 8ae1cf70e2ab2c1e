// JsSIP (npm release) in headless Chromium: registers with digest auth
// through rtcsipd (wss://, self-signed certificate) to Kamailio, receives a
// MESSAGE sent by SIPp from the SIP side, un-registers; a wrong password does
// not register.
import test from 'node:test';
import assert from 'node:assert/strict';
import { withEnv, startPbxAndGateway, randomToken } from '../lib/harness.mjs';
import { withAgentPage } from './lib/browser.mjs';
import { DOMAIN, startBrowserSide, sippMessage, assertDigestExchange } from './lib/steps.mjs';

const ALICE = { username: 'alice', password: `pw-${randomToken(8)}` };

test('JsSIP: REGISTER (digest) over wss through rtcsipd, MESSAGE from SIPp, un-REGISTER',
  { timeout: 100000 }, () => withEnv('browser-jssip', async (env) => {
    const { kam, gw } = await startPbxAndGateway(env, { domain: DOMAIN, users: [ALICE] });
    const { web, browser } = await startBrowserSide(env);

    await withAgentPage(browser, web, 'jssip-register-message', async (agent) => {
      await agent.call('jssipStart', {
        url: gw.wssUrl, uri: `sip:alice@${DOMAIN}`, password: ALICE.password, debug: true,
      });
      // 'disconnected': the WebSocket to rtcsipd failed (JsSIP would retry for ever).
      const reg = await agent.waitForEvent('jssip', ['registered', 'registrationFailed', 'disconnected'], 15000);
      assert.equal(reg.type, 'registered', `JsSIP: ${JSON.stringify(reg)}`);
      assert.equal(reg.status, 200);

      // Digest auth really happened: the PBX challenged, JsSIP answered.
      assertDigestExchange(await agent.frames(), { user: 'alice', expect: 200 });
      assert.match(kam.child.output, /challenging REGISTER for sip:alice@example\.com/,
        'Kamailio logs the challenge');
      const open = (await agent.events('ws')).find((e) => e.type === 'open');
      assert.equal(open.protocol, 'sip', 'WebSocket subprotocol "sip"');
      assert.ok(open.url.startsWith('wss://'), open.url);

      // SIP side -> browser.
      const body = `hello alice ${randomToken(6)}`;
      const r = await sippMessage(env, kam, { expect: 200, body });
      assert.deepEqual(r.responses, [200], `SIPp must get JsSIP's 200:\n${r.messages}`);
      assert.equal(r.code, 0, r.errors);
      const msgs = (await agent.events('jssip')).filter((e) => e.type === 'newMessage');
      assert.equal(msgs.length, 1, `one newMessage, got ${msgs.length}`);
      assert.equal(msgs[0].body, `${body}\r\n`, 'the exact body (SIPp ends it with CRLF)');
      assert.equal(msgs[0].from, `sip:sipp@${DOMAIN}`);
      assert.equal(msgs[0].to, `sip:alice@${DOMAIN}`);
      assert.match(msgs[0].contentType, /^text\/plain/);

      // Un-REGISTER: Kamailio no longer routes to alice.
      await agent.call('jssipUnregister');
      const un = await agent.waitForEvent('jssip', ['unregistered', 'registrationFailed'], 10000);
      assert.equal(un.type, 'unregistered', JSON.stringify(un));
      assert.equal(un.status, 200, JSON.stringify(un));
      const after = await sippMessage(env, kam, { expect: 404, body: 'still there?' });
      assert.deepEqual(after.responses, [404], `Kamailio must answer 404 after un-REGISTER:\n${after.messages}`);
      assert.equal(after.code, 0, after.errors);
      const msgs2 = (await agent.events('jssip')).filter((e) => e.type === 'newMessage');
      assert.equal(msgs2.length, 1, 'nothing delivered after un-REGISTER');

      await agent.call('jssipStop');
    });
  }));

test('JsSIP: a wrong password does not register', { timeout: 100000 }, () =>
  withEnv('browser-jssip-wrong-password', async (env) => {
    const { kam, gw } = await startPbxAndGateway(env, { domain: DOMAIN, users: [ALICE] });
    const { web, browser } = await startBrowserSide(env);

    await withAgentPage(browser, web, 'jssip-wrong-password', async (agent) => {
      await agent.call('jssipStart', {
        url: gw.wssUrl, uri: `sip:alice@${DOMAIN}`, password: 'not-the-password', debug: true,
      });
      const ev = await agent.waitForEvent('jssip', ['registered', 'registrationFailed', 'disconnected'], 15000);
      assert.equal(ev.type, 'registrationFailed', JSON.stringify(ev));
      assert.equal(ev.cause, 'Authentication Error', JSON.stringify(ev)); // JsSIP.C.causes.AUTHENTICATION_ERROR
      assert.ok(ev.status === 401 || ev.status === 403, JSON.stringify(ev));
      assertDigestExchange(await agent.frames(), { user: 'alice', expect: [401, 403] });

      const r = await sippMessage(env, kam, { expect: 404, body: 'anyone?' });
      assert.deepEqual(r.responses, [404], `no binding for alice:\n${r.messages}`);
      assert.equal(r.code, 0, r.errors);
      const got = (await agent.events('jssip')).filter((e) => e.type === 'newMessage' || e.type === 'registered');
      assert.deepEqual(got, []);
      await agent.call('jssipStop');
    });
  }));

// Self-check of the browser set-up, without rtcsipd: Debian's Chromium starts
// under playwright-core, the test page loads the npm releases of JsSIP and
// SIP.js, and both register with digest auth over wss:// (self-signed
// certificate) to a stand-in registrar in node and take a MESSAGE from it.
// When this passes and jssip/sipjs fail, look at rtcsipd.
import test from 'node:test';
import assert from 'node:assert/strict';
import { withEnv, randomToken } from '../lib/harness.mjs';
import { startWebServer, launchChromium, withAgentPage, packageVersion, CHROMIUM } from './lib/browser.mjs';
import { startFakeRegistrar } from './lib/fake-registrar.mjs';

const DOMAIN = 'example.com';

test('Chromium loads JsSIP and SIP.js; both register (digest, wss) and get a MESSAGE from a stand-in registrar',
  { timeout: 90000 }, (t) => withEnv('browser-libraries', async (env) => {
    const password = `pw-${randomToken(8)}`;
    const fake = await startFakeRegistrar({ dir: env.dir, domain: DOMAIN, users: { alice: password, bob: password } });
    env.defer(() => fake.close());
    const web = await startWebServer();
    env.defer(() => web.close());
    const browser = await launchChromium();
    env.defer(() => browser.close());
    assert.ok(browser.version(), `Chromium at ${CHROMIUM} answers`);

    await withAgentPage(browser, web, 'libraries', async (agent) => {
      const v = await agent.call('versions');
      assert.equal(v.jssip, packageVersion('jssip'), 'JsSIP is the npm release installed in tests/node_modules');
      // SIP.js 0.21.2's lib/version.js still says 0.21.1: compare with that file.
      const sipjsLib = await import('../node_modules/sip.js/lib/version.js');
      assert.equal(v.sipjs, sipjsLib.LIBRARY_VERSION, 'SIP.js is the npm release installed in tests/node_modules');
      t.diagnostic(`JsSIP ${v.jssip}, SIP.js ${packageVersion('sip.js')} (says ${v.sipjs}), ${browser.version()}`);

      // JsSIP as alice.
      await agent.call('jssipStart', { url: fake.wssUrl, uri: `sip:alice@${DOMAIN}`, password, debug: true });
      const r1 = await agent.waitForEvent('jssip', ['registered', 'registrationFailed'], 10000);
      assert.equal(r1.type, 'registered', JSON.stringify(r1));
      // SIP.js as bob.
      const s = await agent.call('sipjsStart', {
        url: fake.wssUrl, uri: `sip:bob@${DOMAIN}`, user: 'bob', password, debug: true,
      });
      assert.equal(s.started, true, 'SIP.js connected');
      const r2 = await agent.waitForEvent('sipjs', ['registered', 'registrationFailed', 'registerError'], 10000);
      assert.equal(r2.type, 'registered', JSON.stringify(r2));
      assert.equal(fake.challenges, 2, 'each REGISTER was challenged once');

      for (const [user, src] of [['alice', 'jssip'], ['bob', 'sipjs']]) {
        const body = `hello ${user} ${randomToken(6)}`;
        const res = await fake.message(user, body);
        assert.equal(res.status, 200, `${src} answers the MESSAGE`);
        const m = await agent.waitForEvent(src, 'newMessage', 5000);
        assert.equal(m.body, body);
        assert.equal(m.from, `sip:sipp@${DOMAIN}`);
      }

      await agent.call('jssipStop');
      await agent.call('sipjsStop');
      const ws = await agent.events('ws');
      assert.ok(ws.some((e) => e.type === 'open' && e.protocol === 'sip'), 'WebSocket subprotocol "sip"');
    });
  }));

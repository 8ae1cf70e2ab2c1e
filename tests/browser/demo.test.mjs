// The demo page as rtcsipd serves it (gateway/www, as built: demo.js bundled
// with JsSIP by esbuild), driven in headless Chromium through its labelled
// fields and buttons: it registers (digest) through rtcsipd (ws://, the page's
// own origin) to Kamailio, shows a MESSAGE from SIPp, calls `echo` (answered
// by rtcsipd itself), sends a DTMF digit, hangs up, and un-registers.  A
// screenshot of the page during the call goes to tests/artifacts/browser/demo.png.
//
// The call carries real WebRTC media, so the test runs in a loopback-only
// network namespace with Chromium's loopback ICE (see ice-loopback.test.mjs).
import { runInLoopbackNetns, launchChromium, AgentPage, artifactsDir } from './lib/browser.mjs';

// Re-runs this file in a fresh network namespace with only lo (the parent
// exits here); must come before node:test is loaded.
await runInLoopbackNetns();

const { default: test } = await import('node:test');
const { default: assert } = await import('node:assert/strict');
const { default: fs } = await import('node:fs');
const { default: path } = await import('node:path');
const { withEnv, startPbxAndGateway, randomToken, testsDir, waitFor } = await import('../lib/harness.mjs');
const { DOMAIN, sippMessage, assertDigestExchange } = await import('./lib/steps.mjs');

const WWW = process.env.RTCSIPD_WWW || path.resolve(testsDir, '../build/gateway/www');
const ALICE = { username: 'alice', password: `pw-${randomToken(8)}` };

// Waits (at most MS ms) until the text of LOCATOR matches RE; returns it.
async function waitForText(locator, re, ms, what) {
  let last = '';
  await waitFor(async () => {
    last = (await locator.textContent({ timeout: 1000 })) ?? '';
    return re.test(last);
  }, ms, { interval: 50, what }).catch((e) => {
    throw new Error(`${e.message}: "${last}" does not match ${re}`);
  });
  return last;
}

test('demo page: register, MESSAGE, a call to echo with DTMF and hang-up, unregister',
  { timeout: 100000 }, () => withEnv('browser-demo', async (env) => {
    for (const f of ['index.html', 'demo.js', 'demo.css']) {
      assert.ok(fs.existsSync(path.join(WWW, f)), `${f} not built in ${WWW} (ninja -C BUILD)`);
    }
    const { kam, gw } = await startPbxAndGateway(env, {
      domain: DOMAIN, users: [ALICE],
      rtcsipd: { overrides: { websocket: { static_dir: WWW } } },
    });
    const browser = await launchChromium({ loopbackIce: true });
    env.defer(() => browser.close());
    const context = await browser.newContext();
    const page = await context.newPage();
    const agent = new AgentPage('demo', context, page); // console lines, for the failure report
    const frames = []; // the SIP messages over the page's WebSocket: { t, dir, url, data }
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => frames.push({ t: Date.now(), dir: 'out', url: ws.url(), data: String(f.payload) }));
      ws.on('framereceived', (f) => frames.push({ t: Date.now(), dir: 'in', url: ws.url(), data: String(f.payload) }));
    });
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));

    try {
      // Served by rtcsipd itself, from the built directory.
      const origin = `http://127.0.0.1:${gw.ports.ws}`;
      const resp = await page.goto(`${origin}/`, { timeout: 15000 });
      assert.equal(resp.status(), 200);
      const log = page.locator('#log');
      await waitForText(log, /JsSIP \d+\.\d+\.\d+ ready/, 10000, 'the page to load JsSIP');
      assert.equal(await page.getByLabel('Server', { exact: true }).inputValue(), `ws://127.0.0.1:${gw.ports.ws}`,
        'the server defaults to the page\'s own origin');
      assert.equal(await page.getByLabel('Call to', { exact: true }).inputValue(), 'echo');

      const regStatus = page.locator('#reg-status');
      const callStatus = page.locator('#call-status');
      const button = (name) => page.getByRole('button', { name, exact: true });

      // Register with digest auth: Kamailio challenges, JsSIP answers.
      await page.getByLabel('SIP user', { exact: true }).fill(`sip:alice@${DOMAIN}`);
      await page.getByLabel('Password', { exact: true }).fill(ALICE.password);
      await page.getByLabel('Display name', { exact: true }).fill('Alice');
      await button('Register').click();
      const reg = await waitForText(regStatus, /^(registered|registration failed|cannot)/, 15000, 'registration');
      assert.equal(reg, `registered as sip:alice@${DOMAIN} (200 OK)`);
      assert.match(kam.child.output, /challenging REGISTER for sip:alice@example\.com/,
        'Kamailio logs the challenge');
      assertDigestExchange(frames, { user: 'alice', expect: 200 });
      assert.ok(await button('Register').isDisabled(), 'Register is disabled while registered');

      // SIP side -> the page's log.
      const body = `hello alice ${randomToken(6)}`;
      const r = await sippMessage(env, kam, { expect: 200, body });
      assert.deepEqual(r.responses, [200], `SIPp must get JsSIP's 200:\n${r.messages}`);
      await waitForText(log, new RegExp(`message from sip:sipp@${DOMAIN}: ${body}`), 5000, 'the MESSAGE in the log');

      // A call to `echo` (sip:echo@example.com), answered by rtcsipd itself.
      await button('Call').click();
      const confirmed = await waitForText(callStatus, /^(failed|ended|confirmed)/, 20000, 'the call to be answered');
      assert.equal(confirmed, 'confirmed: in call');
      const invite = frames.find((f) => f.dir === 'out' && f.data.startsWith('INVITE '));
      assert.ok(invite, 'the page sent an INVITE');
      assert.match(invite.data, new RegExp(`^INVITE sip:echo@${DOMAIN} SIP/2\\.0\r\n`));
      assert.ok(frames.some((f) => f.dir === 'in' && /^SIP\/2\.0 200 /.test(f.data) && /\r\nCSeq: \d+ INVITE\r\n/.test(f.data)),
        'rtcsipd answered the INVITE with 200');
      assert.ok(!(await button('Hang up').isDisabled()), 'in a call: Hang up enabled');
      assert.ok(!(await button('5').isDisabled()), 'in a call: the dial pad is enabled');
      await button('5').click(); // RFC 4733 in the media, reflected by the echo target
      fs.mkdirSync(artifactsDir, { recursive: true });
      await page.screenshot({ path: path.join(artifactsDir, 'demo.png'), fullPage: true, timeout: 5000 });

      await button('Hang up').click();
      const ended = await waitForText(callStatus, /^(ended|failed)/, 10000, 'the call to end');
      assert.match(ended, /^ended by local/);
      const logText = await log.textContent();
      const order = [`calling sip:echo@${DOMAIN}`, 'connecting (local media ready)',
        `INVITE to sip:echo@${DOMAIN}`, 'confirmed: in call', 'ended by local'];
      let at = -1;
      for (const step of order) {
        const i = logText.indexOf(step, at + 1);
        assert.ok(i > at, `the log shows "${step}" in order:\n${logText}`);
        at = i;
      }
      await waitFor(() => /call ended: cause BYE from the browser/.test(gw.logs()), 3000,
        { what: 'rtcsipd to end the echo call' });
      assert.ok(await button('Hang up').isDisabled(), 'no call: Hang up disabled');
      assert.ok(!(await button('Call').isDisabled()), 'no call: Call enabled again');
      assert.ok(await button('5').isDisabled(), 'no call: the dial pad is disabled');
      assert.equal(await regStatus.textContent(), `registered as sip:alice@${DOMAIN} (200 OK)`,
        'still registered after the call');

      // Unregister: Kamailio no longer routes to alice.
      await button('Unregister').click();
      const un = await waitForText(regStatus, /^(unregistered|registration failed)/, 10000, 'un-registration');
      assert.equal(un, 'unregistered (200 OK)');
      const after = await sippMessage(env, kam, { expect: 404, body: 'still there?' });
      assert.deepEqual(after.responses, [404], `Kamailio must answer 404 after un-REGISTER:\n${after.messages}`);

      assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
    } catch (e) {
      const { base } = await agent.saveArtifacts().catch(() => ({ base: '(not saved)' }));
      process.stderr.write(`\n===== demo page (saved in ${base}.log/.png) =====\n` +
        `${agent.console.slice(-200).join('\n')}\n--- WebSocket frames ---\n` +
        `${frames.map((f) => `${f.dir === 'out' ? '>>>' : '<<<'} ${f.data}`).join('\n')}\n`);
      throw e;
    } finally {
      await agent.close();
    }
  }));

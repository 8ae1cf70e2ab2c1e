// rtcsipd toward systemd (Type=notify, WatchdogSec=): the test binds the
// notification socket itself (notify_listen.py, an AF_UNIX datagram socket)
// and starts the daemon with NOTIFY_SOCKET and WATCHDOG_USEC, as systemd would.
// The tests of the first daemon run in order, on the same daemon.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Env, withEnv, freePort, waitFor, sleep, integrationDir } from '../lib/harness.mjs';
import { SipWsClient } from '../lib/sipclient.mjs';

const PYTHON = process.env.PYTHON3 || 'python3';
const WATCHDOG_USEC = 2000000;
const STATUS_RE = /^\d+ connections, \d+ registered, \d+ pending, \d+ calls, RSS \d+ KiB( \(\d+ KiB per call\))?$/;

// The notification socket: { child, path, all() }.  all() returns every
// message so far: { t: ms (monotonic, when received), pid: the sender's,
// msg: text, fields: { KEY: VALUE } }.
async function notifySocket(env) {
  const sockPath = path.join(env.dir, 'notify.sock');
  const child = env.spawn('notify-listen', PYTHON, [path.join(integrationDir, 'notify_listen.py'), sockPath]);
  await child.waitForOutput(/\{"bound": /, 5000, 'to bind the notification socket');
  const all = () => {
    const lines = child.output.split('\n');
    lines.pop(); // not complete yet
    return lines.filter((l) => l.startsWith('{"t"')).map((l) => {
      const m = JSON.parse(l);
      m.fields = {};
      for (const kv of m.msg.split('\n')) {
        const eq = kv.indexOf('=');
        if (eq > 0) m.fields[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      return m;
    });
  };
  return { child, path: sockPath, all };
}

// Waits for the first message at index FROM or later for which PRED is true;
// returns [message, its index].
async function next(ns, from, pred, ms, what) {
  return waitFor(() => {
    const msgs = ns.all();
    for (let i = from; i < msgs.length; i++) if (pred(msgs[i])) return [msgs[i], i];
    return null;
  }, ms, { what: `${what} on NOTIFY_SOCKET; got ${JSON.stringify(ns.all().slice(from).map((m) => m.msg))}` });
}

const env = new Env('sd-notify');
let failed = false;
let ns;        // the notification socket
let gw;        // the daemon
let readyAt;   // index of READY=1

before(async () => {
  failed = true; // until the daemon is up
  ns = await notifySocket(env);
  gw = await env.startRtcsipd({
    pbxPort: await freePort(), // nothing there: the PBX is not needed here
    overrides: { general: { log_level: 'debug' } },
    env: { NOTIFY_SOCKET: ns.path, WATCHDOG_USEC: String(WATCHDOG_USEC), WATCHDOG_PID: undefined },
  });
  failed = false;
});
after(async () => {
  const crashed = await env.close({ failed });
  assert.deepEqual(crashed, []);
});

// test() that remembers a failure, so that the logs are printed and kept.
function step(name, fn, opts = {}) {
  test(name, { timeout: 20000, ...opts }, async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

step('READY=1 comes with a STATUS= line, from the daemon itself', async () => {
  const [ready, at] = await next(ns, 0, (m) => m.fields.READY === '1', 5000, 'READY=1');
  readyAt = at;
  assert.ok('STATUS' in ready.fields, `READY=1 without STATUS=: ${JSON.stringify(ready.msg)}`);
  assert.match(ready.fields.STATUS, STATUS_RE);
  assert.match(ready.fields.STATUS, /^0 connections,/);
  for (const m of ns.all()) {
    assert.equal(m.pid, gw.child.pid, `${JSON.stringify(m.msg)} was not sent by the daemon's main process`);
  }
});

step('STATUS= follows the WebSocket connections', async () => {
  const c = await SipWsClient.connect(gw.wsUrl, { domain: 'example.com' });
  env.defer(() => c.close());
  const [one, oneAt] = await next(ns, readyAt + 1, (m) => /^1 connections,/.test(m.fields.STATUS || ''),
    6000, 'STATUS=1 connections, ...');
  assert.match(one.fields.STATUS, STATUS_RE);
  await c.close();
  await next(ns, oneAt + 1, (m) => /^0 connections,/.test(m.fields.STATUS || ''),
    6000, 'STATUS=0 connections, ... after the WebSocket closed');
});

step(`WATCHDOG=1 every ~${WATCHDOG_USEC / 2000} ms with WATCHDOG_USEC=${WATCHDOG_USEC}`, async () => {
  const count = () => ns.all().filter((m) => m.fields.WATCHDOG === '1').length;
  const want = count() + 5;
  await waitFor(() => count() >= want, 10000, { what: `${want} WATCHDOG=1 messages` });
  const wd = ns.all().filter((m) => m.fields.WATCHDOG === '1').map((m) => m.t);
  const gaps = wd.slice(1).map((x, i) => x - wd[i]);
  const sorted = [...gaps].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const ms = WATCHDOG_USEC / 1000;
  assert.ok(median >= 0.4 * ms && median <= 0.65 * ms,
    `median gap ${Math.round(median)} ms; gaps (ms): ${gaps.map(Math.round)}`);
  assert.ok(sorted[sorted.length - 1] < 0.9 * ms,
    `a gap close to the watchdog timeout; gaps (ms): ${gaps.map(Math.round)}`);
});

step('SIGHUP: RELOADING=1, then READY=1, and the new file applies', async () => {
  const text = fs.readFileSync(gw.configFile, 'utf8');
  assert.match(text, /^log_level = debug$/m);
  fs.writeFileSync(gw.configFile, text.replace(/^log_level = debug$/m, 'log_level = info'));
  const from = ns.all().length;
  process.kill(gw.child.pid, 'SIGHUP');
  const [, at] = await next(ns, from, (m) => m.fields.RELOADING === '1', 5000, 'RELOADING=1');
  await next(ns, at + 1, (m) => m.fields.READY === '1', 5000, 'READY=1 after RELOADING=1');
  await gw.child.waitForOutput(/log_level debug -> info/, 3000, 'to report the new log level');
  assert.ok(gw.child.running);
});

step('SIGHUP with a broken file: RELOADING=1, READY=1, the daemon keeps running', async () => {
  const text = fs.readFileSync(gw.configFile, 'utf8');
  fs.writeFileSync(gw.configFile, `${text}\n[general]\nno_such_key = 1\n`);
  const from = ns.all().length;
  process.kill(gw.child.pid, 'SIGHUP');
  const [, at] = await next(ns, from, (m) => m.fields.RELOADING === '1', 5000, 'RELOADING=1');
  await next(ns, at + 1, (m) => m.fields.READY === '1', 5000, 'READY=1 after a failed reload');
  await gw.child.waitForOutput(/reload failed/, 3000, 'to say that the reload failed');
  fs.writeFileSync(gw.configFile, text);
  await sleep(200);
  assert.ok(gw.child.running, 'a bad file on reload must not stop the daemon');
});

step('SIGTERM: STOPPING=1, then exit status 0', async () => {
  const from = ns.all().length;
  process.kill(gw.child.pid, 'SIGTERM');
  await next(ns, from, (m) => m.fields.STOPPING === '1', 5000, 'STOPPING=1');
  const st = await gw.child.wait(10000);
  assert.deepEqual(st, { code: 0, signal: null }, gw.logs());
});

test('no WATCHDOG=1 when WATCHDOG_PID names another process', { timeout: 30000 },
  () => withEnv('sd-notify-wdpid', async (env2) => {
    const ns2 = await notifySocket(env2);
    const gw2 = await env2.startRtcsipd({
      pbxPort: await freePort(),
      env: { NOTIFY_SOCKET: ns2.path, WATCHDOG_USEC: '500000', WATCHDOG_PID: String(ns2.child.pid) },
    });
    await next(ns2, 0, (m) => m.fields.READY === '1', 5000, 'READY=1');
    await sleep(1500);
    const wd = ns2.all().filter((m) => 'WATCHDOG' in m.fields);
    assert.deepEqual(wd.map((m) => m.msg), [], 'WATCHDOG=1 although WATCHDOG_PID is not the daemon');
    assert.ok(gw2.child.running);
  }));

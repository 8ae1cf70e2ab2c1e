// Browser side of the rtcsipd browser tests: Debian's Chromium driven by npm
// playwright-core, with the npm releases of JsSIP and SIP.js loaded into a
// test page served from 127.0.0.1.
//
//   import { startWebServer, launchChromium, openAgentPage } from './lib/browser.mjs';
//   const web = await startWebServer();          // page + libraries
//   const browser = await launchChromium();
//   const agent = await openAgentPage(browser, web, 'jssip-register');
//   await agent.call('jssipStart', { url: gw.wssUrl, ... });
//   await agent.waitForEvent('jssip', ['registered', 'registrationFailed'], 10000);
//
// Nothing is downloaded at run time: the libraries come from tests/node_modules
// (`npm ci --prefix tests`).  JsSIP's npm package ships CommonJS only (lib/),
// so it is bundled by esbuild into one classic script in memory when the
// server starts (see bundleForBrowser); SIP.js ships ES modules (lib/) that
// the page imports as they are.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { LOOPBACK, testsDir, waitFor, withTimeout } from '../../lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const browserDir = path.resolve(here, '..');
export const pageDir = path.join(browserDir, 'page');
export const nodeModules = path.join(testsDir, 'node_modules');
export const esbuildModules = path.resolve(testsDir, '..', 'gateway', 'www', 'node_modules');
export const artifactsDir = path.join(testsDir, 'artifacts', 'browser');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// The flags of DESIGN.md ("Real peers in tests"), plus what the wss:// test
// needs: the daemon's self-signed certificate is accepted.
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--ignore-certificate-errors',
];

function needModules() {
  for (const p of ['playwright-core', 'jssip', 'sip.js']) {
    if (!fs.existsSync(path.join(nodeModules, p, 'package.json'))) {
      throw new Error(`${p} is not installed in ${nodeModules}: run \`npm ci --prefix tests\``);
    }
  }
}

export function packageVersion(name) {
  return JSON.parse(fs.readFileSync(path.join(nodeModules, name, 'package.json'), 'utf8')).version;
}

// JsSIP for the page: its CommonJS (and that of its dependencies: debug,
// events, sdp-transform) bundled by esbuild into one classic script that
// defines window[GLOBALNAME].  esbuild is the build's, from
// gateway/www/node_modules (gateway/www/meson.build bundles the demo page
// with it); the bundled code comes from tests/node_modules.

export function bundleForBrowser(entry, globalName) {
  let esbuild;
  try {
    esbuild = createRequire(path.join(esbuildModules, 'x.js'))('esbuild');
  } catch (e) {
    throw new Error(`esbuild is not installed in ${esbuildModules}: run \`sh packaging/install-deps.sh\` ` +
      `(or \`npm ci --prefix gateway/www\`): ${e.message}`);
  }
  const out = esbuild.buildSync({
    entryPoints: [entry],
    bundle: true,
    format: 'iife',
    globalName,
    platform: 'browser', // honours the "browser" field of package.json (debug: src/browser.js)
    target: 'es2020',
    write: false,
    logLevel: 'silent',
    banner: { js: `// ${globalName}: bundled at test time from tests/node_modules by esbuild` },
  });
  return out.outputFiles[0].text;
}

// ---------------------------------------------------------------------------
// The web server: the test page (tests/browser/page), SIP.js's ES modules
// (tests/node_modules/sip.js/lib) and the JsSIP script, on 127.0.0.1.

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
};

// Serves the file under ROOT named by REL, never anything outside ROOT.
function serveFile(res, root, rel) {
  const file = path.resolve(root, '.' + path.posix.normalize('/' + rel));
  if (!file.startsWith(root + path.sep)) {
    res.writeHead(403).end();
    return;
  }
  fs.readFile(file, (err, data) => {
    if (err) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${rel}\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
      'cache-control': 'no-store',
    }).end(data);
  });
}

export async function startWebServer() {
  needModules();
  const jssip = bundleForBrowser(createRequire(path.join(nodeModules, 'x.js')).resolve('jssip'), 'JsSIP');
  const sipjsLib = path.join(nodeModules, 'sip.js', 'lib');
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    requests.push(`${req.method} ${url.pathname}`);
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (url.pathname === '/' || url.pathname === '/index.html') {
      serveFile(res, pageDir, 'index.html');
    } else if (url.pathname === '/favicon.ico') {
      res.writeHead(204).end();
    } else if (url.pathname === '/lib/jssip.js') {
      res.writeHead(200, { 'content-type': TYPES['.js'], 'cache-control': 'no-store' }).end(jssip);
    } else if (url.pathname.startsWith('/lib/sip.js/')) {
      serveFile(res, sipjsLib, url.pathname.slice('/lib/sip.js/'.length));
    } else if (url.pathname.startsWith('/page/')) {
      serveFile(res, pageDir, url.pathname.slice('/page/'.length));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, resolve);
  });
  const { port } = server.address();
  return {
    port,
    url: `http://${LOOPBACK}:${port}/`,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    }),
  };
}

// ---------------------------------------------------------------------------
// Chromium.

// loopbackIce: for real WebRTC media between Chromium and rtcsipd (libnice on
// 127.0.0.1).  Needs the test to run in a loopback-only network namespace
// (runInLoopbackNetns below) and adds LOOPBACK_ICE_ARGS.
export async function launchChromium({ timeoutMs = 30000, loopbackIce = false } = {}) {
  needModules();
  if (!fs.existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (set CHROMIUM; Debian package chromium)`);
  let args = CHROMIUM_ARGS;
  if (loopbackIce) {
    const outside = nonLoopbackAddresses();
    if (outside.length) {
      throw new Error('launchChromium({ loopbackIce: true }) outside a loopback-only network namespace: ' +
        `Chromium would use ${outside.join(', ')} for ICE; call \`await runInLoopbackNetns()\` first`);
    }
    args = [...CHROMIUM_ARGS, ...LOOPBACK_ICE_ARGS];
  }
  const { chromium } = await import('playwright-core');
  // A launch without userDataDir gets a fresh temporary profile, removed on close.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args,
    timeout: timeoutMs,
  });
}

// ---------------------------------------------------------------------------
// WebRTC (ICE) over 127.0.0.1 only.
//
// The rule: test traffic goes only to 127.0.0.0/8 or to network namespaces
// the test makes.  Chromium 156 on this machine (lo, eth0 = 192.0.2.2 and
// fd00::2), with the DESIGN.md flags, two RTCPeerConnections in one page:
//  - no extra flag: host candidates on 192.0.2.2 and fd00::2 only; loopback
//    is never gathered.  (With getUserMedia granted, as here through
//    --use-fake-ui-for-media-stream, they are raw addresses, not mDNS .local
//    names; loopback candidates are never mDNS-obfuscated either, so
//    --disable-features=WebRtcHideLocalIpsWithMdns changes nothing here,
//    and it would replace playwright's own --disable-features list.)
//  - --allow-loopback-in-peer-connection: 127.0.0.1 and ::1 are gathered too,
//    but so are 192.0.2.2 and fd00::2, and the selected pair is
//    fd00::2 <-> fd00::2.  Even when only the peer's 127.0.0.1 candidate is
//    signalled, the selected pair is 192.0.2.2 -> 127.0.0.1: the local side
//    is still the outside address, and an offer to rtcsipd would carry the
//    192.0.2.2 / fd00::2 candidates, which libnice would then check.
//  - --force-webrtc-ip-handling-policy=default | default_public_interface_only
//    | disable_non_proxied_udp, --enforce-webrtc-ip-permission-check: no
//    change to the candidates (and no policy means "loopback only").
// What works: run the whole test -- node (test web server, harness),
// Kamailio, SIPp, rtcsipd and Chromium -- in a fresh network namespace whose
// only interface is lo (127.0.0.1; IPv6 off), and launch Chromium with
// --allow-loopback-in-peer-connection.  Chromium then has nothing to gather
// but 127.0.0.1, every candidate and the selected pair are 127.0.0.1, and
// the harness keeps working unchanged since everything shares that lo
// (checked: libraries, jssip, sipjs and demo pass in such a namespace).  Both
// halves are needed: in the namespace without the flag Chromium gathers no
// candidate at all (the demo's call then hangs at "calling").
// Playwright drives Chromium over a pipe, so it does not care about the
// namespace.  Tested by ice-loopback.test.mjs.  Needs root (or CAP_SYS_ADMIN)
// and unshare(1) and ip(8).
//
//   import { runInLoopbackNetns, launchChromium } from './lib/browser.mjs';
//   await runInLoopbackNetns();                // first, before importing node:test
//   const { default: test } = await import('node:test');
//   ... const browser = await launchChromium({ loopbackIce: true });

export const LOOPBACK_ICE_ARGS = ['--allow-loopback-in-peer-connection'];
export const NETNS_ENV = 'RTCSIPD_TEST_LOOPBACK_NETNS';

const isLoopbackAddress = (a) => /^127\./.test(a) || a === '::1';

// The addresses of this network namespace outside 127.0.0.0/8 and ::1.
export function nonLoopbackAddresses() {
  const out = [];
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    for (const a of addrs || []) if (!isLoopbackAddress(a.address)) out.push(`${a.address} (${name})`);
  }
  return out;
}

// Re-runs this node process (same node, flags, script and arguments; same
// stdin/stdout/stderr, so that node --test's runner and TAP see nothing
// different) in a new network namespace with only lo up, and exits with its
// status: in the parent this never returns.  In the re-run (NETNS_ENV set)
// it checks that the namespace has no address outside loopback and returns.
// Call it at the top of a test file, before node:test is imported (so that
// the parent registers no tests).  ipv6: keep ::1 (default: IPv6 off).
export async function runInLoopbackNetns({ ipv6 = false } = {}) {
  if (process.env[NETNS_ENV] === '1') {
    const outside = nonLoopbackAddresses();
    if (outside.length) throw new Error(`${NETNS_ENV}=1 but this network namespace has ${outside.join(', ')}`);
    return;
  }
  const setup = [
    'PATH="$PATH:/usr/sbin:/sbin"',
    'ip link set lo up || exit 97',
    ipv6 ? ':' : 'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 ' +
      'net.ipv6.conf.lo.disable_ipv6=1 2>/dev/null || true',
    'exec "$@"',
  ].join('\n');
  const child = spawn('unshare', ['--net', '--', 'sh', '-c', setup, 'sh',
    process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [NETNS_ENV]: '1' },
  });
  const forward = (sig) => () => { try { child.kill(sig); } catch { /* gone */ } };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, forward(sig));
  const code = await new Promise((resolve) => {
    child.on('error', (e) => {
      process.stderr.write(`cannot run the test in a network namespace (unshare --net, needs root): ${e.message}\n`);
      resolve(1);
    });
    child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 + (os.constants.signals[sig] || 0) : 1)));
  });
  if (code === 97) process.stderr.write('in the new network namespace, `ip link set lo up` failed\n');
  process.exit(code);
}

// Opens the test page in a new context of BROWSER.  Returns an AgentPage.
export async function openAgentPage(browser, web, name, { timeoutMs = 15000 } = {}) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const agent = new AgentPage(name, context, page);
  try {
    await page.goto(web.url, { timeout: timeoutMs });
    await page.waitForFunction(() => window.T && (window.T.ready || window.T.loadError), null,
      { timeout: timeoutMs });
    const loadError = await page.evaluate(() => window.T.loadError);
    if (loadError) throw new Error(loadError);
  } catch (e) {
    await agent.close();
    throw new Error(`the test page did not load its libraries: ${e.message}\n` +
      `--- page console ---\n${agent.console.join('\n')}\n` +
      `--- requests to the test's web server ---\n${web.requests.join('\n')}`);
  }
  return agent;
}

function fmtTime(t) {
  return new Date(t).toISOString().slice(11, 23);
}

export class AgentPage {
  constructor(name, context, page) {
    this.name = name;
    this.context = context;
    this.page = page;
    this.console = []; // lines: page console, page errors, failed requests
    const add = (s) => {
      if (s.length > 4000) s = `${s.slice(0, 4000)} [... ${s.length - 4000} more characters]`;
      if (this.console.length < 20000) this.console.push(`${fmtTime(Date.now())} ${s}`);
    };
    // JsSIP logs through npm debug (%c colours), SIP.js with a long date first.
    const tidy = (t) => t.replace(/%c/g, '').replace(/ color: (#[0-9A-Fa-f]{6}|inherit)/g, '')
      .replace(/^\w{3} \w{3} \d\d \d{4} [\d:]+ GMT\S* \([^)]*\) \| /, '');
    page.on('console', (m) => add(`[console.${m.type()}] ${tidy(m.text())}`));
    page.on('pageerror', (e) => add(`[pageerror] ${e.stack || e.message}`));
    page.on('requestfailed', (r) => add(`[requestfailed] ${r.url()} ${r.failure()?.errorText}`));
    page.on('websocket', (ws) => {
      add(`[websocket] open ${ws.url()}`);
      ws.on('close', () => add(`[websocket] closed ${ws.url()}`));
      ws.on('socketerror', (e) => add(`[websocket] error ${ws.url()}: ${e}`));
    });
  }

  // Calls window.T[FN](ARG) in the page and returns its (awaited) result.
  call(fn, arg, ms = 15000) {
    return withTimeout(this.page.evaluate(([f, a]) => window.T[f](a), [fn, arg ?? null]), ms, `page T.${fn}()`);
  }

  // The events the page recorded: [{ t, src, type, ...detail }].
  events(src) {
    return withTimeout(this.page.evaluate((s) => window.T.events.filter((e) => !s || e.src === s), src ?? null),
      5000, 'the page\'s events');
  }

  // The SIP messages that went over the page's WebSockets:
  // [{ t, dir: 'out'|'in', url, data }].
  frames() {
    return withTimeout(this.page.evaluate(() => window.T.frames), 5000, 'the page\'s WebSocket frames');
  }

  // The state changes of the page's peer connections:
  // [{ t, pc, kind: 'ice'|'connection'|'dtls', state }] (tap.js).
  pcStates() {
    return withTimeout(this.page.evaluate(() => window.T.pcStates), 5000, 'the page\'s peer connection states');
  }

  // Waits (at most MS ms) for an event of SRC whose type is one of TYPES,
  // recorded after the first SKIP events of SRC; returns it.
  async waitForEvent(src, types, ms, { after = 0 } = {}) {
    types = [].concat(types);
    return waitFor(async () => {
      const evs = (await this.events(src)).slice(after);
      return evs.find((e) => types.includes(e.type)) || null;
    }, ms, { interval: 50, what: `${src} event ${types.join('|')}` })
      .catch(async (e) => {
        const seen = (await this.events(src).catch(() => [])).map((x) => x.type).join(', ');
        throw new Error(`${e.message} (events so far: ${seen || 'none'})`);
      });
  }

  // The page's log as text: console lines, then the SIP frames.
  async report() {
    let frames = [];
    try { frames = await this.frames(); } catch { /* page gone */ }
    let events = [];
    try { events = await this.events(); } catch { /* page gone */ }
    return `--- page ${this.name}: console ---\n${this.console.join('\n')}\n` +
      `--- page ${this.name}: events ---\n${events.map((e) => `${fmtTime(e.t)} ${JSON.stringify(e)}`).join('\n')}\n` +
      `--- page ${this.name}: WebSocket frames ---\n` +
      frames.map((f) => `${fmtTime(f.t)} ${f.dir === 'out' ? '>>>' : '<<<'} ${f.url}\n${f.data}`).join('\n');
  }

  // Saves the page's log and a screenshot under tests/artifacts/browser/.
  async saveArtifacts() {
    fs.mkdirSync(artifactsDir, { recursive: true });
    const base = path.join(artifactsDir, this.name.replace(/[^A-Za-z0-9_.-]/g, '_'));
    const text = await this.report();
    fs.writeFileSync(`${base}.log`, text);
    try {
      await withTimeout(this.page.screenshot({ path: `${base}.png` }), 5000, 'screenshot');
    } catch { /* not essential */ }
    return { base, text };
  }

  close() {
    return withTimeout(this.context.close(), 5000, 'browser context to close').catch(() => {});
  }
}

// Runs FN(agent) with a page of BROWSER; when FN throws, the page's log and a
// screenshot are saved under tests/artifacts/browser/ and the log's tail is
// printed to stderr.  The page is closed either way.
export async function withAgentPage(browser, web, name, fn) {
  const agent = await openAgentPage(browser, web, name);
  try {
    return await fn(agent);
  } catch (e) {
    try {
      const { base, text } = await agent.saveArtifacts();
      const lines = text.split('\n');
      process.stderr.write(`\n===== browser page ${name} (saved in ${base}.log/.png) =====\n` +
        `${lines.slice(-400).join('\n')}\n`);
    } catch (e2) {
      process.stderr.write(`could not save the page's artifacts: ${e2.message}\n`);
    }
    throw e;
  } finally {
    await agent.close();
  }
}

// Test harness for the rtcsipd integration tests: real peers (Kamailio, SIPp,
// rtcsipd itself) started by the test on 127.0.0.1 with free ports, every wait
// bounded, every child process killed on success, failure and SIGTERM.
//
//   import { withEnv } from '../lib/harness.mjs';
//   await withEnv(async (env) => {
//     const kam = await env.startKamailio({ users: [{ username: 'alice', password: 's3cret' }] });
//     const gw = await env.startRtcsipd({ pbxPort: kam.port });
//     ...
//   });
//
// withEnv() stops everything it started when the callback returns or throws;
// when it throws, the logs of every process are printed to stderr and the
// temporary directory is kept (its path is printed).

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const testsDir = path.resolve(here, '..');
export const integrationDir = path.join(testsDir, 'integration');
export const LOOPBACK = '127.0.0.1';

export const RTCSIPD = process.env.RTCSIPD || path.resolve(testsDir, '../build/rtcsipd');
export const KAMAILIO = process.env.KAMAILIO || 'kamailio';
export const SIPP = process.env.SIPP || 'sipp';

// RTCSIPD_VALGRIND=1 (`meson test --setup valgrind`): startRtcsipd runs the
// daemon under valgrind's memcheck, which exits with VALGRIND_EXIT_CODE when it
// found an invalid access or a definite/indirect leak; Env.close() turns that
// into a failure that prints the valgrind log.  The daemon is much slower
// there, so the harness's own waits on it are VALGRIND_SLOWDOWN times longer.
export const VALGRIND = process.env.RTCSIPD_VALGRIND === '1';
export const VALGRIND_CMD = process.env.VALGRIND || 'valgrind'; // VALGRIND=path: another valgrind
export const VALGRIND_EXIT_CODE = 99;
// RTCSIPD_SLOWDOWN=N: the daemon is N times slower for another reason (a
// ThreadSanitizer build: `meson test --setup tsan` sets 4), and so are the waits.
export const VALGRIND_SLOWDOWN = VALGRIND ? 10 : Math.max(1, Number(process.env.RTCSIPD_SLOWDOWN) || 1);
const VALGRIND_SUPP = path.join(testsDir, 'valgrind.supp'); // library leaks, each with its reason
// SIGTERM to exit under valgrind: the daemon's own shutdown grace (2 s), then the leak check.
const VALGRIND_STOP_GRACE = 30000;

// ---------------------------------------------------------------------------
// Process-wide bookkeeping: every child runs in its own process group and is
// remembered here, so that exit and termination signals (meson's timeout sends
// SIGTERM to our process group, then SIGKILL 0.5 s later) take them down too.

const liveGroups = new Set();

function killGroupSync(pid, signal) {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

function killAllSync() {
  for (const pid of liveGroups) killGroupSync(pid, 'SIGKILL');
  liveGroups.clear();
}

process.on('exit', killAllSync);
for (const [sig, num] of [['SIGTERM', 15], ['SIGINT', 2], ['SIGHUP', 1]]) {
  process.on(sig, () => {
    killAllSync();
    process.exit(128 + num);
  });
}

// ---------------------------------------------------------------------------
// Small utilities.

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls COND (sync or async; a truthy result ends the wait and is returned)
// every INTERVAL ms for at most MS ms.  An exception from COND ends the wait
// at once (COND returns a falsy value for "not yet").
export async function waitFor(cond, ms, { interval = 25, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(Math.min(interval, Math.max(1, deadline - Date.now())));
  }
}

// Rejects after MS ms unless PROMISE settles first.
export function withTimeout(promise, ms, what = 'operation') {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export function randomToken(n = 10) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.randomBytes(n);
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[bytes[i] % alphabet.length];
  return s;
}

export function md5(s) {
  return crypto.createHash('md5').update(s).digest('hex');
}

export function tmpDir(prefix = 'rtcsipd-it-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function canBindUdp(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind(port, LOOPBACK, () => s.close(() => resolve(true)));
  });
}

function canBindTcp(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, LOOPBACK, () => srv.close(() => resolve(true)));
  });
}

function tcpPortZero() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const handedOut = new Set();

// A port that is free for both TCP and UDP on 127.0.0.1 right now (chosen by
// the kernel: bind port 0, close), never the same one twice in this process.
export async function freePort() {
  for (let i = 0; i < 100; i++) {
    const port = await tcpPortZero();
    if (handedOut.has(port)) continue;
    if (!(await canBindUdp(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free port found in 100 tries');
}

export const udpPortInUse = async (port) => !(await canBindUdp(port));
export const tcpPortInUse = async (port) => !(await canBindTcp(port));

// ---------------------------------------------------------------------------
// Child processes.

const MAX_LOG = 4 * 1024 * 1024;

export class Child {
  constructor(name, cmd, args, { cwd, env, logFile } = {}) {
    this.name = name;
    this.cmd = cmd;
    this.args = args;
    this.output = '';
    this.stamps = []; // [end offset in output, time it came (ms, Date.now() clock)] per chunk
    this.logFile = logFile;
    this.startedAt = Date.now();
    this.stopGrace = 3000; // default SIGTERM grace of stop()
    this.valgrindLog = null; // set when the process runs under valgrind
    this.proc = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: we kill the whole group
    });
    this.pid = this.proc.pid;
    if (this.pid) liveGroups.add(this.pid);
    this.exitStatus = null;
    const append = (chunk) => {
      const s = chunk.toString('utf8');
      if (this.output.length < MAX_LOG) {
        this.output += s;
        this.stamps.push([this.output.length, performance.timeOrigin + performance.now()]);
      }
      if (this.logFile) {
        try { fs.appendFileSync(this.logFile, s); } catch { /* ignore */ }
      }
    };
    this.proc.stdout.on('data', append);
    this.proc.stderr.on('data', append);
    this.exited = new Promise((resolve) => {
      this.proc.once('error', (err) => {
        append(`\n[harness] could not start ${cmd}: ${err.message}\n`);
        this.exitStatus = { code: null, signal: null, error: err };
        liveGroups.delete(this.pid);
        resolve(this.exitStatus);
      });
      // 'close': the process has exited and its stdio streams are drained.
      this.proc.once('close', (code, signal) => {
        if (!this.exitStatus) this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
  }

  // When the output up to character INDEX had come (ms, Date.now() clock, to
  // a fraction of a ms): the time of the chunk that held it.  A line written
  // with one write (rtcsipd's are) is timed by its first character.
  timeOf(index) {
    let lo = 0, hi = this.stamps.length - 1;
    if (hi < 0 || index >= this.stamps[hi][0]) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.stamps[mid][0] > index) hi = mid; else lo = mid + 1;
    }
    return this.stamps[lo][1];
  }

  get running() {
    return this.exitStatus === null;
  }

  // Resolves with RE's match once the output matches it; rejects on timeout or exit.
  async waitForOutput(re, ms, what = String(re)) {
    return waitFor(() => {
      const m = this.output.match(re);
      if (m) return m;
      if (!this.running) throw new Error(`${this.name} exited (${JSON.stringify(this.exitStatus)})`);
      return null;
    }, ms, { what: `${this.name} output ${what}` }).catch((e) => {
      throw new Error(`${e.message}\n--- ${this.name} output ---\n${tail(this.output)}`);
    });
  }

  // Waits at most MS ms for the process to exit by itself.
  async wait(ms) {
    try {
      return await withTimeout(this.exited, ms, `${this.name} to exit`);
    } finally {
      if (!this.running) this._reap();
    }
  }

  _reap() {
    // The main process is gone; take any stragglers in its group with it.
    if (this.pid && liveGroups.has(this.pid)) {
      killGroupSync(this.pid, 'SIGKILL');
      liveGroups.delete(this.pid);
    }
  }

  // SIGTERM to the group, up to GRACE ms to exit, then SIGKILL.
  async stop(grace = this.stopGrace) {
    if (!this.pid) return this.exitStatus;
    if (this.running) {
      killGroupSync(this.pid, 'SIGTERM');
      try {
        await withTimeout(this.exited, grace, `${this.name} to exit on SIGTERM`);
      } catch {
        killGroupSync(this.pid, 'SIGKILL');
        await withTimeout(this.exited, 5000, `${this.name} to die on SIGKILL`).catch(() => {});
      }
    }
    this._reap();
    return this.exitStatus;
  }
}

function tail(s, n = 200) {
  const lines = s.split('\n');
  return lines.slice(-n).join('\n');
}

// ---------------------------------------------------------------------------
// Kamailio: registrar with digest auth (auth_db on db_text), usrloc in memory.

function dbtextEscape(s) {
  return String(s).replace(/\\/g, '\\\\').replace(/:/g, '\\:').replace(/\n/g, '\\n');
}

function writeKamailioDb(dbDir, domain, users) {
  fs.mkdirSync(dbDir, { recursive: true });
  fs.writeFileSync(path.join(dbDir, 'version'),
    'id(int,auto) table_name(string) table_version(int) \n' +
    '0:subscriber:7\n');
  let sub = 'id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) \n';
  users.forEach((u, i) => {
    const ha1 = md5(`${u.username}:${domain}:${u.password}`);
    const ha1b = md5(`${u.username}@${domain}:${domain}:${u.password}`);
    sub += [i + 1, u.username, domain, u.password, ha1, ha1b].map(dbtextEscape).join(':') + '\n';
  });
  fs.writeFileSync(path.join(dbDir, 'subscriber'), sub);
}

function kamailioStaticRoutes(routes) {
  return routes.map((r) => {
    if (!/^[A-Za-z0-9._-]+$/.test(r.user)) throw new Error(`bad static user ${r.user}`);
    const host = r.host || LOOPBACK;
    return `\tif ($rU == "${r.user}") {\n` +
      `\t\t$du = "sip:${host}:${r.port}";\n` +
      '\t\troute(RELAY);\n' +
      '\t}';
  }).join('\n');
}

// A self-signed ECDSA P-256 certificate for 127.0.0.1, made with the openssl
// command in DIR: { cert, key } (PEM file paths).
export function makeSelfSignedCert(dir, name) {
  const cert = path.join(dir, `${name}-cert.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-nodes', '-subj', `/CN=${LOOPBACK}`, '-addext', `subjectAltName=IP:${LOOPBACK}`, '-days', '2',
    '-keyout', key, '-out', cert], { encoding: 'utf8', timeout: 10000 });
  if (r.status !== 0) throw new Error(`openssl req failed: ${r.stderr || r.error}`);
  return { cert, key };
}

// Sends a SIP OPTIONS over UDP to HOST:PORT and resolves with the first SIP
// response text, or null when nothing came within MS ms.
export function udpSipProbe(port, { host = LOOPBACK, ms = 300, ruri } = {}) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    let timer;
    const finish = (v) => {
      clearTimeout(timer);
      try { sock.close(); } catch { /* closed */ }
      resolve(v);
    };
    sock.on('error', () => finish(null));
    sock.on('message', (buf) => {
      const s = buf.toString('utf8');
      if (s.startsWith('SIP/2.0 ')) finish(s);
    });
    sock.bind(0, LOOPBACK, () => {
      const lport = sock.address().port;
      const branch = 'z9hG4bK' + randomToken(12);
      const msg = [
        `OPTIONS ${ruri || `sip:${host}:${port}`} SIP/2.0`,
        `Via: SIP/2.0/UDP ${LOOPBACK}:${lport};branch=${branch};rport`,
        'Max-Forwards: 70',
        `From: <sip:probe@${LOOPBACK}>;tag=${randomToken(8)}`,
        `To: <sip:${host}:${port}>`,
        `Call-ID: ${randomToken(16)}@${LOOPBACK}`,
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
        '', '',
      ].join('\r\n');
      sock.send(msg, port, host);
      timer = setTimeout(() => finish(null), ms);
    });
  });
}

// ---------------------------------------------------------------------------
// What a process holds (Linux /proc): for leak checks.

// The open file descriptors of process PID: [{ fd, target }] (target: the
// readlink of /proc/PID/fd/N, e.g. "socket:[1234]", "anon_inode:[eventfd]").
export function openFds(pid) {
  const dir = `/proc/${pid}/fd`;
  const out = [];
  for (const name of fs.readdirSync(dir)) {
    let target;
    try { target = fs.readlinkSync(path.join(dir, name)); } catch { continue; } // closed meanwhile
    out.push({ fd: Number(name), target });
  }
  return out.sort((a, b) => a.fd - b.fd);
}

// The UDP sockets process PID holds: [{ fd, inode, family, address, port }]
// (its socket fds matched by inode against /proc/PID/net/udp and udp6).
export function udpSockets(pid) {
  const byInode = new Map();
  for (const { fd, target } of openFds(pid)) {
    const m = target.match(/^socket:\[(\d+)\]$/);
    if (m) byInode.set(m[1], fd);
  }
  const out = [];
  for (const family of ['udp', 'udp6']) {
    let text;
    try { text = fs.readFileSync(`/proc/${pid}/net/${family}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const inode = f[9];
      if (!byInode.has(inode)) continue;
      const [addrHex, portHex] = f[1].split(':');
      let address = addrHex;
      if (family === 'udp') {
        const n = parseInt(addrHex, 16); // little-endian on the machines we run on
        address = [n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >>> 24) & 255].join('.');
      }
      out.push({ fd: byInode.get(inode), inode, family, address, port: parseInt(portHex, 16) });
    }
  }
  return out.sort((a, b) => a.fd - b.fd);
}

// ---------------------------------------------------------------------------
// SIPp.

// Runs SIPp with scenario tests/integration/sipp/NAME.xml (or an absolute
// path).  @KEY@ placeholders in the scenario are replaced from VARS before it
// is written to the env's directory.  Returns a handle; see SippRun.
class SippRun {
  constructor(child, { port, messageFile, errorFile, timeoutMs }) {
    this.child = child;
    this.port = port;
    this.messageFile = messageFile;
    this.errorFile = errorFile;
    this.timeoutMs = timeoutMs;
  }

  // Resolves once SIPp has bound its UDP port (it then handles traffic).
  async bound(ms = 5000) {
    await waitFor(async () => {
      if (!this.child.running) throw new Error(`sipp exited early:\n${tail(this.child.output)}`);
      return udpPortInUse(this.port);
    }, ms, { what: `sipp to bind udp ${this.port}` });
    return this;
  }

  // Waits (at most MS ms, default: SIPp's own -timeout plus slack) for SIPp to
  // exit and returns { code, timedOut, output, messages, errors, responses,
  // responseTimes, sentTimes, requests }.  code: 0 all calls succeeded, 1 a call failed, other: trouble.
  async result(ms = this.timeoutMs + 5000) {
    let timedOut = false;
    try {
      await this.child.wait(ms);
    } catch {
      timedOut = true;
      await this.child.stop(1000);
    }
    const read = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
    const messages = read(this.messageFile);
    const errors = read(this.errorFile);
    // The trace is a series of blocks, each after a line of dashes and a time
    // stamp: "UDP message sent (N bytes):" or "UDP message received [N] bytes :".
    const responses = [];     // status codes of the responses received, in order
    const responseTimes = []; // when each arrived (ms since the epoch)
    const requests = [];      // texts of the requests received
    const sentTimes = [];     // when each message was sent (ms since the epoch)
    const stamp = (t) => new Date(t.replace(' ', 'T').replace(/(\.\d{3})\d*$/, '$1')).getTime();
    const parts = messages.split(/^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\s*$/m);
    // parts: [preamble, stamp1, block1, stamp2, block2, ...]
    for (let i = 1; i + 1 < parts.length; i += 2) {
      const m = parts[i + 1].match(/^\s*\S+ message (sent|received)[^\n]*\n\s*\n?([\s\S]*)$/);
      if (m && m[1] === 'sent') sentTimes.push(stamp(parts[i]));
      if (!m || m[1] !== 'received') continue;
      const text = m[2].replace(/^\s+/, '');
      const line = text.split(/\r?\n/)[0];
      const st = line.match(/^SIP\/2\.0 (\d{3})/);
      if (st) {
        responses.push(Number(st[1]));
        responseTimes.push(stamp(parts[i]));
      } else if (/^[A-Z]+ \S+ SIP\/2\.0/.test(line)) {
        requests.push(text);
      }
    }
    return {
      code: this.child.exitStatus ? this.child.exitStatus.code : null,
      timedOut,
      output: this.child.output,
      messages,
      errors,
      responses,
      responseTimes,
      sentTimes,
      requests,
    };
  }

  stop() {
    return this.child.stop(1000);
  }
}

// ---------------------------------------------------------------------------
// rtcsipd configuration.

function iniString(sections) {
  let s = '';
  for (const [group, keys] of Object.entries(sections)) {
    if (keys === null) continue;
    s += `[${group}]\n`;
    for (const [k, v] of Object.entries(keys)) {
      if (v === null || v === undefined) continue;
      s += `${k} = ${Array.isArray(v) ? v.join(';') : v}\n`;
    }
    s += '\n';
  }
  return s;
}

function httpGet(port, pathName, ms = 500) {
  return new Promise((resolve) => {
    const req = http.get({ host: LOOPBACK, port, path: pathName, timeout: ms }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => { req.destroy(); resolve(null); });
    req.on('error', () => resolve(null));
  });
}

// ---------------------------------------------------------------------------
// The environment of one test: a temp directory and the processes in it.

export class Env {
  constructor(name = 'test') {
    this.name = name;
    this.dir = tmpDir(`rtcsipd-it-${name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40)}-`);
    this.children = [];
    this.cleanups = [];
    this.sippCount = 0;
  }

  spawn(name, cmd, args, opts = {}) {
    const child = new Child(name, cmd, args, {
      cwd: this.dir,
      logFile: path.join(this.dir, `${name}.log`),
      ...opts,
    });
    this.children.push(child);
    return child;
  }

  // Runs FN when the env is closed (before processes are stopped).
  defer(fn) {
    this.cleanups.push(fn);
  }

  // startKamailio({ domain, users: [{username, password}], sippRoutes: [{user, port, host}],
  //                 frTimer, tcp, tls }) -> { port, tlsPort, tls: {cert, key}, domain, uri, child, stop() }
  // TCP: also listen on TCP (same port).  TLS: also listen on TLS (tlsPort), with a
  // self-signed P-256 certificate made here (tls.cert, tls.key: PEM file paths).
  async startKamailio({ domain = 'example.com', users = [], sippRoutes = [], frTimer = 4000,
    tcp = false, tls = false, readyMs = 15000 } = {}) {
    const port = await freePort();
    const tlsPort = tls ? await freePort() : 0;
    const kdir = path.join(this.dir, `kamailio-${port}`);
    const dbDir = path.join(kdir, 'db');
    const runDir = path.join(kdir, 'run');
    fs.mkdirSync(runDir, { recursive: true });
    writeKamailioDb(dbDir, domain, users);
    const template = fs.readFileSync(path.join(integrationDir, 'kamailio', 'kamailio.cfg.in'), 'utf8');
    const vars = {
      LISTEN_PORT: String(port),
      DOMAIN: domain,
      DB_URL: `text://${dbDir}`,
      FR_TIMER: String(frTimer),
      STATIC_ROUTES: kamailioStaticRoutes(sippRoutes),
      TLS_PORT: String(tlsPort),
      TLS_CONFIG: path.join(kdir, 'tls.cfg'),
    };
    let tlsFiles = null;
    if (tls) {
      tlsFiles = makeSelfSignedCert(kdir, 'kamailio');
      fs.writeFileSync(vars.TLS_CONFIG, [
        '[server:default]', 'method = TLSv1.2+', 'verify_certificate = no', 'require_certificate = no',
        `certificate = ${tlsFiles.cert}`, `private_key = ${tlsFiles.key}`, '',
        '[client:default]', 'method = TLSv1.2+', 'verify_certificate = no', 'require_certificate = no', '',
      ].join('\n'));
    }
    // Placeholders are filled in outside comment lines only.
    const cfg = template.split('\n').map((line) => (/^\s*#/.test(line) ? line
      : line.replace(/@([A-Z_]+)@/g, (m, k) => {
        if (!(k in vars)) throw new Error(`kamailio.cfg.in: unknown placeholder ${m}`);
        return vars[k];
      }))).join('\n');
    const cfgFile = path.join(kdir, 'kamailio.cfg');
    fs.writeFileSync(cfgFile, cfg);
    const args = ['-f', cfgFile, '-DD', '-E', '-Y', runDir, '-P', path.join(runDir, 'kamailio.pid'),
      '-w', kdir, '-m', '64', '-M', '8'];
    if (process.env.KAMAILIO_MODULES) args.push('-L', process.env.KAMAILIO_MODULES);
    if (tcp) args.push('-A', 'WITH_TCP');
    if (tls) args.push('-A', 'WITH_TLS');
    const child = this.spawn(`kamailio-${port}`, KAMAILIO, args);
    // Ready when it answers a SIP request (any response).
    await waitFor(async () => {
      if (!child.running) {
        throw new Error(`kamailio exited (${JSON.stringify(child.exitStatus)}):\n${tail(child.output)}`);
      }
      return udpSipProbe(port, { ms: 200 });
    }, readyMs, { interval: 50, what: `kamailio on udp ${port} to answer OPTIONS` })
      .catch((e) => { throw new Error(`${e.message}\n--- kamailio output ---\n${tail(child.output)}`); });
    if (tls) {
      await waitFor(() => tcpPortInUse(tlsPort), 5000, { what: `kamailio to listen on tls ${tlsPort}` });
    }
    return { port, tlsPort, tls: tlsFiles, host: LOOPBACK, domain, uri: `sip:${LOOPBACK}:${port}`, child,
      stop: () => child.stop() };
  }

  // startRtcsipd({ pbxPort, domains, overrides: { section: { key: value|null } }, env })
  //   -> { ports: {ws, wss, sip}, wsUrl, wssUrl, configFile, child, logs(), stop() }
  // ENV: extra environment of the daemon (a key set to undefined is removed).
  async startRtcsipd({ pbxPort, pbxHost = LOOPBACK, domains = ['example.com'], overrides = {},
    readyMs = 15000, env = {} } = {}) {
    const ports = { ws: await freePort(), wss: await freePort(), sip: await freePort() };
    const sections = {
      general: { log_level: 'debug' },
      websocket: {
        ws: `${LOOPBACK}:${ports.ws}`,
        wss: `${LOOPBACK}:${ports.wss}`,
      },
      sip: {
        listen: `${LOOPBACK}:${ports.sip}`,
        advertised_address: LOOPBACK,
        domains: domains.join(','),
      },
      pbx: {
        host: pbxHost,
        port: pbxPort,
        transport: 'udp',
      },
      limits: { max_message_size: 65536 },
    };
    for (const [group, keys] of Object.entries(overrides)) {
      if (keys === null) sections[group] = null;
      else sections[group] = { ...(sections[group] || {}), ...keys };
    }
    const configFile = path.join(this.dir, `rtcsipd-${ports.ws}.conf`);
    fs.writeFileSync(configFile, iniString(sections));
    if (!fs.existsSync(RTCSIPD)) throw new Error(`rtcsipd binary not found at ${RTCSIPD} (set RTCSIPD)`);
    let cmd = RTCSIPD;
    let args = ['-c', configFile];
    let valgrindLog = null;
    if (VALGRIND) {
      valgrindLog = path.join(this.dir, `valgrind-${ports.ws}.log`);
      cmd = VALGRIND_CMD;
      args = [`--error-exitcode=${VALGRIND_EXIT_CODE}`, '--leak-check=full',
        '--show-leak-kinds=definite,indirect', '--errors-for-leak-kinds=definite,indirect',
        '--track-origins=yes', '--num-callers=64', // deep OpenSSL stacks: reach the caller
        `--suppressions=${VALGRIND_SUPP}`,
        `--log-file=${valgrindLog}`, RTCSIPD, ...args];
      // GLib 2.74: plain malloc instead of the slice allocator, so that valgrind sees every block
      env = { G_SLICE: 'always-malloc', ...env };
      readyMs *= VALGRIND_SLOWDOWN;
    }
    const child = this.spawn(`rtcsipd-${ports.ws}`, cmd, args, {
      env: { G_DEBUG: 'fatal-criticals', ...env },
    });
    if (valgrindLog) {
      child.valgrindLog = valgrindLog;
      child.stopGrace = VALGRIND_STOP_GRACE;
    }
    // Ready: GET /healthz answers 200, or the log says "ready".
    await waitFor(async () => {
      if (!child.running) {
        throw new Error(`rtcsipd exited (${JSON.stringify(child.exitStatus)})`);
      }
      if (/\bready\b/i.test(child.output)) return true;
      return (await httpGet(ports.ws, '/healthz', 300)) === 200;
    }, readyMs, { interval: 50, what: `rtcsipd to be ready (GET /healthz on ${ports.ws})` })
      .catch((e) => {
        throw new Error(`${e.message}\n--- config ---\n${fs.readFileSync(configFile, 'utf8')}` +
          `--- rtcsipd output ---\n${tail(child.output)}`);
      });
    // The SIP side must be bound as well before the PBX sends anything.
    await waitFor(() => udpPortInUse(ports.sip), 5000 * VALGRIND_SLOWDOWN,
      { what: `rtcsipd to bind udp ${ports.sip}` });
    return {
      ports,
      host: LOOPBACK,
      wsUrl: `ws://${LOOPBACK}:${ports.ws}`,
      wssUrl: `wss://${LOOPBACK}:${ports.wss}`,
      sipUri: `sip:${LOOPBACK}:${ports.sip}`,
      configFile,
      child,
      logs: () => child.output,
      stop: () => child.stop(),
    };
  }

  // startSipp({ scenario, vars, remote, port, args, timeoutSec, calls, name })
  // starts SIPp on 127.0.0.1:PORT (a free one unless given) and returns a SippRun.
  // REMOTE: "host:port" for a UAC, omitted for a UAS.
  async startSipp({ scenario, vars = {}, remote, port, args = [], timeoutSec = 10, calls = 1,
    name } = {}) {
    const n = ++this.sippCount;
    name = name || `sipp${n}-${path.basename(scenario, '.xml')}`;
    port = port || await freePort();
    const src = path.isAbsolute(scenario) ? scenario : path.join(integrationDir, 'sipp', scenario);
    let xml = fs.readFileSync(src, 'utf8');
    xml = xml.replace(/@([A-Z_]+)@/g, (m, k) => {
      if (!(k in vars)) throw new Error(`${scenario}: no value for placeholder ${m}`);
      return String(vars[k]);
    });
    const file = path.join(this.dir, `${name}.xml`);
    fs.writeFileSync(file, xml);
    const messageFile = path.join(this.dir, `${name}.messages.log`);
    const errorFile = path.join(this.dir, `${name}.errors.log`);
    const fullArgs = [
      '-sf', file,
      '-i', LOOPBACK, '-p', String(port), '-t', 'u1',
      '-m', String(calls),
      '-nostdin',
      '-trace_msg', '-message_file', messageFile,
      '-trace_err', '-error_file', errorFile,
      '-timeout', `${timeoutSec}s`, '-timeout_error',
      ...args,
    ];
    if (remote) fullArgs.push(remote);
    const child = this.spawn(name, SIPP, fullArgs);
    return new SippRun(child, { port, messageFile, errorFile, timeoutMs: timeoutSec * 1000 });
  }

  // Runs a SIPp UAC to completion and returns its result (see SippRun.result).
  async runSipp(opts) {
    const run = await this.startSipp(opts);
    return run.result();
  }

  logs() {
    return this.children.map((c) => `--- ${c.name} (${c.cmd} ${c.args.join(' ')}) ` +
      `exit=${JSON.stringify(c.exitStatus)} ---\n${tail(c.output, 300)}`).join('\n');
  }

  async close({ failed = false } = {}) {
    for (const fn of this.cleanups.reverse()) {
      try { await fn(); } catch { /* keep going */ }
    }
    const crashed = [];
    // rtcsipd last, so that a crash caused by the others' traffic is still seen.
    const order = [...this.children].sort((a, b) =>
      (a.name.startsWith('rtcsipd') ? 1 : 0) - (b.name.startsWith('rtcsipd') ? 1 : 0));
    for (const c of order) {
      const wasRunning = c.running;
      const before = crashed.length;
      const st = await c.stop();
      const valgrindFound = c.valgrindLog && st && st.code === VALGRIND_EXIT_CODE
        ? ': valgrind found errors or leaks' : '';
      // A daemon that died on its own (not by our SIGTERM) is a failure.
      if (!wasRunning && c.name.startsWith('rtcsipd') && st && (st.signal || st.code)) {
        crashed.push(`${c.name} died by itself: ${JSON.stringify(st)}${valgrindFound}`);
      }
      if (wasRunning && c.name.startsWith('rtcsipd') && st && st.signal && st.signal !== 'SIGTERM') {
        crashed.push(`${c.name} did not exit on SIGTERM: ${JSON.stringify(st)}`);
      }
      // After our SIGTERM the daemon exits 0; any other status is a failure (under valgrind,
      // VALGRIND_EXIT_CODE: an invalid access or a leak).
      if (wasRunning && c.name.startsWith('rtcsipd') && st && st.code) {
        crashed.push(`${c.name} exited with status ${st.code} after SIGTERM${valgrindFound}`);
      }
      if (c.valgrindLog && crashed.length > before) {
        let log;
        try { log = fs.readFileSync(c.valgrindLog, 'utf8'); } catch (e) { log = `(cannot read: ${e.message})`; }
        if (log.length > 256 * 1024) log = `${log.slice(0, 256 * 1024)}\n[... cut at 256 KB]`;
        // no blank lines: the message goes into a TAP YAML block, which a blank line would end
        log = log.replace(/\n\s*(?=\n)/g, '').trimEnd();
        crashed.push(`--- ${c.name}: valgrind log ${c.valgrindLog} ---\n${log}`);
      }
    }
    if (failed || crashed.length) {
      process.stderr.write(`\n===== logs (kept in ${this.dir}) =====\n${this.logs()}\n`);
      if (failed && crashed.length) process.stderr.write(`${crashed.join('\n')}\n`);
    } else {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
    return crashed;
  }
}

// Runs FN(env) and always closes the env; on failure prints the logs.  A
// daemon that crashed during the test turns a pass into a failure.
export async function withEnv(name, fn) {
  if (typeof name === 'function') { fn = name; name = 'test'; }
  const env = new Env(name);
  let failed = true;
  try {
    const r = await fn(env);
    failed = false;
    return r;
  } finally {
    const crashed = await env.close({ failed });
    if (!failed && crashed.length) {
      // eslint-disable-next-line no-unsafe-finally
      throw new Error(crashed.join('\n'));
    }
  }
}

// ---------------------------------------------------------------------------
// The usual setup: Kamailio for DOMAIN with USERS, and rtcsipd in front of it.
export async function startPbxAndGateway(env, { domain = 'example.com', users = [], sippRoutes = [],
  rtcsipd = {} } = {}) {
  const kam = await env.startKamailio({ domain, users, sippRoutes });
  const gw = await env.startRtcsipd({ pbxPort: kam.port, domains: [domain], ...rtcsipd });
  return { kam, gw };
}

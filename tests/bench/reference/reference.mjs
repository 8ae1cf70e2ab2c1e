// The reference gateway of the side-by-side benchmarks: Kamailio's websocket
// module in front of the PBX (kamailio-ws.cfg.in) and rtpengine in userspace
// for the media (ICE, DTLS-SRTP, rtcp-mux toward the browser, plain RTP/AVP
// toward the PBX).  The same job as rtcsipd, done by others; see
// tests/bench/README.md ("Reference gateway") for the rtpengine flags and why.
//
//   import { Env } from '../../lib/harness.mjs';
//   import { startReference } from './reference/reference.mjs';
//   const kam = await env.startKamailio({ ... });
//   const ref = await startReference(env, { pbxPort: kam.port, rtpPortMin: 30000, rtpPortMax: 30999 });
//   // browsers connect to ref.wsUrl; ref.pids() for CPU figures from /proc/PID/stat
//
// Everything listens on 127.0.0.1 only, on free ports; both processes are
// children of ENV (stopped when it closes).  Packages: kamailio,
// kamailio-websocket-modules, rtpengine-daemon (packaging/install-deps.sh --bench).

import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LOOPBACK, KAMAILIO, freePort, randomToken, tcpPortInUse, udpSipProbe, waitFor, withTimeout,
} from '../../lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const RTPENGINE = process.env.RTPENGINE || 'rtpengine';
export const KAMAILIO_WS_TEMPLATE = path.join(here, 'kamailio-ws.cfg.in');

const tail = (s, n = 150) => s.split('\n').slice(-n).join('\n');

// ---------------------------------------------------------------------------
// rtpengine's control protocol ("ng"): bencoded dictionaries over UDP, each
// message prefixed by a cookie that the reply repeats.

export function bencode(v) {
  if (typeof v === 'number') return `i${Math.trunc(v)}e`;
  if (typeof v === 'string') return `${Buffer.byteLength(v)}:${v}`;
  if (Buffer.isBuffer(v)) return `${v.length}:${v.toString('latin1')}`;
  if (Array.isArray(v)) return `l${v.map(bencode).join('')}e`;
  if (v && typeof v === 'object') {
    return `d${Object.keys(v).sort().map((k) => bencode(k) + bencode(v[k])).join('')}e`;
  }
  throw new Error(`bencode: cannot encode ${typeof v}`);
}

// Decodes the bencoded BUF (a Buffer); strings come back as utf-8 strings.
export function bdecode(buf) {
  let i = 0;
  const parse = () => {
    const c = String.fromCharCode(buf[i]);
    if (c === 'i') {
      const end = buf.indexOf(0x65, i); // 'e'
      const n = Number(buf.toString('latin1', i + 1, end));
      i = end + 1;
      return n;
    }
    if (c === 'l' || c === 'd') {
      i++;
      const items = [];
      while (buf[i] !== 0x65) {
        if (i >= buf.length) throw new Error('bdecode: truncated');
        items.push(parse());
      }
      i++;
      if (c === 'l') return items;
      const o = {};
      for (let k = 0; k + 1 < items.length; k += 2) o[items[k]] = items[k + 1];
      return o;
    }
    if (c >= '0' && c <= '9') {
      const colon = buf.indexOf(0x3a, i); // ':'
      const len = Number(buf.toString('latin1', i, colon));
      const s = buf.toString('utf8', colon + 1, colon + 1 + len);
      i = colon + 1 + len;
      return s;
    }
    throw new Error(`bdecode: unexpected '${c}' at ${i}`);
  };
  return parse();
}

// Sends the ng command DICT to rtpengine on 127.0.0.1:PORT; resolves with
// the reply dictionary (rejects after MS ms).
export function ngCommand(port, dict, ms = 2000) {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const cookie = randomToken(12);
    let timer;
    const finish = (err, v) => {
      clearTimeout(timer);
      try { sock.close(); } catch { /* closed */ }
      if (err) reject(err); else resolve(v);
    };
    sock.on('error', (e) => finish(e));
    sock.on('message', (buf) => {
      const sp = buf.indexOf(0x20);
      if (sp < 0 || buf.toString('latin1', 0, sp) !== cookie) return;
      try { finish(null, bdecode(buf.subarray(sp + 1))); } catch (e) { finish(e); }
    });
    sock.bind(0, LOOPBACK, () => {
      sock.send(`${cookie} ${bencode(dict)}`, port, LOOPBACK);
      timer = setTimeout(() => finish(new Error(`rtpengine ng ${dict.command}: no reply within ${ms} ms`)), ms);
    });
  });
}

// ---------------------------------------------------------------------------
// Processes.

// PID and the PIDs of all its descendants (from /proc/*/stat), PID first.
export function processTree(pid) {
  const children = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try { stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid ...
    const ppid = Number(f[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [];
  const walk = (p) => {
    out.push(p);
    for (const c of children.get(p) || []) walk(c);
  };
  walk(pid);
  return out;
}

function fillTemplate(template, vars, file) {
  // Placeholders are filled in outside comment lines only.
  return template.split('\n').map((line) => (/^\s*#/.test(line) ? line
    : line.replace(/@([A-Z_]+)@/g, (m, k) => {
      if (!(k in vars)) throw new Error(`${file}: unknown placeholder ${m}`);
      return vars[k];
    }))).join('\n');
}

// startReference(env, { pbxHost, pbxPort, rtpPortMin, rtpPortMax, domain, children, rtpThreads, verbose })
//   -> { wsUrl, port, sipPort, ngPort, kamailio, rtpengine, ng(dict), calls(), stop(), pids() }
// CHILDREN: Kamailio's UDP and TCP worker processes (each); RTPTHREADS:
// rtpengine's --num-threads (default: its own, one per core).  VERBOSE (or
// REFERENCE_VERBOSE=1 in the environment): Kamailio logs every request and
// rtpengine logs at debug level.
export async function startReference(env, {
  pbxHost = LOOPBACK, pbxPort, rtpPortMin = 20000, rtpPortMax = 29999, domain = 'example.com',
  children = Math.max(2, os.cpus().length), rtpThreads = 0,
  verbose = process.env.REFERENCE_VERBOSE === '1', readyMs = 15000,
} = {}) {
  if (!pbxPort) throw new Error('startReference: pbxPort is required');
  if (!(rtpPortMin > 1024 && rtpPortMax > rtpPortMin && rtpPortMax < 65536)) {
    throw new Error(`startReference: bad RTP port range ${rtpPortMin}-${rtpPortMax}`);
  }
  const wsPort = await freePort();
  const sipPort = await freePort();
  const ngPort = await freePort();
  const dir = path.join(env.dir, `reference-${wsPort}`);
  const runDir = path.join(dir, 'run');
  fs.mkdirSync(runDir, { recursive: true });

  // rtpengine: userspace only (--table=-1: no kernel forwarding table, so the
  // kernel module is neither needed nor looked for); no config file (the
  // package's /etc/rtpengine/rtpengine.conf would add its interfaces and ports).
  const rtpArgs = [
    '--config-file=none', '--foreground', '--log-stderr', '--table=-1',
    `--interface=${LOOPBACK}`, `--listen-ng=${LOOPBACK}:${ngPort}`,
    `--port-min=${rtpPortMin}`, `--port-max=${rtpPortMax}`,
    '--delete-delay=0', // a deleted call is gone at once (the default keeps it 30 s)
    '--timeout=60', '--silent-timeout=3600',
    `--log-level=${verbose ? 7 : 5}`,
    `--pidfile=${path.join(runDir, 'rtpengine.pid')}`,
  ];
  if (rtpThreads > 0) rtpArgs.push(`--num-threads=${rtpThreads}`);
  const rtpengine = env.spawn(`rtpengine-${ngPort}`, RTPENGINE, rtpArgs);
  await waitFor(async () => {
    if (!rtpengine.running) throw new Error(`rtpengine exited (${JSON.stringify(rtpengine.exitStatus)})`);
    const r = await ngCommand(ngPort, { command: 'ping' }, 200).catch(() => null);
    return r && r.result === 'pong';
  }, readyMs, { interval: 50, what: `rtpengine to answer ng ping on udp ${ngPort}` })
    .catch((e) => { throw new Error(`${e.message}\n--- rtpengine output ---\n${tail(rtpengine.output)}`); });

  const vars = {
    LISTEN_IP: LOOPBACK,
    WS_PORT: String(wsPort),
    SIP_PORT: String(sipPort),
    PBX_HOST: pbxHost,
    PBX_PORT: String(pbxPort),
    DOMAIN: domain,
    NG_SOCKET: `udp:${LOOPBACK}:${ngPort}`,
    CHILDREN: String(children),
    DEBUG: verbose ? '2' : '1',
  };
  const cfg = fillTemplate(fs.readFileSync(KAMAILIO_WS_TEMPLATE, 'utf8'), vars, KAMAILIO_WS_TEMPLATE);
  const cfgFile = path.join(dir, 'kamailio-ws.cfg');
  fs.writeFileSync(cfgFile, cfg);
  const args = ['-f', cfgFile, '-DD', '-E', '-Y', runDir, '-P', path.join(runDir, 'kamailio.pid'),
    '-w', dir, '-m', '256', '-M', '16'];
  if (process.env.KAMAILIO_MODULES) args.push('-L', process.env.KAMAILIO_MODULES);
  if (verbose) args.push('-A', 'VERBOSE');
  const kamailio = env.spawn(`kamailio-ws-${wsPort}`, KAMAILIO, args);
  await waitFor(async () => {
    if (!kamailio.running) {
      throw new Error(`kamailio (reference) exited (${JSON.stringify(kamailio.exitStatus)})`);
    }
    return (await udpSipProbe(sipPort, { ms: 200 })) && (await tcpPortInUse(wsPort));
  }, readyMs, { interval: 50, what: `the reference's kamailio on udp ${sipPort} and tcp ${wsPort}` })
    .catch((e) => {
      throw new Error(`${e.message}\n--- kamailio (reference) output ---\n${tail(kamailio.output)}`);
    });

  const ng = (dict, ms) => ngCommand(ngPort, dict, ms);
  return {
    wsUrl: `ws://${LOOPBACK}:${wsPort}`,
    port: wsPort,
    sipPort,
    ngPort,
    sipUri: `sip:${LOOPBACK}:${sipPort}`,
    configFile: cfgFile,
    kamailio,
    rtpengine,
    ng,
    // The Call-IDs of the calls rtpengine holds now.
    calls: async () => {
      const r = await ng({ command: 'list', limit: 100000 });
      if (r.result !== 'ok') throw new Error(`rtpengine ng list: ${JSON.stringify(r)}`);
      return r.calls || [];
    },
    // { kamailio: [main, children...], rtpengine: [pid] }; pids().all: every one.
    pids: () => {
      const k = kamailio.running ? processTree(kamailio.pid) : [];
      const r = rtpengine.running ? [rtpengine.pid] : [];
      return { kamailio: k, rtpengine: r, all: [...k, ...r] };
    },
    stop: async () => {
      await withTimeout(Promise.all([kamailio.stop(), rtpengine.stop()]), 15000, 'the reference to stop');
    },
  };
}

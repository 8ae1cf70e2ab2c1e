#!/usr/bin/env node
// Capacity of a WebRTC-to-SIP gateway, measured with the load generator
// (tests/bench/loadgen): N browser-like clients (WebSocket, REGISTER with
// digest auth, ICE, DTLS-SRTP, Opus-sized RTP at 20 ms) through the gateway
// and Kamailio to SIPp's -rtp_echo, for rtcsipd and, in the same run, the
// reference (Kamailio websocket + rtpengine, tests/bench/reference/), one after
// the other at each load.  Figures, not pass/fail (see tests/bench/README.md):
//
//   node tests/bench/capacity/run.mjs [--calls 10,100,500,1000,2000] [--window 10]
//        [--rate 100] [--gateways rtcsipd,reference] [--setup-rates 50,100,200,400]
//        [--perf [N]] [--out FILE.json]
//
// For each gateway and load: the gateway's CPU (all its processes and threads,
// from /proc/PID/stat) over a window in which every call is up, divided by the
// packets it forwarded in that window (each packet the clients sent and each
// one that came back counts once), and as a share of the machine; RSS per call
// (the gateway's RSS with the calls up, less before them, per call); packet
// loss, round trip p50/p99 (from the load generator's report); and the CPU the
// load generator and SIPp took (they share the machine).  --setup-rates: calls
// set up per second (with DTLS) until more than 1 % fail.  --perf: a perf
// profile of rtcsipd at the largest load (--perf N: at N calls).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { withEnv, testsDir, sleep, waitFor, randomToken } from '../../lib/harness.mjs';
import { sippMediaPort } from '../../browser/lib/calls.mjs';

const LOADGEN = process.env.LOADGEN || path.resolve(testsDir, '../build/tests/bench/loadgen/loadgen');
const DOMAIN = 'example.com';
const TICK = 100; // USER_HZ: /proc/PID/stat counts in 1/100 s
const PORTS = [12000, 31999]; // the gateways' media ports: below the ephemeral range (32768-)

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith('--') ? true : v;
}
const list = (s) => String(s).split(',').map((x) => x.trim()).filter(Boolean);

const LOADS = list(arg('calls', '10,100,500,1000,2000')).map(Number);
const WINDOW_S = Number(arg('window', 10));
const RATE = Number(arg('rate', 100));
const GATEWAYS = list(arg('gateways', 'rtcsipd,reference'));
const SETUP_RATES = arg('setup-rates', '') ? list(arg('setup-rates', '')).map(Number) : [];
// --perf: at the largest load; --perf N: at N calls
const PERF_ARG = arg('perf', false);
const PERF_AT = PERF_ARG === false ? 0 : PERF_ARG === true ? Math.max(...LOADS) : Number(PERF_ARG);
const OUT = arg('out', '');
const CORES = os.cpus().length;

// ---------------------------------------------------------------------------
// /proc

function cpuTicks(pid, file = `/proc/${pid}/stat`) {
  try {
    const stat = fs.readFileSync(file, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  } catch {
    return 0;
  }
}
function rssKiB(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
const sum = (pids, f) => pids.reduce((a, p) => a + f(p), 0);
// The load generator's latest progress line.
function progress(child) {
  const lines = child.output.split('\n').filter((l) => /^loadgen: +\d+s started/.test(l));
  const l = lines[lines.length - 1];
  if (!l) return null;
  const m = l.match(/started (\d+), setting up (\d+), up (\d+), done (\d+), failed (\d+); packets sent (\d+), back (\d+)/);
  return m && { started: +m[1], settingUp: +m[2], up: +m[3], done: +m[4], failed: +m[5], sent: +m[6], back: +m[7],
    at: Date.now() };
}

// ---------------------------------------------------------------------------
// One run: a gateway at N calls.

async function startGateway(env, which, kam, n) {
  if (which === 'rtcsipd') {
    const gw = await env.startRtcsipd({
      pbxPort: kam.port, domains: [DOMAIN],
      overrides: {
        general: { log_level: 'notice' },
        // 20,000 ports, as an operator would give 2,000 calls (a range
        // almost full makes every new port a long search, in libnice too)
        media: { rtp_port_min: PORTS[0], rtp_port_max: PORTS[1] },
        // every client comes from 127.0.0.1: while the ramp outpaces the
        // registrations, more than the default 100 are not registered yet
        limits: { max_calls: Math.max(n + 100, 1000), max_registrations: Math.max(n + 100, 10000),
          connections_per_ip: Math.max(n + 100, 100), pending_calls_per_ip: Math.max(n + 100, 32) },
      },
    });
    return { wsUrl: gw.wsUrl, pids: () => [gw.child.pid], main: gw.child.pid };
  }
  const { startReference } = await import('../reference/reference.mjs');
  const ref = await startReference(env, { pbxHost: '127.0.0.1', pbxPort: kam.port, rtpPortMin: PORTS[0],
    rtpPortMax: PORTS[1], domain: DOMAIN });
  return { wsUrl: ref.wsUrl, pids: () => ref.pids().all, main: null };
}

async function runOne(which, n, { rate = RATE, windowS = WINDOW_S, perf = false, holdS } = {}) {
  return withEnv(`capacity-${which}-${n}`, async (env) => {
    const password = `pw-${randomToken(8)}`;
    const users = Array.from({ length: n }, (_, i) => ({ username: `lg${i + 1}`, password }));
    const mp = await sippMediaPort();
    const rampS = n / rate;
    const hold = holdS ?? Math.ceil(rampS + windowS + 8);
    const sipp = await env.startSipp({
      scenario: 'lg_echo_uas.xml', vars: { BYE_TIMEOUT_MS: (hold + 120) * 1000 },
      args: ['-rtp_echo', '-mp', String(mp)], calls: n, timeoutSec: hold + rampS + 180,
    });
    await sipp.bound();
    const kam = await env.startKamailio({ domain: DOMAIN, users, sippRoutes: [{ user: 'sipp', port: sipp.port }] });
    const gw = await startGateway(env, which, kam, n);
    await sleep(500);
    const pids = gw.pids();
    const rss0 = sum(pids, rssKiB);
    const json = path.join(env.dir, 'loadgen.json');
    const lg = env.spawn('loadgen', LOADGEN, [
      '--ws', gw.wsUrl, '--domain', DOMAIN, '--calls', String(n), '--rate', String(rate), '--hold', String(hold),
      '--codec', 'opus', '--register', '--password', password, '--target', `sip:sipp@${DOMAIN}`,
      '--setup-timeout', '20', '--timeout', String(Math.ceil(rampS + hold + 90)), '--json', json,
    ]);
    // every call up (or what could be: setting up is over)
    let a = null;
    try {
      await waitFor(() => {
        const p = progress(lg);
        return p && p.started === n && p.settingUp === 0 && p.up > 0;
      }, (rampS + 30) * 1000, { interval: 200, what: 'every call up' });
      await sleep(1500); // the last calls' first packets
      a = progress(lg);
    } catch { /* measured below as it stands */ }
    const r = { gateway: which, calls: n, rate };
    if (a) {
      // rtcsipd's main thread (signalling: WebSocket, SIP, ICE and DTLS control) apart
      const mainThread = () => (gw.main ? cpuTicks(0, `/proc/${gw.main}/task/${gw.main}/stat`) : 0);
      const cpu0 = sum(pids, cpuTicks), lgCpu0 = cpuTicks(lg.pid), sippCpu0 = cpuTicks(sipp.child.pid);
      const main0 = mainThread();
      const t0 = Date.now();
      let perfReport = null;
      if (perf && gw.main) perfReport = perfProfile(env, gw.main, Math.min(windowS, 8));
      else await sleep(windowS * 1000);
      await sleep(Math.max(0, windowS * 1000 - (Date.now() - t0)));
      const b = progress(lg);
      const cpu1 = sum(pids, cpuTicks), lgCpu1 = cpuTicks(lg.pid), sippCpu1 = cpuTicks(sipp.child.pid);
      const main1 = mainThread();
      const dt = (Date.now() - t0) / 1000;
      const forwarded = (b.sent - a.sent) + (b.back - a.back);
      const cpuS = (cpu1 - cpu0) / TICK;
      Object.assign(r, {
        up: b.up, window_s: dt, forwarded,
        gateway_cpu_s: cpuS,
        us_per_packet: forwarded ? (cpuS * 1e6) / forwarded : null,
        gateway_machine_percent: (100 * cpuS) / (dt * CORES),
        main_thread_core_percent: gw.main ? (100 * (main1 - main0)) / TICK / dt : null,
        loadgen_machine_percent: (100 * (lgCpu1 - lgCpu0)) / TICK / (dt * CORES),
        sipp_machine_percent: (100 * (sippCpu1 - sippCpu0)) / TICK / (dt * CORES),
        rss_per_call_kib: b.up ? (sum(pids, rssKiB) - rss0) / b.up : null,
        perf: perfReport,
      });
    }
    await lg.wait((rampS + hold + 120) * 1000).catch(() => lg.stop(2000));
    try {
      const rep = JSON.parse(fs.readFileSync(json, 'utf8'));
      Object.assign(r, {
        ok: rep.ok, failed: rep.failed, failures: rep.failures,
        loss_percent: rep.packets.loss_percent, lost: rep.packets.lost, sent: rep.packets.sent,
        rtt_p50_ms: rep.rtt_ms.p50, rtt_p99_ms: rep.rtt_ms.p99, rtt_max_ms: rep.rtt_ms.max,
        setup_p99_ms: rep.setup_ms.p99, media_ready_p50_ms: rep.media_ready_ms.p50,
        media_ready_p99_ms: rep.media_ready_ms.p99,
      });
    } catch (e) {
      r.error = `no report from the load generator: ${e.message}\n${lg.output.slice(-1500)}`;
    }
    return r;
  });
}

function perfProfile(env, pid, seconds) {
  const data = path.join(env.dir, 'perf.data');
  const rec = spawnSync('perf', ['record', '-F', '499', '-g', '-p', String(pid), '-o', data, '--', 'sleep', String(seconds)],
    { encoding: 'utf8' });
  if (rec.status !== 0) return `perf record failed: ${rec.stderr}`;
  const rep = spawnSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', 'dso,symbol',
    '--percent-limit', '1', '-g', 'none'], { encoding: 'utf8', maxBuffer: 16 << 20 });
  return rep.stdout.split('\n').filter((l) => l && !l.startsWith('#')).slice(0, 40).join('\n');
}

// ---------------------------------------------------------------------------

const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(d));

async function main() {
  if (!fs.existsSync(LOADGEN)) throw new Error(`${LOADGEN} not built (ninja -C build)`);
  const results = [];
  for (const n of LOADS) {
    for (const g of GATEWAYS) {
      process.stderr.write(`capacity: ${g} at ${n} calls\n`);
      let r;
      try {
        r = await runOne(g, n, { perf: g === 'rtcsipd' && n === PERF_AT });
      } catch (e) {
        r = { gateway: g, calls: n, error: e.message.slice(0, 2000) };
      }
      results.push(r);
      process.stderr.write(`capacity: ${JSON.stringify({ ...r, perf: r.perf ? '(below)' : null })}\n`);
    }
  }
  const setups = [];
  for (const rate of SETUP_RATES) {
    for (const g of GATEWAYS) {
      const n = Math.round(rate * 5);
      process.stderr.write(`capacity: ${g} setting up ${n} calls at ${rate}/s\n`);
      let r;
      try {
        r = await runOne(g, n, { rate, windowS: 1, holdS: 3 });
      } catch (e) {
        r = { gateway: g, calls: n, rate, error: e.message.slice(0, 2000) };
      }
      setups.push(r);
    }
  }

  const lines = [];
  lines.push(`machine: ${CORES} cores, ${os.cpus()[0].model}; window ${WINDOW_S} s with every call up; ramp ${RATE} calls/s`);
  lines.push('');
  lines.push('| gateway | calls | up | µs CPU / forwarded packet | gateway % of machine | main thread % of a core | loss % | RTT p50 ms | RTT p99 ms | RSS / call KiB | loadgen % | SIPp % | failed |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    lines.push(`| ${r.gateway} | ${r.calls} | ${r.up ?? '–'} | ${fmt(r.us_per_packet, 2)} | ${fmt(r.gateway_machine_percent)} | ${fmt(r.main_thread_core_percent)} | ` +
      `${fmt(r.loss_percent, 3)} | ${fmt(r.rtt_p50_ms, 2)} | ${fmt(r.rtt_p99_ms, 2)} | ${fmt(r.rss_per_call_kib, 0)} | ` +
      `${fmt(r.loadgen_machine_percent)} | ${fmt(r.sipp_machine_percent)} | ${r.error ? 'error' : r.failed}` +
      `${r.failures && Object.keys(r.failures).length ? ` (${Object.entries(r.failures).map(([k, v]) => `${v}× ${k}`).join('; ')})` : ''} |`);
  }
  if (setups.length) {
    lines.push('');
    lines.push('| gateway | calls/s | calls | ok | failed % | setup p99 ms | media ready p50 ms | media ready p99 ms |');
    lines.push('|---|---|---|---|---|---|---|---|');
    for (const r of setups) {
      const failedPct = r.ok !== undefined ? (100 * r.failed) / r.calls : null;
      lines.push(`| ${r.gateway} | ${r.rate} | ${r.calls} | ${r.ok ?? '–'} | ${fmt(failedPct, 2)} | ${fmt(r.setup_p99_ms)} | ` +
        `${fmt(r.media_ready_p50_ms)} | ${fmt(r.media_ready_p99_ms)} |`);
    }
  }
  for (const r of results) if (r.perf) lines.push('', `perf profile of rtcsipd at ${r.calls} calls:`, '```', r.perf, '```');
  for (const r of [...results, ...setups]) if (r.error) lines.push('', `${r.gateway} at ${r.calls}: ${r.error}`);
  console.log(lines.join('\n'));
  if (OUT) fs.writeFileSync(OUT, JSON.stringify({ cores: CORES, window_s: WINDOW_S, rate: RATE, results, setups }, null, 1));
}

main().catch((e) => { console.error(e); process.exit(1); });

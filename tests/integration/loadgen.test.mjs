// The load generator (tests/bench/loadgen) against the daemon: 50 browser-like
// clients, each with its own WebSocket, REGISTER with digest auth, ICE,
// DTLS-SRTP and RTP at 20 ms, through rtcsipd and Kamailio to SIPp, whose
// -rtp_echo sends every packet back:
//   - calls from the clients to SIPp (lg_echo_uas.xml);
//   - calls from SIPp (the PBX side) to the 50 registered clients (lg_echo_uac.xml).
// Each time: every call set up, media both ways with nothing lost on loopback,
// every call ended by the client's BYE (rtcsipd's summary says so), and rtcsipd
// holds afterwards the file descriptors and UDP sockets it held before.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { withEnv, testsDir, waitFor, sleep, openFds, udpSockets, randomToken, VALGRIND, VALGRIND_SLOWDOWN } from '../lib/harness.mjs';
import { sippMediaPort } from '../browser/lib/calls.mjs';

const LOADGEN = process.env.LOADGEN || path.resolve(testsDir, '../build/tests/bench/loadgen/loadgen');
const SLOW = VALGRIND_SLOWDOWN;
const DOMAIN = 'example.com';
// Under valgrind (`meson test --setup valgrind`) the daemon is ten to fifty
// times slower: a few calls there, for what valgrind finds in the media
// threads, and the kernel may drop what the slow daemon does not read in time.
const CALLS = VALGRIND ? 6 : 50;
const RATE = VALGRIND ? 2 : 25; // calls set up per second
const HOLD_S = 10;   // media per call
const PASSWORD = `pw-${randomToken(8)}`;
const USERS = Array.from({ length: CALLS }, (_, i) => ({ username: `lg${i + 1}`, password: PASSWORD }));
const RTP = [35000, 35999];       // rtcsipd's [media] ports (4 a call)
const LOADGEN_ICE = [36000, 36499];
const TEST_TIMEOUT = 180000 * SLOW;
// 50 packets a second per call: what each call sends at the least (the first
// and last ones of the hold time may fall just outside it)
const MIN_SENT = CALLS * (HOLD_S - 1) * 50;

async function start(env, sippPort) {
  const kam = await env.startKamailio({ domain: DOMAIN, users: USERS,
    sippRoutes: sippPort ? [{ user: 'sipp', port: sippPort }] : [] });
  const gw = await env.startRtcsipd({
    pbxPort: kam.port, domains: [DOMAIN],
    overrides: {
      general: { log_level: 'info' },
      media: { rtp_port_min: RTP[0], rtp_port_max: RTP[1] },
    },
  });
  return { kam, gw };
}

// What rtcsipd holds: fd targets (sockets, eventfds, epolls) and UDP ports.
function holdings(pid) {
  return { fds: openFds(pid).length, udp: udpSockets(pid).map((s) => `${s.address}:${s.port}`).sort() };
}

async function runLoadgen(env, gw, args) {
  const child = env.spawn('loadgen', LOADGEN, [
    '--ws', gw.wsUrl, '--domain', DOMAIN, '--calls', String(CALLS), '--rate', String(RATE),
    '--hold', String(HOLD_S), '--codec', 'opus', '--register', '--password', PASSWORD,
    '--ice-ports', `${LOADGEN_ICE[0]}-${LOADGEN_ICE[1]}`, '--workers', '2', '--timeout', String(90 * SLOW), '--setup-timeout', String(15 * SLOW),
    '--json', path.join(env.dir, 'loadgen.json'), ...args,
  ]);
  return child;
}

async function report(env, child) {
  await child.wait(120000 * SLOW);
  assert.equal(child.exitStatus.code, 0, `loadgen exit: ${JSON.stringify(child.exitStatus)}\n${child.output.slice(-3000)}`);
  const r = JSON.parse(fs.readFileSync(path.join(env.dir, 'loadgen.json'), 'utf8'));
  return r;
}

function assertReport(r, child) {
  const why = `\n${JSON.stringify(r, null, 1)}\n--- loadgen ---\n${child.output.slice(-3000)}`;
  assert.equal(r.ok, CALLS, `every call set up, with media, and ended${why}`);
  assert.equal(r.failed, 0, `no call failed${why}`);
  assert.equal(r.pcmu_calls, 0, `every call on Opus${why}`);
  assert.ok(r.packets.sent >= MIN_SENT, `about 50 packets a second per call sent: ${r.packets.sent} < ${MIN_SENT}${why}`);
  assert.equal(r.packets.send_failed, 0, `every packet sent${why}`);
  if (VALGRIND) {
    assert.ok(r.packets.received >= 0.9 * r.packets.sent, `most packets back${why}`);
  } else {
    assert.equal(r.packets.lost, 0, `nothing lost on loopback${why}`);
    assert.equal(r.packets.received, r.packets.sent, `every packet back${why}`);
  }
  assert.equal(r.packets.duplicated, 0, `no duplicates${why}`);
  assert.equal(r.packets.auth_failures, 0, `no SRTP failure${why}`);
  assert.equal(r.rtt_ms.n, r.packets.received, `a round trip for each packet${why}`);
}

// rtcsipd's summary of each call: ended by the browser's BYE, media both ways.
function assertSummaries(gw) {
  const ended = gw.logs().split('\n').filter((l) => /call ended: cause/.test(l));
  assert.equal(ended.length, CALLS, `a summary for each call:\n${ended.slice(0, 5).join('\n')}`);
  const notBye = ended.filter((l) => !/cause BYE from the browser/.test(l));
  assert.deepEqual(notBye, [], 'every call ended by the client\'s BYE');
  const noMedia = ended.filter((l) => / 0 rtp\//.test(l));
  assert.deepEqual(noMedia, [], 'media both ways in every call');
}

async function assertNothingLeft(gw, before) {
  // the calls' sockets close when their summaries are written; allow a moment
  await waitFor(() => {
    const now = holdings(gw.child.pid);
    return now.fds <= before.fds && now.udp.length <= before.udp.length;
  }, 5000 * SLOW, { what: 'rtcsipd to hold no more than before the calls' }).catch(() => {});
  const after = holdings(gw.child.pid);
  assert.deepEqual(after.udp, before.udp, 'the UDP sockets rtcsipd holds after the calls are those it held before');
  // (before: possibly one more, the harness's own /healthz connection closing)
  assert.ok(after.fds <= before.fds, `no more file descriptors than before the calls: ${after.fds} > ${before.fds}`);
}

test('50 clients call SIPp through rtcsipd and Kamailio: media both ways, nothing lost, nothing left',
  { timeout: TEST_TIMEOUT }, () => withEnv('loadgen-out', async (env) => {
    const mp = await sippMediaPort();
    const sipp = await env.startSipp({
      scenario: 'lg_echo_uas.xml', vars: { BYE_TIMEOUT_MS: (HOLD_S + 60) * 1000 * SLOW },
      args: ['-rtp_echo', '-mp', String(mp)], calls: CALLS, timeoutSec: 120 * SLOW,
    });
    await sipp.bound();
    const { gw } = await start(env, sipp.port);
    const before = holdings(gw.child.pid);

    const child = await runLoadgen(env, gw, ['--target', `sip:sipp@${DOMAIN}`]);
    // with every call up, rtcsipd says what a call costs in memory
    await child.waitForOutput(new RegExp(`up ${CALLS}, done 0`), 30000 * SLOW, 'every call up');
    const health = await (await fetch(`http://127.0.0.1:${gw.ports.ws}/healthz`)).text();
    const m = health.match(new RegExp(`${CALLS} calls, RSS (\\d+) KiB \\((\\d+) KiB per call\\)`));
    assert.ok(m, `GET /healthz reports the calls and their memory: ${health}`);
    // measured about 250 KiB (libnice, OpenSSL, the WebSocket, the call);
    // a call that kept its packets or buffers would show as megabytes.
    // Under valgrind or a sanitizer the process's RSS is the tool's too.
    const bound = VALGRIND || process.env.RTCSIPD_SANITIZER ? 16384 : 1024;
    assert.ok(Number(m[2]) < bound, `memory per call bounded: ${m[2]} KiB`);
    const r = await report(env, child);
    assert.equal(r.direction, 'outgoing');
    assertReport(r, child);
    const s = await sipp.result();
    assert.equal(s.code, 0, `SIPp saw ${CALLS} complete calls:\n${s.errors}\n${s.output.slice(-2000)}`);
    await waitFor(() => (gw.logs().match(/call ended: cause/g) || []).length >= CALLS, 10000 * SLOW,
      { what: 'a summary for each call' });
    assertSummaries(gw);
    await assertNothingLeft(gw, before);
  }));

test('SIPp calls 50 registered clients through Kamailio and rtcsipd: media both ways, nothing lost, nothing left',
  { timeout: TEST_TIMEOUT }, () => withEnv('loadgen-in', async (env) => {
    const { kam, gw } = await start(env, 0);
    const before = holdings(gw.child.pid);

    const child = await runLoadgen(env, gw, ['--incoming']);
    await child.waitForOutput(new RegExp(`all ${CALLS} clients registered`), 30000 * SLOW,
      'every client registered');
    const inf = path.join(env.dir, 'users.csv');
    fs.writeFileSync(inf, ['SEQUENTIAL', ...USERS.map((u) => u.username)].join('\n') + '\n');
    const mp = await sippMediaPort();
    const sipp = await env.startSipp({
      scenario: 'lg_echo_uac.xml', remote: `127.0.0.1:${kam.port}`,
      vars: { DOMAIN, ANSWER_TIMEOUT_MS: 15000 * SLOW, BYE_TIMEOUT_MS: (HOLD_S + 60) * 1000 * SLOW },
      args: ['-rtp_echo', '-mp', String(mp), '-inf', inf, '-r', String(RATE), '-l', String(CALLS)],
      calls: CALLS, timeoutSec: 120 * SLOW,
    });

    const r = await report(env, child);
    assert.equal(r.direction, 'incoming');
    assertReport(r, child);
    const s = await sipp.result();
    assert.equal(s.code, 0, `SIPp placed ${CALLS} complete calls:\n${s.errors}\n${s.output.slice(-2000)}`);
    await waitFor(() => (gw.logs().match(/call ended: cause/g) || []).length >= CALLS, 10000 * SLOW,
      { what: 'a summary for each call' });
    assertSummaries(gw);
    await sleep(200);
    await assertNothingLeft(gw, before);
  }));

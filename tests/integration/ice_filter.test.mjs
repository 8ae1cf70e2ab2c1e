// Which of a browser's ICE candidates rtcsipd sends STUN checks to ([media]
// ice_candidates_max, ice_loopback, ice_allow, ice_deny; webrtc/ice_filter.c),
// tried the way a stranger would: a script client over WebSocket, no
// account, calling the echo target with an offer whose candidates point
// where this test listens.  Sockets of refused candidates must get nothing
// while the allowed ones get rtcsipd's checks; a browser whose checks come
// from an address it did not list still connects (peer-reflexive), unless
// that address is denied.
//
// The whole file runs in a network namespace of its own whose only
// interface is lo (made here with unshare --net, gone when the test exits):
// there, 169.254.7.7 is an address of lo, multicast to 224.0.0.0/4 goes
// through lo, and 0.0.0.0 means this host, so that a check rtcsipd sent to a
// link-local, multicast or unspecified candidate would land on a socket of
// this test (each one proven by the test's own packet first), and nothing
// leaves the machine even if the filter failed.  Needs root (or
// CAP_SYS_ADMIN), unshare(1), ip(8).
import { spawn } from 'node:child_process';
import os from 'node:os';

const NETNS_ENV = 'RTCSIPD_TEST_ICE_FILTER_NETNS';
const LINK_LOCAL = '169.254.7.7';
const MULTICAST = '224.0.0.123';

// Re-runs this file in a new network namespace (see above) and exits with
// its status; in the re-run it returns.
async function runInOwnNetns() {
  if (process.env[NETNS_ENV] === '1') {
    for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
      for (const a of addrs || []) {
        if (!/^127\./.test(a.address) && a.address !== LINK_LOCAL) {
          throw new Error(`${NETNS_ENV}=1 but this namespace has ${a.address} (${name})`);
        }
      }
    }
    return;
  }
  const setup = [
    'PATH="$PATH:/usr/sbin:/sbin"',
    'set -e',
    'ip link set lo up',
    'ip link set lo multicast on',
    `ip addr add ${LINK_LOCAL}/32 dev lo`,
    'ip route add 224.0.0.0/4 dev lo',
    'sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 ' +
      'net.ipv6.conf.lo.disable_ipv6=1 2>/dev/null || true',
    'set +e',
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
      process.stderr.write(`cannot make a network namespace (unshare --net, needs root): ${e.message}\n`);
      resolve(1);
    });
    child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 + (os.constants.signals[sig] || 0) : 1)));
  });
  process.exit(code);
}

await runInOwnNetns();

const { default: test } = await import('node:test');
const { default: assert } = await import('node:assert/strict');
const { default: crypto } = await import('node:crypto');
const { default: dgram } = await import('node:dgram');
const { default: zlib } = await import('node:zlib');
const { withEnv, freePort, randomToken, sleep, waitFor, VALGRIND_SLOWDOWN: SLOW } = await import('../lib/harness.mjs');
const { SipWsClient, uriOf } = await import('../lib/sipclient.mjs');
const { OFFER } = await import('../lib/calls.mjs');

const DOMAIN = 'example.com';
const ECHO = `sip:echo@${DOMAIN}`;
const RTP = [31400, 31499];
const BROWSER_UFRAG = 'O+ii';                       // OFFER's
const BROWSER_PWD = 'CjsBJGHFlzfFurWdbzTvgv5+';

// ---- STUN (RFC 8489 / 8445), enough for ICE checks ----

const COOKIE = 0x2112a442;
const isBindingRequest = (m) => m.length >= 20 && m.readUInt16BE(0) === 0x0001 && m.readUInt32BE(4) === COOKIE;

function tlv(type, value) {
  const pad = (4 - (value.length % 4)) % 4;
  const b = Buffer.alloc(4 + value.length + pad);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(value.length, 2);
  value.copy(b, 4);
  return b;
}

// A message of TYPE with transaction id TID and ATTRS ([[type, Buffer]]),
// MESSAGE-INTEGRITY with KEY (the short-term password), FINGERPRINT.
function stunMessage(type, tid, attrs, key) {
  const header = (len) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(type, 0);
    h.writeUInt16BE(len, 2);
    h.writeUInt32BE(COOKIE, 4);
    tid.copy(h, 8);
    return h;
  };
  let body = Buffer.concat(attrs.map(([t, v]) => tlv(t, v)));
  const mac = crypto.createHmac('sha1', key).update(Buffer.concat([header(body.length + 24), body])).digest();
  body = Buffer.concat([body, tlv(0x0008, mac)]);
  const fp = Buffer.alloc(4);
  fp.writeUInt32BE((zlib.crc32(Buffer.concat([header(body.length + 8), body])) ^ 0x5354554e) >>> 0);
  body = Buffer.concat([body, tlv(0x8028, fp)]);
  return Buffer.concat([header(body.length), body]);
}

function stunAttrs(m) {
  const out = new Map();
  for (let i = 20; i + 4 <= m.length;) {
    const t = m.readUInt16BE(i);
    const l = m.readUInt16BE(i + 2);
    out.set(t, m.subarray(i + 4, i + 4 + l));
    i += 4 + l + ((4 - (l % 4)) % 4);
  }
  return out;
}

function xorMapped(address, port) {
  const v = Buffer.alloc(8);
  v.writeUInt16BE(0x0001, 0);
  v.writeUInt16BE(port ^ (COOKIE >>> 16), 2);
  v.writeUInt32BE((address.split('.').reduce((a, o) => a * 256 + Number(o), 0) ^ COOKIE) >>> 0, 4);
  return v;
}

function parseXorMapped(v) {
  const port = v.readUInt16BE(2) ^ (COOKIE >>> 16);
  const a = (v.readUInt32BE(4) ^ COOKIE) >>> 0;
  return { address: [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.'), port };
}

// The browser's Binding request to rtcsipd (controlling, nominating).
function browserCheck(ours) {
  const tid = crypto.randomBytes(12);
  const prio = Buffer.alloc(4);
  prio.writeUInt32BE(1853824767);
  return {
    tid,
    msg: stunMessage(0x0001, tid, [
      [0x0006, Buffer.from(`${ours.ufrag}:${BROWSER_UFRAG}`)],
      [0x0024, prio],
      [0x802a, crypto.randomBytes(8)],
      [0x0025, Buffer.alloc(0)],
    ], ours.pwd),
  };
}

// ---- sockets posing as the browser's candidates ----

// A UDP socket bound on ADDRESS (default: every address of this namespace)
// and a free port, keeping what it receives.
async function catcher(env, { address = '0.0.0.0', port, group } = {}) {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  const got = [];
  s.on('message', (m, rinfo) => got.push({ m, from: `${rinfo.address}:${rinfo.port}` }));
  await new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(port ?? 0, address, resolve);
  });
  if (group) s.addMembership(group, '127.0.0.1');
  env.defer(() => new Promise((r) => s.close(r)));
  return { sock: s, port: s.address().port, got, stun: () => got.filter((g) => isBindingRequest(g.m)) };
}

// A packet from 127.0.0.1 to ADDRESS:PORT must reach C: rtcsipd's checks
// could, if it sent them.
async function proveReachable(env, c, address) {
  const s = dgram.createSocket('udp4');
  env.defer(() => new Promise((r) => s.close(r)));
  await new Promise((resolve) => s.bind(0, '127.0.0.1', resolve));
  const mark = `probe-${randomToken(6)}`;
  s.send(Buffer.from(mark), c.port, address);
  await waitFor(() => c.got.some((g) => g.m.toString() === mark), 2000,
    { what: `the test's own packet to ${address}:${c.port}` });
  c.got.length = 0;
}

let foundation = 100;
const cand = (address, port, { priority = 2122260223, transport = 'udp' } = {}) =>
  `a=candidate:${foundation++} 1 ${transport} ${priority} ${address} ${port} typ host generation 0`;

// OFFER with its candidates replaced by LINES.
const offerWith = (lines) => OFFER.replace(/^a=candidate:.*\r?\n/mg, '').replace(/^(a=ice-ufrag:)/m,
  `${lines.join('\r\n')}\r\n$1`);

async function setup(env, media = {}) {
  const gw = await env.startRtcsipd({
    pbxPort: await freePort(), domains: [DOMAIN],
    overrides: { media: { rtp_port_min: RTP[0], rtp_port_max: RTP[1], ...media } },
  });
  const alice = await SipWsClient.connect(gw.wsUrl, { user: 'stranger', domain: DOMAIN,
    transactionTimeoutMs: 8000 * SLOW });
  env.defer(() => alice.close());
  return { gw, alice };
}

// The echo call with BODY: its 200 (ACKed) and rtcsipd's ICE credentials and candidate.
async function echoCall(alice, body) {
  const callId = `${randomToken(12)}@test`;
  const resp = await alice.request('INVITE', { uri: ECHO, callId, cseq: 1, body,
    headers: { 'Content-Type': 'application/sdp' } });
  assert.equal(resp.status, 200, `${resp.status} ${resp.reason}`);
  alice.sendRaw(alice.buildRequest('ACK', { uri: uriOf(resp.get('contact')), to: resp.get('to'),
    callId, cseq: 1, contact: false }).text);
  const c = resp.body.match(/^a=candidate:\S+ 1 UDP \d+ (\S+) (\d+) typ host/m);
  assert.ok(c, 'a host candidate in the answer');
  return {
    callId, resp,
    ufrag: resp.body.match(/^a=ice-ufrag:(\S+)\r$/m)[1],
    pwd: resp.body.match(/^a=ice-pwd:(\S+)\r$/m)[1],
    address: c[1], port: Number(c[2]),
    // BYE, unless rtcsipd ended the call first (ICE's connect timeout, 10 s:
    // reached under valgrind)
    hangUp: async () => {
      const r = await alice.request('BYE', { uri: uriOf(resp.get('contact')), to: resp.get('to'), callId, cseq: 2 });
      if (r.status !== 200) {
        assert.ok(alice.requests.some((q) => q.method === 'BYE' && q.get('call-id') === callId),
          `BYE: ${r.status} ${r.reason}, and no BYE from rtcsipd`);
      }
    },
  };
}

// How long refused candidates are watched after the allowed ones got their
// checks (libnice paces its checks 20 ms apart, and retransmits them): well
// inside ICE's connect timeout (10 s) even under valgrind.
const STRAY_MS = SLOW > 1 ? 4000 : 2000;

const iceLine = async (gw) => (await gw.child.waitForOutput(/\[echo-\d+\] ICE: .*ignored.*/, 5000 * SLOW,
  'the ICE: ... ignored line'))[0];

test('remote candidates on denied networks get no STUN; the allowed ones do', { timeout: 90000 * SLOW },
  () => withEnv('ice-filter-denied', async (env) => {
    const { gw, alice } = await setup(env, { ice_deny: '127.0.0.64/26', ice_candidates_max: 4 });
    // refused: each (but broadcast and reserved, which no socket here can
    // receive) with a socket where it would land, and a higher priority
    // than the allowed ones, so that libnice would check it first.  (libnice
    // itself pairs no link-local candidate with rtcsipd's 127.0.0.1: there
    // the log line is what shows the filter at work.)
    const denied = await catcher(env, { address: '127.0.0.77' });
    const linkLocal = await catcher(env);
    const multicast = await catcher(env, { group: MULTICAST });
    const unspecified = await catcher(env);
    await proveReachable(env, denied, '127.0.0.77');
    await proveReachable(env, linkLocal, LINK_LOCAL);
    await proveReachable(env, multicast, MULTICAST);
    await proveReachable(env, unspecified, '0.0.0.0');
    const good = [];
    for (let i = 0; i < 4; i++) good.push(await catcher(env));
    const over = [await catcher(env), await catcher(env)];
    const high = { priority: 2130706431 };
    const lines = [
      cand('127.0.0.77', denied.port, high),
      cand(LINK_LOCAL, linkLocal.port, high),
      cand(MULTICAST, multicast.port, high),
      cand('0.0.0.0', unspecified.port, high),
      cand('255.255.255.255', 40000, high),
      cand('240.0.0.1', 40001, high),
      cand('0a1b2c3d-1111-2222-3333-444455556666.local', 40002, high),
      cand('127.0.0.1', 9, { ...high, transport: 'tcp' }) + ' tcptype active',
      cand('127.0.0.1', good[0].port), cand('127.0.0.2', good[1].port),
      cand('127.0.0.3', good[2].port), cand('127.0.0.1', good[3].port),
      // over the limit of 4, even with a higher priority
      cand('127.0.0.1', over[0].port, high), cand('127.0.0.5', over[1].port, high),
    ];
    const call = await echoCall(alice, offerWith(lines));
    const line = await iceLine(gw);
    assert.match(line, /ICE: 10 of 14 remote candidates ignored \(5 forbidden address, 1 denied network, 2 over the limit, 1 mDNS name, 1 TCP\)$/);
    await waitFor(() => good.every((g) => g.stun().length > 0), 5000 * SLOW,
      { what: 'rtcsipd\'s checks at every allowed candidate' });
    for (const g of good) {
      const m = g.stun()[0].m;
      assert.equal(m.readUInt16BE(0), 0x0001, 'a Binding request');
      assert.match(stunAttrs(m).get(0x0006).toString(), new RegExp(`^${BROWSER_UFRAG.replace('+', '\\+')}:`),
        'USERNAME: the browser\'s ufrag first');
    }
    await sleep(STRAY_MS);
    const reached = [['denied 127.0.0.77', denied], ['link-local', linkLocal], ['multicast', multicast],
      ['0.0.0.0', unspecified], ['over the limit (127.0.0.1)', over[0]], ['over the limit (127.0.0.5)', over[1]]]
      .filter(([, c]) => c.got.length).map(([what, c]) => `${what}: ${c.got.length} from ${c.got[0].from}`);
    assert.deepEqual(reached, [], 'no packet at a refused candidate');
    await call.hangUp();

    // a normal echo call afterwards: the usual offer, checks at its candidate
    const normal = await catcher(env, { address: '127.0.0.1' });
    const body = OFFER.replace('192.0.2.2 52351 typ host', `127.0.0.1 ${normal.port} typ host`);
    const again = await echoCall(alice, body);
    await waitFor(() => normal.stun().length > 0, 5000 * SLOW, { what: 'checks at the normal call\'s candidate' });
    await again.hangUp();
  }));

test('ice_loopback = false and ice_allow: loopback and outside networks get no STUN', { timeout: 60000 * SLOW },
  () => withEnv('ice-filter-allow', async (env) => {
    const { gw, alice } = await setup(env, { ice_loopback: 'false', ice_allow: '127.0.0.0/25' });
    const loop = await catcher(env, { address: '127.0.0.1' });
    const call = await echoCall(alice, offerWith([cand('127.0.0.1', loop.port)]));
    assert.match(await iceLine(gw), /ICE: 1 of 1 remote candidate ignored \(1 loopback\)$/);
    await sleep(STRAY_MS);
    assert.equal(loop.got.length, 0, 'nothing at the loopback candidate');
    await call.hangUp();

    const { gw: gw2, alice: bob } = await setup(env, { ice_allow: '127.0.0.0/25' });
    const inside = await catcher(env, { address: '127.0.0.1' });
    const outside = await catcher(env, { address: '127.0.0.200' });
    const call2 = await echoCall(bob, offerWith([cand('127.0.0.200', outside.port, { priority: 2130706431 }),
      cand('127.0.0.1', inside.port)]));
    assert.match(await iceLine(gw2), /ICE: 1 of 2 remote candidates ignored \(1 outside ice_allow\)$/);
    await waitFor(() => inside.stun().length > 0, 5000 * SLOW, { what: 'checks at 127.0.0.1' });
    await sleep(STRAY_MS);
    assert.equal(outside.got.length, 0, 'nothing at 127.0.0.200 (outside ice_allow)');
    await call2.hangUp();
  }));

test('peer-reflexive: every candidate refused, the browser\'s own checks from 127.0.0.1 connect; ' +
  'checks from a denied address get no answer', { timeout: 60000 * SLOW },
  () => withEnv('ice-filter-prflx', async (env) => {
    const { gw, alice } = await setup(env, { ice_deny: '127.0.0.64/26' });
    const listed = await catcher(env, { address: '127.0.0.77' });
    const call = await echoCall(alice, offerWith([cand('127.0.0.77', listed.port), cand(MULTICAST, 40000)]));
    assert.match(await iceLine(gw), /ICE: 2 of 2 remote candidates ignored \(1 forbidden address, 1 denied network\)$/);
    const ours = { ufrag: call.ufrag, pwd: call.pwd };

    // from the denied network: a valid check, no answer, no check back
    const denied = await catcher(env, { address: '127.0.0.78' });
    for (let i = 0; i < 3; i++) {
      denied.sock.send(browserCheck(ours).msg, call.port, call.address);
      await sleep(300);
    }
    await sleep(1000); // before the connect timeout, whatever the speed
    assert.equal(denied.got.length, 0, `no answer to 127.0.0.78: ${denied.got.map((g) => g.m.readUInt16BE(0).toString(16))}`);

    // from 127.0.0.1, not among the candidates: answered, checked back, connected
    const browser = await catcher(env, { address: '127.0.0.1' });
    browser.sock.on('message', (m, rinfo) => {
      if (!isBindingRequest(m)) return;
      const user = stunAttrs(m).get(0x0006);
      if (!user || user.toString() !== `${BROWSER_UFRAG}:${ours.ufrag}`) return;
      browser.sock.send(stunMessage(0x0101, m.subarray(8, 20),
        [[0x0020, xorMapped(rinfo.address, rinfo.port)]], BROWSER_PWD), rinfo.port, rinfo.address);
    });
    const check = browserCheck(ours);
    const response = () => browser.got.find((g) => g.m.length >= 20 && g.m.readUInt16BE(0) === 0x0101 &&
      g.m.subarray(8, 20).equals(check.tid));
    await waitFor(() => {
      if (!response()) browser.sock.send(check.msg, call.port, call.address);
      return response();
    }, 5000 * SLOW, { interval: 200, what: 'a Binding success response to the browser\'s check' });
    const mapped = parseXorMapped(stunAttrs(response().m).get(0x0020));
    assert.deepEqual(mapped, { address: '127.0.0.1', port: browser.port }, 'XOR-MAPPED-ADDRESS: where the check came from');
    await waitFor(() => browser.stun().length > 0, 5000 * SLOW, { what: 'rtcsipd\'s check back (triggered)' });
    await gw.child.waitForOutput(new RegExp(`\\[echo-\\d+\\] ice selected pair 127\\.0\\.0\\.1:${call.port} -> 127\\.0\\.0\\.1:${browser.port}`),
      5000 * SLOW, 'the peer-reflexive pair selected');
    await gw.child.waitForOutput(/\[echo-\d+\] ice checking -> connected/, 5000 * SLOW, 'ICE connected');
    assert.equal(listed.got.length, 0, 'never a check to the denied listed candidate');
    assert.equal(denied.got.length, 0, 'never a check to the denied source');
    await call.hangUp();
  }));

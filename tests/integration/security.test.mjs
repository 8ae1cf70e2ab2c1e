// rtcsipd attacked the way a stranger on the internet would, on loopback:
// the attacker uses other loopback addresses (127.0.0.5, 127.0.0.9; the whole
// 127/8 is local on Linux) than the PBX (Kamailio on 127.0.0.1), and a
// "third host" 127.0.0.66 listens for anything that would be reflected or
// relayed to it.  Each test asserts that the attack fails and that good
// clients are served during and after it.
//
//   - requests toward browsers from anyone but the PBX (UDP and TCP), and
//     the REGISTER 200 OK that would list another device's binding;
//   - Route headers injected by a browser, Via maddr from a stranger;
//   - an INVITE burst that would hold every media port;
//   - STUN datagrams at the SIP port (Sofia-SIP's STUN handling leaked);
//   - malformed requests and WebSocket upgrades: each gets its status code.
//
// (RTP from strangers on PBX-side ports: media_source.test.mjs; ICE
// candidates on denied networks: ice_filter.test.mjs.)
import test from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import WebSocket from 'ws';
import { withEnv, freePort, randomToken, sleep, waitFor, udpSipProbe, udpSockets, VALGRIND_SLOWDOWN } from '../lib/harness.mjs';
import { SipWsClient, params, parseSip, uriOf } from '../lib/sipclient.mjs';
import { OFFER } from '../lib/calls.mjs';

const SLOW = VALGRIND_SLOWDOWN;
const DOMAIN = 'example.com';
const STRANGER = '127.0.0.5';
const THIRD_HOST = '127.0.0.66';
const USERS = ['alice', 'bob'].map((u) => ({ username: u, password: `pw-${randomToken(8)}` }));
const pw = (name) => USERS.find((u) => u.username === name).password;

async function setup(env, { overrides = {}, sippRoutes = [] } = {}) {
  const kam = await env.startKamailio({ domain: DOMAIN, users: USERS, sippRoutes });
  const rtp = [33000, 33199];
  const gw = await env.startRtcsipd({
    pbxPort: kam.port, domains: [DOMAIN],
    overrides: { ...overrides, media: { rtp_port_min: rtp[0], rtp_port_max: rtp[1], ...(overrides.media || {}) } },
  });
  return { kam, gw };
}

async function client(env, gw, user, opts = {}) {
  const c = await SipWsClient.connect(gw.wsUrl, { user, password: pw(user), domain: DOMAIN,
    transactionTimeoutMs: 8000 * SLOW, ...opts });
  env.defer(() => c.close());
  return c;
}

async function registered(env, gw, user, opts) {
  const c = await client(env, gw, user, opts);
  const { response } = await c.register({ expires: 600 });
  assert.equal(response.status, 200, `${user} REGISTER: ${response.status} ${response.reason}`);
  return { c, response };
}

// The binding token rtcsipd registered for USER's N-th REGISTER (from its log,
// as an operator reads it: "[TOKEN] registered sip:user@domain on ws-N").
async function tokenOf(gw, user, n = 1) {
  const re = new RegExp(`\\[([a-z0-9]+)\\] registered sip:${user}@${DOMAIN} on ws-\\d+`, 'g');
  await waitFor(() => [...gw.logs().matchAll(re)].length >= n, 5000, { what: `registration ${n} of ${user}` });
  return [...gw.logs().matchAll(re)][n - 1][1];
}

// UDP and TCP listeners on HOST:PORT that record whatever reaches them.
async function thirdHost(env, host = THIRD_HOST) {
  const port = await freePort();
  const got = [];
  const udp = dgram.createSocket('udp4');
  udp.on('message', (m, from) => got.push(`udp from ${from.address}:${from.port}: ${m.toString().split('\r\n')[0]}`));
  await new Promise((resolve) => udp.bind(port, host, resolve));
  const tcp = net.createServer((s) => {
    got.push(`tcp connection from ${s.remoteAddress}`);
    s.on('data', (d) => got.push(`tcp: ${d.toString().split('\r\n')[0]}`));
  });
  await new Promise((resolve) => tcp.listen(port, host, resolve));
  env.defer(() => { udp.close(); tcp.close(); });
  return { host, port, got };
}

// A UDP socket of the stranger: sends TEXT to rtcsipd's SIP port, records answers.
async function strangerUdp(env, host = STRANGER) {
  const sock = dgram.createSocket('udp4');
  const got = [];
  sock.on('message', (m) => got.push(m.toString()));
  await new Promise((resolve) => sock.bind(0, host, resolve));
  env.defer(() => sock.close());
  return { sock, got, port: sock.address().port, host };
}

function sipRequest(method, ruri, { via, from = `<sip:mallory@${DOMAIN}>;tag=${randomToken(6)}`, to = `<${ruri}>`,
  extra = [], body = '' } = {}) {
  return [
    `${method} ${ruri} SIP/2.0`,
    `Via: ${via}`,
    'Max-Forwards: 70',
    `From: ${from}`,
    `To: ${to}`,
    `Call-ID: ${randomToken(16)}@mallory`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:mallory@${STRANGER}:5060>`,
    ...extra,
    `Content-Length: ${Buffer.byteLength(body)}`,
    '', body,
  ].join('\r\n');
}

const sdpBody = OFFER.replace(/\r?\n/g, '\r\n');

test('only the PBX reaches browsers: a stranger\'s INVITE and MESSAGE (UDP, TCP) get nothing and reach no one; ' +
  'the PBX\'s MESSAGE still does; a browser learns only its own binding', { timeout: 90000 }, () =>
  withEnv('security-trust', async (env) => {
    const { gw } = await setup(env);
    const { c: alice } = await registered(env, gw, 'alice');
    const token = await tokenOf(gw, 'alice');
    assert.match(token, /^[a-z0-9]{16}$/);
    const aliceUri = `sip:${token}@127.0.0.1:${gw.ports.sip}`;

    // A second device of alice: its 200 OK names its own binding only.
    const { c: alice2, response: reg2 } = await registered(env, gw, 'alice');
    const token2 = await tokenOf(gw, 'alice', 2);
    assert.notEqual(token2, token);
    assert.deepEqual(reg2.all('contact').map(uriOf), [alice2.contactUri],
      `the second device's 200 OK lists its own Contact only:\n${reg2.raw}`);
    assert.ok(!reg2.raw.includes(token) && !reg2.raw.includes(token2) && !reg2.raw.includes(alice.contactUri),
      `no binding token, no other device's contact in the 200 OK:\n${reg2.raw}`);

    // The stranger over UDP, with the token in hand.
    const s = await strangerUdp(env);
    const via = `SIP/2.0/UDP ${STRANGER}:${s.port};branch=z9hG4bK${randomToken(10)};rport`;
    s.sock.send(sipRequest('MESSAGE', aliceUri, { via, extra: ['Content-Type: text/plain'], body: 'pwned' }),
      gw.ports.sip, '127.0.0.1');
    s.sock.send(sipRequest('INVITE', aliceUri, { via: via.replace(/branch=\w+/, `branch=z9hG4bK${randomToken(10)}`),
      extra: ['Content-Type: application/sdp'], body: 'v=0\r\n' }), gw.ports.sip, '127.0.0.1');
    s.sock.send(sipRequest('OPTIONS', `sip:127.0.0.1:${gw.ports.sip}`, { via }), gw.ports.sip, '127.0.0.1');

    // ... and over TCP: the connection is never established (its SYN is dropped).
    const tcpResult = await new Promise((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port: gw.ports.sip, localAddress: STRANGER });
      const timer = setTimeout(() => { sock.destroy(); resolve('no connection'); }, 1500);
      sock.on('connect', () => { clearTimeout(timer); sock.destroy(); resolve('connected'); });
      sock.on('error', (e) => { clearTimeout(timer); resolve(`error ${e.code}`); });
    });
    assert.equal(tcpResult, 'no connection', 'a stranger gets no TCP connection to the SIP port');

    await sleep(1500);
    assert.deepEqual(s.got, [], 'the stranger gets no answer at all');
    assert.equal(alice.requests.length, 0,
      `nothing reached alice: ${alice.requests.map((r) => r.method).join(', ')}`);
    assert.equal(alice2.requests.length, 0);

    // The PBX (Kamailio on 127.0.0.1) still reaches alice: bob's MESSAGE.
    const { c: bob } = await registered(env, gw, 'bob');
    const res = await bob.message(`sip:alice@${DOMAIN}`, 'hello from bob');
    assert.equal(res.status, 200, `bob's MESSAGE to alice: ${res.status} ${res.reason}`);
    const got = [...alice.requests, ...alice2.requests].filter((r) => r.method === 'MESSAGE');
    assert.ok(got.length >= 1 && got.every((m) => m.body === 'hello from bob'), 'alice got bob\'s MESSAGE');
    // ... and OPTIONS from the PBX's address to rtcsipd is answered.
    assert.match(String(await udpSipProbe(gw.ports.sip, { ms: 1000 })), /^SIP\/2\.0 200 /);
  }));

test('no packet leaves for a third host: a browser\'s injected Route (in and out of dialog), ' +
  'a stranger\'s Via maddr', { timeout: 90000 }, () => withEnv('security-route', async (env) => {
  const { gw } = await setup(env);
  const third = await thirdHost(env);
  const { c: alice } = await registered(env, gw, 'alice');
  const { c: bob } = await registered(env, gw, 'bob');
  const evil = `<sip:${THIRD_HOST}:${third.port};lr>`;
  const evilTcp = `<sip:${THIRD_HOST}:${third.port};transport=tcp;lr>`;

  // Out of dialog: a MESSAGE to bob with Routes toward the third host.
  const res = await alice.message(`sip:bob@${DOMAIN}`, 'routed?', {
    headers: { Route: [evil, evilTcp], 'Record-Route': evil } });
  assert.equal(res.status, 200, `the MESSAGE still reaches bob: ${res.status} ${res.reason}`);
  const m = bob.requests.find((r) => r.method === 'MESSAGE');
  assert.ok(m, 'bob got the MESSAGE');
  assert.ok(!m.raw.includes(THIRD_HOST), `no trace of the injected routes at bob:\n${m.raw}`);

  // In dialog (a To tag): Kamailio would loose_route() it to the Route.
  const inDialog = await alice.request('MESSAGE', {
    uri: `sip:bob@${DOMAIN}`, to: `<sip:bob@${DOMAIN}>;tag=${randomToken(8)}`, callId: randomToken(16), cseq: 2,
    contact: false, body: 'in dialog', headers: { 'Content-Type': 'text/plain', Route: [evil, evilTcp] } });
  assert.ok(inDialog.status >= 400, `an in-dialog request of no dialog is refused: ${inDialog.status}`);

  // A stranger's requests with Via maddr at the third host (one well formed,
  // one broken, which Sofia-SIP would answer 400 by itself).
  const s = await strangerUdp(env);
  const maddrVia = () => `SIP/2.0/UDP ${THIRD_HOST}:${third.port};maddr=${THIRD_HOST};branch=z9hG4bK${randomToken(10)}`;
  s.sock.send(sipRequest('OPTIONS', `sip:127.0.0.1:${gw.ports.sip}`, { via: maddrVia() }), gw.ports.sip, '127.0.0.1');
  s.sock.send(sipRequest('INVITE', `sip:alice@${DOMAIN}`, { via: maddrVia(), extra: ['CSeq: banana'] }),
    gw.ports.sip, '127.0.0.1');
  s.sock.send(`OPTIONS sip:127.0.0.1 SIP/3.0\r\nVia: ${maddrVia()}\r\n\r\n`, gw.ports.sip, '127.0.0.1');

  await sleep(2000 * SLOW); // retransmissions of a 400 would come within this
  assert.deepEqual(third.got, [], 'nothing reached the third host');
  assert.deepEqual(s.got, [], 'nothing reached the stranger');
  // Good clients are still served.
  const again = await bob.message(`sip:alice@${DOMAIN}`, 'still here');
  assert.equal(again.status, 200);
}));

test('an INVITE burst from one address holds no more than [limits] allow; a normal caller still calls; ' +
  'the log says so once', { timeout: 90000 }, () => withEnv('security-burst', async (env) => {
  const deadPort = await freePort(); // where Kamailio sends the burst: nobody answers (408 after 4 s)
  const { gw } = await setup(env, {
    sippRoutes: [{ user: 'blackhole', port: deadPort }],
    overrides: { limits: { pending_calls_per_connection: 2, pending_calls_per_ip: 6, max_calls: 100 },
      media: { rtp_port_min: 33200, rtp_port_max: 33239 } }, // 40 ports
  });
  const before = udpSockets(gw.child.pid).length;
  const attackers = [];
  for (let i = 0; i < 4; i++) {
    attackers.push(await client(env, gw, 'alice', { wsOptions: { localAddress: '127.0.0.9' } }));
  }
  const sent = [];
  for (const a of attackers) {
    for (let i = 0; i < 10; i++) {
      const callId = `${randomToken(12)}@burst`;
      const { text } = a.buildRequest('INVITE', { uri: `sip:blackhole@${DOMAIN}`, callId, cseq: 1, body: sdpBody,
        headers: { 'Content-Type': 'application/sdp' } });
      a.sendRaw(text);
      sent.push({ a, callId });
    }
  }
  const finals = () => sent.map(({ a, callId }) =>
    a.responses.find((r) => r.get('call-id') === callId && r.status >= 200)).filter(Boolean);
  await waitFor(() => finals().filter((r) => r.status === 503).length >= 34, 5000 * SLOW,
    { what: '503 to the INVITEs over the limits' });
  const refused = finals().filter((r) => r.status === 503);
  assert.equal(refused.length, 34, '40 INVITEs, 6 may be pending from one address');
  for (const r of refused) {
    assert.equal(r.get('retry-after'), '10', 'a 503 for a limit says when to retry');
    assert.match(r.get('warning') || '', /too many calls \(pending_calls_per_(connection|ip)\)/);
  }
  // The 6 pending calls hold their RTP ports only (2 each): no ICE port yet.
  const during = udpSockets(gw.child.pid).length;
  assert.ok(during - before <= 12, `6 pending calls hold ${during - before} UDP sockets (at most 12)`);

  // A normal caller from another address still gets through (the echo target).
  const carol = await client(env, gw, 'bob');
  const { text } = carol.buildRequest('INVITE', { uri: `sip:echo@${DOMAIN}`, callId: 'good@caller', cseq: 1,
    body: sdpBody, headers: { 'Content-Type': 'application/sdp' } });
  carol.sendRaw(text);
  const ok = await waitFor(() => carol.responses.find((r) => r.get('call-id') === 'good@caller' && r.status >= 200),
    5000 * SLOW, { what: 'the good caller\'s answer' });
  assert.equal(ok.status, 200, `the good caller: ${ok.status} ${ok.reason}`);

  // One log line per limit reached, not one per refused INVITE.
  const lines = gw.logs().split('\n').filter((l) => /limits: pending_calls_per_(connection|ip) \(\d+\) reached/.test(l));
  assert.equal(lines.length, 2, `one line per limit:\n${lines.join('\n')}`);
  // The burst's pending calls end by themselves (408 from Kamailio).
  await waitFor(() => finals().length === 40, 15000 * SLOW, { what: 'every INVITE of the burst answered' });
}));

test('[limits] max_calls: the call beyond gets 503 with Retry-After, the next after a hang-up gets through',
  { timeout: 60000 }, () => withEnv('security-max-calls', async (env) => {
    const { gw } = await setup(env, { overrides: { limits: { max_calls: 2, pending_calls_per_connection: 4 } } });
    const alice = await client(env, gw, 'alice');
    const call = async (id) => {
      const { text } = alice.buildRequest('INVITE', { uri: `sip:echo@${DOMAIN}`, callId: id, cseq: 1, body: sdpBody,
        headers: { 'Content-Type': 'application/sdp' } });
      alice.sendRaw(text);
      return waitFor(() => alice.responses.find((r) => r.get('call-id') === id && r.status >= 200), 5000 * SLOW,
        { what: `the answer to ${id}` });
    };
    const r1 = await call('c1@max');
    assert.equal((await call('c2@max')).status, 200);
    const r3 = await call('c3@max');
    assert.equal(r3.status, 503);
    assert.equal(r3.get('retry-after'), '10');
    assert.match(r3.get('warning'), /max_calls/);
    await gw.child.waitForOutput(/limits: max_calls \(2\) reached/, 2000);
    // BYE to the first: a place is free again.
    const bye = await alice.request('BYE', { uri: uriOf(r1.get('contact')), to: r1.get('to'), callId: 'c1@max', cseq: 2,
      contact: false });
    assert.equal(bye.status, 200);
    await waitFor(() => /\[echo-\d+\] call ended/.test(gw.logs()), 5000 * SLOW, { what: 'the first call to end' });
    await sleep(200);
    assert.equal((await call('c4@max')).status, 200);
  }));

test('[media] ports: with room for 2 calls the third gets 503 with Retry-After before any port is taken, '
  + 'and the next after a hang-up gets through', { timeout: 60000 }, () => withEnv('security-ports', async (env) => {
    // 8 ports = 2 calls of 4 (RTP/RTCP pair, ICE port, the pair it may break up)
    const { gw } = await setup(env, { overrides: { media: { rtp_port_min: 33200, rtp_port_max: 33207 },
      limits: { max_calls: 100, pending_calls_per_connection: 4 } } });
    const alice = await client(env, gw, 'alice');
    const call = async (id) => {
      const { text } = alice.buildRequest('INVITE', { uri: `sip:echo@${DOMAIN}`, callId: id, cseq: 1, body: sdpBody,
        headers: { 'Content-Type': 'application/sdp' } });
      alice.sendRaw(text);
      return waitFor(() => alice.responses.find((r) => r.get('call-id') === id && r.status >= 200), 5000 * SLOW,
        { what: `the answer to ${id}` });
    };
    const r1 = await call('p1@ports');
    assert.equal(r1.status, 200);
    assert.equal((await call('p2@ports')).status, 200);
    const r3 = await call('p3@ports');
    assert.equal(r3.status, 503);
    assert.equal(r3.get('retry-after'), '10');
    assert.match(r3.get('warning'), /media ports/);
    await gw.child.waitForOutput(/limits: media ports \(rtp_port_min\.\.rtp_port_max\) \(2\) reached/, 2000);
    const bye = await alice.request('BYE', { uri: uriOf(r1.get('contact')), to: r1.get('to'), callId: 'p1@ports', cseq: 2,
      contact: false });
    assert.equal(bye.status, 200);
    await waitFor(() => /\[echo-\d+\] call ended/.test(gw.logs()), 5000 * SLOW, { what: 'the first call to end' });
    await sleep(200);
    assert.equal((await call('p4@ports')).status, 200);
  }));

// VmRSS of PID in kB.
const rssKb = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);

test('100k STUN datagrams at the SIP port (from the PBX\'s own address): no answer, RSS stays flat, SIP still served',
  { timeout: 120000 }, () => withEnv('security-stun', async (env) => {
    const { gw } = await setup(env);
    const sock = dgram.createSocket('udp4');
    const answers = [];
    sock.on('message', (m) => answers.push(m));
    await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
    env.defer(() => sock.close());
    // A STUN Binding request with attributes (USERNAME, PRIORITY, ICE-CONTROLLING, SOFTWARE).
    const stun = (i) => {
      const attrs = Buffer.concat([
        Buffer.from([0x00, 0x06, 0x00, 0x08]), Buffer.from('abcd:efg'),
        Buffer.from([0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x1e, 0xff]),
        Buffer.from([0x80, 0x2a, 0x00, 0x08]), Buffer.alloc(8, i & 255),
        Buffer.from([0x80, 0x22, 0x00, 0x0c]), Buffer.from('mallory-1.0 '),
      ]);
      const head = Buffer.alloc(20);
      head.writeUInt16BE(0x0001, 0);
      head.writeUInt16BE(attrs.length, 2);
      head.writeUInt32BE(0x2112a442, 4);
      head.writeUInt32BE(i, 8);
      return Buffer.concat([head, attrs]);
    };
    const send = (n) => new Promise((resolve) => {
      let i = 0;
      const burst = () => {
        for (let k = 0; k < 500 && i < n; k++, i++) sock.send(stun(i), gw.ports.sip, '127.0.0.1');
        if (i < n) setImmediate(burst); else setTimeout(resolve, 200);
      };
      burst();
    });
    await send(5000); // warm up whatever is allocated once
    await sleep(300);
    const before = rssKb(gw.child.pid);
    await send(100000);
    await sleep(500);
    const after = rssKb(gw.child.pid);
    assert.equal(answers.length, 0, 'the SIP port answers no STUN');
    assert.ok(after - before < 1024, `RSS grew by ${after - before} kB over 100k STUN datagrams (${before} -> ${after})`);
    assert.match(String(await udpSipProbe(gw.ports.sip, { ms: 1000 })), /^SIP\/2\.0 200 /, 'OPTIONS still answered');
  }));

test('malformed requests get their status code and the flow stays open; bad WebSocket upgrades are refused',
  { timeout: 60000 }, () => withEnv('security-malformed', async (env) => {
    const { gw } = await setup(env);
    const alice = await client(env, gw, 'alice');
    const base = (method, { version = 'SIP/2.0', drop = [], ruri = `sip:bob@${DOMAIN}`, extra = [], body = '' } = {}) => {
      const callId = `${randomToken(10)}@malformed`;
      const hdrs = {
        Via: `SIP/2.0/WSS ${randomToken(8)}.invalid;branch=z9hG4bK${randomToken(10)}`,
        From: `<sip:alice@${DOMAIN}>;tag=${randomToken(6)}`,
        To: `<${ruri}>`,
        'Call-ID': callId,
        CSeq: `1 ${method}`,
        'Max-Forwards': '70',
        Contact: `<sip:x@${randomToken(6)}.invalid;transport=ws>`,
      };
      for (const d of drop) delete hdrs[d];
      const lines = [`${method} ${ruri} ${version}`, ...Object.entries(hdrs).map(([k, v]) => `${k}: ${v}`), ...extra,
        `Content-Length: ${Buffer.byteLength(body)}`, '', body];
      return { text: lines.join('\r\n'), callId, branch: params(hdrs.Via || '').branch };
    };
    const answerTo = async (req) => {
      const from = alice.frames.length;
      alice.sendRaw(req.text);
      const frame = await alice.waitForFrame((f) => typeof f === 'string' && /^SIP\/2\.0 [2-6]\d\d /.test(f) &&
        (!req.branch || f.includes(req.branch)) && f.includes(req.callId), 3000 * SLOW, from);
      return parseSip(frame);
    };
    const cases = [
      ['no Via', base('OPTIONS', { drop: ['Via'] }), 400, /Via/],
      ['no From', base('MESSAGE', { drop: ['From'] }), 400, /From/],
      ['no To', base('MESSAGE', { drop: ['To'] }), 400, /To/],
      ['SIP/3.0', base('OPTIONS', { version: 'SIP/3.0' }), 505, null],
      ['echo: plain RTP/AVP offer', base('INVITE', { ruri: `sip:echo@${DOMAIN}`, extra: ['Content-Type: application/sdp'],
        body: 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n' }), 488, null],
      ['echo: a body that is no SDP', base('INVITE', { ruri: `sip:echo@${DOMAIN}`, extra: ['Content-Type: text/plain'],
        body: 'hello' }), 415, null],
      ['echo: unknown fingerprint hash', base('INVITE', { ruri: `sip:echo@${DOMAIN}`, extra: ['Content-Type: application/sdp'],
        body: sdpBody.replace(/a=fingerprint:sha-256/g, 'a=fingerprint:sha-999') }), 488, null],
      ['PBX call: unknown fingerprint hash', base('INVITE', { extra: ['Content-Type: application/sdp'],
        body: sdpBody.replace(/a=fingerprint:sha-256/g, 'a=fingerprint:md2') }), 488, null],
    ];
    for (const [name, req, status, warning] of cases) {
      const r = await answerTo(req);
      assert.equal(r.status, status, `${name}: ${r.status} ${r.reason}`);
      if (warning) assert.match(r.get('warning') || '', warning, `${name}: the Warning names what is wrong`);
      if (status === 415) assert.equal(r.get('accept'), 'application/sdp');
    }
    // A request without Call-ID: the 400 still comes (matched by its Via branch).
    const noCid = base('OPTIONS', { drop: ['Call-ID'] });
    const from = alice.frames.length;
    alice.sendRaw(noCid.text);
    const f = await alice.waitForFrame((x) => typeof x === 'string' && x.startsWith('SIP/2.0 400 ') &&
      x.includes(noCid.branch), 3000 * SLOW, from);
    assert.match(parseSip(f).get('warning'), /Call-ID/);
    // The flow is still open and serves the next request.
    assert.equal(alice.closeInfo, null, 'the WebSocket stays open');
    const { response } = await alice.register({ expires: 600 });
    assert.equal(response.status, 200, `REGISTER on the same flow: ${response.status}`);

    // A WebSocket upgrade of another version: 426 naming version 13.
    const upgrade = await new Promise((resolve) => {
      const ws = new WebSocket(gw.wsUrl, ['sip'], { protocolVersion: 8 });
      ws.on('unexpected-response', (req, res) => { resolve({ status: res.statusCode, version: res.headers['sec-websocket-version'] }); req.destroy(); });
      ws.on('open', () => { resolve({ status: 101 }); ws.close(); });
      ws.on('error', (e) => resolve({ error: e.message }));
    });
    assert.deepEqual(upgrade, { status: 426, version: '13' });
    // ... while version 13 still works.
    const ok = await client(env, gw, 'bob');
    assert.equal(ok.protocol, 'sip');
  }));

// An OPTIONS to rtcsipd's SIP port from FROM (a loopback address); resolves
// with the status line of the answer, or null after MS.
async function optionsFrom(env, gw, from, ms = 800) {
  const s = await strangerUdp(env, from);
  s.sock.send(sipRequest('OPTIONS', `sip:127.0.0.1:${gw.ports.sip}`,
    { via: `SIP/2.0/UDP ${from}:${s.port};branch=z9hG4bK${randomToken(10)};rport` }), gw.ports.sip, '127.0.0.1');
  try {
    return await waitFor(() => s.got.map((m) => m.split('\r\n')[0])[0], ms, { what: 'an answer' });
  } catch {
    return null;
  }
}

test('[pbx] trusted adds networks, and a reload (SIGHUP) changes them at once', { timeout: 60000 }, () =>
  withEnv('security-trusted', async (env) => {
    const { gw } = await setup(env, { overrides: { pbx: { trusted: '127.0.0.64/26' } } });
    assert.match(String(await optionsFrom(env, gw, '127.0.0.70')), /^SIP\/2\.0 200 /, 'a trusted network is served');
    assert.match(String(await optionsFrom(env, gw, '127.0.0.1')), /^SIP\/2\.0 200 /, 'the PBX host still is');
    assert.equal(await optionsFrom(env, gw, STRANGER), null, 'a stranger is not');
    assert.match(gw.logs(), /SIP requests and latched media are taken from 127\.0\.0\.1\/32, 127\.0\.0\.64\/26 only/);

    const text = fs.readFileSync(gw.configFile, 'utf8').replace(/trusted = .*/, `trusted = ${STRANGER}`);
    fs.writeFileSync(gw.configFile, text);
    const from = gw.logs().length;
    process.kill(gw.child.pid, 'SIGHUP');
    await waitFor(() => /reloaded /.test(gw.logs().slice(from)), 5000 * SLOW, { what: 'the reload' });
    assert.match(String(await optionsFrom(env, gw, STRANGER)), /^SIP\/2\.0 200 /, 'newly trusted after the reload');
    assert.equal(await optionsFrom(env, gw, '127.0.0.70'), null, 'no longer trusted after the reload');
  }));

// A WebSocket client written out by hand (node's net), for frames the ws
// package would never send: handshake, then FRAME (a Buffer, already masked
// or not); resolves with the close code rtcsipd sends, or 'open' when none
// came within MS.
function rawWs(port, frame, ms = 2000) {
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString('base64');
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const timer = setTimeout(() => { s.destroy(); resolve('open'); }, ms);
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
    s.on('connect', () => s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
      'Sec-WebSocket-Protocol: sip\r\n\r\n'));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!/^HTTP\/1\.1 101 /.test(buf.toString('latin1', 0, end))) {
          clearTimeout(timer); s.destroy(); reject(new Error(buf.toString('latin1', 0, end)));
          return;
        }
        upgraded = true;
        buf = buf.subarray(end + 4);
        s.write(frame);
      }
      // a close frame from the server: 0x88, length, 2-byte status
      const i = buf.indexOf(0x88);
      if (i >= 0 && buf.length >= i + 4) {
        clearTimeout(timer);
        s.destroy();
        resolve(buf.readUInt16BE(i + 2));
      }
    });
  });
}

// A client frame: FIN + OPCODE (first byte FIRST when given), masked with a random key.
function clientFrame(payload, { opcode = 1, first } = {}) {
  const mask = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  const masked = Buffer.from(body.map((b, i) => b ^ mask[i % 4]));
  const len = body.length < 126 ? Buffer.from([0x80 | body.length])
    : Buffer.from([0x80 | 126, body.length >> 8, body.length & 255]);
  return Buffer.concat([Buffer.from([first ?? (0x80 | opcode)]), len, mask, masked]);
}

test('WebSocket frames that break RFC 6455 close the connection with its status; good clients stay served',
  { timeout: 60000 }, () => withEnv('security-frames', async (env) => {
    const { gw } = await setup(env);
    const alice = await client(env, gw, 'alice');
    const options = (extra = '') => Buffer.from(`OPTIONS sip:${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;` +
      `branch=z9hG4bK${randomToken(8)}\r\nFrom: <sip:a@${DOMAIN}>;tag=1${extra}\r\nTo: <sip:${DOMAIN}>\r\n` +
      `Call-ID: ${randomToken(8)}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`, 'latin1');
    // a well-formed frame by the same hand: no close (and a SIP answer)
    assert.equal(await rawWs(gw.ports.ws, clientFrame(options()), 800), 'open');
    const cases = [
      ['a text frame that is not UTF-8', clientFrame(options('\xff\xfe')), 1007],
      ['a reserved bit set (no extension)', clientFrame(options(), { first: 0x80 | 0x40 | 1 }), 1002],
      ['an unknown opcode', clientFrame('x', { opcode: 3 }), 1002],
      ['a fragmented control frame', clientFrame('x', { first: 0x09 }), 1002],
    ];
    for (const [name, frame, code] of cases) {
      assert.equal(await rawWs(gw.ports.ws, frame), code, name);
    }
    const res = await alice.options(`sip:${DOMAIN}`);
    assert.equal(res.status, 200, 'a good client is served throughout');
  }));

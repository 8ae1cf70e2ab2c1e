// What an operator relies on in [limits], and what SIGHUP changes while
// browsers stay connected: connections_per_ip, max_registrations,
// max_expires; a reload that moves the PBX, changes the log level, adds a
// domain, or reads a broken file.
//
// (A request from the PBX for a browser whose WebSocket is gone gets 480
// within a second: message.test.mjs.)
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import WebSocket from 'ws';
import { withEnv, startPbxAndGateway, randomToken, sleep, waitFor, withTimeout } from '../lib/harness.mjs';
import { SipWsClient, digestAuthorization, params, parseChallenge, uriOf } from '../lib/sipclient.mjs';

const DOMAIN = 'example.com';
const USERS = ['alice', 'bob', 'carol', 'dave'].map((u) => ({ username: u, password: `pw-${randomToken(8)}` }));
const pw = (name) => USERS.find((u) => u.username === name).password;

// ---- helpers (harness.mjs is not ours to change) ----

// Reads the INI file written by startRtcsipd, applies CHANGES
// ({ group: { key: value } }) and writes it back.
function editConfig(file, changes) {
  const sections = new Map();
  let cur = null;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const g = line.match(/^\s*\[([^\]]+)\]\s*$/);
    if (g) {
      cur = g[1];
      if (!sections.has(cur)) sections.set(cur, new Map());
      continue;
    }
    const kv = line.match(/^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$/);
    if (kv && cur) sections.get(cur).set(kv[1], kv[2]);
  }
  for (const [group, keys] of Object.entries(changes)) {
    if (!sections.has(group)) sections.set(group, new Map());
    for (const [k, v] of Object.entries(keys)) sections.get(group).set(k, String(v));
  }
  let s = '';
  for (const [group, keys] of sections) {
    s += `[${group}]\n`;
    for (const [k, v] of keys) s += `${k} = ${v}\n`;
    s += '\n';
  }
  fs.writeFileSync(file, s);
}

// SIGHUP to the daemon; resolves with the output written since, once the
// reload has finished (successfully or not).
async function reload(gw) {
  const from = gw.child.output.length;
  process.kill(gw.child.pid, 'SIGHUP');
  await waitFor(() => {
    if (!gw.child.running) throw new Error(`rtcsipd exited on SIGHUP: ${JSON.stringify(gw.child.exitStatus)}`);
    return /reloaded |reload failed/.test(gw.child.output.slice(from));
  }, 5000, { what: 'rtcsipd to finish the reload' });
  return gw.child.output.slice(from);
}

// Opens a WebSocket with the "sip" subprotocol and resolves with
// { ok: true, ws } or { ok: false, status } (the HTTP status of a refused upgrade).
function tryUpgrade(url, ms = 3000) {
  const ws = new WebSocket(url, ['sip']);
  return withTimeout(new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ok: true, ws }));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ ok: false, status: res.statusCode, body }));
      res.on('error', () => resolve({ ok: false, status: res.statusCode, body }));
    });
    ws.once('error', reject);
  }), ms, `the WebSocket upgrade on ${url}`).catch((e) => {
    ws.terminate();
    throw e;
  });
}

const expiresOf = (contact) => Number(params(contact.replace(/<[^>]*>/, '')).expires);

// Lines of Kamailio's log for a request with CALL_ID (its log prefix holds the Call-ID).
const kamLines = (kam, callId) => kam.child.output.split('\n').filter((l) => l.includes(callId));

// Waits (bounded) until Kamailio has logged receiving the REGISTER with CALL_ID:
// its log comes through a pipe and may trail the response over the WebSocket.
const kamGot = (kam, callId, what) => waitFor(
  () => kamLines(kam, callId).some((l) => /recv REGISTER sip:\S+ from 127\.0\.0\.1:\d+ over udp/.test(l)),
  2000, { what }).then(() => true);

// rtcsipd's log lines start with "LEVEL: ", or "<N>" when stderr is the journal.
const DEBUG_LINE = /^(?:debug: |<7>)/m;

async function connect(env, gw, user, domain = DOMAIN) {
  const c = await SipWsClient.connect(gw.wsUrl, { user, password: pw(user), domain });
  env.defer(() => c.close());
  return c;
}

async function registered(env, gw, user, expires = 600) {
  const c = await connect(env, gw, user);
  const { response } = await c.register({ expires });
  assert.equal(response.status, 200, `${user} REGISTER: ${response.status} ${response.reason}`);
  return c;
}

// ---- [limits] connections_per_ip ----

test('connections_per_ip = 2: the third WebSocket from 127.0.0.1 gets HTTP 503, the first two keep working, '
  + 'a closed one frees its place, and SIGHUP raises the limit', { timeout: 60000 }, () =>
  withEnv('limits-per-ip', async (env) => {
    const { gw } = await startPbxAndGateway(env, {
      domain: DOMAIN, users: USERS, rtcsipd: { overrides: { limits: { connections_per_ip: 2 } } },
    });
    const c1 = await connect(env, gw, 'alice');
    const c2 = await connect(env, gw, 'bob');

    const third = await tryUpgrade(gw.wsUrl);
    if (third.ok) third.ws.terminate();
    assert.equal(third.ok, false, 'the third WebSocket from the same address must be refused');
    assert.equal(third.status, 503, `refused with HTTP ${third.status}`);
    await gw.child.waitForOutput(/WebSocket upgrade from 127\.0\.0\.1 refused with 503: too many connections/,
      2000, 'to log the refusal');

    // The two that were accepted still carry SIP, and HTTP still works.
    for (const c of [c1, c2]) {
      const r = await c.options(`sip:${DOMAIN}`);
      assert.equal(r.status, 200, `OPTIONS on an accepted connection: ${r.status} ${r.reason}`);
      assert.equal(c.ws.readyState, WebSocket.OPEN);
    }
    const health = await fetch(`http://127.0.0.1:${gw.ports.ws}/healthz`, { signal: AbortSignal.timeout(2000) });
    assert.equal(health.status, 200, 'GET /healthz is not a WebSocket and is not counted');
    assert.match(await health.text(), /^2 connections,/m);

    // One closes: a new one is accepted (once the server has seen the close).
    await c1.close(1000);
    const again = await waitFor(async () => {
      const t = await tryUpgrade(gw.wsUrl);
      return t.ok ? t : null;
    }, 2000, { interval: 100, what: 'a WebSocket to be accepted after one closed' });
    env.defer(() => again.ws.terminate());
    assert.equal(again.ws.protocol, 'sip');

    // Full again.
    const full = await tryUpgrade(gw.wsUrl);
    if (full.ok) full.ws.terminate();
    assert.equal(full.status, 503, 'two open again: the next one is refused');

    // SIGHUP with connections_per_ip = 3: one more is accepted at once.
    editConfig(gw.configFile, { limits: { connections_per_ip: 3 } });
    const out = await reload(gw);
    assert.match(out, /reload: max_message_size 65536 -> 65536, connections_per_ip 2 -> 3/);
    const raised = await tryUpgrade(gw.wsUrl);
    if (raised.ok) env.defer(() => raised.ws.terminate());
    assert.equal(raised.ok, true, `after the reload a third connection is accepted (got HTTP ${raised.status})`);
    const fourth = await tryUpgrade(gw.wsUrl);
    if (fourth.ok) fourth.ws.terminate();
    assert.equal(fourth.status, 503, 'and a fourth is refused');
    assert.equal(c2.ws.readyState, WebSocket.OPEN, 'the reload leaves open connections alone');
  }));

test('connections_per_ip = 2: connections the PBX registered do not count, so an office behind one NAT address '
  + 'gets in; strangers from it are still held to the limit', { timeout: 60000 }, () =>
  withEnv('limits-per-ip-office', async (env) => {
    const { gw } = await startPbxAndGateway(env, {
      domain: DOMAIN, users: USERS, rtcsipd: { overrides: { limits: { connections_per_ip: 2 } } },
    });
    // four colleagues, one after the other: each registers, and makes room for the next
    const office = [];
    for (const user of ['alice', 'bob', 'carol', 'dave'])
      office.push(await registered(env, gw, user));
    // two who never register: the limit's two places
    const s1 = await tryUpgrade(gw.wsUrl);
    const s2 = await tryUpgrade(gw.wsUrl);
    for (const t of [s1, s2]) if (t.ok) env.defer(() => t.ws.terminate());
    assert.equal(s1.ok && s2.ok, true, 'two unregistered connections fit beside the registered ones');
    const s3 = await tryUpgrade(gw.wsUrl);
    if (s3.ok) s3.ws.terminate();
    assert.equal(s3.status, 503, 'a third unregistered one is refused');
    for (const c of office) {
      const r = await c.options(`sip:${DOMAIN}`);
      assert.equal(r.status, 200, 'every registered connection is still served');
    }
  }));

// ---- [limits] max_registrations ----

test('max_registrations = 2: a third binding gets 503 without reaching the PBX; refresh still works; '
  + 'un-REGISTER and a closed WebSocket free a slot', { timeout: 60000 }, () =>
  withEnv('limits-max-registrations', async (env) => {
    const { kam, gw } = await startPbxAndGateway(env, {
      domain: DOMAIN, users: USERS, rtcsipd: { overrides: { limits: { max_registrations: 2 } } },
    });
    const alice = await registered(env, gw, 'alice');
    const bob = await registered(env, gw, 'bob');

    const carol = await connect(env, gw, 'carol');
    const refused = await carol.register({ expires: 600 });
    assert.equal(refused.challenge, null, 'refused before any challenge: the PBX never saw it');
    assert.equal(refused.response.status, 503, `${refused.response.status} ${refused.response.reason}`);
    assert.match(refused.response.get('warning') || '', /too many registrations/);
    assert.equal(refused.response.get('call-id'), carol.reg.callId);
    await gw.child.waitForOutput(/REGISTER for sip:carol@example\.com refused: 2 registrations held/, 2000);
    await sleep(200); // give a stray forward the time to arrive
    assert.deepEqual(kamLines(kam, carol.reg.callId), [], 'the refused REGISTER must not reach Kamailio');

    // The same AOR on the same flow is no new binding: a refresh at the limit goes through.
    const refresh = await alice.register({ expires: 600, reuseCredentials: true });
    assert.equal(refresh.response.status, 200, `refresh at the limit: ${refresh.response.status}`);

    // bob un-REGISTERs: carol gets his slot (challenge, then 200).
    const un = await bob.register({ expires: 0, reuseCredentials: true });
    assert.equal(un.response.status, 200, `un-REGISTER: ${un.response.status} ${un.response.reason}`);
    const ok = await carol.register({ expires: 600 });
    assert.equal(ok.challenge && ok.challenge.status, 401, 'this time the REGISTER reached the PBX');
    assert.equal(ok.response.status, 200, `carol after bob's un-REGISTER: ${ok.response.status} ${ok.response.reason}`);
    await kamGot(kam, carol.reg.callId, 'Kamailio to log carol\'s REGISTER');

    // Full again; alice's WebSocket closes: her binding goes, dave gets the slot.
    const dave = await connect(env, gw, 'dave');
    const full = await dave.register({ expires: 600 });
    assert.equal(full.response.status, 503, `full again: ${full.response.status}`);
    await alice.close(1000);
    await gw.child.waitForOutput(/closed; 1 bindings removed/, 2000, 'to drop alice\'s binding');
    const daveOk = await dave.register({ expires: 600 });
    assert.equal(daveOk.response.status, 200, `dave after alice left: ${daveOk.response.status} ${daveOk.response.reason}`);
  }));

// ---- [limits] max_expires ----

test('max_expires = 120: a REGISTER asking for 7200 s reaches the PBX lowered to 120 (Contact param '
  + 'and Expires header), one asking for nothing is sent with 120, a shorter one is left alone', { timeout: 60000 }, () =>
  withEnv('limits-max-expires', async (env) => {
    // Kamailio's own limit is 3600 s (registrar max_expires): anything at or
    // under 120 in its 200 was lowered before it reached Kamailio.
    const { gw } = await startPbxAndGateway(env, {
      domain: DOMAIN, users: USERS, rtcsipd: { overrides: { limits: { max_expires: 120 } } },
    });

    // expires=7200 in the Contact and Expires: 7200 (as JsSIP sends it).
    const alice = await connect(env, gw, 'alice');
    const a = await alice.register({ expires: 7200 });
    assert.equal(a.response.status, 200, `${a.response.status} ${a.response.reason}`);
    const ac = a.response.all('contact').filter((m) => uriOf(m) === alice.contactUri);
    assert.equal(ac.length, 1, `alice's binding in the 200: ${JSON.stringify(a.response.all('contact'))}`);
    const ae = expiresOf(ac[0]);
    assert.ok(ae > 0 && ae <= 120, `the PBX registered alice for ${ae} s; max_expires is 120`);
    await gw.child.waitForOutput(/registered sip:alice@example\.com on ws-\d+ for (\d+)s/, 2000);
    const held = Number(gw.logs().match(/registered sip:alice@example\.com on ws-\d+ for (\d+)s/)[1]);
    assert.ok(held <= 120, `rtcsipd holds the binding for ${held} s`);

    // Only the Expires header asks (no expires param in the Contact).
    const bob = await connect(env, gw, 'bob');
    const contact = `<${bob.contactUri}>;+sip.ice;reg-id=1;+sip.instance="<urn:uuid:${bob.instanceId}>"`;
    const b = await bob.register({ expires: 7200, contact });
    assert.equal(b.response.status, 200, `${b.response.status} ${b.response.reason}`);
    const bc = b.response.all('contact').filter((m) => uriOf(m) === bob.contactUri);
    assert.equal(bc.length, 1, JSON.stringify(b.response.all('contact')));
    const be = expiresOf(bc[0]);
    assert.ok(be > 0 && be <= 120, `the PBX registered bob for ${be} s; max_expires is 120`);

    // No expiry asked at all (RFC 3261 10.2.1.1: the registrar chooses, and
    // Kamailio would choose 3600): the PBX is asked for max_expires.
    const dave = await connect(env, gw, 'dave');
    const reg = { uri: `sip:${DOMAIN}`, to: `<${dave.aor}>`, callId: randomToken(22), fromTag: randomToken(10),
      contact: `<${dave.contactUri}>` };
    const d1 = await dave.request('REGISTER', { ...reg, cseq: 1 });
    assert.equal(d1.status, 401, `${d1.status} ${d1.reason}`);
    const d2 = await dave.request('REGISTER', { ...reg, cseq: 2, headers: { Authorization: digestAuthorization({
      challenge: parseChallenge(d1.get('www-authenticate')), method: 'REGISTER', uri: reg.uri,
      username: 'dave', password: pw('dave') }) } });
    assert.equal(d2.status, 200, `${d2.status} ${d2.reason}`);
    const dc = d2.all('contact').find((m) => uriOf(m) === dave.contactUri);
    assert.ok(dc, JSON.stringify(d2.all('contact')));
    const de = expiresOf(dc) || Number(d2.get('expires'));
    assert.ok(de > 0 && de <= 120, `a REGISTER without an expiry got ${de} s at the PBX; max_expires is 120`);

    // Shorter than the limit: passed as asked.
    const carol = await connect(env, gw, 'carol');
    const c = await carol.register({ expires: 60 });
    assert.equal(c.response.status, 200);
    const ce = expiresOf(c.response.all('contact').find((m) => uriOf(m) === carol.contactUri));
    assert.ok(ce > 30 && ce <= 60, `carol asked for 60 s and got ${ce}`);
  }));

// ---- SIGHUP ----

test('SIGHUP: [pbx] port and log_level change at once; a broken file keeps the running configuration',
  { timeout: 90000 }, () => withEnv('limits-reload-pbx', async (env) => {
    const kam1 = await env.startKamailio({ domain: DOMAIN, users: USERS });
    const kam2 = await env.startKamailio({ domain: DOMAIN, users: USERS });
    const gw = await env.startRtcsipd({ pbxPort: kam1.port, domains: [DOMAIN] });
    const recvRegister = (kam) => (kam.child.output.match(/recv REGISTER sip:example\.com from 127\.0\.0\.1:\d+ over udp/g) || []).length;

    // Before: REGISTER goes to the first Kamailio.
    const alice = await registered(env, gw, 'alice');
    await kamGot(kam1, alice.reg.callId, 'the first Kamailio to get alice\'s REGISTER');
    assert.equal(recvRegister(kam2), 0);

    editConfig(gw.configFile, { pbx: { port: kam2.port }, general: { log_level: 'info' } });
    const out = await reload(gw);
    assert.match(out, /reload: log_level debug -> info$/m);
    assert.match(out, new RegExp(`reload: PBX is now sip:127\\.0\\.0\\.1:${kam2.port};transport=udp$`, 'm'));
    assert.match(out, new RegExp(`reloaded ${gw.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    assert.doesNotMatch(out, /after a restart/, 'nothing that needs a restart changed');

    // After: a new REGISTER goes to the second one, none to the first.
    const kam1Before = recvRegister(kam1);
    const logFrom = gw.child.output.length;
    const bob = await registered(env, gw, 'bob');
    await kamGot(kam2, bob.reg.callId, 'the second Kamailio to get bob\'s REGISTER');
    assert.deepEqual(kamLines(kam1, bob.reg.callId), [], 'the first Kamailio must not see bob');
    assert.equal(recvRegister(kam1), kam1Before);
    // info lines are still logged (and everything logged before them has come through the pipe)
    await gw.child.waitForOutput(/registered sip:bob@example\.com/, 2000);
    const since = gw.child.output.slice(logFrom);
    assert.doesNotMatch(since, DEBUG_LINE, `no debug lines at log_level info:\n${since}`);
    // alice, registered before, stays reachable on her WebSocket.
    assert.equal(alice.ws.readyState, WebSocket.OPEN);

    // A broken file: the reload fails, the daemon keeps running with kam2 and level info.
    const good = fs.readFileSync(gw.configFile, 'utf8');
    editConfig(gw.configFile, { pbx: { port: 'not-a-port' }, general: { log_level: 'debug' } });
    const bad = await reload(gw);
    assert.match(bad, /reload failed, keeping the running configuration: .*pbx\.port/);
    assert.doesNotMatch(bad, /reload: (PBX|log_level)/);
    await sleep(200);
    assert.ok(gw.child.running, 'a broken file on reload must not stop the daemon');
    const logFrom2 = gw.child.output.length;
    const carol = await registered(env, gw, 'carol');
    await kamGot(kam2, carol.reg.callId, 'the second Kamailio to get carol\'s REGISTER');
    await gw.child.waitForOutput(/registered sip:carol@example\.com/, 2000);
    assert.doesNotMatch(gw.child.output.slice(logFrom2), DEBUG_LINE, 'log_level stays info');

    // The file fixed: the next reload works again (and says nothing changed but the file).
    fs.writeFileSync(gw.configFile, good);
    const fixed = await reload(gw);
    assert.match(fixed, /reloaded /);
    assert.doesNotMatch(fixed, /reload: /, `nothing changed against the running configuration:\n${fixed}`);
  }));

test('SIGHUP: a domain added to [sip] domains is served at once (403 before, 200 after)',
  { timeout: 60000 }, () => withEnv('limits-reload-domains', async (env) => {
    const OTHER = 'other.org';
    const kam = await env.startKamailio({ domain: OTHER, users: USERS });
    const gw = await env.startRtcsipd({ pbxPort: kam.port, domains: [DOMAIN] });

    const alice = await connect(env, gw, 'alice', OTHER);
    const before = await alice.register({ expires: 300 });
    assert.equal(before.response.status, 403, `a domain not served: ${before.response.status} ${before.response.reason}`);
    assert.match(before.response.get('warning') || '', /domain not served/);
    await sleep(200);
    assert.deepEqual(kamLines(kam, alice.reg.callId), [], 'the 403 comes from rtcsipd, not the PBX');

    editConfig(gw.configFile, { sip: { domains: `${DOMAIN},${OTHER}` } });
    const out = await reload(gw);
    assert.match(out, /reload: domains example\.com -> example\.com;other\.org/);

    const after = await alice.register({ expires: 300 });
    assert.equal(after.challenge && after.challenge.status, 401, 'the REGISTER reached the PBX');
    assert.equal(after.response.status, 200, `after the reload: ${after.response.status} ${after.response.reason}`);
    assert.equal(uriOf(after.response.get('contact')), alice.contactUri);

    // And removing it again refuses new requests for it.
    editConfig(gw.configFile, { sip: { domains: DOMAIN } });
    await reload(gw);
    const bob = await connect(env, gw, 'bob', OTHER);
    const gone = await bob.register({ expires: 300 });
    assert.equal(gone.response.status, 403, `domain removed: ${gone.response.status}`);
  }));

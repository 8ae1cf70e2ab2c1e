// A stand-in for "rtcsipd + Kamailio" that the browser suite's self-check
// (libraries.test.mjs) uses to tell a broken browser set-up from a broken
// gateway: a SIP-over-WebSocket registrar in node on 127.0.0.1, wss:// with a
// throwaway self-signed certificate (made with the openssl command), that
// challenges every REGISTER (401, Digest, qop=auth), checks the answer, keeps
// the bindings, and can send a MESSAGE down a registered connection.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { LOOPBACK, md5, randomToken, waitFor } from '../../lib/harness.mjs';
import { parseSip, parseChallenge, params, uriOf } from '../../lib/sipclient.mjs';

function selfSignedCert(dir) {
  const key = path.join(dir, 'fake-key.pem');
  const cert = path.join(dir, 'fake-cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${LOOPBACK}`],
  { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
}

function response(req, status, reason, extra = [], body = '') {
  const copy = (name) => req.all(name).map((v) => `${name}: ${v}`);
  let to = req.get('to');
  if (status > 100 && !/;\s*tag=/i.test(to)) to += `;tag=${randomToken(8)}`;
  return [
    `SIP/2.0 ${status} ${reason}`,
    ...copy('Via'),
    `From: ${req.get('from')}`,
    `To: ${to}`,
    `Call-ID: ${req.get('call-id')}`,
    `CSeq: ${req.get('cseq')}`,
    ...extra,
    `Content-Length: ${Buffer.byteLength(body)}`,
    '', body,
  ].join('\r\n');
}

// startFakeRegistrar({ dir, domain, users: { name: password } }) -> registrar
export async function startFakeRegistrar({ dir, domain = 'example.com', users = {} }) {
  const server = https.createServer(selfSignedCert(dir));
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
  });
  const reg = {
    log: [], // [{ dir, data }]
    challenges: 0,
    bindings: new Map(), // user -> { contact, ws }
    pending: new Map(), // branch -> resolve
  };
  const send = (ws, text) => { reg.log.push({ dir: 'out', data: text }); ws.send(text); };
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const text = data.toString('utf8');
      reg.log.push({ dir: 'in', data: text });
      let msg;
      try { msg = parseSip(text); } catch { return; }
      if (msg.isResponse) {
        const branch = params(msg.get('via')).branch;
        const done = reg.pending.get(branch);
        if (done && msg.status >= 200) { reg.pending.delete(branch); done(msg); }
        return;
      }
      if (msg.method !== 'REGISTER') {
        if (msg.method !== 'ACK') send(ws, response(msg, 501, 'Not Implemented'));
        return;
      }
      const user = uriOf(msg.get('to')).replace(/^sips?:/, '').split('@')[0];
      const auth = msg.get('authorization');
      let ok = false;
      if (auth && users[user] !== undefined) {
        const c = parseChallenge(auth);
        const ha1 = md5(`${c.username}:${c.realm}:${users[user]}`);
        const ha2 = md5(`REGISTER:${c.uri}`);
        const expect = c.qop
          ? md5(`${ha1}:${c.nonce}:${c.nc}:${c.cnonce}:${c.qop}:${ha2}`)
          : md5(`${ha1}:${c.nonce}:${ha2}`);
        ok = c.username === user && c.realm === domain && c.response === expect;
      }
      if (!ok) {
        reg.challenges++;
        send(ws, response(msg, 401, 'Unauthorized', [
          `WWW-Authenticate: Digest realm="${domain}", nonce="${crypto.randomBytes(12).toString('hex')}", ` +
          'qop="auth", algorithm=MD5',
        ]));
        return;
      }
      const contact = msg.get('contact');
      const expires = Number(params(contact.replace(/<[^>]*>/, '')).expires ?? msg.get('expires') ?? 600);
      if (expires === 0) reg.bindings.delete(user);
      else reg.bindings.set(user, { contact: uriOf(contact), ws });
      send(ws, response(msg, 200, 'OK',
        expires === 0 ? [] : [`Contact: <${uriOf(contact)}>;expires=${expires}`]));
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, resolve);
  });
  const { port } = server.address();

  // Sends a MESSAGE with BODY to the binding of USER; resolves with the
  // final response (parsed), or rejects after MS ms.
  reg.message = async (user, body, ms = 5000) => {
    const b = await waitFor(() => reg.bindings.get(user), ms, { what: `a binding for ${user}` });
    const branch = `z9hG4bK${randomToken(12)}`;
    const text = [
      `MESSAGE ${b.contact} SIP/2.0`,
      `Via: SIP/2.0/WSS fake.invalid;branch=${branch}`,
      'Max-Forwards: 70',
      `From: <sip:sipp@${domain}>;tag=${randomToken(8)}`,
      `To: <sip:${user}@${domain}>`,
      `Call-ID: ${randomToken(16)}`,
      'CSeq: 1 MESSAGE',
      'Content-Type: text/plain',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '', body,
    ].join('\r\n');
    const res = new Promise((resolve) => reg.pending.set(branch, resolve));
    send(b.ws, text);
    let timer;
    return Promise.race([res, new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no final response to the MESSAGE within ${ms} ms`)), ms);
    })]).finally(() => clearTimeout(timer));
  };
  reg.port = port;
  reg.wssUrl = `wss://${LOOPBACK}:${port}`;
  reg.close = () => new Promise((resolve) => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
  return reg;
}

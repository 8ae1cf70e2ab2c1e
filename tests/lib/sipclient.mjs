// A small SIP-over-WebSocket (RFC 7118) test client.  It builds requests the
// way JsSIP does (Via SIP/2.0/WSS <random>.invalid, Contact with
// ;transport=ws, +sip.ice, reg-id, +sip.instance), registers with digest
// authentication, sends MESSAGE/OPTIONS, answers incoming requests, and keeps
// everything it receives for assertions.  String building is fine here: this
// is test code, not rtcsipd.

import crypto from 'node:crypto';
import WebSocket from 'ws';
import { md5, randomToken, withTimeout, waitFor } from './harness.mjs';

const COMPACT = {
  v: 'via', f: 'from', t: 'to', i: 'call-id', m: 'contact', l: 'content-length',
  c: 'content-type', k: 'supported', e: 'content-encoding', s: 'subject', o: 'event',
  u: 'allow-events', r: 'refer-to', b: 'referred-by', x: 'session-expires', y: 'identity',
};

// Splits a header value on commas that are outside quotes and angle brackets.
export function splitList(value) {
  const out = [];
  let cur = '';
  let quote = false;
  let angle = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (quote) {
      if (ch === '\\' && i + 1 < value.length) { cur += ch + value[++i]; continue; }
      if (ch === '"') quote = false;
    } else if (ch === '"') quote = true;
    else if (ch === '<') angle++;
    else if (ch === '>') angle = Math.max(0, angle - 1);
    else if (ch === ',' && angle === 0) { out.push(cur.trim()); cur = ''; continue; }
    cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

const LIST_HEADERS = new Set(['via', 'contact', 'route', 'record-route', 'path', 'allow',
  'supported', 'require', 'proxy-require', 'unsupported']);

// Parses one SIP message.  Returns { raw, isResponse, status, reason, method,
// uri, headers: [[name, value]...], body, get(name), all(name) } or throws.
export function parseSip(raw) {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) throw new Error('no end of headers');
  const head = raw.slice(0, end);
  const body = raw.slice(end + 4);
  const lines = [];
  for (const l of head.split('\r\n')) {
    if (/^[ \t]/.test(l) && lines.length) lines[lines.length - 1] += ' ' + l.trim();
    else lines.push(l);
  }
  const first = lines.shift();
  const msg = { raw, headers: [], body };
  let m = first.match(/^SIP\/2\.0 (\d{3}) (.*)$/);
  if (m) {
    msg.isResponse = true;
    msg.status = Number(m[1]);
    msg.reason = m[2];
  } else {
    m = first.match(/^([A-Za-z]+) (\S+) SIP\/2\.0$/);
    if (!m) throw new Error(`bad start line: ${first}`);
    msg.isResponse = false;
    msg.method = m[1];
    msg.uri = m[2];
  }
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i <= 0) throw new Error(`bad header line: ${l}`);
    let name = l.slice(0, i).trim().toLowerCase();
    name = COMPACT[name] || name;
    msg.headers.push([name, l.slice(i + 1).trim()]);
  }
  msg.all = (name) => {
    name = name.toLowerCase();
    const vals = msg.headers.filter(([n]) => n === name).map(([, v]) => v);
    return LIST_HEADERS.has(name) ? vals.flatMap(splitList) : vals;
  };
  msg.get = (name) => msg.all(name)[0];
  return msg;
}

// Header parameters: 'a;b=1;c="x y"' -> { b: '1', c: 'x y', a... }
export function params(s) {
  const out = {};
  for (const p of s.split(';').slice(1)) {
    const [k, ...v] = p.split('=');
    if (!k.trim()) continue;
    let val = v.join('=').trim();
    if (val.startsWith('"') && val.endsWith('"')) val = val.slice(1, -1);
    out[k.trim().toLowerCase()] = v.length ? val : true;
  }
  return out;
}

// The URI inside a name-addr (<...>) or the addr-spec before its params.
export function uriOf(nameAddr) {
  const m = nameAddr.match(/<([^>]*)>/);
  return m ? m[1] : nameAddr.split(';')[0].trim();
}

// Digest challenge 'Digest realm="x", nonce="y", qop="auth"' -> { realm, nonce, qop, ... }
export function parseChallenge(value) {
  const m = value.match(/^\s*Digest\s+(.*)$/i);
  if (!m) throw new Error(`not a Digest challenge: ${value}`);
  const out = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,\s]+)/g;
  let p;
  while ((p = re.exec(m[1]))) out[p[1].toLowerCase()] = p[3] !== undefined ? p[3] : p[2];
  return out;
}

export function digestAuthorization({ challenge, method, uri, username, password, nc = 1,
  cnonce = randomToken(16) }) {
  const realm = challenge.realm;
  const ha1 = md5(`${username}:${realm}:${password}`);
  const ha2 = md5(`${method}:${uri}`);
  const qops = (challenge.qop || '').split(',').map((s) => s.trim()).filter(Boolean);
  const ncHex = nc.toString(16).padStart(8, '0');
  let response;
  let value = `Digest username="${username}", realm="${realm}", nonce="${challenge.nonce}", ` +
    `uri="${uri}"`;
  if (qops.includes('auth')) {
    response = md5(`${ha1}:${challenge.nonce}:${ncHex}:${cnonce}:auth:${ha2}`);
    value += `, response="${response}", algorithm=MD5, cnonce="${cnonce}", nc=${ncHex}, qop=auth`;
  } else {
    response = md5(`${ha1}:${challenge.nonce}:${ha2}`);
    value += `, response="${response}", algorithm=MD5`;
  }
  if (challenge.opaque !== undefined) value += `, opaque="${challenge.opaque}"`;
  return value;
}

const newBranch = () => 'z9hG4bK' + randomToken(16);

export class SipWsClient {
  // connect(url, { user, password, domain, protocols, wsOptions, timeoutMs })
  static async connect(url, opts = {}) {
    const c = new SipWsClient(url, opts);
    await c.opened(opts.timeoutMs || 5000);
    return c;
  }

  constructor(url, { user = 'alice', password = '', domain = 'example.com', protocols = ['sip'],
    wsOptions = {}, transactionTimeoutMs = 8000, displayName, viaTransport } = {}) {
    this.url = url;
    this.user = user;
    this.password = password;
    this.domain = domain;
    this.displayName = displayName;
    this.transactionTimeoutMs = transactionTimeoutMs;
    this.viaHost = `${randomToken(12)}.invalid`;
    // JsSIP's WebSocketInterface: the URL's scheme, upper-cased.
    this.viaTransport = viaTransport || (url.startsWith('wss:') ? 'WSS' : 'WS');
    this.contactUri = `sip:${randomToken(8)}@${this.viaHost};transport=ws`;
    this.instanceId = crypto.randomUUID();
    this.fromTag = randomToken(10);
    this.frames = [];          // every text frame received, in order
    this.requests = [];        // parsed requests received
    this.responses = [];       // parsed responses received
    this.unparsable = [];      // frames that are not SIP
    this.pending = new Map();  // branch -> transaction
    this.answer = () => ({ status: 200, reason: 'OK' }); // how incoming requests are answered
    this.reg = null;
    this.credentials = null;   // last challenge used, for reuse on refresh
    this.closeInfo = null;
    this.ws = new WebSocket(url, protocols, { rejectUnauthorized: false, ...wsOptions });
    this._opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (req, res) => {
        reject(new Error(`unexpected HTTP ${res.statusCode} on upgrade`));
        req.destroy();
      });
    });
    this._opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const t of this.pending.values()) t.reject(new Error(`WebSocket closed (${code})`));
        this.pending.clear();
        resolve(this.closeInfo);
      });
    });
    this.ws.on('error', () => {}); // reported through 'close'
    this.ws.on('message', (data, isBinary) => this._onFrame(isBinary ? data : data.toString('utf8')));
  }

  opened(ms = 5000) {
    return withTimeout(this._opened, ms, `WebSocket ${this.url} to open`);
  }

  get protocol() {
    return this.ws.protocol;
  }

  get aor() {
    return `sip:${this.user}@${this.domain}`;
  }

  sendRaw(text) {
    this.ws.send(text);
  }

  // Waits at most MS ms for the server to close the WebSocket; returns { code, reason }.
  waitClosed(ms = 3000) {
    return withTimeout(this.closed, ms, 'the WebSocket to close');
  }

  async close(code = 1000, ms = 3000) {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code);
    }
    try {
      return await withTimeout(this.closed, ms, 'the WebSocket close handshake');
    } catch {
      this.ws.terminate();
      return this.closed;
    }
  }

  // Resolves with the first frame (string) matching PRED that arrives after
  // SINCE (an index into this.frames, default: any frame).
  waitForFrame(pred, ms = 3000, since = 0) {
    return waitFor(() => this.frames.slice(since).find(pred), ms, { what: 'a WebSocket frame' });
  }

  // Resolves with the first received request matching PRED.
  waitForRequest(pred, ms = 5000) {
    return waitFor(() => this.requests.find(pred), ms, { what: 'a SIP request over the WebSocket' });
  }

  _onFrame(data) {
    this.frames.push(data);
    if (typeof data !== 'string') return;
    if (/^\r\n(\r\n)?$/.test(data)) return; // keepalive pong
    let msg;
    try {
      msg = parseSip(data);
    } catch (e) {
      this.unparsable.push({ data, error: e.message });
      return;
    }
    msg.receivedAt = Date.now();
    if (msg.isResponse) {
      this.responses.push(msg);
      const via = msg.get('via');
      const branch = via && params(via).branch;
      const t = branch && this.pending.get(branch);
      if (!t) return;
      if (msg.status < 200) {
        t.provisional.push(msg);
        return;
      }
      this.pending.delete(branch);
      clearTimeout(t.timer);
      t.resolve(msg);
    } else {
      this.requests.push(msg);
      if (msg.method === 'ACK') return;
      const a = this.answer(msg);
      if (a) this.sendRaw(this.buildResponse(msg, a.status, a.reason, a.headers || {}, a.body || ''));
    }
  }

  // TOTAG: the To tag to add (the same one on a 180 and the 200 that follows); default: a new one.
  buildResponse(req, status, reason, headers = {}, body = '', toTag = undefined) {
    const lines = [`SIP/2.0 ${status} ${reason}`];
    for (const v of req.all('via')) lines.push(`Via: ${v}`);
    for (const r of req.all('record-route')) lines.push(`Record-Route: ${r}`);
    lines.push(`From: ${req.get('from')}`);
    let to = req.get('to');
    if (!params(to.replace(/<[^>]*>/, '')).tag && status > 100) to += `;tag=${toTag || randomToken(10)}`;
    lines.push(`To: ${to}`);
    lines.push(`Call-ID: ${req.get('call-id')}`);
    lines.push(`CSeq: ${req.get('cseq')}`);
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    lines.push('Supported: outbound');
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    return lines.join('\r\n') + '\r\n\r\n' + body;
  }

  // Builds a request; returns { text, branch }.
  buildRequest(method, { uri, to, from, callId, cseq, fromTag = this.fromTag, headers = {},
    body = '', branch = newBranch(), contact = true, maxForwards = 69 }) {
    to = to || `<${uri}>`;
    from = from || `${this.displayName ? `"${this.displayName}" ` : ''}<${this.aor}>`;
    const lines = [
      `${method} ${uri} SIP/2.0`,
      `Via: SIP/2.0/${this.viaTransport} ${this.viaHost};branch=${branch}`,
      `Max-Forwards: ${maxForwards}`,
      `To: ${to}`,
      `From: ${from};tag=${fromTag}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`,
    ];
    if (contact === true) lines.push(`Contact: <${this.contactUri};ob>`);
    else if (contact) lines.push(`Contact: ${contact}`);
    for (const [k, v] of Object.entries(headers)) {
      for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
    }
    lines.push('User-Agent: rtcsipd-tests');
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    return { text: lines.join('\r\n') + '\r\n\r\n' + body, branch };
  }

  // Sends a request and resolves with its final response (provisional ones
  // are in response.provisional); rejects after transactionTimeoutMs.
  request(method, opts) {
    const { text, branch } = this.buildRequest(method, opts);
    return new Promise((resolve, reject) => {
      const t = {
        provisional: [],
        resolve: (msg) => { msg.provisional = t.provisional; msg.sentAt = sentAt; resolve(msg); },
        reject,
      };
      t.timer = setTimeout(() => {
        this.pending.delete(branch);
        reject(new Error(`no final response to ${method} ${opts.uri} in ${this.transactionTimeoutMs} ms`));
      }, this.transactionTimeoutMs);
      this.pending.set(branch, t);
      const sentAt = Date.now();
      this.sendRaw(text);
    });
  }

  _authHeader(challengeResponse, method, uri, password) {
    const isProxy = challengeResponse.status === 407;
    const chal = parseChallenge(challengeResponse.get(isProxy ? 'proxy-authenticate' : 'www-authenticate'));
    this.credentials = { challenge: chal, nc: 1, isProxy };
    return {
      name: isProxy ? 'Proxy-Authorization' : 'Authorization',
      value: digestAuthorization({ challenge: chal, method, uri, username: this.user, password }),
    };
  }

  // REGISTER as JsSIP does.  Returns { challenge, response }: challenge is
  // the 401/407 answered (or null), response the final answer.
  //   expires: the Expires value (0 unregisters)
  //   password: overrides the client's password
  //   reuseCredentials: send Authorization from the last challenge right away
  //     (nonce reuse with the next nc), as a refresh does
  async register({ expires = 600, password = this.password, reuseCredentials = false,
    contact, extraHeaders = {} } = {}) {
    if (!this.reg) this.reg = { callId: randomToken(22), cseq: 0, fromTag: randomToken(10) };
    const uri = `sip:${this.domain}`;
    const regContact = contact || `<${this.contactUri}>;+sip.ice;reg-id=1;` +
      `+sip.instance="<urn:uuid:${this.instanceId}>";expires=${expires}`;
    const base = () => ({
      uri, to: `<${this.aor}>`, callId: this.reg.callId, cseq: ++this.reg.cseq,
      fromTag: this.reg.fromTag, contact: regContact,
      headers: {
        Expires: String(expires),
        Allow: 'INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY',
        Supported: 'path,gruu,outbound',
        ...extraHeaders,
      },
    });
    let first = base();
    if (reuseCredentials && this.credentials) {
      const c = this.credentials;
      c.nc += 1;
      first.headers[c.isProxy ? 'Proxy-Authorization' : 'Authorization'] = digestAuthorization({
        challenge: c.challenge, method: 'REGISTER', uri, username: this.user, password, nc: c.nc,
      });
    }
    let response = await this.request('REGISTER', first);
    let challenge = null;
    if (response.status === 401 || response.status === 407) {
      challenge = response;
      const auth = this._authHeader(response, 'REGISTER', uri, password);
      const second = base();
      second.headers[auth.name] = auth.value;
      response = await this.request('REGISTER', second);
    }
    response.cseqSent = this.reg.cseq;
    return { challenge, response };
  }

  // Sends a MESSAGE to TARGET (a SIP URI); resolves with the final response.
  message(target, body, { contentType = 'text/plain', headers = {} } = {}) {
    return this.request('MESSAGE', {
      uri: target, to: `<${target}>`, callId: randomToken(22), cseq: 1, fromTag: randomToken(10),
      contact: false, body, headers: { 'Content-Type': contentType, ...headers },
    });
  }

  options(target, { headers = {} } = {}) {
    return this.request('OPTIONS', {
      uri: target, to: `<${target}>`, callId: randomToken(22), cseq: 1, fromTag: randomToken(10),
      headers: { Accept: 'application/sdp', ...headers },
    });
  }
}

// A WebRTC answer (as Chromium writes one: UDP/TLS/RTP/SAVPF, ICE, DTLS
// a=setup:SETUP, rtcp-mux) to the audio offer OFFER (SDP text), accepting
// every payload type offered, with its rtpmap/fmtp lines.  Its one host
// candidate is ADDRESS:PORT (by default 192.0.2.2, where nobody answers, so
// ICE never completes) and its fingerprint the one Chromium sent in
// tests/unit/data/sdp/chromium-jssip-answer-audio.sdp.
export function webrtcAnswer(offer, { setup = 'active', address = '192.0.2.2', port = 40125,
  fingerprint = 'sha-256 CC:BF:EB:86:CB:83:F5:E7:4E:BC:26:38:0B:43:58:18:5F:C9:5F:92:1B:97:11:D4:A7:0C:F8:E0:76:B1:A6:C4' } = {}) {
  const lines = offer.split(/\r?\n/);
  const m = lines.find((l) => l.startsWith('m=audio '));
  if (!m) throw new Error('no m=audio line in the offer');
  const pts = m.split(' ').slice(3).filter(Boolean);
  const mid = (lines.find((l) => l.startsWith('a=mid:')) || 'a=mid:0').slice(6);
  const codecLines = lines.filter((l) => {
    const c = l.match(/^a=(?:rtpmap|fmtp):(\d+) /);
    return c && pts.includes(c[1]);
  });
  return [
    'v=0',
    `o=- ${crypto.randomInt(1e9, 2e9)} 2 IN IP4 127.0.0.1`,
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mid}`,
    'a=msid-semantic: WMS',
    `m=audio ${port} UDP/TLS/RTP/SAVPF ${pts.join(' ')}`,
    `c=IN IP4 ${address}`,
    'a=rtcp:9 IN IP4 0.0.0.0',
    `a=candidate:3859889881 1 udp 2122194687 ${address} ${port} typ host generation 0 network-id 1`,
    `a=ice-ufrag:${randomToken(4)}`,
    `a=ice-pwd:${randomToken(24)}`,
    'a=ice-options:trickle',
    `a=fingerprint:${fingerprint}`,
    `a=setup:${setup}`,
    `a=mid:${mid}`,
    'a=sendrecv',
    'a=rtcp-mux',
    ...codecLines,
    `a=ssrc:${crypto.randomInt(1, 2 ** 31)} cname:${randomToken(16)}`,
    '',
  ].join('\r\n');
}

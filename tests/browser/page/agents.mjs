// The SIP agents of the test page: one JsSIP UA and one SIP.js UserAgent,
// driven by the test through window.T (see tap.js), each recording what
// happens to it in T.events (src 'jssip' or 'sipjs').
import * as SIP from '/lib/sip.js/index.js';

const T = window.T;
let jssip = null; // { ua }
let sipjs = null; // { ua, registerer }

function messageDetail(req) {
  return {
    body: req.body,
    contentType: req.getHeader('Content-Type'),
    from: req.from.uri.toString(),
    to: req.to.uri.toString(),
    ruri: req.ruri.toString(),
  };
}

// ---------------------------------------------------------------------------
// JsSIP: new JsSIP.UA({ sockets: [WebSocketInterface(url)], uri, password, register }).

T.jssipStart = (o) => {
  if (o.debug) JsSIP.debug.enable('JsSIP:*');
  else JsSIP.debug.disable();
  const socket = new JsSIP.WebSocketInterface(o.url);
  const ua = new JsSIP.UA({
    sockets: [socket],
    uri: o.uri,
    authorization_user: o.user || undefined,
    password: o.password,
    register: o.register !== false,
    register_expires: o.expires || 600,
    connection_recovery_min_interval: 2,
    connection_recovery_max_interval: 4,
  });
  const rec = (type, d) => T.record('jssip', type, d);
  ua.on('connecting', (e) => rec('connecting', { attempts: e.attempts }));
  ua.on('connected', () => rec('connected'));
  ua.on('disconnected', (e) => rec('disconnected', { error: !!e.error, code: e.code, reason: e.reason }));
  ua.on('registered', (e) => rec('registered', { status: e.response.status_code }));
  ua.on('unregistered', (e) => rec('unregistered', {
    status: e.response ? e.response.status_code : null, cause: e.cause || null,
  }));
  ua.on('registrationFailed', (e) => rec('registrationFailed', {
    cause: e.cause, status: e.response ? e.response.status_code : null,
    reason: e.response ? e.response.reason_phrase : null,
  }));
  ua.on('newMessage', (e) => {
    if (e.originator !== 'remote') return;
    rec('newMessage', messageDetail(e.request)); // JsSIP answers 200 itself
  });
  ua.start();
  jssip = { ua };
  return { version: JsSIP.version, contact: ua.contact.toString() };
};

T.jssipUnregister = () => { jssip.ua.unregister(); };

T.jssipStop = () => {
  if (jssip) jssip.ua.stop();
  jssip = null;
};

// ---------------------------------------------------------------------------
// SIP.js: UserAgent (transportOptions.server, authorizationUsername/Password,
// delegate.onMessage) and a Registerer.

T.sipjsStart = async (o) => {
  const rec = (type, d) => T.record('sipjs', type, d);
  const ua = new SIP.UserAgent({
    uri: SIP.UserAgent.makeURI(o.uri),
    transportOptions: { server: o.url, traceSip: !!o.debug },
    authorizationUsername: o.user,
    authorizationPassword: o.password,
    logLevel: o.debug ? 'debug' : 'warn',
    logConfiguration: false,
    delegate: {
      onConnect: () => rec('connected'),
      onDisconnect: (err) => rec('disconnected', { error: err ? String(err.message || err) : null }),
      onMessage: (message) => {
        rec('newMessage', messageDetail(message.request));
        message.accept();
      },
    },
  });
  const registerer = new SIP.Registerer(ua, { expires: o.expires || 600 });
  registerer.stateChange.addListener((state) => rec('registererState', { state }));
  sipjs = { ua, registerer };
  try {
    await ua.start();
  } catch (e) {
    rec('startFailed', { error: String(e.message || e) });
    return { version: SIP.version, started: false };
  }
  if (o.register !== false) T.sipjsRegister();
  return { version: SIP.version, started: true };
};

T.sipjsRegister = () => {
  const rec = (type, d) => T.record('sipjs', type, d);
  sipjs.registerer.register({
    requestDelegate: {
      onAccept: (r) => rec('registered', { status: r.message.statusCode }),
      onReject: (r) => rec('registrationFailed', {
        status: r.message.statusCode, reason: r.message.reasonPhrase,
      }),
    },
  }).catch((e) => rec('registerError', { error: String(e.message || e) }));
};

T.sipjsUnregister = () => {
  const rec = (type, d) => T.record('sipjs', type, d);
  sipjs.registerer.unregister({
    requestDelegate: {
      onAccept: (r) => rec('unregistered', { status: r.message.statusCode }),
      onReject: (r) => rec('unregisterFailed', {
        status: r.message.statusCode, reason: r.message.reasonPhrase,
      }),
    },
  }).catch((e) => rec('unregisterError', { error: String(e.message || e) }));
};

T.sipjsStop = async () => {
  if (sipjs) await sipjs.ua.stop();
  sipjs = null;
};

T.versions = () => ({ jssip: JsSIP.version, sipjs: SIP.version });

T.ready = true;
T.record('page', 'ready', T.versions());

// The demo phone served by rtcsipd at /: JsSIP registers and calls through
// this gateway (SIP over WebSocket, RFC 7118).  The build bundles this file
// with the npm release of JsSIP (esbuild, gateway/www/meson.build).
//
// One UA at a time, one call at a time.  Every registration and call event
// goes to the log list and to the two status lines as it happens.  For tests
// and for the console: window.demo (the log entries, the UA, the call).

import JsSIP from 'jssip';

const $ = (id) => document.getElementById(id);
const el = {
  account: $('account'), server: $('server'), uri: $('uri'), password: $('password'),
  displayName: $('display-name'), register: $('register'), unregister: $('unregister'),
  regStatus: $('reg-status'),
  dial: $('dial'), target: $('target'), call: $('call'), answer: $('answer'),
  hangup: $('hangup'), callStatus: $('call-status'), dialpad: $('dialpad'),
  audio: $('remote-audio'), log: $('log'),
};

const MEDIA = { audio: true, video: false };
const LOG_MAX = 200;

const state = {
  ua: null,
  registered: false,
  session: null,
  established: false, // the current call is answered (DTMF possible)
  entries: [],        // [{ t, kind: 'ua'|'call'|'error', text }]
};
window.demo = state;

// ?debug in the page's address: JsSIP's own log on the console.
if (new URLSearchParams(location.search).has('debug')) JsSIP.debug.enable('JsSIP:*');
else JsSIP.debug.disable();

el.server.value = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;

function log(kind, text) {
  const entry = { t: Date.now(), kind, text };
  state.entries.push(entry);
  const li = document.createElement('li');
  li.className = kind;
  const time = document.createElement('time');
  time.textContent = new Date(entry.t).toISOString().slice(11, 23);
  li.append(time, ` ${text}`);
  el.log.append(li);
  while (el.log.children.length > LOG_MAX) el.log.firstElementChild.remove();
  li.scrollIntoView({ block: 'nearest' });
}

function setRegStatus(text) {
  el.regStatus.value = text;
  log('ua', text);
}

function setCallStatus(text) {
  el.callStatus.value = text;
  log('call', text);
}

// "404 Not Found" of a SIP response, or '' for anything else.
function responseText(message) {
  return message && message.status_code ? `${message.status_code} ${message.reason_phrase}` : '';
}

// "cause (404 Not Found)", or the cause alone.
function causeText(e) {
  const response = responseText(e.response || e.message);
  return response ? `${e.cause} (${response})` : String(e.cause);
}

function render() {
  const inCall = Boolean(state.session);
  const ringing = inCall && state.session.direction === 'incoming' && !state.established;
  el.register.disabled = state.registered;
  el.unregister.disabled = !state.ua;
  el.call.disabled = inCall;
  el.answer.disabled = !ringing;
  el.hangup.disabled = !inCall;
  for (const b of el.dialpad.querySelectorAll('button')) b.disabled = !state.established;
}

// ---- the UA: connection and registration

function stopUa() {
  if (!state.ua) return;
  const ua = state.ua;
  state.ua = null;
  state.registered = false;
  ua.removeAllListeners();
  ua.stop();
}

// Starts a UA with the account fields; REGISTER: register at once.
// Returns the UA, or null (the reason is on the status line).
function startUa(register) {
  stopUa();
  let ua;
  try {
    const socket = new JsSIP.WebSocketInterface(el.server.value.trim());
    ua = new JsSIP.UA({
      sockets: [socket],
      uri: el.uri.value.trim(),
      password: el.password.value || undefined,
      display_name: el.displayName.value.trim() || undefined,
      register,
    });
  } catch (e) {
    setRegStatus(`cannot start: ${e.message || e}`);
    return null;
  }
  state.ua = ua;
  ua.on('connecting', () => log('ua', `connecting to ${el.server.value.trim()}`));
  ua.on('connected', () => log('ua', 'connected'));
  ua.on('disconnected', (e) => {
    if (!e.error) {
      log('ua', 'disconnected');
      return;
    }
    state.registered = false;
    setRegStatus(`cannot connect to ${el.server.value.trim()} (JsSIP keeps trying)`);
    render();
  });
  ua.on('registered', (e) => {
    state.registered = true;
    setRegStatus(`registered as ${ua.configuration.uri} (${responseText(e.response)})`);
    render();
  });
  ua.on('unregistered', (e) => {
    state.registered = false;
    setRegStatus(`unregistered${e.response ? ` (${responseText(e.response)})` : ''}`);
    render();
  });
  ua.on('registrationFailed', (e) => {
    state.registered = false;
    setRegStatus(`registration failed: ${causeText(e)}`);
    render();
  });
  ua.on('newRTCSession', (e) => onNewSession(e.session, e.request));
  ua.on('newMessage', (e) => {
    if (e.originator === 'remote') log('ua', `message from ${e.request.from.uri}: ${e.request.body}`);
  });
  ua.start();
  render();
  return ua;
}

el.account.addEventListener('submit', (ev) => {
  ev.preventDefault();
  setRegStatus('registering');
  startUa(true);
});

el.unregister.addEventListener('click', () => {
  const ua = state.ua;
  if (!ua) return;
  if (!ua.isRegistered()) {
    stopUa();
    setRegStatus('not registered (connection closed)');
    render();
    return;
  }
  ua.once('unregistered', () => {
    if (state.ua !== ua || state.session) return;
    stopUa();
    log('ua', 'connection closed');
    render();
  });
  ua.unregister();
});

// ---- calls

// "echo" -> sip:echo@DOMAIN (the domain of the SIP user); a URI as it is.
function targetUri(target) {
  if (/^sips?:/i.test(target)) return target;
  if (target.includes('@')) return `sip:${target}`;
  const user = JsSIP.URI.parse(el.uri.value.trim());
  return user ? `sip:${target}@${user.host}` : target;
}

function attachRemoteAudio(pc) {
  pc.addEventListener('track', (e) => {
    el.audio.srcObject = e.streams[0] || new MediaStream([e.track]);
  });
}

function onNewSession(session, request) {
  if (state.session) {
    if (session.direction === 'incoming') session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
    return;
  }
  state.session = session;
  state.established = false;
  if (session.direction === 'incoming') {
    setCallStatus(`incoming call from ${request.from.uri}`);
  }
  // An outgoing call has its RTCPeerConnection already; an incoming one
  // gets it when answered.
  if (session.connection) attachRemoteAudio(session.connection);
  session.on('peerconnection', (e) => attachRemoteAudio(e.peerconnection));
  session.on('connecting', () => log('call', 'connecting (local media ready)'));
  session.on('sending', () => log('call', `INVITE to ${session.remote_identity.uri}`));
  session.on('progress', (e) => setCallStatus(`progress${e.response ? ` (${responseText(e.response)})` : ''}`));
  session.on('accepted', (e) => {
    state.established = true;
    setCallStatus(`accepted${e.response ? ` (${responseText(e.response)})` : ''}`);
    render();
  });
  session.on('confirmed', () => setCallStatus('confirmed: in call'));
  session.on('newDTMF', (e) => {
    if (e.originator === 'remote') log('call', `DTMF received: ${e.dtmf.tone}`);
  });
  session.on('ended', (e) => endSession(session, `ended by ${e.originator}: ${causeText(e)}`));
  session.on('failed', (e) => endSession(session, `failed: ${causeText(e)}`));
  render();
}

function endSession(session, text) {
  if (state.session !== session) return;
  state.session = null;
  state.established = false;
  el.audio.srcObject = null;
  setCallStatus(text);
  render();
}

el.dial.addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (state.session) return;
  const ua = state.ua || startUa(false); // calling needs no registration
  if (!ua) return;
  const target = targetUri(el.target.value.trim());
  setCallStatus(`calling ${target}`);
  try {
    ua.call(target, { mediaConstraints: MEDIA });
  } catch (e) {
    state.session = null;
    setCallStatus(`cannot call: ${e.message || e}`);
    render();
  }
});

el.answer.addEventListener('click', () => {
  if (state.session && state.session.direction === 'incoming') {
    setCallStatus('answering');
    state.session.answer({ mediaConstraints: MEDIA });
  }
});

el.hangup.addEventListener('click', () => {
  if (state.session) state.session.terminate();
});

// RFC 4733 telephone-events on the media path, not SIP INFO.
el.dialpad.addEventListener('click', (ev) => {
  const tone = ev.target.closest('button')?.value;
  if (!tone || !state.session || !state.established) return;
  try {
    state.session.sendDTMF(tone, { transportType: JsSIP.C.DTMF_TRANSPORT.RFC2833 });
    log('call', `DTMF sent: ${tone}`);
  } catch (e) {
    log('error', `DTMF ${tone}: ${e.message || e}`);
  }
});

window.addEventListener('beforeunload', () => {
  if (state.session) state.session.terminate();
  stopUa();
});

render();
log('ua', `JsSIP ${JsSIP.version} ready`);

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

// ---------------------------------------------------------------------------
// Calls with real media (rtcsipd's echo target, or through the PBX): one
// call per library at a time, its peer connection read back by T.callMedia.
//   JsSIP:  T.jssipCall({ target, iceServers }) -> events of src 'jssip-call'
//   SIP.js: T.sipjsCall({ target, iceServers }) -> events of src 'sipjs-call'
// Incoming calls, answered: T.jssipAcceptCalls / T.sipjsAcceptCalls (same
// event sources).  Both need the UA started first (T.jssipStart /
// T.sipjsStart; register for incoming calls).  Hang up with T.jssipHangup /
// T.sipjsHangup.

let jssipSession = null;
let sipjsInviter = null; // the current SIP.js session: an Inviter, or an Invitation

function responseDetail(r) {
  return r ? { status: r.status_code ?? r.statusCode, reason: r.reason_phrase ?? r.reasonPhrase } : {};
}

// O.badFingerprint: the offer as sent gets a made-up a=fingerprint (the
// peer connection keeps its real one), as JsSIP's 'sdp' event allows.
T.jssipCall = (o) => {
  const rec = (type, d) => T.record('jssip-call', type, d);
  const eventHandlers = {};
  if (o.badFingerprint) {
    eventHandlers.sdp = (e) => {
      if (e.originator !== 'local' || e.type !== 'offer') return;
      const fake = Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) & 255).toString(16).toUpperCase()
        .padStart(2, '0')).join(':');
      e.sdp = e.sdp.replace(/^a=fingerprint:sha-256 \S+/mg, `a=fingerprint:sha-256 ${fake}`);
      rec('sdpModified', { fingerprint: fake });
    };
  }
  const session = jssip.ua.call(o.target, {
    mediaConstraints: { audio: true, video: false },
    pcConfig: { iceServers: o.iceServers || [] },
    eventHandlers,
  });
  jssipSession = session;
  jssipSessionEvents(session, rec);
  return { id: session.id };
};

function jssipSessionEvents(session, rec) {
  session.on('peerconnection', () => rec('peerconnection'));
  session.on('connecting', () => rec('connecting'));
  session.on('sending', () => rec('sending'));
  session.on('progress', (e) => rec('progress', responseDetail(e.response)));
  session.on('accepted', (e) => rec('accepted', responseDetail(e.response)));
  session.on('confirmed', () => rec('confirmed'));
  session.on('failed', (e) => rec('failed', {
    originator: e.originator, cause: e.cause, ...responseDetail(e.message && e.message.status_code ? e.message : null),
  }));
  session.on('ended', (e) => rec('ended', { originator: e.originator, cause: e.cause }));
}

// Incoming calls (JsSIP): from now on every INVITE to the UA is answered
// (session.answer) with the microphone; its events go to src 'jssip-call'
// (first 'incoming'), and T.callMedia / T.jssipHangup work on it.
T.jssipAcceptCalls = (o = {}) => {
  const rec = (type, d) => T.record('jssip-call', type, d);
  jssip.ua.on('newRTCSession', (e) => {
    if (e.originator !== 'remote') return;
    const session = e.session;
    jssipSession = session;
    rec('incoming', {
      from: e.request.from.uri.toString(), ruri: e.request.ruri.toString(), callId: e.request.call_id,
      sdp: e.request.body,
    });
    jssipSessionEvents(session, rec);
    try {
      session.answer({
        mediaConstraints: { audio: true, video: false },
        pcConfig: { iceServers: o.iceServers || [] },
      });
    } catch (err) {
      rec('answerError', { error: String(err.message || err) });
    }
  });
};

T.jssipHangup = () => {
  if (jssipSession && !jssipSession.isEnded()) jssipSession.terminate();
};

T.sipjsCall = async (o) => {
  const rec = (type, d) => T.record('sipjs-call', type, d);
  // The UA of T.sipjsStart has SIP.js's default ICE servers (a public STUN
  // server); calls here use O.iceServers (default none): the UA's factory
  // options are read when the Inviter makes its session description handler.
  const ua = sipjs.ua;
  ua.configuration.sessionDescriptionHandlerFactoryOptions = {
    ...(ua.configuration.sessionDescriptionHandlerFactoryOptions || {}),
    peerConnectionConfiguration: { iceServers: o.iceServers || [] },
  };
  const inviter = new SIP.Inviter(ua, SIP.UserAgent.makeURI(o.target), {
    sessionDescriptionHandlerOptions: { constraints: { audio: true, video: false } },
    // O.earlyMedia: SDP in a 1xx sets up media (SIP.js's default: it does not)
    ...(o.earlyMedia ? { earlyMedia: true } : {}),
  });
  sipjsInviter = inviter;
  inviter.stateChange.addListener((state) => rec('state', { state }));
  try {
    await inviter.invite({
      requestDelegate: {
        onProgress: (r) => rec('progress', responseDetail(r.message)),
        onAccept: (r) => rec('accepted', responseDetail(r.message)),
        onReject: (r) => rec('rejected', responseDetail(r.message)),
      },
    });
    rec('inviteSent');
  } catch (e) {
    rec('inviteError', { error: String(e.message || e) });
  }
  return { state: inviter.state };
};

// Incoming calls (SIP.js): from now on every INVITE to the UserAgent is
// accepted (delegate.onInvite -> invitation.accept()) with the microphone; its
// events go to src 'sipjs-call' (first 'incoming'), and T.callMedia /
// T.sipjsHangup work on it.
T.sipjsAcceptCalls = (o = {}) => {
  const rec = (type, d) => T.record('sipjs-call', type, d);
  const ua = sipjs.ua;
  ua.configuration.sessionDescriptionHandlerFactoryOptions = {
    ...(ua.configuration.sessionDescriptionHandlerFactoryOptions || {}),
    peerConnectionConfiguration: { iceServers: o.iceServers || [] },
  };
  ua.delegate = ua.delegate || {};
  ua.delegate.onInvite = (invitation) => {
    sipjsInviter = invitation;
    const req = invitation.request;
    rec('incoming', { from: req.from.uri.toString(), ruri: req.ruri.toString(), callId: req.callId, sdp: req.body });
    invitation.stateChange.addListener((state) => rec('state', { state }));
    invitation.accept({ sessionDescriptionHandlerOptions: { constraints: { audio: true, video: false } } })
      .then(() => rec('acceptSent'))
      .catch((e) => rec('acceptError', { error: String(e.message || e) }));
  };
};

T.sipjsHangup = async () => {
  const s = sipjsInviter;
  if (!s) return null;
  if (s.state === SIP.SessionState.Established) await s.bye();
  else if (s.state === SIP.SessionState.Initial || s.state === SIP.SessionState.Establishing) await s.cancel();
  return s.state;
};

function callPeerConnection(lib) {
  if (lib === 'jssip') return jssipSession && jssipSession.connection;
  if (lib === 'sipjs') return sipjsInviter && sipjsInviter.sessionDescriptionHandler &&
    sipjsInviter.sessionDescriptionHandler.peerConnection;
  throw new Error(`no such library: ${lib}`);
}

// The media of the current call of LIB ('jssip' or 'sipjs'): the remote audio
// is played (muted <audio>) and measured by a WebAudio AnalyserNode, and
// getStats is polled every 200 ms until both RTP counters pass MINPACKETS
// and the remote audio was heard, or TIMEOUTMS.  Returns what was seen:
// { connectionState, pair, out: {packetsSent, ...}, in: {packetsReceived,
//   audioLevelMax, totalAudioEnergy, energyStart}, source: {...},
//   analyser: {rmsMax, samples}, elapsedMs, polls }.
T.callMedia = async ({ lib, minPackets = 200, timeoutMs = 15000 }) => {
  const pc = callPeerConnection(lib);
  if (!pc) throw new Error(`${lib}: no peer connection`);
  return T.peerConnectionMedia(pc, { minPackets, timeoutMs });
};

// The same for any RTCPeerConnection PC.
T.peerConnectionMedia = async (pc, { minPackets = 200, timeoutMs = 15000 } = {}) => {
  const tracks = pc.getReceivers().map((r) => r.track).filter((t) => t && t.kind === 'audio');
  const remote = new MediaStream(tracks);
  // Chromium renders (and so decodes and measures) remote WebRTC audio only
  // when something consumes it: an <audio> element, and WebAudio on top.
  const el = document.createElement('audio');
  el.muted = true;
  el.autoplay = true;
  el.srcObject = remote;
  document.body.appendChild(el);
  el.play().catch(() => {});
  let ctx = null;
  let analyser = null;
  try {
    ctx = new AudioContext();
    await Promise.race([ctx.resume(), new Promise((r) => setTimeout(r, 1000))]);
    analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    if (tracks.length) ctx.createMediaStreamSource(remote).connect(analyser);
  } catch (e) {
    T.record('media', 'webaudioError', { error: String(e.message || e) });
  }
  const buf = new Float32Array(2048);
  const r = {
    tracks: tracks.length,
    audioContext: ctx ? ctx.state : null,
    out: {}, in: { audioLevelMax: 0 }, source: {}, analyser: { rmsMax: 0, samples: 0 }, polls: 0,
  };
  const t0 = Date.now();
  for (;;) {
    const st = await pc.getStats();
    r.polls++;
    const pairs = []; // every ICE candidate pair: what the checks did (for failure reports)
    st.forEach((x) => {
      if (x.type === 'candidate-pair') {
        const l = st.get(x.localCandidateId);
        const rc = st.get(x.remoteCandidateId);
        pairs.push({
          local: l && `${l.address}:${l.port} ${l.protocol}`, remote: rc && `${rc.address}:${rc.port} ${rc.protocol}`,
          state: x.state, nominated: x.nominated, requestsSent: x.requestsSent,
          responsesReceived: x.responsesReceived, requestsReceived: x.requestsReceived, responsesSent: x.responsesSent,
        });
      }
      if (x.type === 'outbound-rtp' && x.kind === 'audio') {
        r.out = { packetsSent: x.packetsSent, bytesSent: x.bytesSent, ssrc: x.ssrc };
      } else if (x.type === 'inbound-rtp' && x.kind === 'audio') {
        if (r.in.energyStart === undefined) r.in.energyStart = x.totalAudioEnergy || 0;
        r.in.packetsReceived = x.packetsReceived;
        r.in.packetsLost = x.packetsLost;
        r.in.bytesReceived = x.bytesReceived;
        r.in.ssrc = x.ssrc;
        r.in.totalAudioEnergy = x.totalAudioEnergy;
        r.in.totalSamplesDuration = x.totalSamplesDuration;
        r.in.audioLevelMax = Math.max(r.in.audioLevelMax, x.audioLevel || 0);
      } else if (x.type === 'media-source' && x.kind === 'audio') {
        r.source = { audioLevel: x.audioLevel, totalAudioEnergy: x.totalAudioEnergy };
      } else if (x.type === 'transport' && x.selectedCandidatePairId) {
        const p = st.get(x.selectedCandidatePairId);
        const l = p && st.get(p.localCandidateId);
        const rc = p && st.get(p.remoteCandidateId);
        if (p) {
          r.pair = {
            state: p.state,
            local: l && `${l.address}:${l.port} ${l.candidateType}`,
            remote: rc && `${rc.address}:${rc.port} ${rc.candidateType}`,
          };
        }
        r.dtlsState = x.dtlsState;
        r.srtpCipher = x.srtpCipher;
      }
    });
    if (analyser) {
      // Several reads per poll: the fake device beeps briefly once a second.
      for (let i = 0; i < 4; i++) {
        analyser.getFloatTimeDomainData(buf);
        let sum = 0;
        for (let j = 0; j < buf.length; j++) sum += buf[j] * buf[j];
        r.analyser.rmsMax = Math.max(r.analyser.rmsMax, Math.sqrt(sum / buf.length));
        r.analyser.samples++;
        if (i < 3) await new Promise((res) => setTimeout(res, 50));
      }
    }
    if (pairs.length) r.pairs = pairs; // the last seen: a closed connection has none
    r.elapsedMs = Date.now() - t0;
    if (pc.connectionState === 'closed' || pc.connectionState === 'failed') break;
    const heard = (r.in.totalAudioEnergy || 0) > (r.in.energyStart || 0) || r.in.audioLevelMax > 0 ||
      r.analyser.rmsMax > 0.01;
    if (((r.out.packetsSent || 0) > minPackets && (r.in.packetsReceived || 0) > minPackets && heard) ||
      r.elapsedMs > timeoutMs) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  r.connectionState = pc.connectionState;
  r.iceConnectionState = pc.iceConnectionState;
  try { el.srcObject = null; el.remove(); } catch { /* page going */ }
  if (ctx) ctx.close().catch(() => {});
  return r;
};

// ---------------------------------------------------------------------------
// In the middle of a call (midcall.test.mjs), on the current call of T.jssipCall
// / T.jssipAcceptCalls / T.sipjsCall / T.sipjsAcceptCalls.  What happens is
// recorded to src 'jssip-mid' / 'sipjs-mid'.

function midRec(lib) {
  return (type, d) => T.record(`${lib}-mid`, type, d);
}

// JsSIP: records the session's hold/unhold (either side), re-INVITEs and
// UPDATEs received, INFOs and every SDP it sets (from now on).
T.jssipWatch = () => {
  const rec = midRec('jssip');
  const s = jssipSession;
  if (!s) throw new Error('jssip: no session');
  s.on('hold', (e) => rec('hold', { originator: e.originator }));
  s.on('unhold', (e) => rec('unhold', { originator: e.originator }));
  s.on('reinvite', (e) => rec('reinvite', { sdp: e.request.body || '' }));
  s.on('update', (e) => rec('update', { sdp: e.request.body || '' }));
  s.on('newInfo', (e) => rec('newInfo', { originator: e.originator, contentType: e.info.contentType, body: e.info.body }));
  s.on('newDTMF', (e) => rec('newDTMF', { originator: e.originator, tone: e.dtmf.tone }));
  s.on('sdp', (e) => rec('sdp', { originator: e.originator, type: e.type, sdp: e.sdp }));
  return { id: s.id };
};

// JsSIP session.hold() / unhold() (a re-INVITE): records 'holdDone' /
// 'unholdDone' when answered 2xx; returns what hold()/unhold() returned.
T.jssipHold = ({ hold }) => {
  const rec = midRec('jssip');
  const done = () => rec(hold ? 'holdDone' : 'unholdDone');
  return hold ? jssipSession.hold({}, done) : jssipSession.unhold({}, done);
};

// JsSIP session.renegotiate({ rtcOfferConstraints: { iceRestart } }): 'renegotiateDone' on a 2xx.
T.jssipRenegotiate = ({ iceRestart = false } = {}) => {
  const rec = midRec('jssip');
  return jssipSession.renegotiate({ rtcOfferConstraints: { iceRestart } }, () => rec('renegotiateDone'));
};

// JsSIP session.sendDTMF(TONES, { transportType: 'INFO' | 'RFC2833', duration, interToneGap }).
T.jssipDtmf = ({ tones, transportType = 'INFO', duration = 160, interToneGap = 200 }) => {
  const rec = midRec('jssip');
  try {
    jssipSession.sendDTMF(tones, { transportType, duration, interToneGap });
    if (transportType === 'RFC2833') {
      const sender = jssipSession.connection.getSenders().find((x) => x.track && x.track.kind === 'audio');
      return { ok: true, canInsertDTMF: !!(sender && sender.dtmf && sender.dtmf.canInsertDTMF) };
    }
    return { ok: true };
  } catch (e) {
    rec('dtmfError', { error: String(e.message || e) });
    return { ok: false, error: String(e.message || e) };
  }
};

// JsSIP session.refer(TARGET): the ReferSubscriber's events, as 'refer-<event>'.
T.jssipRefer = ({ target }) => {
  const rec = midRec('jssip');
  const ev = (name) => (e) => rec(`refer-${name}`, {
    status: e && e.response ? e.response.status_code : (e && e.status_line ? e.status_line.status_code : null),
    cause: e && e.cause ? String(e.cause) : null,
  });
  jssipSession.refer(target, {
    eventHandlers: {
      requestSucceeded: ev('requestSucceeded'),
      requestFailed: ev('requestFailed'),
      trying: ev('trying'),
      progress: ev('progress'),
      accepted: ev('accepted'),
      failed: ev('failed'),
    },
  });
  return true;
};

// SIP.js session.refer(makeURI(TARGET), { requestDelegate, onNotify }): the
// REFER's answer as 'refer-accepted' / 'refer-rejected' (status), each NOTIFY
// of the refer subscription as 'refer-notify' ({ event, subscriptionState,
// contentType, body }; accepted with a 200), a throw as 'refer-error'.
T.sipjsRefer = async ({ target }) => {
  const rec = midRec('sipjs');
  try {
    await sipjsInviter.refer(SIP.UserAgent.makeURI(target), {
      requestDelegate: {
        onAccept: (r) => rec('refer-accepted', responseDetail(r.message)),
        onReject: (r) => rec('refer-rejected', responseDetail(r.message)),
      },
      onNotify: (n) => {
        const req = n.request;
        rec('refer-notify', {
          event: req.getHeader('Event'), subscriptionState: req.getHeader('Subscription-State'),
          contentType: req.getHeader('Content-Type'), body: req.body || '',
        });
        n.accept();
      },
    });
    rec('refer-sent', { target });
    return true;
  } catch (e) {
    rec('refer-error', { error: String(e.message || e) });
    return false;
  }
};

// SIP.js: records re-INVITEs received (the session's delegate.onInvite, which
// SIP.js calls after it answered them) and INFOs.
T.sipjsWatch = () => {
  const rec = midRec('sipjs');
  const s = sipjsInviter;
  if (!s) throw new Error('sipjs: no session');
  s.delegate = {
    ...(s.delegate || {}),
    onInvite: (req, resp, status) => rec('reinvite', { sdp: req.body || '', status, answer: resp.body || '' }),
    onInfo: (info) => {
      rec('newInfo', { contentType: info.request.getHeader('Content-Type'), body: info.request.body });
      info.accept();
    },
  };
  return { state: s.state };
};

// SIP.js re-INVITE: session.invite({ sessionDescriptionHandlerOptions: { hold, offerOptions: { iceRestart } } })
// -> 'reinviteAccepted' / 'reinviteRejected' (status) / 'reinviteError'.
T.sipjsReinvite = async ({ hold = false, iceRestart = false } = {}) => {
  const rec = midRec('sipjs');
  const sdh = { hold, constraints: { audio: true, video: false } };
  if (iceRestart) sdh.offerOptions = { iceRestart: true };
  try {
    await sipjsInviter.invite({
      sessionDescriptionHandlerOptions: sdh,
      requestDelegate: {
        onAccept: (r) => rec('reinviteAccepted', { ...responseDetail(r.message), sdp: r.message.body || '' }),
        onReject: (r) => rec('reinviteRejected', responseDetail(r.message)),
      },
    });
    rec('reinviteSent', { hold, iceRestart });
    return true;
  } catch (e) {
    rec('reinviteError', { error: String(e.message || e) });
    return false;
  }
};

// SIP.js INFO DTMF: one session.info() per tone of TONES, application/dtmf-relay
// "Signal=T\r\nDuration=D", GAPMS apart; each answer recorded as 'infoAccepted' / 'infoRejected'.
T.sipjsDtmf = async ({ tones, duration = 160, gapMs = 250 }) => {
  const rec = midRec('sipjs');
  for (const tone of tones) {
    try {
      await sipjsInviter.info({
        requestOptions: {
          body: { contentDisposition: 'render', contentType: 'application/dtmf-relay',
            content: `Signal=${tone}\r\nDuration=${duration}` },
        },
        requestDelegate: {
          onAccept: (r) => rec('infoAccepted', { tone, ...responseDetail(r.message) }),
          onReject: (r) => rec('infoRejected', { tone, ...responseDetail(r.message) }),
        },
      });
    } catch (e) {
      rec('dtmfError', { tone, error: String(e.message || e) });
      return false;
    }
    await new Promise((res) => setTimeout(res, gapMs));
  }
  return true;
};

// One getStats snapshot of the current call of LIB: { t, connectionState,
// in: { packetsReceived, ssrc }, out: { packetsSent, ssrc }, pairId,
// pairChanges, dtlsState, localUfrag, remoteUfrag (of the current remote
// description), directions: [{ direction, current }] }.  null without a peer connection.
T.callStats = async ({ lib }) => {
  const pc = callPeerConnection(lib);
  if (!pc) return null;
  const st = await pc.getStats();
  const r = {
    t: Date.now(), connectionState: pc.connectionState, iceConnectionState: pc.iceConnectionState,
    signalingState: pc.signalingState, in: { packetsReceived: 0 }, out: { packetsSent: 0 },
  };
  st.forEach((x) => {
    if (x.type === 'inbound-rtp' && x.kind === 'audio') {
      r.in = { packetsReceived: x.packetsReceived, ssrc: x.ssrc, bytesReceived: x.bytesReceived };
    } else if (x.type === 'outbound-rtp' && x.kind === 'audio') {
      r.out = { packetsSent: x.packetsSent, ssrc: x.ssrc };
    } else if (x.type === 'transport') {
      r.pairId = x.selectedCandidatePairId || null;
      r.pairChanges = x.selectedCandidatePairChanges;
      r.dtlsState = x.dtlsState;
      r.localUfrag = x.iceLocalUsernameFragment;
    }
  });
  const rd = pc.remoteDescription && pc.remoteDescription.sdp;
  const m = rd && rd.match(/^a=ice-ufrag:(\S+)/m);
  r.remoteUfrag = m ? m[1] : null;
  r.directions = pc.getTransceivers().map((x) => ({ direction: x.direction, current: x.currentDirection }));
  return r;
};

T.versions = () => ({ jssip: JsSIP.version, sipjs: SIP.version });

T.ready = true;
T.record('page', 'ready', T.versions());

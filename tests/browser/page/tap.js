// window.T: what the test reads back from the page.
//   T.events: [{ t, src, type, ...detail }] recorded by the agents
//   T.frames: [{ t, dir: 'out'|'in', url, data }] every text frame sent or
//             received on any WebSocket of the page (the SIP messages)
//   T.pcStates: [{ t, pc, kind: 'ice'|'connection'|'dtls', state }] every
//             state change of every RTCPeerConnection of the page (its ICE
//             connection state, its connection state, and the state of its
//             first sender's DTLS transport), PC numbering them from 1
//   T.ready / T.loadError: set by agents.mjs once the libraries are loaded
// Times (t) are Date.now()-based, the frames' and the states' to a fraction
// of a millisecond (performance.timeOrigin + performance.now()), so that the
// test can compare them with each other and with its own clock.
(function () {
  'use strict';
  var T = window.T = { events: [], frames: [], pcStates: [], ready: false, loadError: null };
  T.now = function () { return performance.timeOrigin + performance.now(); };
  var logEl = null;

  T.record = function (src, type, detail) {
    var e = Object.assign({ t: Date.now(), src: src, type: type }, detail || {});
    T.events.push(e);
    try {
      logEl = logEl || document.getElementById('log');
      if (logEl) logEl.textContent += new Date(e.t).toISOString().slice(11, 23) + ' ' + src + ' ' + type +
        (detail ? ' ' + JSON.stringify(detail) : '') + '\n';
    } catch (err) { /* the log on screen is only for screenshots */ }
    return e;
  };

  // The WebSocket tap: a subclass that records frames, installed before the
  // libraries are loaded (both create their sockets with `new WebSocket`).
  var NativeWebSocket = window.WebSocket;
  function frameText(data) {
    return typeof data === 'string' ? data : '[binary ' + (data.byteLength || data.size || 0) + ' bytes]';
  }
  class TapWebSocket extends NativeWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      var self = this;
      this.addEventListener('message', function (ev) {
        T.frames.push({ t: T.now(), dir: 'in', url: self.url, data: frameText(ev.data) });
      });
      this.addEventListener('open', function () {
        T.record('ws', 'open', { url: self.url, protocol: self.protocol });
      });
      this.addEventListener('close', function (ev) {
        T.record('ws', 'close', { url: self.url, code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
      });
      this.addEventListener('error', function () {
        T.record('ws', 'error', { url: self.url });
      });
    }

    send(data) {
      T.frames.push({ t: T.now(), dir: 'out', url: this.url, data: frameText(data) });
      return super.send(data);
    }
  }
  window.WebSocket = TapWebSocket;

  // The peer connection tap: a subclass that records its state changes, for
  // the same reason installed before the libraries are loaded.
  var NativePeerConnection = window.RTCPeerConnection;
  var pcCount = 0;
  class TapPeerConnection extends NativePeerConnection {
    constructor(config, constraints) {
      super(config, constraints);
      var self = this, id = ++pcCount, dtls = null;
      var add = function (kind, state) { T.pcStates.push({ t: T.now(), pc: id, kind: kind, state: state }); };
      // the DTLS transport exists once a description is set
      var watchDtls = function () {
        var s = self.getSenders()[0] || (self.getReceivers()[0] || null);
        var tr = s && s.transport;
        if (!tr || tr === dtls) return;
        dtls = tr;
        add('dtls', tr.state);
        tr.addEventListener('statechange', function () { add('dtls', tr.state); });
      };
      this.addEventListener('iceconnectionstatechange', function () { add('ice', self.iceConnectionState); });
      this.addEventListener('connectionstatechange', function () { watchDtls(); add('connection', self.connectionState); });
      this.addEventListener('signalingstatechange', watchDtls);
    }
  }
  window.RTCPeerConnection = TapPeerConnection;

  window.addEventListener('error', function (ev) {
    if (!T.ready && !T.loadError) T.loadError = String(ev.message || ev);
  });
}());

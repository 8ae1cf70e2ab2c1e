// window.T: what the test reads back from the page.
//   T.events: [{ t, src, type, ...detail }] recorded by the agents
//   T.frames: [{ t, dir: 'out'|'in', url, data }] every text frame sent or
//             received on any WebSocket of the page (the SIP messages)
//   T.ready / T.loadError: set by agents.mjs once the libraries are loaded
(function () {
  'use strict';
  var T = window.T = { events: [], frames: [], ready: false, loadError: null };
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
        T.frames.push({ t: Date.now(), dir: 'in', url: self.url, data: frameText(ev.data) });
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
      T.frames.push({ t: Date.now(), dir: 'out', url: this.url, data: frameText(data) });
      return super.send(data);
    }
  }
  window.WebSocket = TapWebSocket;

  window.addEventListener('error', function (ev) {
    if (!T.ready && !T.loadError) T.loadError = String(ev.message || ev);
  });
}());

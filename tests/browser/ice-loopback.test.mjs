// WebRTC media from Chromium over 127.0.0.1 only: the recipe of
// lib/browser.mjs (runInLoopbackNetns + launchChromium({ loopbackIce: true }))
// that the browser tests with real calls to rtcsipd rely on.  Two
// RTCPeerConnections in one page send the fake microphone's audio to each
// other; getStats must show that every candidate and the selected pair are in
// 127.0.0.0/8 and that media flowed.
import { runInLoopbackNetns, startWebServer, launchChromium, withAgentPage, nonLoopbackAddresses } from './lib/browser.mjs';

// Re-runs this file in a fresh network namespace with only lo (the parent
// exits here); must come before node:test is loaded.
await runInLoopbackNetns();

const { default: test } = await import('node:test');
const { default: assert } = await import('node:assert/strict');
const { withEnv } = await import('../lib/harness.mjs');

const in127 = (a) => typeof a === 'string' && /^127\.\d+\.\d+\.\d+$/.test(a);

// In the page: two peer connections, audio from the fake device both ways,
// candidates exchanged as they come; waits until the pair has carried MINPACKETS
// packets each way (or TIMEOUTMS), then returns what getStats says.
async function loopbackCall({ minPackets, timeoutMs }) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const a = new RTCPeerConnection();
  const b = new RTCPeerConnection();
  const gathered = { a: [], b: [] };
  a.onicecandidate = (e) => { if (e.candidate) { gathered.a.push(e.candidate.candidate); b.addIceCandidate(e.candidate); } };
  b.onicecandidate = (e) => { if (e.candidate) { gathered.b.push(e.candidate.candidate); a.addIceCandidate(e.candidate); } };
  let received = 0;
  a.ontrack = () => { received++; };
  b.ontrack = () => { received++; };
  stream.getTracks().forEach((t) => a.addTrack(t, stream));
  await a.setLocalDescription();
  await b.setRemoteDescription(a.localDescription);
  stream.getTracks().forEach((t) => b.addTrack(t, stream)); // reuses the offered transceiver: sendrecv
  await b.setLocalDescription();
  await a.setRemoteDescription(b.localDescription);

  const summary = async (pc) => {
    const st = await pc.getStats();
    const out = { candidates: [], rtp: {} };
    st.forEach((x) => {
      if (x.type === 'local-candidate' || x.type === 'remote-candidate') {
        out.candidates.push({ type: x.type, address: x.address, port: x.port, candidateType: x.candidateType });
      }
      if (x.type === 'transport' && x.selectedCandidatePairId) {
        const p = st.get(x.selectedCandidatePairId);
        const l = st.get(p.localCandidateId);
        const r = st.get(p.remoteCandidateId);
        out.pair = {
          state: p.state, packetsSent: p.packetsSent, packetsReceived: p.packetsReceived,
          local: { address: l.address, port: l.port, candidateType: l.candidateType },
          remote: { address: r.address, port: r.port, candidateType: r.candidateType },
        };
      }
      if (x.type === 'outbound-rtp') out.rtp.packetsSent = x.packetsSent;
      if (x.type === 'inbound-rtp') out.rtp.packetsReceived = x.packetsReceived;
    });
    return out;
  };
  const t0 = Date.now();
  let sa;
  let sb;
  for (;;) {
    sa = await summary(a);
    sb = await summary(b);
    const done = sa.pair && sb.pair && sa.pair.packetsSent > minPackets && sa.pair.packetsReceived > minPackets &&
      sa.rtp.packetsSent > minPackets && sa.rtp.packetsReceived > minPackets &&
      sb.rtp.packetsSent > minPackets && sb.rtp.packetsReceived > minPackets;
    if (done || Date.now() - t0 > timeoutMs) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const r = { gathered, a: sa, b: sb, states: [a.connectionState, b.connectionState], tracks: received };
  a.close();
  b.close();
  stream.getTracks().forEach((t) => t.stop());
  return r;
}

test('Chromium sends WebRTC audio over 127.0.0.1 only (loopback-only network namespace)',
  { timeout: 90000 }, (t) => withEnv('browser-ice-loopback', async (env) => {
    assert.deepEqual(nonLoopbackAddresses(), [], 'the test runs in a network namespace with loopback only');
    const web = await startWebServer();
    env.defer(() => web.close());
    const browser = await launchChromium({ loopbackIce: true });
    env.defer(() => browser.close());

    await withAgentPage(browser, web, 'ice-loopback', async (agent) => {
      const r = await agent.page.evaluate(loopbackCall, { minPackets: 50, timeoutMs: 20000 });
      t.diagnostic(`gathered: ${JSON.stringify(r.gathered)}`);
      t.diagnostic(`pair a: ${JSON.stringify(r.a.pair)}; rtp a ${JSON.stringify(r.a.rtp)}, b ${JSON.stringify(r.b.rtp)}`);
      const info = JSON.stringify(r);

      assert.deepEqual(r.states, ['connected', 'connected'], info);
      assert.equal(r.tracks, 2, info);
      for (const side of ['a', 'b']) {
        assert.ok(r.gathered[side].length > 0, `${side} gathered candidates: ${info}`);
        for (const c of r.gathered[side]) {
          // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
          const address = c.split(' ')[4];
          assert.ok(in127(address), `${side} gathered a candidate outside 127.0.0.0/8: ${c}`);
        }
        const s = r[side];
        assert.ok(s.candidates.length > 0, info);
        for (const c of s.candidates) {
          assert.ok(in127(c.address), `${side}: ${c.type} outside 127.0.0.0/8: ${JSON.stringify(c)}`);
        }
        assert.ok(s.pair, `${side} has a selected candidate pair: ${info}`);
        assert.equal(s.pair.state, 'succeeded', info);
        assert.equal(s.pair.local.address, '127.0.0.1', `${side} selected pair, local: ${info}`);
        assert.equal(s.pair.remote.address, '127.0.0.1', `${side} selected pair, remote: ${info}`);
        assert.equal(s.pair.local.candidateType, 'host', info);
      }
      assert.equal(r.a.pair.local.port, r.b.pair.remote.port, info);
      assert.equal(r.a.pair.remote.port, r.b.pair.local.port, info);
      assert.ok(r.a.pair.packetsSent > 50, `packets sent on the pair: ${info}`);
      assert.ok(r.a.pair.packetsReceived > 50, `packets received on the pair: ${info}`);
      for (const side of ['a', 'b']) {
        assert.ok(r[side].rtp.packetsSent > 50, `${side}: RTP packets sent: ${info}`);
        assert.ok(r[side].rtp.packetsReceived > 50, `${side}: RTP packets received: ${info}`);
      }
    });
  }));

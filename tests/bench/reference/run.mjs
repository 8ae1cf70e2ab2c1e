#!/usr/bin/env node
// The reference gateway for manual use: a Kamailio registrar (the harness's,
// users alice and bob, sip:sipp@DOMAIN routed to a SIPp UAS that answers
// every call and echoes its RTP), and the reference (Kamailio websocket +
// rtpengine) in front of it.  Prints the ws:// URL and waits for SIGINT.
//
//   node tests/bench/reference/run.mjs [--rtp-min 20000] [--rtp-max 29999]
//       [--children N] [--verbose]
//
// Point JsSIP at the printed URL (uri sip:alice@example.com, the printed
// password) and call sip:sipp@example.com.
import { parseArgs } from 'node:util';
import { Env, LOOPBACK, freePort, udpPortInUse } from '../../lib/harness.mjs';
import { startReference } from './reference.mjs';

const { values: opt } = parseArgs({
  options: {
    'rtp-min': { type: 'string', default: '20000' },
    'rtp-max': { type: 'string', default: '29999' },
    children: { type: 'string' },
    domain: { type: 'string', default: 'example.com' },
    verbose: { type: 'boolean', default: false },
  },
});

async function sippMediaPort() {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p + 2 < 65535 && !(await udpPortInUse(p + 1)) && !(await udpPortInUse(p + 2))) return p;
  }
  throw new Error('no free port pair for SIPp\'s media');
}

const env = new Env('bench-reference');
const users = [{ username: 'alice', password: 'alice-pw' }, { username: 'bob', password: 'bob-pw' }];
try {
  const mp = await sippMediaPort();
  const uas = await env.startSipp({
    scenario: 'call_uas_answer.xml', name: 'sipp-echo',
    vars: { RING_MS: 0, HOLD_MS: 0, BYE_TIMEOUT_MS: 24 * 3600 * 1000 },
    args: ['-rtp_echo', '-mp', String(mp)], calls: 1000000, timeoutSec: 7 * 24 * 3600,
  });
  await uas.bound();
  const kam = await env.startKamailio({ domain: opt.domain, users, sippRoutes: [{ user: 'sipp', port: uas.port }] });
  const ref = await startReference(env, {
    pbxHost: LOOPBACK, pbxPort: kam.port, domain: opt.domain,
    rtpPortMin: Number(opt['rtp-min']), rtpPortMax: Number(opt['rtp-max']),
    ...(opt.children ? { children: Number(opt.children) } : {}), verbose: opt.verbose,
  });
  const pids = ref.pids();
  process.stdout.write([
    `reference gateway: ${ref.wsUrl}  (subprotocol sip)`,
    `  users: ${users.map((u) => `sip:${u.username}@${opt.domain} / ${u.password}`).join(', ')}`,
    `  call sip:sipp@${opt.domain}: SIPp (udp ${uas.port}, -rtp_echo on ${mp}) answers and echoes`,
    `  registrar/proxy (PBX): udp ${kam.port}; reference SIP side: udp ${ref.sipPort}; rtpengine ng: udp ${ref.ngPort}`,
    `  pids: kamailio ${pids.kamailio.join(' ')}; rtpengine ${pids.rtpengine.join(' ')}`,
    `  logs in ${env.dir}`,
    'Ctrl-C to stop.',
    '',
  ].join('\n'));
  // The harness stops every child on SIGINT/SIGTERM and exits.
  await new Promise((resolve) => {
    for (const c of env.children) c.exited.then(() => resolve());
  });
  process.stderr.write(`a process exited:\n${env.logs()}\n`);
  await env.close({ failed: true });
  process.exit(1);
} catch (e) {
  process.stderr.write(`${e.stack || e}\n`);
  await env.close({ failed: true });
  process.exit(1);
}

// The command line: --version, --help, --check-config, and how a bad
// configuration is reported (exit 78, "FILE:LINE: group.key: what is wrong").
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { RTCSIPD, testsDir, tmpDir } from '../lib/harness.mjs';

const sourceDir = path.resolve(testsDir, '..');
const EX_USAGE = 64;
const EX_CONFIG = 78;

function rtcsipd(args) {
  const r = spawnSync(RTCSIPD, args, { encoding: 'utf8', timeout: 10000, env: { ...process.env, G_DEBUG: 'fatal-criticals' } });
  if (r.error) throw new Error(`cannot run ${RTCSIPD}: ${r.error.message}`);
  r.text = `$ rtcsipd ${args.join(' ')}\nexit ${r.status}${r.signal ? ` (${r.signal})` : ''}\n` +
    `--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
  return r;
}

const dir = tmpDir('rtcsipd-cli-');
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeConf(name, text) {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

test('--version prints "rtcsipd VERSION" with the project version', () => {
  const version = fs.readFileSync(path.join(sourceDir, 'meson.build'), 'utf8')
    .match(/project\([^)]*?version:\s*'([^']+)'/)[1];
  const r = rtcsipd(['--version']);
  assert.equal(r.status, 0, r.text);
  assert.equal(r.stdout, `rtcsipd ${version}\n`, r.text);
});

test('--help exits 0 and documents -c/--config and --check-config', () => {
  const r = rtcsipd(['--help']);
  assert.equal(r.status, 0, r.text);
  assert.match(r.stdout, /-c, --config/, r.text);
  assert.match(r.stdout, /--check-config/, r.text);
  assert.match(r.stdout, /--version/, r.text);
});

test('an unknown option exits 64 (EX_USAGE) and points to --help', () => {
  const r = rtcsipd(['--no-such-option']);
  assert.equal(r.status, EX_USAGE, r.text);
  assert.match(r.stderr, /--help/, r.text);
});

test('--check-config accepts the shipped config/rtcsipd.conf', () => {
  const conf = path.join(sourceDir, 'config', 'rtcsipd.conf');
  const r = rtcsipd(['--check-config', '-c', conf]);
  assert.equal(r.status, 0, r.text);
  assert.equal(r.stderr, '', `nothing on stderr for a good file:\n${r.text}`);
});

test('--check-config accepts a minimal file', () => {
  const conf = writeConf('minimal.conf', '[sip]\ndomains = example.com\n\n[pbx]\nhost = 127.0.0.1\n');
  const r = rtcsipd(['--check-config', '-c', conf]);
  assert.equal(r.status, 0, r.text);
});

const bad = [
  {
    what: 'an unknown key',
    text: '[websocket]\nws = 127.0.0.1:18080\nbogus = 1\n',
    line: 3, key: 'websocket.bogus',
  },
  {
    what: 'an unknown key after comments and blank lines',
    text: '# comment\n\n[general]\n# another\nlog_level = info\n\n[pbx]\nhost = 127.0.0.1\nhots = 10.0.0.1\n',
    line: 9, key: 'pbx.hots',
  },
  {
    what: 'a bad value',
    text: '[general]\nlog_level = loud\n',
    line: 2, key: 'general.log_level',
  },
  {
    what: 'a port out of range',
    text: '[pbx]\nhost = 127.0.0.1\nport = 70000\n',
    line: 3, key: 'pbx.port',
  },
];

for (const c of bad) {
  test(`${c.what}: exit 78 and "FILE:LINE: ${c.key}: ..." on stderr`, () => {
    const conf = writeConf(`bad-${c.line}-${c.key}.conf`, c.text);
    for (const args of [['--check-config', '-c', conf], ['-c', conf]]) {
      const r = rtcsipd(args);
      assert.equal(r.status, EX_CONFIG, r.text);
      const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      assert.match(r.stderr, new RegExp(`^${esc(conf)}:${c.line}: ${esc(c.key)}: \\S`, 'm'), r.text);
    }
  });
}

test('a missing file: exit 78 and "FILE:0: ..." on stderr', () => {
  const conf = path.join(dir, 'does-not-exist.conf');
  const r = rtcsipd(['--check-config', '-c', conf]);
  assert.equal(r.status, EX_CONFIG, r.text);
  assert.ok(r.stderr.startsWith(`${conf}:0: `), r.text);
});

// The systemd unit as `meson install` installs it: `meson install --destdir`
// into a temporary root, then `systemd-analyze verify --root` on the installed
// unit (which also checks that ExecStart's binary exists there), its key
// settings, its sandboxing score, and the sysusers.d entry of its User=.
//
// systemd-analyze verify exits 0 for an unknown key or an unparsable value
// and only prints a warning, so any output at all is a failure here.
//
// The build directory is $MESON_BUILD_ROOT, else the directory of $RTCSIPD
// (the daemon is built at the top of the build directory).
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Env, RTCSIPD, testsDir } from '../lib/harness.mjs';

const sourceDir = path.resolve(testsDir, '..');
const MESON = process.env.MESON || 'meson';
const SYSTEMD_ANALYZE = process.env.SYSTEMD_ANALYZE || 'systemd-analyze';
const SYSTEMD_SYSUSERS = process.env.SYSTEMD_SYSUSERS || 'systemd-sysusers';
// systemd-analyze security: 1.1 when this was written; 0 is best, 10 worst.
const MAX_EXPOSURE = 1.2;

function run(cmd, args, { timeout = 60000 } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr,
    text: `$ ${cmd} ${args.join(' ')}\nexit ${r.status}${r.signal ? ` (${r.signal})` : ''}\n` +
      `--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}` };
}

function buildRoot() {
  const dir = process.env.MESON_BUILD_ROOT || path.dirname(path.resolve(RTCSIPD));
  assert.ok(fs.existsSync(path.join(dir, 'meson-private')),
    `${dir} is not a meson build directory (set MESON_BUILD_ROOT)`);
  return dir;
}

// The unit as { section: { key: [values...] } } (a key may repeat; an empty
// assignment resets the list, as systemd reads it).
function parseUnit(text) {
  const unit = {};
  let section = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const m = line.match(/^\[(.+)\]$/);
    if (m) {
      section = unit[m[1]] = unit[m[1]] || {};
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section && eq > 0, `unit line outside a section or without '=': ${line}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    section[key] = value === '' ? [''] : [...(section[key] || []).filter((v) => v !== ''), value];
  }
  return unit;
}

// Installs the build into DESTDIR and returns the installed paths (absolute,
// as on the target system) and their place under DESTDIR.
function install(build, destdir) {
  const inst = run(MESON, ['install', '-C', build, '--no-rebuild', '--quiet', '--destdir', destdir],
    { timeout: 120000 });
  assert.equal(inst.code, 0, inst.text);
  const intro = run(MESON, ['introspect', '--installed', build]);
  assert.equal(intro.code, 0, intro.text);
  const installed = JSON.parse(intro.stdout); // build or source path -> install path
  const find = (what, pred) => {
    const hits = Object.entries(installed).filter(([from, to]) => pred(from, to));
    assert.equal(hits.length, 1, `one installed ${what} expected, found ${JSON.stringify(hits)}`);
    const target = hits[0][1];
    return { target, file: path.join(destdir, target) };
  };
  return {
    exe: find('daemon', (from) => path.resolve(from) === path.resolve(RTCSIPD)),
    unit: find('unit', (from, to) => path.basename(to) === 'rtcsipd.service'),
    sysusers: find('sysusers.d entry', (from, to) => path.basename(path.dirname(to)) === 'sysusers.d'),
    config: find('example configuration',
      (from) => path.resolve(build, from) === path.join(sourceDir, 'config', 'rtcsipd.conf')),
  };
}

// systemd-analyze --root needs the units that every service depends on
// (sysinit.target, …) inside the root: take the host's targets.
function addHostTargets(root) {
  const hostDir = ['/usr/lib/systemd/system', '/lib/systemd/system']
    .find((d) => fs.existsSync(path.join(d, 'sysinit.target')));
  assert.ok(hostDir, 'no sysinit.target on this machine (is the systemd package installed?)');
  const dir = path.join(root, 'etc/systemd/system');
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(hostDir)) {
    if (f.endsWith('.target')) fs.copyFileSync(path.join(hostDir, f), path.join(dir, f));
  }
  return dir;
}

// One install, shared by the tests below (they run in order).
const env = new Env('systemd-unit');
let failed = false;
let where;        // installed paths, see install()
let root;         // the DESTDIR
let unitText;     // the installed unit
let targetsDir;   // where the host's targets went, under ROOT

before(() => {
  failed = true; // until the install went through
  const build = buildRoot();
  root = path.join(env.dir, 'root');
  where = install(build, root);
  unitText = fs.readFileSync(where.unit.file, 'utf8');
  targetsDir = addHostTargets(root);
  failed = false;
});
after(() => env.close({ failed }));

// test() that remembers a failure, so that the temporary root is kept.
function step(name, fn) {
  test(name, async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

// The unit where systemd-analyze finds it: where it was installed, or (with
// -Dsystemdsystemunitdir outside systemd's search path) a copy in /etc.
function unitToVerify() {
  const searched = ['/etc/systemd/system', '/usr/local/lib/systemd/system', '/lib/systemd/system',
    '/usr/lib/systemd/system'];
  if (searched.includes(path.dirname(where.unit.target))) return where.unit.file;
  const copy = path.join(targetsDir, path.basename(where.unit.file));
  fs.copyFileSync(where.unit.file, copy);
  return copy;
}

step('systemd-analyze verify of the installed unit: exit 0 and no output at all', () => {
  assert.ok(fs.statSync(where.exe.file).mode & 0o111, `${where.exe.file} is not executable`);
  const v = run(SYSTEMD_ANALYZE, ['verify', `--root=${root}`, unitToVerify()]);
  assert.equal(v.code, 0, v.text);
  assert.equal(v.stderr, '', `systemd-analyze verify printed warnings:\n${v.text}`);
  assert.equal(v.stdout, '', v.text);
});

step('the check catches a misspelt key (WatchdogSecs=)', () => {
  const bad = path.join(targetsDir, 'rtcsipd-typo.service');
  assert.match(unitText, /^WatchdogSec=/m);
  fs.writeFileSync(bad, unitText.replace(/^WatchdogSec=/m, 'WatchdogSecs='));
  const v = run(SYSTEMD_ANALYZE, ['verify', `--root=${root}`, bad]);
  assert.match(v.stderr, /Unknown key 'WatchdogSecs'/, v.text);
});

step('key settings of the unit', () => {
  const u = parseUnit(unitText);
  const s = u.Service;
  assert.ok(s, 'no [Service] section');
  const one = (k) => {
    assert.ok(s[k], `[Service] ${k}= missing`);
    assert.equal(s[k].length, 1, `[Service] ${k}= set more than once: ${JSON.stringify(s[k])}`);
    return s[k][0];
  };
  assert.equal(one('Type'), 'notify');
  assert.equal(one('ExecStart'), `${where.exe.target} -c ${where.config.target}`,
    'ExecStart runs the installed daemon with the installed configuration');
  assert.ok(fs.existsSync(where.config.file), `${where.config.file} not installed`);
  assert.ok(s.ExecReload && s.ExecReload.includes('/bin/kill -HUP $MAINPID'),
    `ExecReload must send SIGHUP to the daemon: ${JSON.stringify(s.ExecReload)}`);
  assert.equal(one('WatchdogSec'), '30');
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('User'), 'rtcsipd');
  assert.equal(one('Group'), 'rtcsipd');
  assert.equal(one('LimitNOFILE'), '65536');
  assert.deepEqual(s.CapabilityBoundingSet, [''], 'no capabilities at all');
  assert.equal(s.AmbientCapabilities, undefined, 'no ambient capabilities by default');
  assert.deepEqual(one('RestrictAddressFamilies').split(/\s+/).sort(),
    ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
  for (const [k, v] of Object.entries({
    NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes',
    PrivateDevices: 'yes', ProtectKernelTunables: 'yes', ProtectKernelModules: 'yes',
    ProtectKernelLogs: 'yes', ProtectControlGroups: 'yes', ProtectClock: 'yes',
    ProtectHostname: 'yes', RestrictNamespaces: 'yes', LockPersonality: 'yes',
    MemoryDenyWriteExecute: 'yes', RestrictRealtime: 'yes', RestrictSUIDSGID: 'yes',
    SystemCallArchitectures: 'native',
  })) assert.equal(one(k), v, `${k}=`);
  assert.ok(s.SystemCallFilter && s.SystemCallFilter.includes('@system-service'),
    `SystemCallFilter: ${JSON.stringify(s.SystemCallFilter)}`);
  assert.deepEqual(u.Install && u.Install.WantedBy, ['multi-user.target']);
});

step(`systemd-analyze security: exposure at most ${MAX_EXPOSURE}`, () => {
  const r = run(SYSTEMD_ANALYZE, ['security', '--offline=yes', `--root=${root}`, '--no-pager',
    unitToVerify()]);
  assert.equal(r.code, 0, r.text);
  const m = r.stdout.match(/Overall exposure level for \S+: ([0-9.]+)/);
  assert.ok(m, r.text);
  assert.ok(Number(m[1]) <= MAX_EXPOSURE, `exposure ${m[1]} > ${MAX_EXPOSURE}:\n${r.text}`);
});

step('the installed sysusers.d entry creates the User= of the unit', () => {
  const r = run(SYSTEMD_SYSUSERS, [`--root=${root}`, '--dry-run', where.sysusers.file]);
  assert.equal(r.code, 0, r.text);
  // It logs what it would do, on stderr; anything else is a complaint.
  const other = r.stderr.split('\n')
    .filter((l) => l && !/^(Creating (user|group) |Would write )/.test(l));
  assert.deepEqual(other, [], r.text);
  assert.match(r.stderr, /Creating user 'rtcsipd'/, r.text);
});

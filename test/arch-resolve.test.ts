import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolve, repoPackage, type Repository } from '../src/lock/resolve.js';
import { readSyncDb } from '../src/pacman/syncdb.js';
import { errorMessage } from '../src/errors.js';
import { writeSyncDb, type FixturePackage } from './support/syncdb-fixture.js';

const HAVE_PACMAN = spawnSync('pacman', ['--version']).status === 0;

/** Two repositories with every case pacman's resolver distinguishes. */
const CORE: FixturePackage[] = [
  { name: 'glibc', version: '2.39-1', groups: ['base'] },
  { name: 'bash', version: '5.2.026-2', depends: ['glibc', 'readline>=8.0', 'sh-virtual'], provides: ['sh'], groups: ['base'] },
  { name: 'readline', version: '8.2.010-1', depends: ['glibc', 'ncurses'] },
  { name: 'ncurses', version: '6.4_20230520-1', depends: ['glibc'] },
  // Virtual provide with two providers: the first by name wins under --noconfirm.
  { name: 'zsh-virtual-a', version: '1-1', provides: ['sh-virtual'] },
  { name: 'yash-virtual-b', version: '1-1', provides: ['sh-virtual'] },
  // Versioned dependency only met by a versioned provision.
  { name: 'libfoo', version: '2:1.0-1', provides: ['libfoo.so=1-64'] },
  { name: 'app', version: '1.0-1', depends: ['libfoo.so=1-64', 'libbar>=2'], groups: ['apps'] },
  { name: 'libbar-unversioned', version: '1-1', provides: ['libbar'] },
  { name: 'libbar-new', version: '3-1', provides: ['libbar=3'] },
  { name: 'pkg-a', version: '1-1', conflicts: ['pkg-b'] },
  { name: 'pkg-b', version: '1-1' },
  { name: 'pkg-c', version: '1-1', conflicts: ['pkg-d'], provides: ['pkg-d'] },
  { name: 'pkg-d', version: '1-1' },
  { name: 'cyc-1', version: '1-1', depends: ['cyc-2'] },
  { name: 'cyc-2', version: '1-1', depends: ['cyc-1', 'glibc'] },
  { name: 'dupe', version: '1-1', groups: ['apps'] },
  { name: 'needs-missing', version: '1-1', depends: ['nowhere>=1'] },
];
const EXTRA: FixturePackage[] = [
  // Same name in a later repository: the first repository wins for plain names.
  { name: 'dupe', version: '9-1' },
  { name: 'extra-only', version: '1-1', depends: ['bash', 'sh'], groups: ['apps', 'base'] },
  { name: 'zsh', version: '5.9-1', provides: ['sh-virtual'], groups: ['base'] },
];

interface Case {
  name: string;
  targets: string[];
}
const CASES: Case[] = [
  { name: 'dependency chain with a virtual provide', targets: ['bash'] },
  { name: 'group across repositories', targets: ['base'] },
  { name: 'versioned provisions', targets: ['app'] },
  { name: 'repo/name target', targets: ['extra/dupe'] },
  { name: 'literal name first, first repository wins', targets: ['dupe', 'extra-only'] },
  { name: 'dependency cycle', targets: ['cyc-1'] },
  { name: 'provision as a target', targets: ['sh'] },
  { name: 'versioned target', targets: ['bash>=5'] },
];
const FAILING: (Case & { ours: RegExp; pacman: RegExp })[] = [
  { name: 'unsatisfiable dependency', targets: ['needs-missing'], ours: /unable to satisfy dependency 'nowhere>=1' required by needs-missing/, pacman: /unable to satisfy dependency 'nowhere>=1' required by needs-missing/ },
  { name: 'unknown target', targets: ['no-such-thing'], ours: /target not found: no-such-thing/, pacman: /target not found: no-such-thing/ },
];

async function setup(): Promise<{ work: string; repos: Repository[] }> {
  const work = mkdtempSync(join(tmpdir(), 'resolve-'));
  mkdirSync(join(work, 'db/sync'), { recursive: true });
  mkdirSync(join(work, 'root'), { recursive: true });
  const repos: Repository[] = [];
  for (const [name, pkgs] of [['core', CORE], ['extra', EXTRA]] as const) {
    await writeSyncDb(join(work, 'db/sync', `${name}.db`), pkgs);
    const db = await readSyncDb(createReadStream(join(work, 'db/sync', `${name}.db`)), `${name}.db`);
    repos.push({ name, packages: db.packages.map((p) => repoPackage(name, p.desc)) });
  }
  writeFileSync(
    join(work, 'pacman.conf'),
    ['[options]', 'Architecture = x86_64', 'SigLevel = Never', '', '[core]', 'Server = file:///nonexistent/$repo', '', '[extra]', 'Server = file:///nonexistent/$repo', ''].join('\n'),
  );
  return { work, repos };
}

function pacman(work: string, op: string[], targets: string[]): { code: number; lines: string[]; stderr: string } {
  const r = spawnSync(
    'pacman',
    [...op, '--noconfirm', '--root', join(work, 'root'), '--dbpath', join(work, 'db'), '--config', join(work, 'pacman.conf'), '--cachedir', join(work, 'cache'), '--logfile', '/dev/null', ...targets],
    { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } },
  );
  return { code: r.status ?? -1, lines: r.stdout.split('\n').filter(Boolean), stderr: r.stdout + r.stderr };
}

function pacmanSp(work: string, targets: string[]): { code: number; lines: string[]; stderr: string } {
  return pacman(work, ['-Sp', '--print-format', '%r/%n %v'], targets);
}

test('resolution agrees with real pacman -Sp (set and install order)', { skip: !HAVE_PACMAN && 'pacman not installed' }, async (t) => {
  const { work, repos } = await setup();
  t.after(() => rmSync(work, { recursive: true, force: true }));
  for (const c of CASES) {
    const real = pacmanSp(work, c.targets);
    assert.equal(real.code, 0, `${c.name}: pacman failed: ${real.stderr}`);
    const ours = resolve(repos, c.targets).packages.map((p) => `${p.pkg.repo}/${p.pkg.desc.name} ${p.pkg.desc.version}`);
    assert.deepEqual(ours, real.lines, c.name);
  }
});

test('failing resolutions fail in pacman too, and our message names the packages', { skip: !HAVE_PACMAN && 'pacman not installed' }, async (t) => {
  const { work, repos } = await setup();
  t.after(() => rmSync(work, { recursive: true, force: true }));
  for (const c of FAILING) {
    const real = pacmanSp(work, c.targets);
    assert.notEqual(real.code, 0, `${c.name}: pacman should fail`);
    assert.match(real.stderr, c.pacman, c.name);
    assert.throws(() => resolve(repos, c.targets), (err: unknown) => c.ours.test(errorMessage(err)), c.name);
  }
});

test('dependency reason: targets explicit, pulled packages dependencies', async (t) => {
  const { work, repos } = await setup();
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const reasons = Object.fromEntries(resolve(repos, ['bash']).packages.map((p) => [p.pkg.desc.name, p.reason]));
  assert.deepEqual(reasons, { glibc: 'dependency', ncurses: 'dependency', readline: 'dependency', 'yash-virtual-b': 'dependency', bash: 'explicit' });
});

// pacman -Sp skips the conflict check (it sets NOCONFLICTS for printing), so conflicts are compared with a real
// `pacman -S`, which checks them while preparing the transaction, before any download; that needs root.
const IS_ROOT = process.getuid?.() === 0;

test('conflicts agree with real pacman -S: both directions fail, a provider replaces what it provides', { skip: (!HAVE_PACMAN || !IS_ROOT) && 'needs pacman and root' }, async (t) => {
  const { work, repos } = await setup();
  t.after(() => rmSync(work, { recursive: true, force: true }));
  for (const targets of [['pkg-b', 'pkg-a'], ['pkg-a', 'pkg-b']]) {
    const real = pacman(work, ['-S'], targets);
    assert.notEqual(real.code, 0);
    assert.match(real.stderr, /unresolvable package conflicts detected/);
    assert.match(real.stderr, /pkg-a and pkg-b are in conflict/);
    assert.throws(() => resolve(repos, targets), /unresolvable package conflicts detected: pkg-a and pkg-b are in conflict \(pkg-a conflicts with 'pkg-b'\)/);
  }
  const real = pacman(work, ['-S'], ['pkg-c', 'pkg-d']);
  assert.match(real.stderr, /removing 'pkg-d' from target list because it conflicts with 'pkg-c'/);
  const ours = resolve(repos, ['pkg-c', 'pkg-d']);
  assert.deepEqual(ours.packages.map((p) => p.pkg.desc.name), ['pkg-c']);
  assert.deepEqual(ours.warnings, ["removing 'pkg-d' from target list because it conflicts with 'pkg-c'"]);
});

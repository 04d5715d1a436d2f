import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { getAttributeSync, listAttributesSync, setAttributeSync } from '@napi-rs/xattr';
import { compressToBuffer, getCompressor } from '../src/compress/index.js';
import type { TarSourceEntry } from '../src/tar/entry.js';
import { writeTar } from '../src/tar/writer.js';
import { CLI, run, runCli, tempDirFor } from './support/cli.js';
import { repoAddUnavailable } from './support/makepkg.js';

/**
 * `install --root` restores the extended attributes packages carry, as real pacman 6.0.2 does (libarchive's
 * ARCHIVE_EXTRACT_XATTR): every one it can, each on its own, and one summary line for those it cannot (pacman
 * warns once per entry). Run on the system temp directory, which must support user.* attributes (checked first).
 */

const MTIME = 1700000000;
/** A v2 file capability: cap_net_bind_service, permitted. */
const CAPABILITY = Buffer.from('0100000200040000000000000000000000000000', 'hex');

function file(path: string, content: string, extra: Partial<TarSourceEntry> = {}): TarSourceEntry {
  const bytes = Buffer.from(content);
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: MTIME, size: bytes.length, open: () => Readable.from([bytes]), ...extra };
}

/** A package whose entries carry user.*, trusted.* and security.* attributes, on a directory, files and a symlink. */
async function xattrPackage(): Promise<Buffer> {
  const entries: TarSourceEntry[] = [
    file('.PKGINFO', 'pkgname = xa\npkgbase = xa\npkgver = 1-1\npkgdesc = xattrs\nbuilddate = 1700000000\npackager = t\nsize = 4\narch = any\n'),
    { path: 'usr', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: MTIME, size: 0, xattrs: { 'user.dir': Buffer.from('d') } },
    file('usr/cap', 'c\n', { mode: 0o755, xattrs: { 'security.capability': CAPABILITY, 'trusted.t': Buffer.from('t'), 'user.a': Buffer.from([0, 1, 2]) } }),
    // Linux takes no user.* attribute on a symlink; trusted.* it does (as root).
    { path: 'usr/link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: MTIME, size: 0, linkTarget: 'cap', xattrs: { 'trusted.s': Buffer.from('ts'), 'user.s': Buffer.from('s') } },
    // Read-only and owned by another user: the attribute is set before the mode and after the owner.
    file('usr/ro', 'r\n', { mode: 0o444, uid: 1000, gid: 1000, xattrs: { 'user.ro': Buffer.from('r') } }),
  ];
  return compressToBuffer(writeTar(entries), getCompressor('zstd'));
}

const PATHS = ['usr', 'usr/cap', 'usr/link', 'usr/ro'];

/** Every attribute of each path, not following symlinks, values in hex. */
function attributes(root: string): Record<string, Record<string, string>> {
  return Object.fromEntries(
    PATHS.map((p) => {
      const path = join(root, p);
      const names = listAttributesSync(path).sort();
      return [p, Object.fromEntries(names.map((n) => [n, getAttributeSync(path, n)!.toString('hex')]))];
    }),
  );
}

/** Why user.* attributes cannot be tested in `dir`, or undefined. */
function userXattrsUnsupported(dir: string): string | undefined {
  const probe = join(dir, 'probe');
  writeFileSync(probe, '');
  try {
    setAttributeSync(probe, 'user.probe', 'x');
    return undefined;
  } catch (err) {
    return `user.* extended attributes are not supported in ${dir}: ${(err as Error).message}`;
  }
}

async function repository(dir: string): Promise<{ repo: string; spec: string }> {
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  writeFileSync(join(repo, 'xa-1-1-any.pkg.tar.zst'), await xattrPackage());
  const added = await run('repo-add', ['-q', join(repo, 'x.db.tar.gz'), join(repo, 'xa-1-1-any.pkg.tar.zst')], { env: { LC_ALL: 'C' } });
  assert.equal(added.code, 0, added.stderr);
  const spec = join(dir, 'spec.yaml');
  writeFileSync(spec, JSON.stringify({ architecture: 'x86_64', repositories: [{ name: 'x', servers: [repo] }], packages: ['xa'], sigLevel: 'Never' }));
  return { repo, spec };
}

test('install --root as root applies every extended attribute real pacman applies, and names the one Linux refuses', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (trusted.* and security.* attributes, pacman -S into a temp root)');
  if (!existsSync('/usr/bin/pacman')) return t.skip('pacman is not installed');
  const missing = repoAddUnavailable();
  if (missing) return t.skip(missing);
  const dir = await tempDirFor(t, 'xattrs');
  const unsupported = userXattrsUnsupported(dir);
  if (unsupported) return t.skip(unsupported);
  const { repo, spec } = await repository(dir);

  const pacmanRoot = join(dir, 'pacman-root');
  for (const sub of ['pacman-root/var/lib/pacman', 'pacman-cache', 'hooks']) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, 'pacman.conf'), `[options]\nArchitecture = x86_64\nSigLevel = Never\n[x]\nServer = file://${repo}\n`);
  const pacman = await run(
    'pacman',
    ['--root', pacmanRoot, '--dbpath', join(pacmanRoot, 'var/lib/pacman'), '--config', join(dir, 'pacman.conf'), '--cachedir', join(dir, 'pacman-cache'), '--hookdir', join(dir, 'hooks'), '--noconfirm', '--noprogressbar', '--noscriptlet', '-Sy', 'xa'],
    { env: { LC_ALL: 'C' } },
  );
  assert.equal(pacman.code, 0, pacman.stderr);
  assert.match(pacman.stderr, /usr\/link \(Cannot restore extended attributes: user\.s\)/, 'pacman warns about user.s on the symlink');

  const env = { REPRO_OCI_CACHE: join(dir, 'cache') };
  const locked = await runCli(['lock', spec], { env });
  assert.equal(locked.code, 0, locked.stderr);
  const ours = join(dir, 'ours');
  const installed = await runCli(['install', join(dir, 'spec.lock.json'), '--root', ours], { env });
  assert.equal(installed.code, 0, installed.stderr);

  const expected = {
    usr: { 'user.dir': '64' },
    'usr/cap': { 'security.capability': CAPABILITY.toString('hex'), 'trusted.t': '74', 'user.a': '000102' },
    'usr/link': { 'trusted.s': '7473' },
    'usr/ro': { 'user.ro': '72' },
  };
  assert.deepEqual(attributes(pacmanRoot), expected, 'what pacman applies');
  assert.deepEqual(attributes(ours), expected, 'repro-oci applies the same');
  const notApplied = installed.stdout.split('\n').filter((l) => l.startsWith('not applied:'));
  assert.deepEqual(notApplied, ['not applied: 1 × extended attributes (user.s on 1 symlink(s): Operation not permitted (EPERM))']);
});

test('install --root as another user applies the user.* attributes and says which others it could not', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('runs the CLI as user nobody through runuser, which needs root');
  if (!existsSync('/usr/sbin/runuser') && !existsSync('/usr/bin/runuser')) return t.skip('runuser is not installed');
  const missing = repoAddUnavailable();
  if (missing) return t.skip(missing);
  const dir = await tempDirFor(t, 'xattrs-user');
  const unsupported = userXattrsUnsupported(dir);
  if (unsupported) return t.skip(unsupported);
  const { spec } = await repository(dir);
  const env = { REPRO_OCI_CACHE: join(dir, 'cache') };
  const locked = await runCli(['lock', spec], { env });
  assert.equal(locked.code, 0, locked.stderr);
  chmodSync(dir, 0o777);
  const ours = join(dir, 'ours');
  const installed = await run('runuser', ['-u', 'nobody', '--', process.execPath, CLI, 'install', join(dir, 'spec.lock.json'), '--root', ours, '--cache', join(dir, 'user-cache')], { env });
  assert.equal(installed.code, 0, installed.stderr);
  assert.deepEqual(attributes(ours), { usr: { 'user.dir': '64' }, 'usr/cap': { 'user.a': '000102' }, 'usr/link': {}, 'usr/ro': { 'user.ro': '72' } });
  const notApplied = installed.stdout.split('\n').filter((l) => l.startsWith('not applied:') && l.includes('extended attributes'));
  assert.deepEqual(notApplied, [
    'not applied: 4 × extended attributes (security.capability on 1 file(s): Operation not permitted (EPERM); trusted.s on 1 symlink(s): Operation not permitted (EPERM); trusted.t on 1 file(s): Operation not permitted (EPERM); user.s on 1 symlink(s): Operation not permitted (EPERM))',
  ]);
});

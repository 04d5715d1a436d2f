import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Gpg } from './support/gpg.js';
import { serveDirectory, type FileServer } from './support/http-server.js';
import { makeTempDir, removeDir, runCli, runCliOk, runOk, type RunResult } from './support/cli.js';
import { makepkgUnavailable, type MakepkgSpec } from './support/makepkg.js';
import { pacmanSync, pacmanUnavailable } from './support/pacman.js';
import { buildForeignCorpus, LOCAL, SDE } from './support/foreign-image.js';

/**
 * `lock --from-image`: a "foreign" image made on this machine the way Arch's own image is (real pacman installs a
 * makepkg-built corpus into a root, `--noscriptlet`), wrapped by `build --rootfs`; an archive laid out as the Arch
 * Linux Archive (`packages/<c>/<name>/<file>` + `.sig`) on a loopback server. The lock must pin exactly the corpus
 * and install the same package set; every lie an attacker could build into the image is refused by package name.
 */


const CORPUS: Omit<MakepkgSpec, 'workDir'>[] = [
  { pkgname: 'fi-lib', pkgver: '1.2', pkgrel: 3, arch: 'x86_64', files: [{ path: 'usr/lib/libfi.so.1', content: 'lib\n', mode: 0o755 }, { path: 'usr/lib/libfi.so', type: 'symlink', target: 'libfi.so.1' }] },
  { pkgname: 'fi-app', epoch: 1, pkgver: '2.0', pkgrel: 1, arch: 'x86_64', depends: ['fi-lib'], files: [{ path: 'usr/bin/fi-app', content: '#!/bin/sh\necho app\n', mode: 0o755 }, { path: 'etc/fi-app.conf', content: 'x=1\n' }] },
  // Served by the archive only as `.pkg.tar.xz`, as packages from before 2020 are.
  { pkgname: 'fi-old', pkgver: '0.9', pkgrel: 1, files: [{ path: 'usr/share/fi-old/data', content: 'old\n' }] },
];

interface Fixture {
  work: string;
  keyring: string;
  server: FileServer;
  /** Archive URLs: `good` has every package and signature. */
  archive: (name: string) => string;
  /** The image of the pacman root, and the root itself. */
  image: string;
  root: string;
  /** name → { version, sha256 of the archive's file, file name }. */
  corpus: Map<string, { version: string; sha256: string; filename: string }>;
  gpg: Gpg;
  signer: string;
}

let fixture: Fixture | undefined;
const skip = pacmanUnavailable() ?? makepkgUnavailable();

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** `build --rootfs ROOT -o oci:OUT` (OUT may end in `:TAG`). */
async function imageOf(root: string, out: string): Promise<string> {
  await runCliOk(['build', '--rootfs', root, '-o', `oci:${out}`], { env: { SOURCE_DATE_EPOCH: String(SDE) } });
  return `oci:${out}`;
}

before(async () => {
  if (skip) return;
  const work = await makeTempDir('lock-from-image');
  const archive = join(work, 'archives', 'good');
  // fi-old is in the archive as the older .pkg.tar.xz only.
  const publishAs = async (name: string, file: string): Promise<string> => {
    if (name !== 'fi-old') return file;
    const xz = join(work, basename(file).replace(/\.zst$/, '.xz'));
    await runOk('sh', ['-c', `zstd -dc '${file}' | xz -c > '${xz}'`]);
    return xz;
  };
  const { keyring, gpg, signer, repo, published } = await buildForeignCorpus(work, CORPUS, { archive, publishAs });
  const corpus = new Map<string, { version: string; sha256: string; filename: string }>();
  for (const spec of CORPUS) {
    const file = published.get(spec.pkgname)!;
    const version = `${spec.epoch ? `${spec.epoch}:` : ''}${spec.pkgver}-${spec.pkgrel}`;
    corpus.set(spec.pkgname, { version, sha256: sha256(readFileSync(file)), filename: basename(file) });
  }
  mkdirSync(join(work, 'gnupg'));
  const installed = await pacmanSync(join(work, 'pacman'), join(work, 'gnupg'), 'Never', [{ name: 'fitest', server: repo }], ['fi-app', 'fi-old']);
  assert.equal(installed.result.code, 0, installed.result.stderr);
  const image = await imageOf(installed.root, join(work, 'image'));

  // Archives that lack something, beside the good one.
  for (const variant of ['nosig', 'badsig', 'tampered']) cpSync(archive, join(work, 'archives', variant), { recursive: true });
  const libDir = (variant: string): string => join(work, 'archives', variant, 'packages/f/fi-lib');
  const libSig = (variant: string): string => join(libDir(variant), readdirSync(libDir(variant)).find((f) => f.endsWith('.sig'))!);
  rmSync(libSig('nosig'));
  const intruder = await gpg.genKey('Intruder <intruder@example.invalid>', { at: SDE - 100 });
  const libFile = libSig('badsig').replace(/\.sig$/, '');
  writeFileSync(libSig('badsig'), await gpg.detachSign(intruder, readFileSync(libFile)));
  const tamperedFile = libSig('tampered').replace(/\.sig$/, '');
  const tampered = readFileSync(tamperedFile);
  tampered[tampered.length - 1] ^= 1;
  writeFileSync(tamperedFile, tampered);

  const server = await serveDirectory(join(work, 'archives'));
  fixture = { work, keyring, server, archive: (name) => `${server.url}/${name}/`, image, root: installed.root, corpus, gpg, signer };
});

after(async () => {
  if (!fixture) return;
  await fixture.server.close();
  await fixture.gpg.dispose();
  await removeDir(fixture.work);
});

function lockArgs(f: Fixture, image: string, output: string, archive = 'good'): string[] {
  return ['lock', '--from-image', image, '--archive', f.archive(archive), '--keyring', f.keyring, '--keyring-name', 'test', '-o', output];
}

function cacheEnv(f: Fixture, name: string): Record<string, string> {
  return { REPRO_OCI_CACHE: join(f.work, 'cache', name) };
}

describe('lock --from-image', { skip }, () => {
  test('locks exactly the packages pacman installed, from the archive (.zst, else .xz), and installs the same package set', async () => {
    const f = fixture!;
    const output = join(f.work, 'image.lock.json');
    const locked = await runCli(lockArgs(f, f.image, output), { env: cacheEnv(f, 'positive') });
    assert.equal(locked.code, 0, locked.stderr);
    assert.match(locked.stdout, /^locked 3 packages from oci:.* to .*image\.lock\.json\n$/);
    const lock = JSON.parse(readFileSync(output, 'utf8')) as { sigLevel: string; architecture: string; targets: string[]; packages: Array<{ name: string; version: string; sha256: string; filename: string; reason: string; urls: string[]; signature?: string }> };
    assert.deepEqual(
      lock.packages.map((p) => ({ name: p.name, version: p.version, sha256: p.sha256, filename: p.filename })).sort((a, b) => a.name.localeCompare(b.name)),
      [...f.corpus].map(([name, c]) => ({ name, version: c.version, sha256: c.sha256, filename: c.filename })).sort((a, b) => a.name.localeCompare(b.name)),
    );
    assert.ok(lock.packages.find((p) => p.name === 'fi-old')!.filename.endsWith('.pkg.tar.xz'));
    assert.deepEqual(Object.fromEntries(lock.packages.map((p) => [p.name, p.reason])), { 'fi-app': 'explicit', 'fi-lib': 'dependency', 'fi-old': 'explicit' });
    assert.deepEqual(lock.targets, ['fi-app', 'fi-old']);
    assert.deepEqual(lock.packages.map((p) => p.name), ['fi-lib', 'fi-app', 'fi-old'], 'install order: dependencies first, then by name');
    assert.equal(lock.architecture, 'x86_64');
    assert.equal(lock.sigLevel, 'Required DatabaseNever');
    assert.ok(lock.packages.every((p) => p.urls.length === 1 && p.urls[0]!.startsWith(`${f.archive('good')}packages/f/${p.name}/`) && p.signature));

    // The lock is a normal lock: install reproduces the package set pacman installed.
    const root = join(f.work, 'reinstalled');
    await runCliOk(['install', output, '--root', root, '--keyring', f.keyring], { env: cacheEnv(f, 'positive') });
    const dbDirs = (r: string): string[] => readdirSync(join(r, LOCAL)).sort();
    assert.deepEqual(dbDirs(root), dbDirs(f.root));
    for (const path of ['usr/bin/fi-app', 'usr/lib/libfi.so.1', 'usr/share/fi-old/data', 'etc/fi-app.conf']) {
      assert.deepEqual(readFileSync(join(root, path)), readFileSync(join(f.root, path)), path);
    }
    for (const dir of dbDirs(root).filter((d) => d !== 'ALPM_DB_VERSION')) assert.deepEqual(readFileSync(join(root, LOCAL, dir, 'mtree')), readFileSync(join(f.root, LOCAL, dir, 'mtree')), dir);

    // The same image locked again gives the same bytes.
    const again = join(f.work, 'again.lock.json');
    const packageGets = (): string[] => f.server.requests.filter((r) => /^GET \/good\/packages\/.*\.pkg\.tar\.(zst|xz)$/.test(r));
    const before = packageGets().length;
    const json = await runCliOk([...lockArgs(f, f.image, again), '--json'], { env: cacheEnv(f, 'positive') });
    // The packages come from the cache (hashed in full, the archive's signatures fetched and verified again).
    assert.deepEqual(packageGets().slice(before), ['GET /good/packages/f/fi-old/fi-old-0.9-1-any.pkg.tar.zst'], 'only the .zst the archive does not have is asked for again');
    assert.doesNotMatch(json.stderr, /fetched/);

    // A cache hint that names another package's blob: the archive's signature does not cover it, so it is fetched.
    const lib = f.corpus.get('fi-lib')!;
    const libUrl = `${f.archive('good')}packages/f/fi-lib/${lib.filename}`;
    const hint = join(f.work, 'cache', 'positive', 'archive-urls', sha256(Buffer.from(libUrl)));
    assert.ok(existsSync(hint), hint);
    writeFileSync(hint, `sha256:${f.corpus.get('fi-app')!.sha256}`);
    const third = join(f.work, 'third.lock.json');
    const rerun = await runCliOk(lockArgs(f, f.image, third), { env: cacheEnv(f, 'positive') });
    assert.match(rerun.stderr, new RegExp(`fetched ${lib.filename.replace(/\./g, '\\.')}`));
    assert.equal(readFileSync(third, 'utf8'), readFileSync(output, 'utf8'));
    assert.equal(readFileSync(again, 'utf8'), readFileSync(output, 'utf8'));
    const report = JSON.parse(json.stdout) as { lock: string; packages: Array<{ name: string; sha256: string; repository: string }> };
    assert.equal(report.lock, again);
    assert.deepEqual(report.packages.map((p) => [p.name, p.sha256, p.repository]), lock.packages.map((p) => [p.name, p.sha256, 'archive']));
  });

  test('reads the merged filesystem: a second layer (umoci) that removes a package whiteouts its database entry', async () => {
    const f = fixture!;
    const layout = join(f.work, 'layered');
    await imageOf(f.root, `${layout}:base`);
    const bundle = join(f.work, 'bundle');
    await runOk('umoci', ['unpack', '--image', `${layout}:base`, bundle]);
    // What `pacman -R fi-old` leaves: its files and its database entry gone.
    rmSync(join(bundle, 'rootfs', LOCAL, 'fi-old-0.9-1'), { recursive: true });
    rmSync(join(bundle, 'rootfs', 'usr/share/fi-old'), { recursive: true });
    await runOk('umoci', ['repack', '--image', `${layout}:removed`, bundle]);
    const manifest = JSON.parse((await runOk('umoci', ['stat', '--image', `${layout}:removed`, '--json'])).stdout) as { history: unknown[] };
    assert.ok(manifest.history.length >= 2, 'two layers');
    const output = join(f.work, 'layered.lock.json');
    await runCliOk(lockArgs(f, `oci:${layout}:removed`, output), { env: cacheEnv(f, 'layered') });
    const lock = JSON.parse(readFileSync(output, 'utf8')) as { packages: Array<{ name: string }> };
    assert.deepEqual(lock.packages.map((p) => p.name), ['fi-lib', 'fi-app']);
  });

  /** An image of the pacman root after `edit` (run on a copy), locked: must fail with exit 2 and write nothing. */
  async function refusedImage(name: string, edit: (root: string) => void, archive = 'good'): Promise<RunResult> {
    const f = fixture!;
    const root = join(f.work, 'variants', name);
    cpSync(f.root, root, { recursive: true, verbatimSymlinks: true });
    edit(root);
    const image = await imageOf(root, join(f.work, 'variant-images', name));
    return refusedLock(name, image, archive);
  }

  async function refusedLock(name: string, image: string, archive: string): Promise<RunResult> {
    const f = fixture!;
    const output = join(f.work, `${name}.lock.json`);
    const result = await runCli(lockArgs(f, image, output, archive), { env: cacheEnv(f, name) });
    assert.equal(result.code, 2, `${name}: ${result.stdout}${result.stderr}`);
    const errors = result.stderr.split('\n').filter((l) => l.startsWith('repro-oci: '));
    assert.equal(errors.length, 1, result.stderr);
    assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
    assert.equal(existsSync(output), false, `${name}: nothing written`);
    return result;
  }

  const descOf = (root: string, dir: string): string => join(root, LOCAL, dir, 'desc');
  const dirOf = (root: string, name: string): string => readdirSync(join(root, LOCAL)).find((d) => d.startsWith(`${name}-`) && /^[0-9]/.test(d.slice(name.length + 1)))!;
  const editDesc = (root: string, name: string, change: (desc: string) => string): void => {
    const path = descOf(root, dirOf(root, name));
    writeFileSync(path, change(readFileSync(path, 'utf8')));
  };

  test('an edited version (directory renamed to match): not in the archive, named', async () => {
    const result = await refusedImage('edited-version', (root) => {
      const dir = dirOf(root, 'fi-lib');
      editDesc(root, 'fi-lib', (d) => d.replace('%VERSION%\n1.2-3\n', '%VERSION%\n1.2-4\n'));
      renameSync(join(root, LOCAL, dir), join(root, LOCAL, 'fi-lib-1.2-4'));
    });
    assert.match(result.stderr, /refused 1 of 3 packages: package fi-lib 1\.2-4: not in the archive .* \(no fi-lib-1\.2-4-x86_64\.pkg\.tar\.zst nor fi-lib-1\.2-4-x86_64\.pkg\.tar\.xz\)/);
  });

  test('a database entry for a package the archive never had, beside the real ones: refused, named', async () => {
    const result = await refusedImage('ghost', (root) => {
      mkdirSync(join(root, LOCAL, 'fi-ghost-6.6-6'));
      writeFileSync(join(root, LOCAL, 'fi-ghost-6.6-6', 'desc'), '%NAME%\nfi-ghost\n\n%VERSION%\n6.6-6\n\n%ARCH%\nany\n\n');
    });
    assert.match(result.stderr, /refused 1 of 4 packages: package fi-ghost 6\.6-6: not in the archive/);
  });

  test('traversal in the name or version: refused before anything is fetched', async () => {
    const byName = await refusedImage('traversal-name', (root) => editDesc(root, 'fi-app', (d) => d.replace('%NAME%\nfi-app\n', '%NAME%\n../../fi-app\n')));
    assert.match(byName.stderr, /var\/lib\/pacman\/local\/fi-app-1:2\.0-1\/desc: .*"\.\.\/\.\.\/fi-app"/);
    const byVersion = await refusedImage('traversal-version', (root) => editDesc(root, 'fi-old', (d) => d.replace('%VERSION%\n0.9-1\n', '%VERSION%\n0.9/../../x-1\n')));
    assert.match(byVersion.stderr, /var\/lib\/pacman\/local\/fi-old-0\.9-1\/desc: .*0\.9\/\.\.\/\.\.\/x-1/);
    assert.equal(fixture!.server.requests.some((r) => r.includes('..')), false, 'no request left the archive');
  });

  test('an absurd size, or a build date the package does not have: refused, named', async () => {
    const absurd = await refusedImage('absurd-size', (root) => editDesc(root, 'fi-app', (d) => d.replace(/%SIZE%\n\d+\n/, '%SIZE%\n99999999999999999999999\n')));
    assert.match(absurd.stderr, /fi-app-1:2\.0-1\/desc: %SIZE% "99999999999999999999999" is not a plausible non-negative integer/);
    const builddate = await refusedImage('builddate', (root) => editDesc(root, 'fi-old', (d) => d.replace(/%BUILDDATE%\n\d+\n/, '%BUILDDATE%\n1600000000\n')));
    assert.match(builddate.stderr, /refused 1 of 3 packages: package fi-old 0\.9-1: the image's database says builddate 1600000000, the package's \.PKGINFO 1700000000/);
  });

  test('a database mtree entry that differs from the package .MTREE, or no mtree: refused, the path named', async () => {
    const result = await refusedImage('mtree', (root) => {
      const path = join(root, LOCAL, dirOf(root, 'fi-app'), 'mtree');
      const text = gunzipSync(readFileSync(path)).toString('utf8');
      const edited = text.replace(/(\.\/usr\/bin\/fi-app [^\n]*sha256digest=)[0-9a-f]{64}/, `$1${'0'.repeat(64)}`);
      assert.notEqual(edited, text);
      writeFileSync(path, gzipSync(edited));
    });
    assert.match(result.stderr, /package fi-app 1:2\.0-1: the image's database mtree differs from the package's \.MTREE at usr\/bin\/fi-app: sha256digest 0{64} in the image/);
    const missing = await refusedImage('no-mtree', (root) => rmSync(join(root, LOCAL, dirOf(root, 'fi-lib'), 'mtree')));
    assert.match(missing.stderr, /refused 1 of 3 packages: package fi-lib 1\.2-3: the image's database has no mtree for it/);
  });

  test('a missing or foreign signature, or a package changed after signing, in the archive: refused, named', async () => {
    const f = fixture!;
    const missing = await refusedLock('nosig', f.image, 'nosig');
    assert.match(missing.stderr, /refused 1 of 3 packages: package fi-lib 1\.2-3: missing required signature/);
    const foreign = await refusedLock('badsig', f.image, 'badsig');
    assert.match(foreign.stderr, /refused 1 of 3 packages: package fi-lib 1\.2-3: signed by unknown key [0-9A-F]+ \(not in the keyring\)/);
    const tampered = await refusedLock('tampered', f.image, 'tampered');
    assert.match(tampered.stderr, /refused 1 of 3 packages: package fi-lib 1\.2-3: bad signature from .*: the data does not match/);
  });

  test('usage: a spec and --from-image together, or no keyring, are one-line errors', async () => {
    const f = fixture!;
    const both = await runCli(['lock', 'spec.yaml', '--from-image', f.image, '--keyring', f.keyring]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--from-image locks an image, not a spec/);
    const noKeyring = await runCli(['lock', '--from-image', f.image]);
    assert.equal(noKeyring.code, 2);
    assert.match(noKeyring.stderr, /give the keyring/);
    const archiveAlone = await runCli(['lock', 'spec.yaml', '--archive', 'http://127.0.0.1/']);
    assert.match(archiveAlone.stderr, /--archive goes with --from-image/);
  });
});

import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { serveDirectory, type FileServer } from './support/http-server.js';
import { makeTempDir, removeDir, runCli, runOk, type RunResult } from './support/cli.js';
import { COMMANDS_SKIP } from './support/busybox.js';
import type { TreeNode } from '../src/install/installer.js';
import { REGENERATORS } from '../src/foreign/generated.js';
import { regenerate } from '../src/foreign/regenerate.js';
import { compareContent, missingGroups, type ContentInputs, type InstalledFacts, type PathFacts } from '../src/foreign/content-compare.js';
import { CORPUS, LOCAL, SDE, buildForeignCorpus, foreignImageUnavailable, imageOfRoot, makeForeignRoot, type ForeignCorpus } from './support/foreign-image.js';

/**
 * `rebuild REF` for an image repro-oci did not build: images made here as Arch's own is (real pacman, the
 * archlinux-docker steps that run without systemd, GNU tar with its repro flags, zstd, umoci; see
 * support/foreign-image.ts), checked against their pacman database: the content level's verdict for the faithful
 * image, and for each kind of tampering the verdict, the exit status and the path named.
 */

const skip = foreignImageUnavailable();

interface Fixture {
  work: string;
  corpus: ForeignCorpus;
  server: FileServer;
  /** The faithful root and its image. */
  root: string;
  image: string;
}

let fixture: Fixture | undefined;

/** One more package, built and in the repository, that the archive does not have. */
const UNARCHIVED = { pkgname: 'fi-extra', pkgver: '1.0', pkgrel: 1, files: [{ path: 'usr/share/fi-extra/data', content: 'extra\n' }] };

/** A package with a %BACKUP% file outside etc/ (the first pass spools only etc/ and generated files for the layer rebuild). */
const STATEFUL = { pkgname: 'fi-state', pkgver: '1.0', pkgrel: 1, backup: ['var/lib/fi-state/state'], files: [{ path: 'var/lib/fi-state/state', content: 'a=1\n' }] };

async function setUp(): Promise<void> {
  const work = await makeTempDir('foreign-content');
  const corpus = await buildForeignCorpus(work, [...CORPUS, UNARCHIVED, STATEFUL], { unpublished: ['fi-extra'] });
  const root = await makeForeignRoot(corpus, join(work, 'faithful'));
  const image = await imageOfRoot(root, join(work, 'faithful-image'));
  const server = await serveDirectory(corpus.archive);
  fixture = { work, corpus, server, root, image };
}

async function tearDown(): Promise<void> {
  if (!fixture) return;
  await fixture.server.close();
  await fixture.corpus.gpg.dispose();
  await removeDir(fixture.work);
}

function rebuildArgs(f: Fixture, image: string, extra: string[] = []): string[] {
  return ['rebuild', image, '--archive', `${f.server.url}/`, '--keyring', f.corpus.keyring, '--keyring-name', 'test', ...extra];
}

async function rebuild(image: string, name: string, extra: string[] = []): Promise<RunResult> {
  const f = fixture!;
  return runCli(rebuildArgs(f, image, extra), { env: { REPRO_OCI_CACHE: join(f.work, 'cache', name) } });
}

interface ContentJson {
  from: string;
  passed: boolean;
  packages: number;
  content: {
    verdict: string;
    equal: number;
    generated: number;
    unexplained: number;
    differs: Array<{ path: string; package: string; fields: Array<{ field: string; image: unknown; installed: unknown }>; backup: boolean; setidAdded: boolean }>;
    generatedPaths: Array<{ path: string; by: string; status: string; reason?: string; package?: string }>;
    notFromPackage: Array<{ path: string; type: string; mode: number; setid: boolean }>;
    missing: Array<{ glob: string; except: string[]; paths: number; packages: string[] }>;
    databaseEntries: number;
  };
  layers: Array<{ layer: number; verdict: string; diffId: string }>;
  signatures: { verified: number };
}

/** An image of a copy of the faithful root after `edit`. */
async function variantImage(name: string, edit: (root: string) => void | Promise<void>): Promise<string> {
  const f = fixture!;
  const root = join(f.work, 'variants', name, 'root');
  mkdirSync(join(f.work, 'variants', name), { recursive: true });
  await runOk('cp', ['-a', f.root, root]);
  await edit(root);
  return imageOfRoot(root, join(f.work, 'variants', name, 'image'));
}

async function memberCount(image: string): Promise<number> {
  const layout = image.replace(/^oci:/, '').replace(/:latest$/, '');
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const blob = (digest: string): string => join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: Array<{ digest: string }> };
  const listed = await runOk('tar', ['-tzf', blob(manifest.layers[0]!.digest)]);
  return listed.stdout.split('\n').filter((l) => l !== '' && l !== './').length;
}

function errorLine(result: RunResult): string {
  const errors = result.stderr.split('\n').filter((l) => l.startsWith('repro-oci: '));
  assert.equal(errors.length, 1, result.stderr);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
  return errors[0]!;
}

describe('rebuild of an image without a recipe: the content level', { skip }, () => {
  before(setUp);
  after(tearDown);

  test('the archlinux-docker recipe made with real pacman, GNU tar, zstd and umoci: content identical, every path accounted for', async () => {
    const f = fixture!;
    const result = await rebuild(f.image, 'faithful');
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stderr, /the image carries no recipe .*; checking it against its pacman database/);
    assert.doesNotMatch(result.stderr, /reading layer 1 again/, 'one pass over the layer served every level');
    const lines = result.stdout.split('\n');
    assert.match(lines[0]!, /^content: identical \(\d+ files from 5 packages, 8 generated \(1 not regenerated\), 0 unexplained\)$/);
    assert.match(lines[1]!, /^layer 1 diffID: identical \(GNU tar, POSIX \(pax\) format, --sort=name, .*; \d+ members from the packages, \d+ explained kept as the image has them; timestamps and owner names as the layer records them\)$/);
    // umoci compressed the layer with Go's gzip, which nothing here writes: the verdict stops at the diffID, and says why.
    assert.match(lines[2]!, /^layer 1 digest: not reproducible \(Go compress\/gzip: /);
    assert.match(result.stdout, /^ {2}usr\/share\/doc\/\*: 3 paths, 8 bytes \(fi-app\)$/m);
    assert.match(result.stdout, /^ {2}usr\/share\/man\/\*: 3 paths, 13 bytes \(fi-app\)$/m);
    assert.match(result.stdout, /^ {2}\/etc\/ld\.so\.cache: by ldconfig, identical$/m);
    assert.match(result.stdout, /^ {2}\/etc\/locale\.conf: by archlinux-docker's overlay, identical$/m);
    assert.match(result.stdout, /^ {2}\/etc\/os-release: by archlinux-docker .*, identical$/m);
    assert.match(result.stdout, /^ {2}\/var\/lib\/pacman\/sync: by pacman -Sy \(sync databases\), not regenerated: /m);
    assert.match(result.stdout, /^signatures: 5 package signature\(s\) verified/m);

    const json = await rebuild(f.image, 'faithful', ['--json', '--from-pacman-db']);
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as ContentJson;
    assert.equal(report.from, 'pacman-db');
    assert.equal(report.passed, true);
    const { content } = report;
    assert.equal(content.verdict, 'identical');
    assert.equal(content.unexplained, 0);
    assert.deepEqual(content.differs, []);
    assert.deepEqual(content.notFromPackage, []);
    assert.equal(content.databaseEntries, 5);
    assert.deepEqual(content.missing.map((g) => g.glob), ['usr/share/doc/*', 'usr/share/man/*'], 'exactly what NoExtract left out');
    assert.deepEqual(Object.fromEntries(content.generatedPaths.map((g) => [g.path, g.status])), {
      'etc/group': 'identical',
      'etc/gshadow': 'identical',
      'etc/ld.so.cache': 'identical',
      'etc/locale.conf': 'identical',
      'etc/os-release': 'identical',
      'etc/passwd': 'identical',
      'etc/shadow': 'identical',
      'var/lib/pacman/sync': 'not-regenerated',
    });
    assert.match(result.stdout, /^ {2}\/etc\/shadow: by systemd-sysusers \(root's password locked\), identical$/m);
    assert.equal(content.generatedPaths.find((g) => g.path === 'etc/os-release')!.package, 'fi-filesystem', 'the link replaced the package\'s own');
    // Every member of the layer is in exactly one category.
    assert.equal(content.equal + content.generatedPaths.length, await memberCount(f.image));
    assert.deepEqual(report.layers.map((l) => [l.layer, l.verdict]), [[1, 'identical']]);
  });

  test('an edited %BACKUP% file is named as such, and is no unexplained difference', async () => {
    const image = await variantImage('backup', (root) => writeFileSync(join(root, 'etc/fi-app.conf'), 'x=2\n'));
    const result = await rebuild(image, 'backup');
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^content: identical \(.*, 0 unexplained\)$/m);
    assert.match(result.stdout, /^modified %BACKUP% files \(as pacman -Qkk reports them\):\n {2}\/etc\/fi-app\.conf \(fi-app\)$/m);
    assert.match(result.stdout, /^layer 1 diffID: identical \(.*, \d+ explained kept as the image has them;/m, 'the edited file is kept as the image has it');
  });

  test('an edited %BACKUP% file outside etc/: kept as the image has it all the same (its layer read again for it)', async () => {
    const f = fixture!;
    const root = await makeForeignRoot(f.corpus, join(f.work, 'stateful'), ['fi-app', 'fi-systemd', 'fi-state']);
    writeFileSync(join(root, 'var/lib/fi-state/state'), 'a=2\n');
    const image = await imageOfRoot(root, join(f.work, 'stateful-image'));
    const result = await rebuild(image, 'stateful');
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stderr, /^reading layer 1 again for the files it keeps as the image has them$/m);
    assert.match(result.stdout, /^modified %BACKUP% files \(as pacman -Qkk reports them\):\n {2}\/var\/lib\/fi-state\/state \(fi-state\)$/m);
    assert.match(result.stdout, /^layer 1 diffID: identical \(.*, \d+ explained kept as the image has them;/m);
  });

  test('a changed byte in a package file: DIFFERS, exit 1, the path and its package named', async () => {
    const image = await variantImage('byte', (root) => {
      const path = join(root, 'usr/bin/fi-app');
      const bytes = readFileSync(path);
      bytes[bytes.length - 2] ^= 1;
      writeFileSync(path, bytes);
    });
    const result = await rebuild(image, 'byte');
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /^content: DIFFERS \(.*, 1 unexplained\)$/m);
    assert.match(result.stdout, /^differs from its package \(unexplained\):\n {2}\/usr\/bin\/fi-app \(fi-app\): content$/m);
    // The layer rebuilt with the package's bytes parts from the image's exactly there.
    assert.match(result.stdout, /^layer 1 diffID: differs \(first at usr\/bin\/fi-app: content\) \(.*1 unexplained given the package's content;/m);
    assert.match(result.stdout, /^layer 1 digest: not reached \(the diffID differs\)$/m);
  });

  test('an added setuid binary and a setuid bit added to a package file: both named, exit 1', async () => {
    const image = await variantImage('setuid', (root) => {
      writeFileSync(join(root, 'usr/local/bin/sneaky'), '#!/usr/bin/sh\nid -u\n');
      chmodSync(join(root, 'usr/local/bin/sneaky'), 0o4755);
      chmodSync(join(root, 'usr/bin/fi-app'), 0o4755);
    });
    const result = await rebuild(image, 'setuid', ['--json']);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const { content } = JSON.parse(result.stdout) as ContentJson;
    assert.equal(content.unexplained, 2);
    assert.deepEqual(content.notFromPackage, [{ path: 'usr/local/bin/sneaky', type: 'file', mode: 0o4755, size: 20, setid: true }]);
    assert.deepEqual(content.differs, [{ path: 'usr/bin/fi-app', package: 'fi-app', fields: [{ field: 'mode', image: '4755', installed: '0755' }], backup: false, setidAdded: true }]);
    const text = await rebuild(image, 'setuid');
    assert.match(text.stdout, /^ {2}\/usr\/bin\/fi-app \(fi-app\): SETUID\/SETGID ADDED; mode 4755 in the image, 0755 from the package$/m);
    assert.match(text.stdout, /^not from any package \(unexplained\):\n {2}\/usr\/local\/bin\/sneaky \(file, 4755, 20 bytes\) SETUID\/SETGID$/m);
    // The package's mode goes into the rebuilt layer and the stranger is left out: the first of them in member order is named.
    assert.match(text.stdout, /^layer 1 diffID: differs \(first at usr\/bin\/fi-app: mode\) \(.*1 unexplained left out;/m);
  });

  test('a generated file that is not what its generator makes from the packages: named, exit 1', async () => {
    const image = await variantImage('ldcache', (root) => appendFileSync(join(root, 'etc/ld.so.cache'), 'libevil.so\n'));
    const result = await rebuild(image, 'ldcache');
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /^generated, but not as its generator makes it, or not checked \(unexplained\):\n {2}\/etc\/ld\.so\.cache: by ldconfig: not what ldconfig makes from the image's packages: size \d+ in the image, \d+ from the package, content$/m);
    // --no-commands: nothing of the image's runs, so the file cannot be checked — unexplained, and said so.
    const noCommands = await rebuild(fixture!.image, 'faithful', ['--no-commands']);
    assert.equal(noCommands.code, 1, noCommands.stdout);
    assert.match(noCommands.stdout, /^ {2}\/etc\/ld\.so\.cache: by ldconfig: not verified: --no-commands: ldconfig is not run$/m);
  });

  test("os-release as the Dockerfile's sed leaves it passes; any other edit, or a huge file, is named", async () => {
    const edited = await variantImage('os-release-sed', (root) => {
      rmSync(join(root, 'etc/os-release'));
      writeFileSync(join(root, 'etc/os-release'), `${readFileSync(join(root, 'usr/lib/os-release'), 'utf8')}IMAGE_ID=archlinux\nIMAGE_VERSION=20240101.0.1\n`);
    });
    const ok = await rebuild(edited, 'os-release-sed');
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^ {2}\/etc\/os-release: by .*, identical \(usr\/lib\/os-release with IMAGE_ID\/IMAGE_VERSION set\)$/m);
    for (const [name, content] of [['os-release-lie', 'NAME="Other"\nID=fi\nBUILD_ID=rolling\n'], ['os-release-huge', `${'A'.repeat(1024 * 1024)}\n`]] as const) {
      const image = await variantImage(name, (root) => {
        rmSync(join(root, 'etc/os-release'));
        writeFileSync(join(root, 'etc/os-release'), content);
      });
      const result = await rebuild(image, name);
      assert.equal(result.code, 1, `${name}: ${result.stdout}${result.stderr}`);
      assert.match(result.stdout, /^ {2}\/etc\/os-release: by .*: neither a link to \/usr\/lib\/os-release nor a copy of it/m, name);
    }
    const link = await variantImage('os-release-link', (root) => {
      rmSync(join(root, 'etc/os-release'));
      symlinkSync('/etc/shadow', join(root, 'etc/os-release'));
    });
    const linked = await rebuild(link, 'os-release-link');
    assert.equal(linked.code, 1);
    assert.match(linked.stdout, /\/etc\/os-release: by .*: a link to "\/etc\/shadow", not to \/usr\/lib\/os-release/);
  });

  test("a database desc edited beyond the installer's own fields is named; %INSTALLDATE% alone is not", async () => {
    const dirOf = (root: string, name: string): string => join(root, LOCAL, readdirSync(join(root, LOCAL)).find((d) => d.startsWith(`${name}-`))!);
    const image = await variantImage('desc', (root) => {
      const app = join(dirOf(root, 'fi-app'), 'desc');
      writeFileSync(app, readFileSync(app, 'utf8').replace(/%INSTALLDATE%\n\d+\n/, '%INSTALLDATE%\n1\n'));
      const lib = join(dirOf(root, 'fi-glibc'), 'desc');
      writeFileSync(lib, readFileSync(lib, 'utf8').replace(/%URL%\n[^\n]*\n/, '%URL%\nhttps://example.invalid/\n'));
    });
    const result = await rebuild(image, 'desc');
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /^content: DIFFERS \(.*, 1 unexplained\)$/m);
    assert.match(result.stdout, /^ {2}\/var\/lib\/pacman\/local\/fi-glibc-2\.39-2\/desc \(pacman's database\): desc \(beyond %INSTALLDATE%\/%VALIDATION%\)$/m);
  });

  test('a database entry whose version was edited: refused, exit 2, the package named', async () => {
    const image = await variantImage('version', (root) => {
      const dir = join(root, LOCAL, 'fi-glibc-2.39-2');
      writeFileSync(join(dir, 'desc'), readFileSync(join(dir, 'desc'), 'utf8').replace('%VERSION%\n2.39-2\n', '%VERSION%\n2.39-3\n'));
      renameSync(dir, join(root, LOCAL, 'fi-glibc-2.39-3'));
    });
    const result = await rebuild(image, 'version');
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(errorLine(result), /refused 1 of 5 packages: package fi-glibc 2\.39-3: not in the archive/);
    assert.equal(result.stdout, '');
  });

  test('a package the archive does not have: refused, exit 2, named', async () => {
    const f = fixture!;
    const root = await makeForeignRoot(f.corpus, join(f.work, 'unarchived'), ['fi-app', 'fi-systemd', 'fi-extra']);
    const image = await imageOfRoot(root, join(f.work, 'unarchived-image'));
    const result = await rebuild(image, 'unarchived');
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(errorLine(result), /refused 1 of 6 packages: package fi-extra 1\.0-1: not in the archive .* \(no fi-extra-1\.0-1-any\.pkg\.tar\.zst nor fi-extra-1\.0-1-any\.pkg\.tar\.xz\)/);
  });

  test('without --keyring: one line saying what is needed, exit 2', async () => {
    const f = fixture!;
    const result = await runCli(['rebuild', f.image, '--archive', `${f.server.url}/`], { env: { REPRO_OCI_CACHE: join(f.work, 'cache', 'nokeyring') } });
    assert.equal(result.code, 2);
    assert.match(errorLine(result), /give the keyring \(--keyring DIR/);
  });
});

describe('content comparison as pure code', () => {
  const file = (path: string, owner: string, extra: Partial<InstalledFacts> = {}): [string, InstalledFacts] => [path, { type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, sha256: 'aa', owner, ...extra }];
  const dir = (path: string, owner = ''): [string, InstalledFacts] => [path, { type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, owner }];
  const inputs = (installed: Array<[string, InstalledFacts]>, image: Array<[string, PathFacts]>, backup: string[] = []): ContentInputs => ({
    installed: new Map(installed),
    image: new Map(image),
    backup: new Set(backup),
    imageContent: new Map(),
    installedContent: new Map(),
    packages: 1,
  });

  test('missing groups: one glob per wholly missing directory, many siblings with few kept as parent/* with exceptions, names escaped', () => {
    const locales = ['de', 'fr', 'it', 'ja', 'nl', 'pt'].flatMap((l) => [dir(`usr/share/locale/${l}`, 'p'), file(`usr/share/locale/${l}/p.mo`, 'p')]);
    const installed = [dir('usr'), dir('usr/share'), dir('usr/share/locale'), ...locales, file('usr/share/locale/locale.alias', 'p'), dir('usr/share/man'), dir('usr/share/man/man1', 'q'), file('usr/share/man/man1/q.1', 'q'), file('usr/share/a*b', 'q'), file('usr/share/kept', 'q')];
    const present = installed.filter(([p]) => !p.startsWith('usr/share/locale/') || p === 'usr/share/locale/locale.alias').filter(([p]) => !p.startsWith('usr/share/man/') && p !== 'usr/share/a*b');
    const groups = missingGroups(inputs(installed, present));
    assert.deepEqual(groups.map((g) => [g.glob, g.except, g.paths, g.bytes, g.packages]), [
      ['usr/share/a\\*b', [], 1, 1, ['q']],
      ['usr/share/locale/*', ['usr/share/locale/locale.alias'], 12, 6, ['p']],
      ['usr/share/man/*', [], 2, 1, ['q']],
    ]);
  });

  test('each path in one category; a backup edit is not unexplained, a mode change of a backup file is', () => {
    const installed = [dir('etc'), file('etc/a.conf', 'p'), file('etc/b.conf', 'p'), file('usr', 'p')];
    const image: Array<[string, PathFacts]> = [dir('etc'), file('etc/a.conf', '', { sha256: 'bb', size: 2 }), file('etc/b.conf', '', { mode: 0o666 }), file('usr', '', { type: 'symlink', linkTarget: 'x' }), file('opt/x', '', { mode: 0o2755 })];
    const report = compareContent(inputs(installed, image, ['etc/a.conf', 'etc/b.conf']));
    assert.equal(report.equal, 1);
    assert.deepEqual(report.differs.map((d) => [d.path, d.backup, d.fields.map((f) => f.field)]), [
      ['etc/a.conf', true, ['size', 'sha256']],
      ['etc/b.conf', false, ['mode']],
      ['usr', false, ['type']],
    ]);
    assert.deepEqual(report.notFromPackage, [{ path: 'opt/x', type: 'file', mode: 0o2755, size: 1, setid: true }]);
    assert.equal(report.unexplained, 3);
    assert.equal(report.verdict, 'differs');
  });

  test('a regeneration that could not run leaves its files unverified, counted as unexplained', () => {
    const report = compareContent(inputs([], [file('etc/ld.so.cache', '')]), new Map([['ldconfig', { ok: false as const, reason: 'ldconfig is not installed by the image\'s packages' }]]));
    assert.deepEqual(report.generatedPaths, [{ path: 'etc/ld.so.cache', by: 'ldconfig', status: 'unverified', reason: "ldconfig is not installed by the image's packages" }]);
    assert.equal(report.unexplained, 1);
  });
});

describe('regeneration in the sandbox', { skip: COMMANDS_SKIP }, () => {
  test("a regenerator's output is read without following links: a link made to a host file stays a link", async () => {
    const node = (path: string, type: 'file' | 'dir' | 'symlink', extra: Partial<TreeNode> = {}): TreeNode => ({ path, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 0, size: 0, owner: 'p', ...extra });
    const content = (path: string, bytes: Buffer, mode: number): TreeNode => node(path, 'file', { size: bytes.length, mode, open: () => Readable.from([bytes]) });
    const script = "#!/usr/bin/sh\nln -s /etc/shadow /etc/ld.so.cache\necho 'x' > /etc/passwd\n";
    const entries = [
      node('etc', 'dir'),
      node('usr', 'dir'),
      node('usr/bin', 'dir'),
      content('usr/bin/busybox', readFileSync('/bin/busybox'), 0o755),
      node('usr/bin/sh', 'symlink', { linkTarget: 'busybox', mode: 0o777 }),
      node('usr/bin/ln', 'symlink', { linkTarget: 'busybox', mode: 0o777 }),
      content('usr/bin/ldconfig', Buffer.from(script), 0o755),
    ];
    const ldconfig = REGENERATORS.find((r) => r.id === 'ldconfig')!;
    const sysusers = REGENERATORS.find((r) => r.id === 'systemd-sysusers')!;
    const result = await regenerate(entries, [sysusers, ldconfig], SDE);
    assert.deepEqual(result.get('systemd-sysusers'), { ok: false, reason: "systemd-sysusers is not installed by the image's packages" });
    const made = result.get('ldconfig');
    assert.ok(made?.ok);
    assert.deepEqual(made.files.get('etc/ld.so.cache'), { type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkTarget: '/etc/shadow' });
    // The program ran as the image's, but sysusers' files are not attributed to it.
    assert.equal(made.files.get('etc/passwd'), undefined);
  });
});

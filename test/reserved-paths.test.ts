import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildPackage, type PackageEntry } from '../src/example/package-writer.js';
import { repoPackageFromBuilt, writeRepo } from '../src/example/repo-writer.js';
import { runCli, tempDirFor } from './support/cli.js';

/**
 * repro-oci keeps its recipe and SBOMs in usr/share/repro-oci. A package (or the setup) that puts something else
 * on that path, or on the files themselves, must fail the build with the package and path named — never have the
 * recipe written through a symlink or beneath a file (a layer GNU tar and bsdtar refuse to extract).
 */
async function repoWith(dir: string, name: string, entries: PackageEntry[]): Promise<void> {
  const pkg = await buildPackage({ pkgname: name, pkgver: '1', pkgrel: 1, arch: 'any', sourceDateEpoch: 1700000000, pkginfoComments: ['test'], buildinfo: { buildtoolver: '0' }, entries });
  const out = join(dir, 'repo', 'core', 'os', 'x86_64');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, pkg.filename), pkg.bytes);
  await writeRepo(out, 'core', [repoPackageFromBuilt(pkg)], { symlinks: false });
}

async function build(dir: string, name: string, setup = ''): Promise<{ code: number | null; stderr: string; stdout: string }> {
  writeFileSync(join(dir, 'spec.yaml'), ['repositories: [{ name: core, servers: [repo/$repo/os/$arch] }]', `packages: [${name}]`, 'sigLevel: Never', setup, ''].join('\n'));
  return runCli(['build', 'spec.yaml', '--source-date-epoch', '1700000000', '-o', `oci:${join(dir, 'out')}`, '--sbom', join(dir, 'sbom')], { cwd: dir, env: { REPRO_OCI_CACHE: join(dir, 'cache'), TMPDIR: join(dir, 'tmp') } });
}

function assertRefused(dir: string, r: { code: number | null; stderr: string; stdout: string }, message: RegExp): void {
  assert.equal(r.code, 2, r.stderr + r.stdout);
  assert.doesNotMatch(r.stderr, /internal error/);
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines.at(-1)!, /^repro-oci: /, r.stderr);
  assert.equal(lines.filter((l) => l.startsWith('repro-oci: ')).length, 1, r.stderr);
  assert.match(lines.at(-1)!, message);
  assert.equal(existsSync(join(dir, 'out')), false, 'no image');
  assert.equal(existsSync(join(dir, 'sbom')), false, 'no SBOMs');
  assert.deepEqual(readdirSync(join(dir, 'tmp')), [], 'no scratch left');
}

const SHARE: PackageEntry[] = [{ path: 'usr', type: 'dir' }, { path: 'usr/share', type: 'dir' }];

test('a package shipping usr/share/repro-oci as a symlink fails the build, named', async (t) => {
  const dir = await tempDirFor(t, 'reserved-symlink');
  mkdirSync(join(dir, 'tmp'));
  await repoWith(dir, 'evil', [...SHARE, { path: 'usr/share/repro-oci', type: 'symlink', linkTarget: '../../etc' }]);
  assertRefused(dir, await build(dir, 'evil'), /package evil ships usr\/share\/repro-oci as a symlink; repro-oci keeps its recipe and SBOMs there and writes through nothing but directories$/);
});

test('a package shipping usr/share/repro-oci as a file fails the build, named', async (t) => {
  const dir = await tempDirFor(t, 'reserved-file');
  mkdirSync(join(dir, 'tmp'));
  await repoWith(dir, 'evil', [...SHARE, { path: 'usr/share/repro-oci', type: 'file', content: 'x' }]);
  assertRefused(dir, await build(dir, 'evil'), /package evil ships usr\/share\/repro-oci as a file; repro-oci keeps its recipe/);
});

test('a package shipping usr/share as a symlink fails the build, named', async (t) => {
  const dir = await tempDirFor(t, 'reserved-parent');
  mkdirSync(join(dir, 'tmp'));
  await repoWith(dir, 'evil', [{ path: 'usr', type: 'dir' }, { path: 'usr/share', type: 'symlink', linkTarget: '/tmp' }]);
  assertRefused(dir, await build(dir, 'evil'), /package evil ships usr\/share as a symlink/);
});

test('a package shipping the recipe or an SBOM itself fails the build, named', async (t) => {
  for (const file of ['recipe.json', 'sbom.spdx.json', 'sbom.cdx.json']) {
    const dir = await tempDirFor(t, 'reserved-recipe');
    mkdirSync(join(dir, 'tmp'));
    await repoWith(dir, 'forger', [...SHARE, { path: 'usr/share/repro-oci', type: 'dir' }, { path: `usr/share/repro-oci/${file}`, type: 'file', content: '{}' }]);
    assertRefused(dir, await build(dir, 'forger'), new RegExp(`package forger ships usr/share/repro-oci/${file.replace(/\./g, '\\.')}, a path repro-oci writes itself$`));
  }
});

test('a setup symlink at usr/share/repro-oci fails the build, named', async (t) => {
  const dir = await tempDirFor(t, 'reserved-setup');
  mkdirSync(join(dir, 'tmp'));
  await repoWith(dir, 'plain', [...SHARE, { path: 'usr/share/doc', type: 'file', content: 'x' }]);
  assertRefused(dir, await build(dir, 'plain', 'image: { setup: { symlinks: [{ path: /usr/share/repro-oci, target: /tmp }] } }'), /the setup puts a symlink at usr\/share\/repro-oci; repro-oci keeps/);
});

test('a package that ships usr/share/repro-oci as a directory (with other files) builds; the recipe goes beside them', async (t) => {
  const dir = await tempDirFor(t, 'reserved-dir');
  mkdirSync(join(dir, 'tmp'));
  await repoWith(dir, 'friendly', [...SHARE, { path: 'usr/share/repro-oci', type: 'dir' }, { path: 'usr/share/repro-oci/README', type: 'file', content: 'x' }]);
  const r = await build(dir, 'friendly');
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(dir, 'sbom')));
});

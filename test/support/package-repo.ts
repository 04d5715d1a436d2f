import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPackage, type BuiltPackage } from '../../src/example/package-writer.js';
import { repoPackageFromBuilt, writeRepo } from '../../src/example/repo-writer.js';
import { runCli, tempDirFor, type RunResult } from './cli.js';
import { serveDirectory, type FileServer } from './http-server.js';

/** Incompressible but fixed content, so that packages have a size worth cutting, forging and bounding. */
export function noise(seed: string, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < size; i++) parts.push(createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(parts).subarray(0, size);
}

/** A package `name` 1.0-1 holding one file `usr/share/<name>/data`. */
export function testPackage(name: string, content: Buffer, depends: string[] = []): Promise<BuiltPackage> {
  return buildPackage({
    pkgname: name,
    pkgver: '1.0',
    pkgrel: 1,
    arch: 'x86_64',
    depends,
    sourceDateEpoch: 1700000000,
    pkginfoComments: ['test'],
    buildinfo: { buildtoolver: '0' },
    entries: [{ path: `usr/share/${name}/data`, type: 'file', content }],
  });
}

export interface ServedRepo {
  work: string;
  server: FileServer;
  /** alpha, then beta (which depends on alpha). */
  packages: BuiltPackage[];
  spec: string;
}

/** An unsigned repository `core` (alpha, beta) served over HTTP, a spec that builds an image of it, and its lock. */
export async function servedRepo(t: { after: (fn: () => Promise<void>) => void }, dataSize = 64 * 1024): Promise<ServedRepo> {
  const work = await tempDirFor(t, 'served-repo');
  const packages = [await testPackage('alpha', noise('alpha', dataSize)), await testPackage('beta', noise('beta', dataSize), ['alpha'])];
  const dir = join(work, 'repo', 'core', 'os', 'x86_64');
  mkdirSync(dir, { recursive: true });
  for (const p of packages) writeFileSync(join(dir, p.filename), p.bytes);
  await writeRepo(dir, 'core', packages.map((p) => repoPackageFromBuilt(p)), { symlinks: false });
  const server = await serveDirectory(join(work, 'repo'));
  t.after(() => server.close());
  const spec = join(work, 'spec.yaml');
  writeFileSync(spec, ['repositories:', '  - name: core', `    servers: ["${server.url}/$repo/os/$arch"]`, 'packages: [beta]', 'sigLevel: Never', 'image:', '  config: { Cmd: [/bin/sh] }', ''].join('\n'));
  const lock = await runCli(['lock', spec]);
  assert.equal(lock.code, 0, lock.stderr);
  return { work, server, packages, spec };
}

/** `build` of the repo's spec into an OCI layout `out`, with `cache`; stdout is the digest. */
export function buildInto(repo: ServedRepo, cache: string, out: string, extra: string[] = []): Promise<RunResult> {
  return runCli(['build', repo.spec, '-o', `oci:${out}:t`, '--cache', cache, ...extra], { env: { REPRO_OCI_RETRY_DELAY_MS: '1' } });
}

/** The cache file of a package. */
export function cacheEntry(cache: string, pkg: BuiltPackage): string {
  return join(cache, 'blobs', 'sha256', pkg.sha256);
}

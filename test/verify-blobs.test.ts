import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { generateExampleArchive } from '../src/example/generate.js';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { sha256 } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/mediatypes.js';
import { peakRss, plainTar, tarDiffId, writeLayout, zstdTar } from './support/bombs.js';
import { REPO_ROOT, runCli, tempDirFor } from './support/cli.js';

const MiB = 1024 * 1024;

interface Built {
  work: string;
  dir: string;
  ref: string;
  env: Record<string, string>;
}

async function exampleImage(work: string): Promise<Built> {
  await generateExampleArchive(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), work);
  copyFileSync(join(REPO_ROOT, 'examples/hello-arch/spec.yaml'), join(work, 'spec.yaml'));
  const env = { REPRO_OCI_CACHE: join(work, 'cache') };
  const built = await runCli(['build', 'spec.yaml', '-o', `oci:${join(work, 'img')}:t`], { cwd: work, env });
  assert.equal(built.code, 0, built.stderr);
  return { work, dir: join(work, 'img'), ref: `oci:${join(work, 'img')}:t`, env };
}

function blobPath(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice(7));
}

function readManifest(dir: string): { digest: string; manifest: { config: { digest: string; size: number }; layers: { digest: string; size: number }[] } } {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]!.digest;
  return { digest, manifest: JSON.parse(readFileSync(blobPath(dir, digest), 'utf8')) };
}

test('a layer blob with the right start (the recipe) but a forged tail: rebuild, inspect and diff fail naming the blob', async (t) => {
  const built = await exampleImage(await tempDirFor(t, 'forged-tail'));
  const forgedDir = join(built.work, 'forged');
  cpSync(built.dir, forgedDir, { recursive: true });
  const { manifest } = readManifest(forgedDir);
  const layer = manifest.layers[0]!;
  const tar = gunzipSync(readFileSync(blobPath(forgedDir, layer.digest)));
  const recipeAt = tar.indexOf('usr/share/repro-oci/recipe.json');
  const tailAt = tar.lastIndexOf('%NAME%');
  assert.ok(recipeAt > 0 && tailAt > recipeAt, 'the pacman database comes after the recipe');
  tar[tailAt + 1] = 'X'.charCodeAt(0);
  writeFileSync(blobPath(forgedDir, layer.digest), gzipSync(tar));
  const forged = `oci:${forgedDir}:t`;
  const named = new RegExp(`blob ${layer.digest}`);

  const rebuild = await runCli(['rebuild', forged], { cwd: built.work, env: built.env });
  assert.equal(rebuild.code, 2, rebuild.stdout + rebuild.stderr);
  assert.doesNotMatch(rebuild.stdout, /reproducible/);
  assert.match(rebuild.stderr, named);

  const inspect = await runCli(['inspect', forged]);
  assert.equal(inspect.code, 2, inspect.stdout + inspect.stderr);
  assert.match(inspect.stderr, named);

  const diff = await runCli(['diff', built.ref, forged]);
  assert.equal(diff.code, 2, diff.stdout + diff.stderr);
  assert.doesNotMatch(diff.stdout, /same/);
  assert.match(diff.stderr, named);
  assert.equal(diff.stderr.trim().split('\n').length, 1, 'one line');
});

test('a config that lists a wrong diffID: diff and rebuild refuse the layer, named', async (t) => {
  const built = await exampleImage(await tempDirFor(t, 'wrong-diffid'));
  const badDir = join(built.work, 'bad');
  cpSync(built.dir, badDir, { recursive: true });
  const { digest: oldDigest, manifest } = readManifest(badDir);
  const config = JSON.parse(readFileSync(blobPath(badDir, manifest.config.digest), 'utf8')) as { rootfs: { diff_ids: string[] } };
  config.rootfs.diff_ids[0] = sha256('not the layer');
  const configBytes = canonicalJsonBytes(config);
  writeFileSync(blobPath(badDir, sha256(configBytes)), configBytes);
  const manifestBytes = canonicalJsonBytes({ ...manifest, config: { ...manifest.config, digest: sha256(configBytes), size: configBytes.length } });
  writeFileSync(blobPath(badDir, sha256(manifestBytes)), manifestBytes);
  const index = readFileSync(join(badDir, 'index.json'), 'utf8').replace(oldDigest, sha256(manifestBytes)).replace(/"size":\d+/, `"size":${manifestBytes.length}`);
  writeFileSync(join(badDir, 'index.json'), index);
  const bad = `oci:${badDir}:t`;
  const named = new RegExp(`${manifest.layers[0]!.digest}.*diffID`);

  const diff = await runCli(['diff', built.ref, bad]);
  assert.equal(diff.code, 2, diff.stdout + diff.stderr);
  assert.match(diff.stderr, named);

  const rebuild = await runCli(['rebuild', bad], { cwd: built.work, env: built.env });
  assert.equal(rebuild.code, 2, rebuild.stdout + rebuild.stderr);
  assert.match(rebuild.stderr, named);
});

test('diff of layouts with the same manifest checks every blob: corrupt or missing is an error unless --no-verify-blobs', async (t) => {
  const work = await tempDirFor(t, 'diff-blobs');
  const members = [{ path: 'etc', type: 'dir' as const }, { path: 'etc/motd', content: 'hello\n' }];
  const blob = zstdTar(members);
  writeLayout(join(work, 'a'), [{ blob, diffId: sha256(plainTar(members)) }]);
  const digest = writeLayout(join(work, 'b'), [{ blob, diffId: sha256(plainTar(members)) }]);
  const [a, b] = [`oci:${join(work, 'a')}:t`, `oci:${join(work, 'b')}:t`];

  const same = await runCli(['diff', a, b]);
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, new RegExp(`^same: ${digest}\nblobs: 3 of each side checked in full`));
  const json = JSON.parse((await runCli(['diff', '--json', a, b])).stdout) as { summary: { same: boolean; blobs: { verified: boolean } } };
  assert.deepEqual([json.summary.same, json.summary.blobs.verified], [true, true]);

  writeFileSync(blobPath(join(work, 'b'), sha256(blob)), Buffer.concat([blob.subarray(0, -1), Buffer.from([blob.at(-1)! ^ 1])]));
  const corrupt = await runCli(['diff', a, b]);
  assert.equal(corrupt.code, 2, corrupt.stdout + corrupt.stderr);
  assert.match(corrupt.stderr, new RegExp(`blob ${sha256(blob)}: content has digest`));

  rmSync(blobPath(join(work, 'b'), sha256(blob)));
  const missing = await runCli(['diff', a, b]);
  assert.equal(missing.code, 2, missing.stdout + missing.stderr);
  assert.match(missing.stderr, new RegExp(`blob ${sha256(blob)} is missing`));

  const unchecked = await runCli(['diff', '--no-verify-blobs', a, b]);
  assert.equal(unchecked.code, 0, unchecked.stderr);
  assert.match(unchecked.stdout, /^same: .*\nblobs: not checked \(--no-verify-blobs\)/);
  const uncheckedJson = JSON.parse((await runCli(['diff', '--json', '--no-verify-blobs', a, b])).stdout) as { summary: { blobs: { verified: boolean } } };
  assert.equal(uncheckedJson.summary.blobs.verified, false);
});

/** An image (config + one layer) under 30 levels of indexes that each name the level below twice: 2^30 paths, 33 blobs. */
function dagLayout(dir: string): void {
  const members = [{ path: 'f', content: 'x' }];
  writeLayout(dir, [{ blob: zstdTar(members), diffId: sha256(plainTar(members)) }]);
  const top = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number; mediaType: string }[] };
  let child: { mediaType: string; digest: string; size: number } = { mediaType: MediaType.OciManifest, digest: top.manifests[0]!.digest, size: top.manifests[0]!.size };
  for (let level = 0; level < 30; level++) {
    const bytes = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [child, child] });
    writeFileSync(blobPath(dir, sha256(bytes)), bytes);
    child = { mediaType: MediaType.OciIndex, digest: sha256(bytes), size: bytes.length };
  }
  writeFileSync(join(dir, 'index.json'), canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [child] }));
}

test('copy, archive and diff of an index DAG with shared children visit each blob once', async (t) => {
  const work = await tempDirFor(t, 'dag');
  dagLayout(join(work, 'dag'));
  // Walking the 2^30 paths would never end: the time limit (generous for a loaded machine) is the liveness check.
  const copy = await runCli(['copy', `oci:${join(work, 'dag')}`, `oci:${join(work, 'copy')}`], { timeoutMs: 120_000 });
  assert.equal(copy.code, 0, copy.stderr);
  assert.deepEqual(readdirSync(join(work, 'copy/blobs/sha256')).sort(), readdirSync(join(work, 'dag/blobs/sha256')).sort());
  const archive = await runCli(['archive', '--layers', `oci:${join(work, 'dag')}`, `oci:${join(work, 'kept')}`], { timeoutMs: 120_000 });
  assert.equal(archive.code, 0, archive.stderr);
  const diff = await runCli(['diff', `oci:${join(work, 'dag')}`, `oci:${join(work, 'copy')}`], { timeoutMs: 120_000 });
  assert.equal(diff.code, 0, diff.stderr);
  assert.match(diff.stdout, /blobs: 33 of each side checked in full/);
});

test('--report-dir: a path that is a file in one layer and a directory in the next; a byte limit stops the writing', async (t) => {
  const work = await tempDirFor(t, 'report');
  const lowerA = [{ path: 'big', content: Buffer.alloc(3 * MiB, 'a') }, { path: 'x', content: 'file\n' }];
  const upperA = [{ path: 'x', type: 'dir' as const }, { path: 'x/y', content: 'child\n' }];
  const sideB = [{ path: 'big', content: Buffer.alloc(3 * MiB, 'b') }, { path: 'x', content: 'other\n' }];
  writeLayout(join(work, 'a'), [lowerA, upperA].map((m) => ({ blob: zstdTar(m), diffId: sha256(plainTar(m)) })));
  writeLayout(join(work, 'b'), [{ blob: zstdTar(sideB), diffId: sha256(plainTar(sideB)) }]);
  const [a, b] = [`oci:${join(work, 'a')}:t`, `oci:${join(work, 'b')}:t`];

  const full = await runCli(['diff', '--report-dir', join(work, 'full'), a, b]);
  assert.equal(full.code, 1, full.stderr);
  assert.equal(full.stderr, '');
  assert.equal(readFileSync(join(work, 'full/a/x/y'), 'utf8'), 'child\n', 'the upper layer wins, as in the image');
  assert.equal(readFileSync(join(work, 'full/b/x'), 'utf8'), 'other\n');
  assert.equal(statSync(join(work, 'full/b/big')).size, 3 * MiB);

  const limited = await runCli(['diff', '--report-dir', join(work, 'limited'), '--report-limit', '4M', a, b]);
  assert.equal(limited.code, 1, limited.stderr);
  assert.match(limited.stderr, /^note: --report-dir .*: stopped at the 4194304-byte limit \(--report-limit\); \d+ file\(s\) not written\n$/);
  assert.ok(existsSync(join(work, 'limited/a/big')));
  assert.ok(!existsSync(join(work, 'limited/b/big')), 'a file that does not fit is not written at all');

  const nonsense = await runCli(['diff', '--report-dir', join(work, 'n'), '--report-limit', 'lots', a, b]);
  assert.equal(nonsense.code, 2);
  assert.equal(nonsense.stderr, 'repro-oci: --report-limit lots: expected a number of bytes, e.g. 1073741824, 512M or 1G\n');

  const help = await runCli(['diff', '--help']);
  assert.match(help.stdout, /--report-limit <bytes>/);
});

test('diff of two images whose layer is a zstd bomb stays under 300 MB and writes no more than the report limit', async (t) => {
  const work = await tempDirFor(t, 'bomb-diff');
  const GiB = 1024 * MiB;
  const [sideA, sideB] = [[{ path: 'zeros', zeros: GiB }], [{ path: 'zeros', zeros: GiB + 512 }]];
  writeLayout(join(work, 'a'), [{ blob: zstdTar(sideA), diffId: tarDiffId(sideA) }]);
  writeLayout(join(work, 'b'), [{ blob: zstdTar(sideB), diffId: tarDiffId(sideB) }]);
  const report = join(work, 'report');
  const result = await peakRss(['diff', '--report-dir', report, '--report-limit', '16M', `oci:${join(work, 'a')}:t`, `oci:${join(work, 'b')}:t`], { timeoutMs: 240_000 });
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /\/zeros: size 1073741824 → 1073742336/);
  assert.match(result.stderr, /stopped at the 16777216-byte limit/);
  t.diagnostic(`peak RSS ${result.peakRssMb} MB`);
  assert.ok(result.peakRssMb < 300, `peak RSS ${result.peakRssMb} MB`);
  const written = (dir: string): number => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((n, e) => n + statSync(join(e.parentPath, e.name)).size, 0);
  assert.ok(written(report) <= 16 * MiB, `${written(report)} bytes in the report dir`);
});

test('copy into a layout that holds a corrupt file under a blob digest replaces it with the verified bytes', async (t) => {
  const work = await tempDirFor(t, 'copy-existing');
  const members = [{ path: 'etc/motd', content: 'hello\n' }];
  const blob = zstdTar(members);
  writeLayout(join(work, 'src'), [{ blob, diffId: sha256(plainTar(members)) }]);
  const first = await runCli(['copy', `oci:${join(work, 'src')}:t`, `oci:${join(work, 'dst')}:one`]);
  assert.equal(first.code, 0, first.stderr);
  writeFileSync(blobPath(join(work, 'dst'), sha256(blob)), 'forged');
  const second = await runCli(['copy', `oci:${join(work, 'src')}:t`, `oci:${join(work, 'dst')}:two`]);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(sha256(readFileSync(blobPath(join(work, 'dst'), sha256(blob)))), sha256(blob));
});

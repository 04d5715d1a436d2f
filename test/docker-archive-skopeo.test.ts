import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { busyboxRepo } from './support/busybox.js';
import { makeTempDir, removeDir, REPO_ROOT, runCli, runCliOk, runOk, type RunResult } from './support/cli.js';

/**
 * docker-archive: what survives it, checked with the real skopeo (no docker daemon is available to tests). We write
 * it Docker-25 style (an OCI layout plus manifest.json), and read back the manifest digest; skopeo reads
 * manifest.json only and writes archives without a manifest of the image's own, with layers uncompressed. Such an
 * archive is read with a manifest made up from its config and layers, and a rebuild judges it by content: the
 * config digest (which lists the diffIDs) and every layer hashed in full against its diffID.
 */
const SKIP = (!existsSync('/bin/busybox') && 'needs /bin/busybox (busybox-static)') || (!existsSync('/usr/bin/skopeo') && 'needs skopeo');

let work = '';
let built = '';
let env: Record<string, string> = {};
const NAME = 'example/img:v1';
/** The content of a file in the image, found (once) in an archive that stores the layer uncompressed. */
const MARKER = 'docker-archive-skopeo-marker';

interface InspectJson {
  digest: string;
  images: { config: { digest: string; value: { rootfs: { diff_ids: string[] } } }; layers: { digest: string }[] }[];
}

async function inspectJson(ref: string): Promise<InspectJson> {
  return JSON.parse((await runCliOk(['inspect', '--json', ref], { cwd: work, env })).stdout) as InspectJson;
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function rebuild(ref: string, ...args: string[]): Promise<RunResult> {
  return runCli(['rebuild', ...args, ref], { cwd: work, env, timeoutMs: 120_000 });
}

/** A copy of an archive with one run of bytes replaced by another of the same length (tar headers unchanged). */
function patched(file: string, from: string, to: string, name: string): string {
  assert.equal(from.length, to.length);
  const bytes = readFileSync(file);
  const at = bytes.indexOf(from);
  assert.ok(at !== -1 && bytes.indexOf(from, at + 1) === -1, `${from} occurs once in ${file}`);
  bytes.write(to, at, 'latin1');
  const out = join(work, name);
  writeFileSync(out, bytes);
  return out;
}

before(async () => {
  if (SKIP) return;
  work = await makeTempDir('docker-archive-skopeo');
  env = { REPRO_OCI_CACHE: join(work, 'cache') };
  await busyboxRepo(work, ['sh'], [{ path: 'etc/marker', type: 'file', content: `${MARKER}\n` }]);
  writeFileSync(join(work, 'spec.yaml'), "repositories: [{ name: core, servers: ['repo/$repo/os/$arch'] }]\npackages: [busybox]\nsigLevel: Never\n");
  const out = await runCliOk(['build', 'spec.yaml', '-o', `oci:${join(work, 'oci')}:v1`, '-o', `docker-archive:${join(work, 'ours.tar')}:${NAME}`], { cwd: work, env });
  built = out.stdout.trim();
  await runOk('skopeo', ['copy', '-q', `oci:${join(work, 'oci')}:v1`, `docker-archive:${join(work, 'skopeo.tar')}:${NAME}`]);
});

after(() => removeDir(work));

test('our docker-archive: repro-oci reads the manifest digest back; skopeo keeps only the config bytes and the diffIDs', { skip: SKIP }, async () => {
  const ours = join(work, 'ours.tar');
  const mine = await inspectJson(`docker-archive:${ours}`);
  assert.equal(mine.digest, built);
  const config = mine.images[0]!.config;

  const skopeo = JSON.parse((await runOk('skopeo', ['inspect', `docker-archive:${ours}`])).stdout) as { Digest: string; Layers: string[] };
  assert.notEqual(skopeo.Digest, built, 'skopeo makes up a manifest of its own from manifest.json');
  assert.deepEqual(skopeo.Layers, config.value.rootfs.diff_ids, 'skopeo lists the layers by their diffIDs');
  assert.equal(sha256((await runOk('skopeo', ['inspect', '--config', '--raw', `docker-archive:${ours}`])).stdoutBytes), config.digest, 'the config survives byte for byte');

  // Copied on to oci:, skopeo also converts the config to the OCI media type: only its content and the diffIDs survive.
  await runOk('skopeo', ['copy', '-q', `docker-archive:${ours}`, `oci:${join(work, 'via-skopeo')}:v1`]);
  const copied = await inspectJson(`oci:${join(work, 'via-skopeo')}:v1`);
  assert.notEqual(copied.digest, built);
  assert.notEqual(copied.images[0]!.config.digest, config.digest);
  assert.deepEqual(copied.images[0]!.config.value, config.value);
});

test('a docker-archive written by skopeo is read and rebuilt by content: config digest and every layer in full', { skip: SKIP }, async () => {
  const ref = `docker-archive:${join(work, 'skopeo.tar')}`;
  const listing = (await runOk('tar', ['-tf', join(work, 'skopeo.tar')])).stdout;
  assert.doesNotMatch(listing, /^(index\.json|oci-layout)$/m, 'skopeo writes no manifest of the image');
  const read = await inspectJson(ref);
  const config = read.images[0]!.config;
  assert.notEqual(read.digest, built);
  assert.deepEqual(read.images[0]!.layers.map((l) => l.digest), config.value.rootfs.diff_ids, 'layers stored uncompressed');

  const r = await rebuild(ref);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    r.stdout,
    `reproducible by content: config ${config.digest} and the content of all 1 layer(s) match the rebuild\n` +
      `(the archive keeps no manifest of the image's own, so its digest ${read.digest} is not the image's; the rebuild's manifest is ${built})\n`,
  );
  const json = JSON.parse((await rebuild(ref, '--json')).stdout) as { reproducible: boolean; rebuilt: string; byContent: unknown };
  assert.deepEqual([json.reproducible, json.rebuilt, json.byContent], [true, built, { config: config.digest, layers: 1 }]);

  // Our own archive keeps the manifest: it is reproducible by digest, not merely by content.
  const ours = await rebuild(`docker-archive:${join(work, 'ours.tar')}`);
  assert.equal(ours.stdout, `reproducible: ${built}\n`, ours.stderr);
});

test('a skopeo docker-archive whose layer or config was changed is refused or not reproducible, never by content', { skip: SKIP }, async () => {
  const original = join(work, 'skopeo.tar');
  const { images } = await inspectJson(`docker-archive:${original}`);
  const diffId = images[0]!.config.value.rootfs.diff_ids[0]!;

  // One byte of a file inside the (uncompressed) layer: the tar stays valid, the content does not match its diffID.
  const layer = patched(original, MARKER, MARKER.toUpperCase(), 'layer.tar');
  const changed = await rebuild(`docker-archive:${layer}`);
  assert.equal(changed.code, 2, changed.stderr);
  const lastLine = changed.stderr.trimEnd().split('\n').at(-1)!;
  assert.match(lastLine, new RegExp(`^repro-oci: layer (sha256:[0-9a-f]{64}): uncompressed content has digest \\1, but the config lists diffID ${diffId}$`));
  assert.doesNotMatch(changed.stderr, /^\s+at /m);

  // A config of another image (one date changed): the rebuild shows the difference, and the verdict is no.
  const config = patched(original, '20Z","history"', '21Z","history"', 'config.tar');
  const other = await rebuild(`docker-archive:${config}`);
  assert.equal(other.code, 1, other.stderr);
  assert.match(other.stdout, /^NOT reproducible: image sha256:[0-9a-f]{64}, rebuild /);
  assert.match(other.stdout, /\[config\] 1 difference\n {2}~ created: "2023-11-14T22:13:21Z" → "2023-11-14T22:13:20Z"\n/);
});

test('the README says what survives a docker-archive, as the tests above check it', () => {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const paragraph = readme.slice(readme.indexOf('What survives a docker-archive'));
  assert.ok(readme.includes('What survives a docker-archive'), 'the README has the paragraph');
  for (const claim of [
    'repro-oci reads the manifest digest back',
    'skopeo reads only `manifest.json`',
    'the config survives byte for byte',
    'the layers keep their diffIDs',
    '`reproducible by content`',
    'docker load',
  ]) {
    assert.ok(paragraph.slice(0, 2500).includes(claim), `the paragraph says: ${claim}`);
  }
});

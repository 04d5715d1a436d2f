/**
 * `--json` and `--digestfile` for scripts: the JSON is the whole of stdout and says what skopeo, pacman and the
 * files themselves say; the digest file holds what skopeo's holds, byte for byte.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { REPO_ROOT, makeTempDir, removeDir, runCli, runCliOk, runOk, type RunResult } from './support/cli.js';
import { exampleImage, type ExampleImage } from './support/example-image.js';
import { entryJson } from '../src/cli/commands/install.js';
import { encodeName } from '../src/util/raw-name.js';

let work: string;
let example: ExampleImage;
let rootfs: string;

before(async () => {
  work = await makeTempDir('json');
  example = await exampleImage(work);
  rootfs = join(work, 'rootfs');
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await writeFile(join(rootfs, 'etc', 'motd'), 'hello\n');
  await chmod(join(rootfs, 'etc', 'motd'), 0o644);
});
after(() => removeDir(work));

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const blobPath = (layout: string, digest: string): string => join(layout, 'blobs', ...digest.split(':'));

/** The whole of stdout is one JSON document (and a final newline); nothing else was printed there. */
function onlyJson<T>(r: RunResult): T {
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith('{') && r.stdout.endsWith('}\n'), `stdout is one JSON object:\n${r.stdout.slice(0, 300)}`);
  return JSON.parse(r.stdout) as T;
}

interface Descriptor {
  digest: string;
  mediaType: string;
  size: number;
}
interface Layer {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
  compressor?: string;
}
interface BuildJson {
  manifest: Descriptor;
  config: Descriptor;
  layers: Layer[];
  outputs: { reference: string; digest: string }[];
  timings: Record<string, number>;
}

async function skopeoInspect(ref: string): Promise<{ Digest: string; Layers: string[] }> {
  return JSON.parse((await runOk('skopeo', ['inspect', ref])).stdout) as never;
}

test('build --rootfs --json: the descriptors skopeo reads, each output, the phase timings; --digestfile holds what skopeo copy --digestfile writes', async () => {
  const layout = join(work, 'rootfs-image');
  const archive = join(work, 'rootfs-image.tar');
  const dockerArchive = join(work, 'rootfs-docker.tar');
  const digestFile = join(work, 'build.digest');
  const outputs = [`oci:${layout}:v1`, `oci-archive:${archive}:v1`, `docker-archive:${dockerArchive}:example/json:v1`];
  const built = onlyJson<BuildJson>(await runCli(['build', '--rootfs', rootfs, ...outputs.flatMap((o) => ['-o', o]), '--json', '--digestfile', digestFile]));
  assert.deepEqual(Object.keys(built), ['manifest', 'config', 'layers', 'outputs', 'timings']);

  const manifestBytes = await readFile(blobPath(layout, built.manifest.digest));
  assert.equal(sha256(manifestBytes), built.manifest.digest);
  assert.equal(manifestBytes.length, built.manifest.size);
  assert.deepEqual(await runOk('skopeo', ['inspect', '--raw', outputs[0]!]).then((r) => r.stdoutBytes), manifestBytes);
  const configBytes = (await runOk('skopeo', ['inspect', '--config', '--raw', outputs[0]!])).stdoutBytes;
  assert.deepEqual(built.config, { digest: sha256(configBytes), mediaType: 'application/vnd.oci.image.config.v1+json', size: configBytes.length });

  const skopeo = await skopeoInspect(outputs[0]!);
  assert.equal(skopeo.Digest, built.manifest.digest);
  assert.deepEqual(built.layers.map((l) => l.digest), skopeo.Layers);
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as { layers: { digest: string; size: number; mediaType: string }[] };
  assert.deepEqual(built.layers.map((l) => [l.digest, l.size, l.mediaType]), manifest.layers.map((l) => [l.digest, l.size, l.mediaType]));
  const config = JSON.parse(configBytes.toString('utf8')) as { rootfs: { diff_ids: string[] } };
  assert.deepEqual(built.layers.map((l) => l.diffId), config.rootfs.diff_ids);
  assert.equal(sha256(gunzipSync(await readFile(blobPath(layout, built.layers[0]!.digest)))), built.layers[0]!.diffId, 'the diffID is the digest of the uncompressed layer');
  // skopeo reads a docker-archive's layers by their uncompressed digests: our diffIDs.
  assert.deepEqual((await skopeoInspect(`docker-archive:${dockerArchive}`)).Layers, config.rootfs.diff_ids);
  assert.match(built.layers[0]!.compressor ?? '', /^gzip;impl=/);

  assert.deepEqual(built.outputs, outputs.map((reference) => ({ reference, digest: built.manifest.digest })));
  assert.equal((await skopeoInspect(outputs[1]!)).Digest, built.manifest.digest);

  assert.deepEqual(Object.keys(built.timings), ['read', 'layer', 'write']);
  for (const ms of Object.values(built.timings)) assert.ok(Number.isSafeInteger(ms) && ms >= 0, `timing ${ms}`);

  // skopeo copies the image it names unchanged (oci: to oci:), and writes the manifest digest without a newline.
  const skopeoDigestFile = join(work, 'skopeo.digest');
  await runOk('skopeo', ['copy', '-q', '--digestfile', skopeoDigestFile, outputs[0]!, `oci:${join(work, 'skopeo-copy')}:v1`]);
  assert.deepEqual(await readFile(digestFile), await readFile(skopeoDigestFile));
  assert.equal((await readFile(digestFile, 'utf8')), built.manifest.digest);
});

test('build SPEC --json: timings of every phase; the fetch notes went to stderr, the digests match the image', async () => {
  const built = onlyJson<BuildJson>({ code: 0, signal: null, stdout: example.buildStdout, stderr: example.buildStderr, stdoutBytes: Buffer.from(example.buildStdout) });
  assert.deepEqual(Object.keys(built.timings), ['lock', 'fetch', 'install', 'setup', 'layer', 'write']);
  assert.match(example.buildStderr, /^fetched hello-/m);
  assert.equal((await skopeoInspect(example.reference)).Digest, built.manifest.digest);
  assert.equal((await skopeoInspect(`oci-archive:${example.archive}:v1`)).Digest, built.manifest.digest);
  assert.deepEqual(built.outputs.map((o) => o.reference), [example.reference, `oci-archive:${example.archive}:v1`]);
  assert.equal(built.layers.length, 1);
  assert.equal(sha256(gunzipSync(await readFile(blobPath(example.layout, built.layers[0]!.digest)))), built.layers[0]!.diffId);
});

test('build --digestfile in a directory that does not exist fails before any work, writing nothing', async () => {
  const out = join(work, 'never-built');
  const r = await runCli(['build', '--rootfs', rootfs, '-o', `oci:${out}`, '--json', '--digestfile', join(work, 'no-such-dir', 'digest')]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '', 'nothing on stdout');
  assert.match(r.stderr, /^repro-oci: --digestfile .*no-such-dir.*does not exist\n$/);
  assert.equal(existsSync(out), false);
});

test('a failing build --json prints one line on stderr and nothing on stdout', async () => {
  const r = await runCli(['build', '--rootfs', join(work, 'no-such-rootfs'), '-o', `oci:${join(work, 'x')}`, '--json']);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.split('\n').length, 2, r.stderr);
});

test('copy --json and --digestfile: the root written, as skopeo copy --all --digestfile says, for a manifest and for an index', async () => {
  // An index over two platforms, as a layout's tagged entry.
  const amd = join(work, 'amd');
  const arm = join(work, 'arm');
  await writeFile(join(work, 'arm.yaml'), 'platform: linux/arm64\n');
  await runCliOk(['build', '--rootfs', rootfs, '-o', `oci:${amd}:v1`]);
  await runCliOk(['build', '--rootfs', rootfs, '--config', join(work, 'arm.yaml'), '-o', `oci:${arm}:v1`]);
  const multi = join(work, 'multi');
  const amdCopy = onlyJson<Descriptor & { source: string; destination: string }>(await runCli(['copy', '--json', `oci:${amd}:v1`, `oci:${multi}:amd`]));
  const armCopy = onlyJson<Descriptor>(await runCli(['copy', '--json', `oci:${arm}:v1`, `oci:${multi}:arm`]));
  assert.deepEqual(Object.keys(amdCopy), ['source', 'destination', 'digest', 'mediaType', 'size']);
  assert.equal(amdCopy.source, `oci:${amd}:v1`);
  assert.equal(amdCopy.destination, `oci:${multi}:amd`);
  assert.equal(amdCopy.digest, (await skopeoInspect(`oci:${amd}:v1`)).Digest);
  assert.equal(amdCopy.size, (await runOk('skopeo', ['inspect', '--raw', `oci:${amd}:v1`])).stdoutBytes.length);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: amdCopy.mediaType, digest: amdCopy.digest, size: amdCopy.size, platform: { architecture: 'amd64', os: 'linux' } },
        { mediaType: armCopy.mediaType, digest: armCopy.digest, size: armCopy.size, platform: { architecture: 'arm64', os: 'linux' } },
      ],
    }),
  );
  await writeFile(blobPath(multi, sha256(index)), index);
  const layoutIndex = JSON.parse(await readFile(join(multi, 'index.json'), 'utf8')) as { manifests: object[] };
  layoutIndex.manifests.push({ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(index), size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'both' } });
  await writeFile(join(multi, 'index.json'), JSON.stringify(layoutIndex));

  for (const [tag, dst] of [['amd', 'oci-archive'], ['both', 'oci']] as const) {
    const ours = join(work, `ours-${tag}.digest`);
    const theirs = join(work, `skopeo-${tag}.digest`);
    const target = dst === 'oci' ? `oci:${join(work, `ours-${tag}`)}:x` : `oci-archive:${join(work, `ours-${tag}.tar`)}:x`;
    const copied = onlyJson<Descriptor>(await runCli(['copy', '--json', '--digestfile', ours, `oci:${multi}:${tag}`, target]));
    await runOk('skopeo', ['copy', '-q', '--all', '--digestfile', theirs, `oci:${multi}:${tag}`, `oci:${join(work, `skopeo-${tag}`)}:x`]);
    assert.deepEqual(await readFile(ours), await readFile(theirs), `--digestfile of ${tag}`);
    assert.equal(copied.digest, await readFile(theirs, 'utf8'));
  }
  assert.equal(await readFile(join(work, 'ours-both.digest'), 'utf8'), sha256(index));
});

interface LockJson {
  lock: string;
  changed: boolean;
  changes?: { kind: string; name: string; before?: string; after?: string }[];
  packages: { name: string; version: string; arch: string; repository: string; filename: string; sha256: string; csize: number; isize: number; reason: string }[];
}

test('lock --json: the packages as the lock file holds them; --update says what moved and exits as without --json; --check gives the state', async () => {
  const dir = join(work, 'lock');
  const spec = join(dir, 'spec.yaml');
  await mkdir(dir);
  await writeFile(spec, await readFile(example.spec));
  await runOk('cp', ['-r', join(example.spec, '..', 'repo'), dir]);
  const lockPath = join(dir, 'spec.lock.json');

  const missing = await runCli(['lock', spec, '--check', '--json']);
  assert.equal(missing.code, 1);
  assert.deepEqual(JSON.parse(missing.stdout), { lock: lockPath, state: 'missing' });

  const made = onlyJson<LockJson>(await runCli(['lock', spec, '--json']));
  assert.deepEqual(Object.keys(made), ['lock', 'changed', 'packages']);
  assert.equal(made.lock, lockPath);
  assert.equal(made.changed, true);
  const file = JSON.parse(await readFile(lockPath, 'utf8')) as { packages: LockJson['packages'] };
  assert.deepEqual(made.packages, file.packages.map(({ name, version, arch, repository, filename, sha256, csize, isize, reason }) => ({ name, version, arch, repository, filename, sha256, csize, isize, reason })));
  assert.deepEqual(made.packages.map((p) => `${p.name} ${p.version}`).sort(), example.pacmanQ.trim().split('\n').sort(), 'the packages pacman installed');

  const same = onlyJson<LockJson>(await runCli(['lock', spec, '--update', '--json']));
  assert.equal(same.changed, false);
  assert.deepEqual(same.changes, []);
  assert.deepEqual(JSON.parse((await runCli(['lock', spec, '--check', '--json'])).stdout), { lock: lockPath, state: 'current' });

  await writeFile(spec, (await readFile(spec, 'utf8')).replace('packages: [hello-base, hello]', 'packages: [hello-base]'));
  const stale = await runCli(['lock', spec, '--check', '--json']);
  assert.equal(stale.code, 1);
  assert.equal((JSON.parse(stale.stdout) as { state: string }).state, 'stale');
  const moved = await runCli(['lock', spec, '--update', '--json']);
  assert.equal(moved.code, 1, 'exit 1: the lock changed, as without --json');
  const update = JSON.parse(moved.stdout) as LockJson;
  assert.equal(update.changed, true);
  const gone = made.packages.filter((p) => !update.packages.some((q) => q.name === p.name));
  assert.ok(gone.some((p) => p.name === 'hello'));
  assert.deepEqual(update.changes, gone.map((p) => ({ kind: 'removed', name: p.name, before: p.version })).sort((a, b) => (a.name < b.name ? -1 : 1)));
});

interface LsEntry {
  path: string;
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkTarget?: string;
  owner: string | null;
}

test('ls --json: every file pacman -Ql lists, with its owner, mode and size as installed', async () => {
  const listed = onlyJson<{ lock: string; entries: LsEntry[] }>(await runCli(['ls', example.lock, '--cache', example.cache, '--json'], { env: { SOURCE_DATE_EPOCH: undefined } }));
  assert.equal(listed.lock, example.lock);
  const text = await runCliOk(['ls', example.lock, '--cache', example.cache], { env: { SOURCE_DATE_EPOCH: undefined } });
  assert.equal(listed.entries.length, text.stdout.trim().split('\n').length, 'as many entries as the text lists');

  // pacman -Ql lists each package's files (directories too, once per package that ships them).
  const ql = (await runOk('pacman', ['-Ql', '--dbpath', join(example.root, 'var/lib/pacman')])).stdout.trim().split('\n');
  const pacmanFiles = ql.map((line) => line.split(' ')).filter(([, path]) => !path!.endsWith('/')).map(([pkg, path]) => `${pkg} ${path}`).sort();
  const ours = listed.entries.filter((e) => e.type !== 'dir' && e.owner !== null).map((e) => `${e.owner} ${e.path}`).sort();
  assert.deepEqual(ours, pacmanFiles);
  const dirs = new Set(ql.map((line) => line.split(' ')[1]!).filter((p) => p.endsWith('/')).map((p) => p.slice(0, -1)));
  for (const e of listed.entries.filter((x) => x.type === 'dir' && x.owner !== null)) assert.ok(dirs.has(e.path), `pacman lists directory ${e.path}`);
  assert.ok(listed.entries.some((e) => e.owner === null && e.path.startsWith('/var/lib/pacman/local/')), "pacman's own database has no owner");

  // What the installed root holds: modes and sizes as stat sees them.
  for (const e of listed.entries.filter((x) => x.type === 'file').slice(0, 20)) {
    const stat = (await runOk('stat', ['-c', '%a %s', join(example.root, e.path)])).stdout.trim();
    assert.equal(stat, `${Number.parseInt(e.mode, 8).toString(8)} ${e.size}`, e.path);
  }
});

test('ls --json keeps a name that is not UTF-8 as its bytes (\\udcXX escapes, as Python surrogateescape)', () => {
  const name = 'srv/caf\udce9';
  const json = JSON.stringify(entryJson({ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 1, owner: 'p' }));
  assert.match(json, /"path":"\/srv\/caf\\udce9"/);
  const back = (JSON.parse(json) as { path: string }).path;
  assert.deepEqual(encodeName(back), Buffer.from([...Buffer.from('/srv/caf'), 0xe9]));
});

test('install --json: packages and entries written, as pacman -Q and the tree count them', async () => {
  const root = join(work, 'install-json');
  const r = onlyJson<{ root: string; packages: number; written: number; skipped: Record<string, number> }>(
    await runCli(['install', example.lock, '--root', root, '--cache', example.cache, '--json'], { env: { SOURCE_DATE_EPOCH: undefined } }),
  );
  assert.deepEqual(Object.keys(r), ['root', 'packages', 'written', 'skipped']);
  assert.equal(r.root, root);
  assert.equal(r.packages, example.pacmanQ.trim().split('\n').length);
  const found = (await runOk('find', [root, '-mindepth', '1'])).stdout.trim().split('\n').length;
  assert.equal(r.written, found);
});

test('docs/json-output.md names every field the commands print', async () => {
  const doc = await readFile(join(REPO_ROOT, 'docs', 'json-output.md'), 'utf8');
  const built = JSON.parse(example.buildStdout) as Record<string, unknown>;
  const keys = new Set<string>();
  const collect = (value: unknown, skip: Set<string>): void => {
    if (Array.isArray(value)) value.forEach((v) => collect(v, skip));
    else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        keys.add(k);
        if (!skip.has(k)) collect(v, skip);
      }
    }
  };
  const inspect = JSON.parse((await runCliOk(['inspect', '--json', example.reference])).stdout) as unknown;
  const ls = JSON.parse((await runCliOk(['ls', example.lock, '--cache', example.cache, '--json'])).stdout) as unknown;
  const lock = JSON.parse((await runCli(['lock', '--json', '--update', example.spec])).stdout) as unknown;
  // Inside these, the keys are the image's or the system's, not ours.
  collect([built, inspect, ls, lock], new Set(['value', 'annotations', 'timings', 'skipped', 'xattrs', 'archive']));
  // Each key in a code span of its own (`size`) or of a shape (`{ digest, size }`).
  for (const key of keys) assert.match(doc, new RegExp(`\`[^\`\n]*\\b${key}\\b[^\`\n]*\``), `docs/json-output.md documents \`${key}\``);
});

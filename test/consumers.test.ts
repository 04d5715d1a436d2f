/**
 * Independent consumers read what we write: skopeo (containers/image), umoci, and the OCI image-spec's own JSON
 * schemas. One build of a small but varied tree writes oci:, oci-archive: and docker-archive: outputs; every test
 * below reads those outputs with a tool that shares no code with ours.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, link, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Ajv, type ValidateFunction } from 'ajv';
import { makeTempDir, removeDir, runCli, runCliOk, runOk } from './support/cli.js';

const SDE = 1_700_000_000;
const SCHEMA_DIR = '/usr/share/gocode/src/github.com/opencontainers/image-spec/schema';
const REF_NAME = 'org.opencontainers.image.ref.name';

const LONG_DIR = `long/${'d'.repeat(60)}/${'e'.repeat(40)}`;
const LONG_FILE = `${LONG_DIR}/${'f'.repeat(30)}.txt`; // > 100 bytes: needs a PAX path (or ustar prefix)
const LONG_NAME = `long/${'n'.repeat(140)}`; // one component > 100 bytes: no ustar split can hold it

const CONFIG_YAML = `
sourceDateEpoch: ${SDE}
config:
  User: "1000:1000"
  Env: ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "GREETING=héllo wörld"]
  Entrypoint: ["/bin/hello"]
  Cmd: ["--verbose", "arg with spaces"]
  WorkingDir: /srv/app
  Labels:
    org.opencontainers.image.source: https://example.invalid/repo
    com.example.tier: backend
  ExposedPorts: ["8080", "53/udp", "9000/tcp"]
  StopSignal: SIGINT
annotations:
  org.opencontainers.image.title: consumers-fixture
  org.opencontainers.image.version: 1.2.3
`;

const EXPECTED_RUNTIME_CONFIG = {
  User: '1000:1000',
  Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'LANG=C.UTF-8', 'GREETING=héllo wörld'],
  Entrypoint: ['/bin/hello'],
  Cmd: ['--verbose', 'arg with spaces'],
  WorkingDir: '/srv/app',
  Labels: { 'org.opencontainers.image.source': 'https://example.invalid/repo', 'com.example.tier': 'backend' },
  ExposedPorts: { '8080/tcp': {}, '53/udp': {}, '9000/tcp': {} },
  StopSignal: 'SIGINT',
};

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}
interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}
interface Config {
  created?: string;
  architecture: string;
  os: string;
  config?: Record<string, unknown>;
  rootfs: { type: string; diff_ids: string[] };
}
interface InspectJson {
  digest: string;
  mediaType: string;
  images: { digest: string; config: { digest: string; value: Config }; layers: { digest: string; diffId?: string; mediaType: string }[] }[];
}

interface Fixture {
  dir: string;
  rootfs: string;
  ociDir: string;
  ociArchive: string;
  dockerArchive: string;
  dockerName: string;
  digest: string;
  manifestBytes: Buffer;
  manifest: Manifest;
  configBytes: Buffer;
  config: Config;
  indexBytes: Buffer;
}

const sha256 = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

async function sha256File(path: string, gunzip = false): Promise<string> {
  const hash = createHash('sha256');
  await pipeline([createReadStream(path), ...(gunzip ? [createGunzip()] : []), hash] as unknown as NodeJS.ReadWriteStream[]);
  return `sha256:${hash.digest('hex')}`;
}

const blobPath = (layout: string, digest: string): string => join(layout, 'blobs', ...digest.split(':'));

/** Deterministic pseudo-random bytes, so the layer holds content that does not compress to nothing. */
function noise(size: number, seed: string): Buffer {
  const chunks: Buffer[] = [];
  let block = createHash('sha256').update(seed).digest();
  for (let n = 0; n < size; n += block.length) {
    chunks.push(block);
    block = createHash('sha256').update(block).digest();
  }
  return Buffer.concat(chunks).subarray(0, size);
}

async function put(root: string, path: string, content: string | Buffer, mode: number): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true });
  await writeFile(join(root, path), content);
  await chmod(join(root, path), mode); // explicit, so the umask does not decide
}

async function makeTree(root: string): Promise<void> {
  await mkdir(root, { mode: 0o755 });
  await put(root, 'bin/hello', '#!/bin/sh\necho "hello from the image"\n', 0o755);
  await put(root, 'bin/setuid-helper', '#!/bin/sh\nid\n', 0o4755);
  await put(root, 'etc/motd', 'Welcome.\n', 0o644);
  await link(join(root, 'etc/motd'), join(root, 'etc/motd.hardlink'));
  await put(root, 'etc/secret', 'private\n', 0o600);
  await put(root, 'etc/readonly', 'read only\n', 0o444);
  await put(root, 'etc/empty-file', '', 0o644);
  await put(root, 'usr/share/doc/pkg/nested/deeper/README', 'nested docs\n', 0o644);
  await put(root, 'usr/lib/blob.bin', noise(300_000, 'blob'), 0o644);
  await put(root, 'srv/app/data.txt', 'app data\n', 0o640);
  await put(root, LONG_FILE, 'long path\n', 0o644);
  await put(root, LONG_NAME, 'long name\n', 0o644);
  await put(root, 'café/日本.txt', 'こんにちは\n', 0o644);
  await mkdir(join(root, 'var/empty'), { recursive: true });
  await mkdir(join(root, 'tmp'));
  await symlink('../usr/share/doc/pkg/nested/deeper/README', join(root, 'etc/readme-link'));
  await symlink('/bin/hello', join(root, 'bin/hello-abs'));
  await symlink('does/not/exist', join(root, 'etc/dangling'));
  for (const dir of ['', 'bin', 'etc', 'usr', 'usr/share', 'usr/share/doc', 'usr/share/doc/pkg', 'usr/share/doc/pkg/nested', 'usr/share/doc/pkg/nested/deeper', 'usr/lib', 'srv', 'srv/app', 'long', `long/${'d'.repeat(60)}`, LONG_DIR, 'café', 'var', 'var/empty']) {
    await chmod(join(root, dir), 0o755);
  }
  await chmod(join(root, 'srv/app'), 0o750);
  await chmod(join(root, 'tmp'), 0o1777);
}

interface Node {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  size: number;
  sha256?: string;
  target?: string;
  ino: number;
  mtime: number;
}

/** Every entry below `root`, keyed by relative path: type, permission bits, content digest, symlink target. */
async function snapshot(root: string): Promise<Map<string, Node>> {
  const nodes = new Map<string, Node>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(root, rel))) {
      const path = rel ? `${rel}/${name}` : name;
      const full = join(root, path);
      const st = await lstat(full);
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
      const node: Node = { type, mode: st.mode & 0o7777, size: type === 'file' ? st.size : 0, ino: st.ino, mtime: Math.floor(st.mtimeMs / 1000) };
      if (type === 'file') node.sha256 = sha256(await readFile(full));
      if (type === 'symlink') node.target = await readlink(full);
      nodes.set(path, node);
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  return nodes;
}

let fixtureDir: string | undefined;
let fixturePromise: Promise<Fixture> | undefined;
after(async () => {
  if (fixtureDir) await removeDir(fixtureDir);
});

/** Builds the tree and the image once, into three outputs with one command; every test shares the result. */
function fixture(): Promise<Fixture> {
  fixturePromise ??= (async () => {
    const dir = await makeTempDir('consumers');
    fixtureDir = dir;
    const rootfs = join(dir, 'rootfs');
    await makeTree(rootfs);
    await writeFile(join(dir, 'image.yaml'), CONFIG_YAML);
    const ociDir = join(dir, 'oci');
    const ociArchive = join(dir, 'image.oci.tar');
    const dockerArchive = join(dir, 'image.docker.tar');
    const dockerName = 'example/consumers:v1';
    const build = await runCliOk(
      ['build', '--rootfs', rootfs, '--config', join(dir, 'image.yaml'), '-o', `oci:${ociDir}:v1`, '-o', `oci-archive:${ociArchive}:v1`, '-o', `docker-archive:${dockerArchive}:${dockerName}`],
      { env: { SOURCE_DATE_EPOCH: undefined } },
    );
    const digest = build.stdout.trim();
    assert.match(digest, /^sha256:[0-9a-f]{64}$/, `build printed ${JSON.stringify(build.stdout)}`);
    const indexBytes = await readFile(join(ociDir, 'index.json'));
    const index = JSON.parse(indexBytes.toString('utf8')) as { manifests: Descriptor[] };
    const entry = index.manifests.find((d) => d.annotations?.[REF_NAME] === 'v1');
    assert.ok(entry, 'index.json has an entry tagged v1');
    assert.equal(entry.digest, digest, 'index.json names the digest build printed');
    const manifestBytes = await readFile(blobPath(ociDir, digest));
    assert.equal(sha256(manifestBytes), digest);
    assert.equal(entry.size, manifestBytes.length);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as Manifest;
    const configBytes = await readFile(blobPath(ociDir, manifest.config.digest));
    assert.equal(sha256(configBytes), manifest.config.digest);
    const config = JSON.parse(configBytes.toString('utf8')) as Config;
    return { dir, rootfs, ociDir, ociArchive, dockerArchive, dockerName, digest, manifestBytes, manifest, configBytes, config, indexBytes };
  })();
  return fixturePromise;
}

async function inspectJson(ref: string): Promise<InspectJson> {
  return JSON.parse((await runCliOk(['inspect', ref, '--json'])).stdout) as InspectJson;
}

async function skopeoInspect(ref: string): Promise<Record<string, unknown>> {
  return JSON.parse((await runOk('skopeo', ['inspect', ref])).stdout) as Record<string, unknown>;
}

test('the image carries the requested settings, and build is byte-for-byte repeatable', async () => {
  const f = await fixture();
  assert.equal(f.manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.deepEqual(f.manifest.annotations, { 'org.opencontainers.image.title': 'consumers-fixture', 'org.opencontainers.image.version': '1.2.3' });
  assert.equal(f.manifest.layers.length, 1);
  assert.equal(f.manifest.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  assert.deepEqual(f.config.config, EXPECTED_RUNTIME_CONFIG);
  assert.equal(f.config.created, '2023-11-14T22:13:20Z');
  assert.equal(f.config.rootfs.diff_ids.length, 1);
  assert.equal(await sha256File(blobPath(f.ociDir, f.manifest.layers[0]!.digest), true), f.config.rootfs.diff_ids[0], 'diff_id is the digest of the gunzipped layer');

  const again = join(f.dir, 'again');
  const rebuild = await runCliOk(['build', '--rootfs', f.rootfs, '--config', join(f.dir, 'image.yaml'), '-o', `oci:${again}:v1`], { env: { SOURCE_DATE_EPOCH: undefined } });
  assert.equal(rebuild.stdout.trim(), f.digest);
});

test('skopeo inspect --raw of our oci: layout returns exactly our manifest and config bytes', async () => {
  const f = await fixture();
  const raw = await runOk('skopeo', ['inspect', '--raw', `oci:${f.ociDir}:v1`]);
  assert.equal(sha256(raw.stdoutBytes), f.digest);
  assert.deepEqual(raw.stdoutBytes, f.manifestBytes);
  const config = await runOk('skopeo', ['inspect', '--config', '--raw', `oci:${f.ociDir}:v1`]);
  assert.equal(sha256(config.stdoutBytes), f.manifest.config.digest);
  assert.deepEqual(config.stdoutBytes, f.configBytes);

  const info = await skopeoInspect(`oci:${f.ociDir}:v1`);
  assert.equal(info.Digest, f.digest);
  assert.deepEqual(info.Layers, [f.manifest.layers[0]!.digest]);
  assert.deepEqual(info.Labels, EXPECTED_RUNTIME_CONFIG.Labels);
  assert.deepEqual(info.Env, EXPECTED_RUNTIME_CONFIG.Env);
  assert.equal(info.Architecture, 'amd64');
  assert.equal(info.Os, 'linux');
  assert.equal(info.Created, '2023-11-14T22:13:20Z');
});

test('skopeo inspect reads our oci-archive: and docker-archive: outputs', async () => {
  const f = await fixture();
  const archived = await skopeoInspect(`oci-archive:${f.ociArchive}:v1`);
  assert.equal(archived.Digest, f.digest);
  assert.deepEqual(archived.Layers, [f.manifest.layers[0]!.digest]);
  assert.deepEqual(archived.Env, EXPECTED_RUNTIME_CONFIG.Env);
  const archivedRaw = await runOk('skopeo', ['inspect', '--raw', `oci-archive:${f.ociArchive}:v1`]);
  assert.deepEqual(archivedRaw.stdoutBytes, f.manifestBytes);

  // skopeo's docker-archive reader synthesizes its own docker manifest from manifest.json (with uncompressed
  // layer digests), so the manifest digest is its own; the config must be our exact bytes.
  for (const ref of [`docker-archive:${f.dockerArchive}`, `docker-archive:${f.dockerArchive}:${f.dockerName}`]) {
    const docker = await skopeoInspect(ref);
    assert.deepEqual(docker.Layers, f.config.rootfs.diff_ids, ref);
    assert.deepEqual(docker.Labels, EXPECTED_RUNTIME_CONFIG.Labels, ref);
    assert.equal(docker.Architecture, 'amd64', ref);
    const config = await runOk('skopeo', ['inspect', '--config', '--raw', ref]);
    assert.deepEqual(config.stdoutBytes, f.configBytes, ref);
  }
  const wrongName = await runOk('skopeo', ['inspect', `docker-archive:${f.dockerArchive}:example/other:v1`]).then(
    () => 'found',
    () => 'not found',
  );
  assert.equal(wrongName, 'not found', 'the archive is found by its own name only');
});

test('skopeo copy oci: → docker-archive: → oci: keeps the config and the layer diffIDs; our inspect reads both', async () => {
  const f = await fixture();
  const diffIds = f.config.rootfs.diff_ids;
  const dockerTar = join(f.dir, 'skopeo.docker.tar');
  const back = join(f.dir, 'skopeo-back');
  await runOk('skopeo', ['copy', '-q', `oci:${f.ociDir}:v1`, `docker-archive:${dockerTar}:example/roundtrip:v1`]);
  await runOk('skopeo', ['copy', '-q', `docker-archive:${dockerTar}`, `oci:${back}:v2`]);

  // skopeo writes the legacy layout: <id>/layer.tar symlinks, a config named by its digest, no OCI layout.
  const listing = (await runOk('bsdtar', ['-tvf', dockerTar])).stdout;
  assert.match(listing, /^l.* \S+\/layer\.tar -> \.\.\/[0-9a-f]{64}\.tar$/m, `skopeo's archive has layer.tar symlinks:\n${listing}`);
  assert.doesNotMatch(listing, / oci-layout$/m);

  // Hop 1 (docker-archive): the config is carried as our exact bytes, the layer stored uncompressed.
  const viaDocker = await inspectJson(`docker-archive:${dockerTar}`);
  assert.equal(viaDocker.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.equal(viaDocker.images.length, 1);
  assert.equal(viaDocker.images[0]!.config.digest, f.manifest.config.digest);
  assert.deepEqual(viaDocker.images[0]!.config.value, f.config);
  assert.deepEqual(viaDocker.images[0]!.layers.map((l) => l.diffId), diffIds);
  assert.deepEqual(viaDocker.images[0]!.layers.map((l) => l.digest), diffIds, 'skopeo stores docker-archive layers uncompressed');
  const named = await inspectJson(`docker-archive:${dockerTar}:docker.io/example/roundtrip:v1`);
  assert.equal(named.images[0]!.config.digest, f.manifest.config.digest);

  // Hop 2 (oci): skopeo converts the docker manifest to OCI and re-encodes the config with Go's field order, so
  // the config *digest* changes here (skopeo 1.9); its content and the diffIDs must not.
  const viaOci = await inspectJson(`oci:${back}:v2`);
  const image = viaOci.images[0]!;
  assert.equal(viaOci.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.deepEqual(image.config.value, f.config, 'same config content after the round trip');
  const skopeoConfig = await readFile(blobPath(back, image.config.digest));
  assert.equal(sha256(skopeoConfig), image.config.digest);
  assert.deepEqual(JSON.parse(skopeoConfig.toString('utf8')), f.config);
  assert.deepEqual(image.layers.map((l) => l.diffId), diffIds);
  assert.equal(image.layers.length, 1);
  assert.equal(image.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  assert.equal(await sha256File(blobPath(back, image.layers[0]!.digest), true), diffIds[0], 'skopeo recompressed the very same tar');
});

test('skopeo copy of our oci: into a new oci: keeps the manifest digest and every blob', async () => {
  const f = await fixture();
  const copy = join(f.dir, 'skopeo-oci');
  await runOk('skopeo', ['copy', '-q', `oci:${f.ociDir}:v1`, `oci:${copy}:copied`]);
  const index = JSON.parse(await readFile(join(copy, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0]!.digest, f.digest);
  assert.equal(index.manifests[0]!.annotations?.[REF_NAME], 'copied');
  for (const d of [f.manifest.config, ...f.manifest.layers]) {
    assert.deepEqual(await readFile(blobPath(copy, d.digest)), await readFile(blobPath(f.ociDir, d.digest)), d.digest);
  }
  const ours = await inspectJson(`oci:${copy}:copied`);
  assert.equal(ours.digest, f.digest);
});

test('umoci unpack --rootless yields the input tree: paths, contents, modes, symlinks, hardlinks, mtimes', async () => {
  const f = await fixture();
  const bundle = join(f.dir, 'bundle');
  await runOk('umoci', ['unpack', '--rootless', '--image', `${f.ociDir}:v1`, bundle]);
  const want = await snapshot(f.rootfs);
  const got = await snapshot(join(bundle, 'rootfs'));
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), 'same list of paths');
  assert.ok(got.has(LONG_FILE) && got.has(LONG_NAME) && got.has('café/日本.txt'));
  for (const [path, w] of want) {
    const g = got.get(path)!;
    assert.equal(g.type, w.type, `${path}: type`);
    // umoci keeps setuid/setgid/sticky bits even rootless: chmod of one's own file may set them.
    assert.equal(g.mode.toString(8), w.mode.toString(8), `${path}: mode`);
    assert.equal(g.size, w.size, `${path}: size`);
    assert.equal(g.sha256, w.sha256, `${path}: content`);
    assert.equal(g.target, w.target, `${path}: symlink target`);
    assert.equal(g.mtime, SDE, `${path}: mtime is SOURCE_DATE_EPOCH`);
  }
  assert.equal(got.get('bin/setuid-helper')!.mode, 0o4755);
  assert.equal(got.get('tmp')!.mode, 0o1777);
  assert.equal(got.get('bin/hello-abs')!.target, '/bin/hello');
  assert.equal(got.get('etc/motd.hardlink')!.ino, got.get('etc/motd')!.ino, 'the hardlink pair shares one inode');
  assert.notEqual(got.get('etc/motd')!.ino, got.get('etc/secret')!.ino);

  // umoci's runtime config derives from our image config.
  const runtime = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[]; cwd: string; env: string[] } };
  assert.deepEqual(runtime.process.args, [...EXPECTED_RUNTIME_CONFIG.Entrypoint, ...EXPECTED_RUNTIME_CONFIG.Cmd]);
  assert.equal(runtime.process.cwd, '/srv/app');
  for (const env of EXPECTED_RUNTIME_CONFIG.Env) assert.ok(runtime.process.env.includes(env), env);
});

/**
 * The image-spec schemas (draft-04, with `id` and file-relative `$ref`s). Ajv 8 is draft-07 and rejects `id`, so
 * `$schema` and every `id` are dropped and each file is registered under the URI the spec's Go validator uses
 * (https://opencontainers.org/schema/image/FILE), which resolves `content-descriptor.json`, `defs.json` and
 * `defs-descriptor.json` to their sibling files exactly as that validator does.
 */
async function loadSpecValidators(): Promise<Record<'manifest' | 'config' | 'index' | 'layout' | 'descriptor', ValidateFunction>> {
  const strip = (value: unknown, parentKey?: string): unknown => {
    if (Array.isArray(value)) return value.map((v) => strip(v));
    if (value === null || typeof value !== 'object') return value;
    const isPropertyMap = parentKey === 'properties' || parentKey === 'patternProperties' || parentKey === 'definitions';
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([k, v]) => isPropertyMap || !((k === 'id' || k === '$schema') && typeof v === 'string'))
        .map(([k, v]) => [k, strip(v, k)]),
    );
  };
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('uri', (s: string) => URL.canParse(s) && /^[a-z][a-z0-9+.-]*:/i.test(s));
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/);
  const base = 'https://opencontainers.org/schema/image/';
  const files = (await readdir(SCHEMA_DIR)).filter((n) => n.endsWith('.json')).sort();
  for (const file of files) ajv.addSchema(strip(JSON.parse(await readFile(join(SCHEMA_DIR, file), 'utf8'))) as object, base + file);
  const get = (file: string): ValidateFunction => {
    assert.ok(files.includes(file), `${SCHEMA_DIR}/${file} exists`);
    const validate = ajv.getSchema(base + file);
    assert.ok(validate, file);
    return validate;
  };
  return {
    manifest: get('image-manifest-schema.json'),
    config: get('config-schema.json'),
    index: get('image-index-schema.json'),
    layout: get('image-layout-schema.json'),
    descriptor: get('content-descriptor.json'),
  };
}

test('manifest, config, index.json and oci-layout validate against the OCI image-spec JSON schemas', async (t) => {
  const present = await lstat(SCHEMA_DIR).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!present) {
    t.skip(`${SCHEMA_DIR} is missing (Debian package golang-github-opencontainers-image-spec-dev)`);
    return;
  }
  const f = await fixture();
  const v = await loadSpecValidators();
  const check = (validate: ValidateFunction, value: unknown, what: string): void => {
    assert.ok(validate(value), `${what}: ${JSON.stringify(validate.errors, null, 1)}`);
  };
  const index = JSON.parse(f.indexBytes.toString('utf8')) as { manifests: Descriptor[] };
  check(v.manifest, f.manifest, 'manifest');
  check(v.config, f.config, 'config');
  check(v.index, index, 'index.json');
  check(v.layout, JSON.parse(await readFile(join(f.ociDir, 'oci-layout'), 'utf8')), 'oci-layout');
  for (const d of [f.manifest.config, ...f.manifest.layers, ...index.manifests]) check(v.descriptor, d, `descriptor ${d.digest}`);

  // The archives hold the same documents; check their index.json and oci-layout too.
  for (const archive of [f.ociArchive, f.dockerArchive]) {
    const member = async (name: string): Promise<unknown> => JSON.parse((await runOk('bsdtar', ['-xOf', archive, name])).stdout);
    check(v.index, await member('index.json'), `${archive} index.json`);
    check(v.layout, await member('oci-layout'), `${archive} oci-layout`);
  }

  // The validators are not vacuous: each one rejects a broken document.
  assert.equal(v.manifest({ ...f.manifest, schemaVersion: 1 }), false, 'schemaVersion 1');
  assert.equal(v.manifest({ ...f.manifest, layers: [{ ...f.manifest.layers[0], digest: 'not a digest' }] }), false, 'bad layer digest');
  assert.equal(v.config({ ...f.config, rootfs: { type: 'layers' } }), false, 'config without diff_ids');
  assert.equal(v.config({ ...f.config, created: 'yesterday' }), false, 'created not RFC 3339');
  assert.equal(v.index({ ...index, manifests: [{ ...index.manifests[0], size: 'big' }] }), false, 'index with a string size');
  assert.equal(v.layout({ imageLayoutVersion: '2.0.0' }), false, 'layout version 2.0.0');
  assert.equal(v.descriptor({ ...f.manifest.layers[0], urls: ['not a uri'] }), false, 'descriptor with a bad url');
});

test('inspect fails cleanly on a tag the layout does not hold', async () => {
  const f = await fixture();
  const result = await runCli(['inspect', `oci:${f.ociDir}:nope`, '--json']);
  assert.notEqual(result.code, 0);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /no image tagged "nope"/);
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseChallenges, lookupCredentials } from '../src/transports/registry/auth.js';
import { RegistryDestination } from '../src/transports/registry/destination.js';
import { formatDockerReference, isLoopbackHost, parseDockerReference, registryEndpoint } from '../src/transports/registry/reference.js';
import { RegistryClient } from '../src/transports/registry/client.js';
import { RegistrySource } from '../src/transports/registry/source.js';
import { listReferrers, referrersTag } from '../src/transports/registry/referrers.js';
import { parseReference, formatReference } from '../src/transports/reference.js';
import type { Digest } from '../src/oci/digest.js';
import { makeTempDir, removeDir, run, runCli, tempDirFor, type RunResult } from './support/cli.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startRegistry, startTokenServer, type RunningRegistry } from './support/registry.js';

/**
 * The docker:// transport against a real registry (Debian's docker-registry, CNCF distribution 2.8) started on
 * 127.0.0.1, with skopeo as the independent client on the other side, and a fault-injecting proxy in front.
 */

let work: string;
let home: string;
let registry: RunningRegistry;
let proxy: FaultProxy;
let imageA: { dir: string; digest: Digest };
let imageArm: { dir: string; digest: Digest };

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** The CLI in an environment of its own: no auth files but the ones a test writes, fast retries. */
function baseEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    HOME: home,
    XDG_RUNTIME_DIR: undefined,
    XDG_CONFIG_HOME: undefined,
    REGISTRY_AUTH_FILE: undefined,
    DOCKER_CONFIG: undefined,
    REPRO_OCI_RETRY_DELAY_MS: '1',
    REPRO_OCI_PROGRESS: '0',
    ...extra,
  };
}

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> {
  return runCli(args, { env: baseEnv(env), timeoutMs: 60_000 });
}

async function cliOk(args: string[], env: Record<string, string | undefined> = {}): Promise<RunResult> {
  const r = await cli(args, env);
  assert.equal(r.code, 0, `repro-oci ${args.join(' ')} failed:\n${r.stderr}`);
  return r;
}

/** A clean failure: exit 2 and exactly one line on stderr, matching `re`. */
function assertOneLineFailure(r: RunResult, re: RegExp): void {
  assert.equal(r.code, 2, `expected exit 2, got ${r.code}:\n${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line of error, got:\n${r.stderr}`);
  assert.match(lines[0]!, re);
}

async function skopeo(args: string[]): Promise<RunResult> {
  const policy = join(work, 'policy.json');
  if (!existsSync(policy)) await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const r = await run('skopeo', ['--policy', policy, ...args], { env: { HOME: home, REGISTRY_AUTH_FILE: join(home, 'skopeo-auth.json') }, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `skopeo ${args.join(' ')} failed:\n${r.stderr}`);
  return r;
}

async function buildImage(name: string, platform?: string): Promise<{ dir: string; digest: Digest }> {
  const root = join(work, `${name}-root`);
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'hello'), `hello from ${name}\n`);
  // Incompressible, so the layer is big enough to take several small upload chunks.
  await writeFile(join(root, 'etc', 'random'), randomBytes(200_000));
  const args = ['build', '--rootfs', root, '-o', `oci:${join(work, name)}`];
  if (platform) {
    await writeFile(join(work, `${name}.yaml`), `platform: ${platform}\n`);
    args.push('--config', join(work, `${name}.yaml`));
  }
  const r = await cliOk(args, { SOURCE_DATE_EPOCH: '1700000000' });
  return { dir: join(work, name), digest: r.stdout.trim() as Digest };
}

/** name → sha256 of every blob in a layout. */
async function blobs(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(join(dir, 'blobs', 'sha256'))).sort()) {
    out.set(name, createHash('sha256').update(await readFile(join(dir, 'blobs', 'sha256', name))).digest('hex'));
  }
  return out;
}

async function rootDigest(dir: string): Promise<string> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.equal(index.manifests.length, 1);
  return index.manifests[0]!.digest;
}

async function registryDigest(host: string, repo: string, reference: string): Promise<string | null> {
  const r = await fetch(`http://${host}/v2/${repo}/manifests/${reference}`, { method: 'HEAD', headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
  assert.equal(r.status, 200, `HEAD ${repo}:${reference}`);
  return r.headers.get('docker-content-digest');
}

const count = (requests: string[], re: RegExp): number => requests.filter((l) => re.test(l)).length;

before(async () => {
  work = await makeTempDir('registry-test');
  home = join(work, 'home');
  await mkdir(home);
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.host);
  imageA = await buildImage('a');
  imageArm = await buildImage('arm', 'linux/arm64');
});

after(async () => {
  await proxy?.close();
  await registry?.stop();
  if (work) await removeDir(work);
});

test('docker:// references: Docker Hub defaults, hosts, tags and digests; https unless loopback or --insecure', async () => {
  const d = `sha256:${'ab'.repeat(32)}`;
  assert.deepEqual(parseDockerReference('alpine'), { registry: 'docker.io', repository: 'library/alpine' });
  assert.deepEqual(parseDockerReference('user/app:1.0'), { registry: 'docker.io', repository: 'user/app', tag: '1.0' });
  assert.deepEqual(parseDockerReference('localhost:5000/a/b@' + d), { registry: 'localhost:5000', repository: 'a/b', digest: d });
  assert.deepEqual(parseDockerReference('[::1]:5000/x:t'), { registry: '[::1]:5000', repository: 'x', tag: 't' });
  assert.deepEqual(parseDockerReference('index.docker.io/library/busybox:latest'), { registry: 'docker.io', repository: 'library/busybox', tag: 'latest' });
  assert.equal(formatDockerReference(parseDockerReference('quay.io/ns/img:v1@' + d)), `quay.io/ns/img:v1@${d}`);
  const ref = parseReference('docker://127.0.0.1:5000/test/img:v1');
  assert.deepEqual(ref, { transport: 'docker', registry: '127.0.0.1:5000', repository: 'test/img', tag: 'v1' });
  assert.equal(formatReference(ref), 'docker://127.0.0.1:5000/test/img:v1');
  assert.throws(() => parseReference('docker:alpine'), /docker:\/\//);
  assert.equal(registryEndpoint('docker.io'), 'registry-1.docker.io');
  assert.ok(isLoopbackHost('127.0.0.5:80') && isLoopbackHost('localhost:5000') && isLoopbackHost('[::1]:5000') && !isLoopbackHost('128.0.0.1:5000') && !isLoopbackHost('registry.example'));
  assert.throws(() => parseReference('docker://Bad/Name'), /invalid repository/);
  assert.throws(() => parseReference('docker://x/y@sha512:abcd'), /only sha256/);
  const base = async (registry: string, insecure = false) => (await RegistryClient.create(registry, 'x/y', { creds: 'u:p', insecure })).base;
  assert.equal(await base('docker.io'), 'https://registry-1.docker.io');
  assert.equal(await base('registry.example:5000'), 'https://registry.example:5000');
  assert.equal(await base('registry.example:5000', true), 'http://registry.example:5000');
  assert.equal(await base('127.0.0.1:5000'), 'http://127.0.0.1:5000');
  assert.equal(await base('[::1]:5000'), 'http://[::1]:5000');
});

test('WWW-Authenticate challenges and auth-file lookup', async (t) => {
  const [bearer] = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
  assert.deepEqual(bearer, { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } });
  assert.deepEqual(parseChallenges('Basic realm="x", Bearer realm="y"').map((c) => c.scheme), ['basic', 'bearer']);
  const dir = await tempDirFor(t, 'authfiles');
  const auth = (u: string, p: string) => ({ auth: Buffer.from(`${u}:${p}`).toString('base64') });
  await mkdir(join(dir, '.docker'));
  await writeFile(join(dir, '.docker', 'config.json'), JSON.stringify({ auths: { 'https://index.docker.io/v1/': auth('hub', 'h'), 'reg.example:5000': auth('docker', 'd') } }));
  await mkdir(join(dir, 'run', 'containers'), { recursive: true });
  await writeFile(join(dir, 'run', 'containers', 'auth.json'), JSON.stringify({ auths: { 'reg.example:5000/team': auth('team', 't') } }));
  const env = { HOME: dir, DOCKER_CONFIG: join(dir, '.docker'), XDG_RUNTIME_DIR: join(dir, 'run') };
  assert.equal((await lookupCredentials('docker.io', 'library/alpine', env))?.username, 'hub');
  assert.equal((await lookupCredentials('reg.example:5000', 'team/app', env))?.username, 'team');
  assert.equal((await lookupCredentials('reg.example:5000', 'other/app', env))?.username, 'docker');
  assert.equal(await lookupCredentials('elsewhere.example', 'x', env), undefined);
  assert.equal((await lookupCredentials('reg.example:5000', 'other/app', { ...env, REGISTRY_AUTH_FILE: join(dir, 'run', 'containers', 'auth.json') }))?.username, 'docker');
});

test('push keeps the manifest digest; pull by digest gives identical blobs; inspect reads the registry', async () => {
  const pushed = await cliOk(['copy', `oci:${imageA.dir}`, `docker://${registry.host}/test/img:v1`]);
  assert.equal(pushed.stdout.trim(), imageA.digest);
  assert.equal(await registryDigest(registry.host, 'test/img', 'v1'), imageA.digest);

  const out = join(work, 'pulled-a');
  const pulled = await cliOk(['copy', `docker://${registry.host}/test/img@${imageA.digest}`, `oci:${out}`]);
  assert.equal(pulled.stdout.trim(), imageA.digest);
  assert.equal(await rootDigest(out), imageA.digest);
  assert.deepEqual(await blobs(out), await blobs(imageA.dir));

  const inspected = JSON.parse((await cliOk(['inspect', '--json', `docker://${registry.host}/test/img:v1`])).stdout) as { digest: string; images: { layers: unknown[] }[] };
  assert.equal(inspected.digest, imageA.digest);
  assert.equal(inspected.images[0]!.layers.length, 1);

  // build writes straight to a registry as one of its outputs.
  const built = await cliOk(['build', '--rootfs', join(work, 'a-root'), '-o', `docker://${registry.host}/test/built:v1`], { SOURCE_DATE_EPOCH: '1700000000' });
  assert.equal(built.stdout.trim(), imageA.digest);
  assert.equal(await registryDigest(registry.host, 'test/built', 'v1'), imageA.digest);

  const missing = await cli(['copy', `docker://${registry.host}/test/img:nope`, `oci:${join(work, 'never')}`]);
  assertOneLineFailure(missing, /manifest nope: HTTP 404 \(not found\).*MANIFEST_UNKNOWN/);
  assert.equal(existsSync(join(work, 'never')), false);
});

test('skopeo pulls what we push, and we pull what skopeo pushes', async () => {
  const info = JSON.parse((await skopeo(['inspect', '--tls-verify=false', `docker://${registry.host}/test/img:v1`])).stdout) as { Digest: string };
  assert.equal(info.Digest, imageA.digest);
  const bySkopeo = join(work, 'skopeo-pulled');
  await skopeo(['copy', '--src-tls-verify=false', `docker://${registry.host}/test/img@${imageA.digest}`, `oci:${bySkopeo}`]);
  assert.equal(await rootDigest(bySkopeo), imageA.digest);
  assert.deepEqual(await blobs(bySkopeo), await blobs(imageA.dir));

  await skopeo(['copy', '--dest-tls-verify=false', `oci:${imageArm.dir}`, `docker://${registry.host}/test/from-skopeo:v2`]);
  const ours = join(work, 'ours-from-skopeo');
  const r = await cliOk(['copy', `docker://${registry.host}/test/from-skopeo:v2`, `oci:${ours}`]);
  assert.equal(r.stdout.trim(), await registryDigest(registry.host, 'test/from-skopeo', 'v2'));
  assert.equal(r.stdout.trim(), imageArm.digest, 'skopeo kept the digest and so did we');
  assert.deepEqual(await blobs(ours), await blobs(imageArm.dir));
  const inspected = JSON.parse((await cliOk(['inspect', '--json', `docker://${registry.host}/test/from-skopeo:v2`])).stdout) as { images: { platform: string }[] };
  assert.equal(inspected.images[0]!.platform, 'linux/arm64');
});

/** Writes an OCI layout holding one index over images A (amd64) and arm (arm64); returns the index digest. */
async function makeIndexLayout(): Promise<{ dir: string; digest: Digest; amd: Digest; arm: Digest }> {
  const dir = join(work, 'multi');
  await cliOk(['copy', `oci:${imageA.dir}`, `oci:${dir}:amd`]);
  await cliOk(['copy', `oci:${imageArm.dir}`, `oci:${dir}:arm`]);
  const layoutIndex = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { mediaType: string; digest: Digest; size: number; annotations?: Record<string, string> }[] };
  const entry = (tag: string, architecture: string) => {
    const d = layoutIndex.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
    return { mediaType: d.mediaType, digest: d.digest, size: d.size, platform: { architecture, os: 'linux' } };
  };
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [entry('amd', 'amd64'), entry('arm', 'arm64')] }));
  const digest = `sha256:${createHash('sha256').update(index).digest('hex')}` as Digest;
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), index);
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_INDEX, digest, size: index.length }] }));
  return { dir, digest, amd: imageA.digest, arm: imageArm.digest };
}

test('an index with two platforms is pushed and pulled by digest; --platform picks one manifest', async () => {
  const multi = await makeIndexLayout();
  const pushed = await cliOk(['copy', `oci:${multi.dir}`, `docker://${registry.host}/test/multi:v1`]);
  assert.equal(pushed.stdout.trim(), multi.digest);
  assert.equal(await registryDigest(registry.host, 'test/multi', 'v1'), multi.digest);
  assert.equal(await registryDigest(registry.host, 'test/multi', multi.arm), multi.arm);

  const out = join(work, 'multi-pulled');
  await cliOk(['copy', `docker://${registry.host}/test/multi@${multi.digest}`, `oci:${out}`]);
  assert.equal(await rootDigest(out), multi.digest);
  assert.deepEqual(await blobs(out), await blobs(multi.dir));

  const armOnly = join(work, 'multi-arm');
  const r = await cliOk(['copy', '--platform', 'linux/arm64', `docker://${registry.host}/test/multi:v1`, `oci:${armOnly}`]);
  assert.equal(r.stdout.trim(), multi.arm);
  assert.equal(await rootDigest(armOnly), multi.arm);
  assertOneLineFailure(await cli(['copy', '--platform', 'linux/s390x', `docker://${registry.host}/test/multi:v1`, `oci:${join(work, 'none')}`]), /no manifest for linux\/s390x \(it has linux\/amd64, linux\/arm64\)/);

  const info = JSON.parse((await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/test/multi@${multi.digest}`])).stdout) as { manifests: unknown[] };
  assert.equal(info.manifests.length, 2);
});

test('chunked uploads with a small chunk size; a re-push skips existing blobs; same-registry copies mount', async () => {
  proxy.requests.length = 0;
  const chunked = await cliOk(['copy', '--chunk-size', '65536', `oci:${imageArm.dir}`, `docker://${proxy.host}/test/chunked:v1`]);
  assert.equal(chunked.stdout.trim(), imageArm.digest);
  assert.ok(count(proxy.requests, /^PATCH \/v2\/test\/chunked\/blobs\/uploads\//) >= 3, proxy.requests.join('\n'));
  const back = join(work, 'chunked-pulled');
  await cliOk(['copy', `docker://${registry.host}/test/chunked:v1`, `oci:${back}`]);
  assert.deepEqual(await blobs(back), await blobs(imageArm.dir));

  proxy.requests.length = 0;
  await cliOk(['copy', `oci:${imageA.dir}`, `docker://${proxy.host}/test/img:v1`]);
  assert.equal(count(proxy.requests, /\/blobs\/uploads/), 0, proxy.requests.join('\n'));
  assert.equal(count(proxy.requests, /^HEAD \/v2\/test\/img\/blobs\//), 3, proxy.requests.join('\n')); // config, layer, manifest
  assert.equal(count(proxy.requests, /^PUT \/v2\/test\/img\/manifests\/v1$/), 1);

  // A registry that also answers for manifests under /blobs/: the root is read back from it and tagged.
  proxy.faults.push({ match: new RegExp(`^HEAD /v2/test/img/blobs/${imageA.digest}$`), times: 1, kind: 'status', status: 200 });
  await cliOk(['copy', `oci:${imageA.dir}`, `docker://${proxy.host}/test/img:v3`]);
  assert.equal(proxy.faults.pop()!.times, 0);
  assert.equal(await registryDigest(registry.host, 'test/img', 'v3'), imageA.digest);

  proxy.requests.length = 0;
  const mounted = await cliOk(['copy', `docker://${proxy.host}/test/img:v1`, `docker://${proxy.host}/test/mounted:v1`]);
  assert.equal(mounted.stdout.trim(), imageA.digest);
  assert.equal(count(proxy.requests, /^POST \/v2\/test\/mounted\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=test%2Fimg$/), 3, proxy.requests.join('\n'));
  assert.equal(count(proxy.requests, /^(PATCH|PUT) \/v2\/test\/mounted\/blobs\//), 0, proxy.requests.join('\n'));
  assert.equal(count(proxy.requests, /^GET \/v2\/test\/img\/blobs\//), 0, 'mounted blobs are never downloaded');
  assert.equal(await registryDigest(registry.host, 'test/mounted', 'v1'), imageA.digest);
});

test('referrers: the tag-schema fallback on a registry without the API, and the API where there is one', async (t) => {
  const ref = parseDockerReference(`${registry.host}/test/img`);
  assert.deepEqual(await listReferrers(ref, imageA.digest), { manifests: [], via: 'tag-schema' });
  // An artifact manifest whose subject is image A, and the referrers index the tag schema keeps under sha256-<hex>.
  const empty = Buffer.from('{}');
  const emptyDesc = { mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${createHash('sha256').update(empty).digest('hex')}` as Digest, size: 2 };
  const subject = { mediaType: OCI_MANIFEST, digest: imageA.digest, size: (await readFile(join(imageA.dir, 'blobs', 'sha256', imageA.digest.slice(7)))).length };
  const artifact = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sbom', config: emptyDesc, layers: [], subject }));
  const artifactDesc = { mediaType: OCI_MANIFEST, digest: `sha256:${createHash('sha256').update(artifact).digest('hex')}` as Digest, size: artifact.length, artifactType: 'application/vnd.example.sbom' };
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [artifactDesc] }));
  const indexDesc = { mediaType: OCI_INDEX, digest: `sha256:${createHash('sha256').update(index).digest('hex')}` as Digest, size: index.length };
  const dest = await RegistryDestination.create({ ...ref, tag: referrersTag(imageA.digest) });
  await dest.putBlob(emptyDesc, Readable.from([empty]));
  await dest.putBlob(artifactDesc, Readable.from([artifact]));
  await dest.putBlob(indexDesc, Readable.from([index]));
  await dest.commit(indexDesc);
  const found = await listReferrers(ref, imageA.digest);
  assert.equal(found.via, 'tag-schema');
  assert.deepEqual(found.manifests, [artifactDesc]);
  assert.deepEqual((await listReferrers(ref, imageA.digest, { artifactType: 'application/other' })).manifests, []);
  const source = await RegistrySource.open(ref);
  assert.deepEqual(await source.referrers(imageA.digest, 'application/vnd.example.sbom'), [artifactDesc]);

  // A registry that implements GET /v2/<name>/referrers/<digest> is asked that, and the tag is not read.
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url === `/v2/test/img/referrers/${imageA.digest}`) res.writeHead(200, { 'Content-Type': OCI_INDEX }).end(index);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const api = await listReferrers(parseDockerReference(`127.0.0.1:${(server.address() as AddressInfo).port}/test/img`), imageA.digest);
  assert.deepEqual(api, { manifests: [artifactDesc], via: 'api' });
  assert.deepEqual(seen, [`GET /v2/test/img/referrers/${imageA.digest}`]);
});

test('basic auth: a clear error without credentials; --creds, ~/.docker/config.json and auth.json work', async (t) => {
  const secured = await startRegistry({ htpasswd: { alice: 's3cret:with:colons' } });
  t.after(() => secured.stop());
  const dest = `docker://${secured.host}/private/img:v1`;
  assertOneLineFailure(await cli(['copy', `oci:${imageA.dir}`, dest]), /authentication required \(HTTP 401\).*--dest-creds/);
  assertOneLineFailure(await cli(['copy', '--creds', 'alice:wrong', `oci:${imageA.dir}`, dest]), /credentials for alice from --creds were refused \(HTTP 401\)/);
  const pushed = await cliOk(['copy', '--creds', 'alice:s3cret:with:colons', `oci:${imageA.dir}`, dest]);
  assert.equal(pushed.stdout.trim(), imageA.digest);

  const dockerHome = await tempDirFor(t, 'dockerhome');
  await mkdir(join(dockerHome, '.docker'));
  const auth = Buffer.from('alice:s3cret:with:colons').toString('base64');
  await writeFile(join(dockerHome, '.docker', 'config.json'), JSON.stringify({ auths: { [secured.host]: { auth } } }));
  const out = join(work, 'basic-pulled');
  await cliOk(['copy', `docker://${secured.host}/private/img:v1`, `oci:${out}`], { HOME: dockerHome });
  assert.deepEqual(await blobs(out), await blobs(imageA.dir));

  const authFile = join(dockerHome, 'auth.json');
  await writeFile(authFile, JSON.stringify({ auths: { [`${secured.host}/private`]: { auth } } }));
  const inspected = await cliOk(['inspect', '--json', `docker://${secured.host}/private/img:v1`], { REGISTRY_AUTH_FILE: authFile });
  assert.equal((JSON.parse(inspected.stdout) as { digest: string }).digest, imageA.digest);
});

test('token auth: the bearer flow with a token server, tokens reused per scope, skopeo agrees', async (t) => {
  const tokens = await startTokenServer({ users: { bob: 'hunter2' } });
  t.after(() => tokens.stop());
  const secured = await startRegistry({ token: tokens });
  t.after(() => secured.stop());
  const dest = `docker://${secured.host}/team/img:v1`;
  assertOneLineFailure(await cli(['copy', `oci:${imageA.dir}`, dest]), /authentication required|access denied/);
  assertOneLineFailure(await cli(['copy', '--creds', 'bob:nope', `oci:${imageA.dir}`, dest]), /token from .*credentials for bob from --creds were refused/);
  tokens.requests.length = 0;
  const pushed = await cliOk(['copy', '--creds', 'bob:hunter2', `oci:${imageA.dir}`, dest]);
  assert.equal(pushed.stdout.trim(), imageA.digest);
  assert.equal(tokens.requests.length, 1, `one token serves the whole push:\n${tokens.requests.join('\n')}`);
  assert.match(tokens.requests[0]!, /scope=repository%3Ateam%2Fimg%3Apull%2Cpush/);

  tokens.requests.length = 0;
  const out = join(work, 'token-pulled');
  await cliOk(['copy', '--creds', 'bob:hunter2', `docker://${secured.host}/team/img@${imageA.digest}`, `oci:${out}`]);
  assert.deepEqual(await blobs(out), await blobs(imageA.dir));
  assert.equal(tokens.requests.length, 1);

  const info = JSON.parse((await skopeo(['inspect', '--tls-verify=false', '--creds', 'bob:hunter2', `docker://${secured.host}/team/img:v1`])).stdout) as { Digest: string };
  assert.equal(info.Digest, imageA.digest);
});

test('through the fault proxy: pulls and pushes succeed after drops, 500s, 429s and a truncated blob', async () => {
  const layer = [...(await blobs(imageA.dir)).keys()];
  const manifest = JSON.parse(await readFile(join(imageA.dir, 'blobs', 'sha256', imageA.digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const layerDigest = manifest.layers[0]!.digest;
  assert.ok(layer.length >= 3);
  proxy.faults.length = 0;
  proxy.requests.length = 0;
  proxy.faults.push(
    { match: /^GET \/v2\/test\/img\/manifests\/v1$/, times: 1, kind: 'drop' },
    { match: new RegExp(`^GET /v2/test/img/blobs/${manifest.config.digest}$`), times: 2, kind: 'status', status: 500 },
    { match: new RegExp(`^GET /v2/test/img/blobs/${manifest.config.digest}$`), times: 1, kind: 'redirect', location: registry.url },
    { match: new RegExp(`^GET /v2/test/img/blobs/${layerDigest}$`), times: 1, kind: 'status', status: 429, retryAfter: '1' },
    { match: new RegExp(`^GET /v2/test/img/blobs/${layerDigest}$`), times: 1, kind: 'truncate' },
  );
  const out = join(work, 'faulty-pull');
  const started = Date.now();
  const pulled = await cliOk(['copy', `docker://${proxy.host}/test/img:v1`, `oci:${out}`]);
  assert.ok(Date.now() - started >= 1000, 'Retry-After: 1 was honored');
  assert.equal(pulled.stdout.trim(), imageA.digest);
  assert.deepEqual(await blobs(out), await blobs(imageA.dir));
  assert.equal(proxy.faults.reduce((n, f) => n + f.times, 0), 0, 'every fault was hit');
  assert.ok(proxy.requests.some((l) => new RegExp(`^GET /v2/test/img/blobs/${layerDigest} range=bytes=[1-9][0-9]*-$`).test(l)), `the truncated blob was resumed:\n${proxy.requests.join('\n')}`);

  proxy.faults.push(
    { match: /^POST \/v2\/test\/faulty\/blobs\/uploads\/$/, times: 1, kind: 'drop' },
    { match: /^PATCH \/v2\/test\/faulty\/blobs\/uploads\//, times: 1, kind: 'drop' },
    { match: /^PATCH \/v2\/test\/faulty\/blobs\/uploads\//, times: 1, kind: 'status', status: 502 },
    { match: /^PATCH \/v2\/test\/faulty\/blobs\/uploads\//, times: 1, kind: 'partial' },
    { match: /^PUT \/v2\/test\/faulty\/blobs\/uploads\/.*digest=/, times: 1, kind: 'status', status: 503 },
    { match: /^PUT \/v2\/test\/faulty\/manifests\/v1$/, times: 1, kind: 'status', status: 500 },
  );
  const pushed = await cliOk(['copy', '--chunk-size', '65536', `oci:${imageA.dir}`, `docker://${proxy.host}/test/faulty:v1`]);
  assert.equal(pushed.stdout.trim(), imageA.digest);
  assert.equal(proxy.faults.reduce((n, f) => n + f.times, 0), 0, 'every fault was hit');
  assert.equal(await registryDigest(registry.host, 'test/faulty', 'v1'), imageA.digest);
  // The registry kept half of one chunk and refused the resent chunk at its old Location: that blob's upload
  // began again (one POST per blob, one more for the dropped POST, one more for the restart).
  const pushedBlobs = 1 + manifest.layers.length;
  assert.equal(count(proxy.requests, /^POST \/v2\/test\/faulty\/blobs\/uploads\/$/), pushedBlobs + 2, proxy.requests.join('\n'));
  const back = join(work, 'faulty-back');
  await skopeo(['copy', '--src-tls-verify=false', `docker://${registry.host}/test/faulty:v1`, `oci:${back}`]);
  assert.deepEqual(await blobs(back), await blobs(imageA.dir));
});

test('through the fault proxy: wrong bytes and persistent failures fail cleanly and write nothing', async () => {
  const manifest = JSON.parse(await readFile(join(imageA.dir, 'blobs', 'sha256', imageA.digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
  const layerDigest = manifest.layers[0]!.digest;
  proxy.faults.length = 0;
  const outDir = join(work, 'failures');
  await mkdir(outDir);

  proxy.faults.push({ match: new RegExp(`^GET /v2/test/img/blobs/${layerDigest}$`), times: Infinity, kind: 'corrupt' });
  assertOneLineFailure(await cli(['copy', `docker://${proxy.host}/test/img:v1`, `oci:${join(outDir, 'corrupt')}`]), new RegExp(`blob ${layerDigest}: content has digest sha256:[0-9a-f]{64}, expected ${layerDigest}`));
  assertOneLineFailure(await cli(['copy', `docker://${proxy.host}/test/img:v1`, `oci-archive:${join(outDir, 'corrupt.tar')}`]), /content has digest/);
  proxy.faults.length = 0;

  // A small blob (the config) is wholly received before the consumer reads: the failure must still be caught.
  const configDigest = (JSON.parse(await readFile(join(imageA.dir, 'blobs', 'sha256', imageA.digest.slice(7)), 'utf8')) as { config: { digest: string } }).config.digest;
  proxy.faults.push({ match: new RegExp(`^GET /v2/test/img/blobs/${configDigest}$`), times: Infinity, kind: 'corrupt' });
  assertOneLineFailure(await cli(['copy', `docker://${proxy.host}/test/img:v1`, `oci:${join(outDir, 'corrupt-config')}`]), new RegExp(`blob ${configDigest}: content has digest`));
  assertOneLineFailure(await cli(['inspect', `docker://${proxy.host}/test/img:v1`]), new RegExp(`blob ${configDigest}: content has digest`));
  proxy.faults.length = 0;

  proxy.faults.push({ match: /^GET \/v2\/test\/img\/manifests\/v1$/, times: Infinity, kind: 'corrupt' });
  assertOneLineFailure(await cli(['copy', `docker://${proxy.host}/test/img:v1`, `oci:${join(outDir, 'bad-manifest')}`]), /manifest v1: Docker-Content-Digest sha256:[0-9a-f]{64} does not match the bytes received/);
  proxy.faults.length = 0;

  proxy.faults.push({ match: new RegExp(`^GET /v2/test/img/manifests/${imageA.digest}$`), times: Infinity, kind: 'corrupt' });
  assertOneLineFailure(await cli(['copy', `docker://${proxy.host}/test/img@${imageA.digest}`, `oci:${join(outDir, 'bad-by-digest')}`]), /content has digest|does not match/);
  proxy.faults.length = 0;

  proxy.faults.push({ match: new RegExp(`^GET /v2/test/img/blobs/${layerDigest}$`), times: Infinity, kind: 'truncate' });
  assertOneLineFailure(await cli(['copy', `docker://${proxy.host}/test/img:v1`, `oci:${join(outDir, 'truncated')}`]), /after 5 attempts/);
  proxy.faults.length = 0;

  proxy.faults.push({ match: /^GET \/v2\/test\/img\/manifests\/v1$/, times: Infinity, kind: 'status', status: 503 });
  assertOneLineFailure(await cli(['copy', `docker://${proxy.host}/test/img:v1`, `oci:${join(outDir, 'unavailable')}`]), /HTTP 503 \(after 5 attempts\)/);
  proxy.faults.length = 0;

  proxy.faults.push({ match: /^PATCH /, times: Infinity, kind: 'drop' });
  assertOneLineFailure(await cli(['copy', '--chunk-size', '65536', `oci:${imageArm.dir}`, `docker://${proxy.host}/test/never:v1`]), /after 5 attempts/);
  proxy.faults.length = 0;
  const tagged = await fetch(`http://${registry.host}/v2/test/never/manifests/v1`, { method: 'HEAD' });
  assert.equal(tagged.status, 404, 'a failed push tags nothing');

  assert.deepEqual(await readdir(outDir), [], 'no output, partial or temporary, was left behind');
});

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { signStatement, verifyStatement } from '../src/attest/dsse.js';
import { generateSigningKey, privateKeyPem, publicKeyPem } from '../src/attest/signing-key.js';
import { IN_TOTO_ARTIFACT_TYPE, VSA_ENVELOPE_MEDIA_TYPE, PACKAGES_REBUILT_LEVEL, REBUILT_LEVEL, POLICY_URI, VERIFIER_ID, VSA_PREDICATE_TYPE } from '../src/attest/media-types.js';
import { policyDigestHex, verificationStatement, type SummaryInput } from '../src/attest/verification-summary.js';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { sha256, type Digest } from '../src/oci/digest.js';
import { RECIPE_LABEL } from '../src/image/recipe.js';
import { parseDockerReference } from '../src/transports/registry/reference.js';
import { listReferrers, referrersTag } from '../src/transports/registry/referrers.js';
import { RECIPE_ARTIFACT_TYPE } from '../src/image/read-recipe.js';
import { currentUmask, rebuildEnvironment } from '../src/publish/isolated-rebuild.js';
import { VERSION } from '../src/version.js';
import { busyboxRepo, COMMANDS_SKIP } from './support/busybox.js';
import { makeTempDir, removeDir, runCli, runCliOk, type RunResult } from './support/cli.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { makeKeyPair } from './support/in-toto.js';
import { servedRepo, type ServedRepo } from './support/package-repo.js';
import { signing, startRebuilder, type FakeRebuilder, type FakeRow } from './support/rebuilderd.js';
import { startReferrersRegistry } from './support/referrers-registry.js';
import { startRegistry, type RunningRegistry } from './support/registry.js';

/**
 * `publish` against a real registry (Debian's docker-registry, distribution 2.8: no referrers API, so the
 * `sha256-<hex>` tag index is what publish keeps), with emulated rebuilderd for the package policy and the fault
 * proxy in front of the registry. Specs are the two-package served repository (a second or two per build).
 */

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let work: string;
let registry: RunningRegistry;
let proxy: FaultProxy;
let keyFile: string;
const key = generateSigningKey('ed25519');

interface PublishJson {
  published: boolean;
  dryRun: boolean;
  failed: { check: string; message: string }[];
  manifest?: { digest: Digest };
  recipe?: Digest;
  rebuild?: { manifest?: string; reproducible: boolean; environment: Record<string, string> };
  destinations: { reference: string; repository: string; tag?: string; recipe: { digest: Digest }; attestation: { digest: Digest }; referrers?: string }[];
}

function env(cache: string): Record<string, string | undefined> {
  return { REPRO_OCI_CACHE: cache, REPRO_OCI_RETRY_DELAY_MS: '1', REPRO_OCI_PROGRESS: '0', XDG_CONFIG_HOME: '/nonexistent', REPRO_OCI_STATE: join(work, 'state'), SOURCE_DATE_EPOCH: undefined };
}

async function publish(spec: string, args: string[], cwd?: string): Promise<RunResult & { json?: PublishJson }> {
  const r = await runCli(['publish', spec, '--key', keyFile, '--json', ...args], { env: env(join(work, 'cache')), timeoutMs: 120_000, ...(cwd ? { cwd } : {}) });
  return { ...r, ...(r.code !== 2 && r.stdout ? { json: JSON.parse(r.stdout) as PublishJson } : {}) };
}

async function getManifest(host: string, repo: string, reference: string): Promise<{ status: number; digest: string | null; bytes: Buffer }> {
  const r = await fetch(`http://${host}/v2/${repo}/manifests/${reference}`, { headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
  return { status: r.status, digest: r.headers.get('docker-content-digest'), bytes: Buffer.from(await r.arrayBuffer()) };
}

async function getBlob(host: string, repo: string, digest: string): Promise<Buffer> {
  const r = await fetch(`http://${host}/v2/${repo}/blobs/${digest}`);
  assert.equal(r.status, 200, `blob ${digest}`);
  const bytes = Buffer.from(await r.arrayBuffer());
  assert.equal(sha256(bytes), digest);
  return bytes;
}

async function tags(host: string, repo: string): Promise<string[]> {
  const r = await fetch(`http://${host}/v2/${repo}/tags/list`);
  if (r.status === 404) return [];
  return ((await r.json()) as { tags: string[] | null }).tags ?? [];
}

/** Nothing of `digest` in the repository: no tag, no manifest by digest, no referrers index. */
async function assertNothingPushed(repo: string, digest: string | undefined): Promise<void> {
  assert.deepEqual(await tags(registry.host, repo), [], `${repo} has no tags`);
  if (digest) assert.equal((await getManifest(registry.host, repo, digest)).status, 404, `${repo}@${digest} is not in the registry`);
}

const row = (name: string, status: FakeRow['status']): FakeRow => ({ name, version: '1.0-1', arch: 'x86_64', repo: 'core', status });

let repo: ServedRepo;
let files: Map<string, { fileName: string; sha256: string }>;
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  work = await makeTempDir('publish-test');
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.host);
  keyFile = join(work, 'signing.key');
  writeFileSync(keyFile, privateKeyPem(key), { mode: 0o600 });
  repo = await servedRepo({ after: (fn) => cleanups.push(fn) });
  files = new Map(repo.packages.map((p, i) => [['alpha', 'beta'][i]!, { fileName: p.filename, sha256: p.sha256 }]));
});

after(async () => {
  for (const cleanup of cleanups) await cleanup();
  await proxy?.close();
  await registry?.stop();
  await removeDir(work);
});

test('the rebuild\'s time zone, locale and umask always differ from the caller\'s, and are the same fixed choices on every machine', () => {
  const callers = [
    {}, { TZ: 'UTC', LANG: 'C.UTF-8' }, { TZ: 'Pacific/Chatham' }, { LC_ALL: 'tr_TR.UTF-8' }, { LC_CTYPE: 'tr_TR.UTF-8' }, { LANG: 'tr_TR.UTF-8', TZ: 'Asia/Kathmandu' },
  ];
  for (const env of callers) {
    for (const umask of [0o022, 0o077, 0o002]) {
      const chosen = rebuildEnvironment(env, umask);
      const callerLocale = env.LC_ALL ?? env.LC_CTYPE ?? env.LANG ?? '';
      assert.notEqual(chosen.TZ, env.TZ ?? '', JSON.stringify(env));
      assert.notEqual(chosen.LC_ALL, callerLocale, JSON.stringify(env));
      assert.notEqual(Number.parseInt(chosen.umask, 8), umask);
      assert.ok(['Pacific/Chatham', 'Asia/Kathmandu'].includes(chosen.TZ) && ['tr_TR.UTF-8', 'C'].includes(chosen.LC_ALL) && ['0077', '0027'].includes(chosen.umask));
    }
  }
  assert.deepEqual(rebuildEnvironment({ TZ: 'Europe/Berlin', LANG: 'de_DE.UTF-8' }, 0o022), rebuildEnvironment({}, 0o002), 'fixed choices, not derived from the caller beyond avoiding its own');
});

describe('publish of a reproducible spec', () => {
  let rebuilders: FakeRebuilder[];
  before(async () => {
    const rebuilderKey = makeKeyPair();
    rebuilders = [await startRebuilder({ api: 'v1', rows: [row('alpha', 'GOOD'), row('beta', 'GOOD')], ...signing(rebuilderKey, files) })];
  });
  after(async () => {
    for (const r of rebuilders) await r.close();
  });

  test('pushes the image, its recipe and a signed verification summary, tag last; the referrers are listed', async () => {
    proxy.requests.length = 0;
    const r = await publish(repo.spec, ['--to', `docker://${proxy.host}/pub/ok:1`, '--rebuilder', rebuilders[0]!.url]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.json!;
    assert.equal(out.published, true);
    assert.deepEqual(out.failed, []);
    const digest = out.manifest!.digest;
    assert.equal(out.rebuild!.manifest, digest);
    assert.equal(out.destinations[0]!.referrers, 'tag-schema');

    // The tag names the image; it was the last request that wrote anything.
    assert.equal((await getManifest(registry.host, 'pub/ok', '1')).digest, digest);
    const writes = proxy.requests.filter((l) => /^(PUT|POST|PATCH|DELETE) /.test(l));
    assert.equal(writes.at(-1), 'PUT /v2/pub/ok/manifests/1');
    assert.equal(writes.filter((l) => l === 'PUT /v2/pub/ok/manifests/1').length, 1);
    assert.ok(writes.indexOf(`PUT /v2/pub/ok/manifests/${digest}`) < writes.indexOf(`PUT /v2/pub/ok/manifests/${referrersTag(digest)}`));

    // Listed by repro-oci, and in the registry's own sha256-<hex> index.
    const ref = parseDockerReference(`${registry.host}/pub/ok`);
    const listed = await listReferrers(ref, digest);
    assert.equal(listed.via, 'tag-schema');
    assert.deepEqual(listed.manifests.map((m) => m.artifactType).sort(), [RECIPE_ARTIFACT_TYPE, IN_TOTO_ARTIFACT_TYPE].sort());
    const index = JSON.parse((await getManifest(registry.host, 'pub/ok', referrersTag(digest))).bytes.toString('utf8')) as { manifests: { digest: string; artifactType: string }[] };
    assert.deepEqual(index.manifests.map((m) => m.digest).sort(), [out.destinations[0]!.recipe.digest, out.destinations[0]!.attestation.digest].sort());

    // The recipe artifact holds the recipe the image's config label names.
    const manifest = JSON.parse((await getManifest(registry.host, 'pub/ok', digest)).bytes.toString('utf8')) as { config: { digest: string } };
    const config = JSON.parse((await getBlob(registry.host, 'pub/ok', manifest.config.digest)).toString('utf8')) as { config: { Labels: Record<string, string> } };
    const recipeDigest = config.config.Labels[RECIPE_LABEL];
    assert.equal(out.recipe, recipeDigest);
    const recipeManifest = JSON.parse((await getManifest(registry.host, 'pub/ok', out.destinations[0]!.recipe.digest)).bytes.toString('utf8')) as { subject: { digest: string }; layers: { digest: string }[] };
    assert.equal(recipeManifest.subject.digest, digest);
    assert.equal(recipeManifest.layers[0]!.digest, recipeDigest);

    // The attestation: an artifact with in-toto's media types whose envelope verifies and says what was checked.
    const attestationManifest = JSON.parse((await getManifest(registry.host, 'pub/ok', out.destinations[0]!.attestation.digest)).bytes.toString('utf8')) as {
      artifactType: string;
      subject: { digest: string };
      layers: { mediaType: string; digest: string; annotations: Record<string, string> }[];
      annotations: Record<string, string>;
    };
    assert.equal(attestationManifest.artifactType, IN_TOTO_ARTIFACT_TYPE);
    assert.equal(attestationManifest.subject.digest, digest);
    assert.equal(attestationManifest.layers[0]!.mediaType, VSA_ENVELOPE_MEDIA_TYPE);
    assert.equal(attestationManifest.layers[0]!.annotations['in-toto.io/predicate-type'], VSA_PREDICATE_TYPE);
    assert.equal(attestationManifest.annotations['in-toto.io/predicate-type'], VSA_PREDICATE_TYPE);
    const envelope = await getBlob(registry.host, 'pub/ok', attestationManifest.layers[0]!.digest);
    const { statement } = verifyStatement(envelope, [key], 'attestation');
    assert.deepEqual(statement.subject, [{ name: `${proxy.host}/pub/ok`, digest }]);
    assert.equal(statement.predicateType, VSA_PREDICATE_TYPE);
    const p = statement.predicate as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.deepEqual(p.verifier, { id: VERIFIER_ID, version: { 'repro-oci': VERSION } });
    assert.equal(p.resourceUri, `docker://${proxy.host}/pub/ok@${digest}`);
    assert.equal(p.verificationResult, 'PASSED');
    assert.deepEqual(p.verifiedLevels, [REBUILT_LEVEL, PACKAGES_REBUILT_LEVEL]);
    assert.equal(p.slsaVersion, '1.0');
    assert.equal(p.policy.uri, POLICY_URI);
    assert.equal(p.policy.digest.sha256, sha256(canonicalJsonBytes(p.reproOci.policy)).slice(7));
    assert.deepEqual(p.reproOci.recipe, { digest: recipeDigest });
    assert.deepEqual(p.reproOci.builds.map((b: { role: string; manifest: string }) => [b.role, b.manifest]), [['build', digest], ['rebuild', digest]]);
    const rebuildEnv = p.reproOci.builds[1].environment as Record<string, string>;
    assert.deepEqual(Object.keys(rebuildEnv).sort(), ['LC_ALL', 'TZ', 'cache', 'cwd', 'process', 'scratch', 'umask']);
    assert.deepEqual({ TZ: rebuildEnv.TZ, LC_ALL: rebuildEnv.LC_ALL, umask: rebuildEnv.umask }, rebuildEnvironment(process.env, await currentUmask()), 'the rebuild ran under the recorded settings, chosen from this caller\'s');
    assert.deepEqual(p.reproOci.policy, { rebuilders: [{ name: new URL(rebuilders[0]!.url).host, url: rebuilders[0]!.url }], require: 1, rules: [], attestations: 'required' });
    assert.deepEqual(p.reproOci.packages, { total: 2, meeting: 2, rebuilders: [{ name: new URL(rebuilders[0]!.url).host, url: rebuilders[0]!.url, good: 2, verified: 2 }] });
    assert.equal(p.inputAttestations.length, 2);
    for (const a of p.inputAttestations) assert.match(a.uri, new RegExp(`^${rebuilders[0]!.url}/api/v1/builds/\\d+/artifacts/\\d+/attestation$`));

    // The same checks make the same envelope: a dry run to the same repository signs the same bytes, and pushes nothing.
    proxy.requests.length = 0;
    const dry = await publish(repo.spec, ['--to', `docker://${proxy.host}/pub/ok:2`, '--rebuilder', rebuilders[0]!.url, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.json!.published, false);
    assert.equal(dry.json!.dryRun, true);
    assert.equal(dry.json!.destinations[0]!.attestation.digest, out.destinations[0]!.attestation.digest);
    assert.deepEqual(proxy.requests, [], 'a dry run does not touch the registry');
    assert.deepEqual((await tags(registry.host, 'pub/ok')).sort(), ['1', referrersTag(digest)].sort());
  });

  test('verify accepts what publish pushed, with the publisher\'s key, its rebuilders as policy, and a rebuild here; another key or tag is refused', async () => {
    const r = await publish(repo.spec, ['--to', `docker://${registry.host}/pub/verified:1`, '--rebuilder', rebuilders[0]!.url]);
    assert.equal(r.code, 0, r.stderr);
    const digest = r.json!.manifest!.digest;
    const pub = join(work, 'signing.pub');
    writeFileSync(pub, publicKeyPem(key));
    const policy = join(work, 'rebuilders.yaml');
    writeFileSync(policy, `rebuilders:\n  - name: alpha\n    url: ${rebuilders[0]!.url}\n`);
    const ref = `docker://${registry.host}/pub/verified:1`;
    const ok = await runCli(['verify', ref, '--key', pub, '--policy', policy, '--rebuild', '--json'], { env: env(join(work, 'cache')), timeoutMs: 120_000 });
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    const verdict = JSON.parse(ok.stdout) as { verified: boolean; manifest: string };
    assert.equal(verdict.verified, true);
    assert.equal(verdict.manifest, digest);

    const otherPub = join(work, 'other.pub');
    writeFileSync(otherPub, publicKeyPem(generateSigningKey('ed25519')));
    const wrongKey = await runCli(['verify', ref, '--key', otherPub], { env: env(join(work, 'cache')) });
    assert.equal(wrongKey.code, 1, wrongKey.stderr);
    assert.match(wrongKey.stdout, /FAILED signature/);

    // Copied elsewhere without its referrers: the same image, but nothing there says it was published.
    const copied = await runCli(['copy', ref, `docker://${registry.host}/pub/copied:1`], { env: env(join(work, 'cache')) });
    assert.equal(copied.code, 0, copied.stderr);
    const moved = await runCli(['verify', `docker://${registry.host}/pub/copied:1`, '--key', pub], { env: env(join(work, 'cache')) });
    assert.equal(moved.code, 1, moved.stderr);
    assert.match(moved.stdout, /^NOT verified: sha256:[0-9a-f]{64}: no attestation/m);
  });

  test('a package policy the rebuilders do not meet: refused, nothing pushed, the check named', async () => {
    const bad = await startRebuilder({ api: 'v1', rows: [row('alpha', 'GOOD'), row('beta', 'BAD')], ...signing(makeKeyPair(), files) });
    rebuilders.push(bad);
    const r = await publish(repo.spec, ['--to', `docker://${registry.host}/pub/policy:1`, '--rebuilder', rebuilders[0]!.url, '--rebuilder', bad.url, '--require-rebuilders', '1']);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(r.json!.failed.map((f) => f.check), ['packages']);
    assert.match(r.json!.failed[0]!.message, /1 BAD/);
    await assertNothingPushed('pub/policy', r.json!.manifest!.digest);
    // The text output says it too.
    const text = await runCli(['publish', repo.spec, '--key', keyFile, '--to', `docker://${registry.host}/pub/policy:1`, '--rebuilder', bad.url], { env: env(join(work, 'cache')) });
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^check failed: packages: .*BAD/m);
    assert.match(text.stdout, /^NOT published: nothing was pushed$/m);
  });
});

describe('publish to a registry with the referrers API', () => {
  test('the registry answers OCI-Subject: no sha256-<hex> tag is written, and verify finds the attestation through the API', async (t) => {
    const api = await startReferrersRegistry(registry.host);
    t.after(() => api.close());
    const r = await publish(repo.spec, ['--to', `docker://${api.host}/pub/api:1`]);
    assert.equal(r.code, 0, r.stderr);
    const out = r.json!;
    assert.equal(out.destinations[0]!.referrers, 'api');
    const digest = out.manifest!.digest;
    assert.deepEqual(await tags(registry.host, 'pub/api'), ['1'], 'the tag, and no referrers tag index');
    const listed = await listReferrers(parseDockerReference(`${api.host}/pub/api`), digest);
    assert.equal(listed.via, 'api');
    assert.deepEqual(listed.manifests.map((m) => m.digest).sort(), [out.destinations[0]!.recipe.digest, out.destinations[0]!.attestation.digest].sort());
    assert.deepEqual(listed.manifests.map((m) => m.artifactType).sort(), [RECIPE_ARTIFACT_TYPE, IN_TOTO_ARTIFACT_TYPE].sort());

    const pub = join(work, 'api-signing.pub');
    writeFileSync(pub, publicKeyPem(key));
    api.requests.length = 0;
    const verified = await runCli(['verify', `docker://${api.host}/pub/api:1`, '--key', pub], { env: env(join(work, 'cache')) });
    assert.equal(verified.code, 0, verified.stderr + verified.stdout);
    assert.ok(api.requests.some((l) => l.startsWith(`GET /v2/pub/api/referrers/${digest}`)), 'verify asked the referrers API');
    assert.ok(!api.requests.some((l) => l.includes('/manifests/sha256-')), 'and did not fall back to the tag schema');
  });
});

describe('publish through a registry that fails', () => {
  test('a dropped connection at each push step leaves the tag where it was; the tag moves only on success', async () => {
    const repoName = 'pub/faults';
    // An older image under the tag first.
    const old = await runCliOk(['build', '--rootfs', repo.work, '--source-date-epoch', '1', '-o', `oci:${join(work, 'old')}:o`]);
    await runCliOk(['copy', `oci:${join(work, 'old')}:o`, `docker://${registry.host}/${repoName}:1`]);
    const oldDigest = old.stdout.trim();
    assert.equal((await getManifest(registry.host, repoName, '1')).digest, oldDigest);

    const dry = await publish(repo.spec, ['--to', `docker://${proxy.host}/${repoName}:1`, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    const digest = dry.json!.manifest!.digest;
    const { recipe, attestation } = dry.json!.destinations[0]!;
    const at = `/v2/${repoName}`;
    const steps: [string, RegExp][] = [
      ['blob upload start', new RegExp(`^POST ${at}/blobs/uploads/$`)],
      ['blob upload', new RegExp(`^PUT ${at}/blobs/uploads/`)],
      ['image manifest', new RegExp(`^PUT ${at}/manifests/${digest}$`)],
      ['recipe manifest', new RegExp(`^PUT ${at}/manifests/${recipe.digest}$`)],
      ['attestation manifest', new RegExp(`^PUT ${at}/manifests/${attestation.digest}$`)],
      ['referrers index read', new RegExp(`^GET ${at}/manifests/${referrersTag(digest)}$`)],
      ['referrers index write', new RegExp(`^PUT ${at}/manifests/${referrersTag(digest)}$`)],
    ];
    for (const [step, match] of steps) {
      proxy.requests.length = 0;
      proxy.faults.push({ match, times: Infinity, kind: 'drop' });
      const r = await publish(repo.spec, ['--to', `docker://${proxy.host}/${repoName}:1`]);
      proxy.faults.pop();
      assert.equal(r.code, 2, `${step}: ${r.stderr}`);
      assert.ok(proxy.requests.some((l) => match.test(l)), `${step}: the step was reached`);
      assert.match(r.stderr, /\nrepro-oci: [^\n]*\(nothing was tagged: every tag is where it was\)\n$/, step);
      assert.ok(!proxy.requests.includes(`PUT ${at}/manifests/1`), `${step}: no tag PUT`);
      assert.equal((await getManifest(registry.host, repoName, '1')).digest, oldDigest, `${step}: the tag still names the old image`);
    }
    const ok = await publish(repo.spec, ['--to', `docker://${proxy.host}/${repoName}:1`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await getManifest(registry.host, repoName, '1')).digest, digest);

    // A referrers index that does not match its digest on the way back (the registry's, or what a proxy made of it)
    // is an error before any tag: publish never writes an index it could not read.
    proxy.requests.length = 0;
    proxy.faults.push({ match: new RegExp(`^GET ${at}/manifests/${referrersTag(digest)}$`), times: Infinity, kind: 'corrupt' });
    const corrupt = await publish(repo.spec, ['--to', `docker://${proxy.host}/${repoName}:2`]);
    proxy.faults.pop();
    assert.equal(corrupt.code, 2, corrupt.stderr);
    assert.match(corrupt.stderr, /\nrepro-oci: [^\n]*referrers tag sha256-[0-9a-f]{64}: [^\n]*\(nothing was tagged: every tag is where it was\)\n$/);
    assert.ok(!proxy.requests.some((l) => l.startsWith(`PUT ${at}/manifests/2`) || l.startsWith(`PUT ${at}/manifests/${referrersTag(digest)}`)), proxy.requests.join('\n'));
    assert.equal((await getManifest(registry.host, repoName, '2')).status, 404);
  });
});

describe('publish of a spec that does not reproduce', { skip: COMMANDS_SKIP }, () => {
  async function commandSpec(dir: string, command: string): Promise<string> {
    await busyboxRepo(dir, ['sh', 'cat'], [{ path: 'etc/shadow', type: 'file', content: 'root::19800::::::\n', mode: 0o600 }]);
    const spec = join(dir, 'spec.yaml');
    writeFileSync(spec, [
      'repositories: [{ name: core, servers: [repo/$repo/os/$arch] }]',
      'packages: [busybox]',
      'sigLevel: Never',
      'image:',
      '  setup:',
      `    commands: ${JSON.stringify([['sh', '-c', command]])}`,
      '',
    ].join('\n'));
    return spec;
  }

  test('a setup command that differs between two runs: the build refuses it, nothing is pushed', async (t) => {
    const dir = await makeTempDir('publish-nondet');
    t.after(() => removeDir(dir));
    const spec = await commandSpec(dir, 'cat /proc/sys/kernel/random/uuid > /etc/instance-id');
    const r = await publish(spec, ['--to', `docker://${registry.host}/pub/nondet:1`]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(r.json!.failed.map((f) => f.check), ['build']);
    assert.match(r.json!.failed[0]!.message, /setup commands are nondeterministic: .*etc\/instance-id/);
    await assertNothingPushed('pub/nondet', undefined);
  });

  test('a sandbox that leaks the caller\'s time zone: the independent rebuild (another TZ) differs, the diff names the file, nothing is pushed', async (t) => {
    // The sandbox sets TZ=UTC; this prlimit hands bubblewrap the caller's TZ instead, as a sandbox bug would. One
    // build is self-consistent (both runs see the same TZ); only a rebuild under another TZ shows it.
    const dir = await makeTempDir('publish-tz');
    t.after(() => removeDir(dir));
    // As root the sandbox runs as a uid of its own, which must be able to reach the wrapper.
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    chmodSync(dir, 0o755);
    writeFileSync(join(bin, 'prlimit'), '#!/bin/sh\nfor a; do shift; if [ "$prev" = TZ ] && [ "$a" = UTC ]; then a="${TZ:-UTC}"; fi; prev=$a; set -- "$@" "$a"; done\nexec /usr/bin/prlimit "$@"\n', { mode: 0o755 });
    const spec = await commandSpec(dir, 'echo "$TZ" > /etc/tz-seen');
    const r = await runCli(['publish', spec, '--key', keyFile, '--to', `docker://${registry.host}/pub/tz:1`], { env: { ...env(join(work, 'cache')), PATH: `${bin}:${process.env.PATH}` }, timeoutMs: 120_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^check failed: rebuild: NOT reproducible: the build made sha256:[0-9a-f]{64}, the independent rebuild sha256:[0-9a-f]{64}$/m);
    assert.match(r.stdout, /\/etc\/tz-seen/, 'the differences name the file');
    assert.match(r.stdout, /^NOT published: nothing was pushed$/m);
    await assertNothingPushed('pub/tz', undefined);
  });
});

test('the verification summary is pure: the same input, the same statement and envelope bytes', () => {
  const input: SummaryInput = {
    repository: 'registry.example.org/team/hello',
    manifest: sha256('m'),
    version: '1.0.0',
    recipe: sha256('r'),
    builds: [
      { role: 'build', manifest: sha256('m'), environment: { process: 'publish' } },
      { role: 'rebuild', manifest: sha256('m'), environment: { TZ: 'Pacific/Chatham' } },
    ],
  };
  const a = signStatement(verificationStatement(input), [key]);
  const b = signStatement(verificationStatement(structuredClone(input)), [key]);
  assert.deepEqual(a, b);
  const p = verificationStatement(input).predicate as Record<string, unknown>;
  assert.deepEqual(p.policy, { uri: POLICY_URI, digest: { sha256: policyDigestHex(null) } });
  assert.equal(policyDigestHex(null), sha256('null').slice(7));
  assert.deepEqual(p.verifiedLevels, [REBUILT_LEVEL]);
  assert.deepEqual(p.inputAttestations, []);
  assert.equal(p.resourceUri, `docker://registry.example.org/team/hello@${sha256('m')}`);
  assert.deepEqual((p.reproOci as Record<string, unknown>).packages, null);
});

test('publish refuses what it cannot do before building', async () => {
  const cases: [string[], RegExp][] = [
    [['--to', 'oci:somewhere'], /--to oci:somewhere: publish pushes to registries/],
    [['--to', `docker://${registry.host}/x:1`, '--key', '/nonexistent/key'], /signing key \/nonexistent\/key/],
    [['--to', `docker://${registry.host}/x:1`, '--rebuilders', '/nonexistent/rebuilders.yaml'], /rebuilders file/],
    [['--to', `docker://${registry.host}/x:1`, '--require-rebuilders', '0', '--rebuilder', 'http://127.0.0.1:9'], /--require "0"/],
  ];
  for (const [args, message] of cases) {
    const r = await runCli(['publish', repo.spec, '--key', keyFile, ...args], { env: env(join(work, 'cache-refusals')) });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /^fetched/m, 'nothing was built');
  }
  assert.deepEqual(await tags(registry.host, 'x'), []);
});

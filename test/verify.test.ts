import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateSigningKey, publicKeyPem, type SigningKey } from '../src/attest/signing-key.js';
import { IN_TOTO_ARTIFACT_TYPE } from '../src/attest/media-types.js';
import { generateExampleArchive } from '../src/example/generate.js';
import { RECIPE_LABEL } from '../src/image/recipe.js';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { sha256, type Digest } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/mediatypes.js';
import { referrersTag } from '../src/transports/registry/referrers.js';
import type { Descriptor } from '../src/oci/types.js';
import { REPO_ROOT, makeTempDir, removeDir, runCli, runCliOk, type RunResult } from './support/cli.js';
import { listenOnLoopback } from './support/http-server.js';
import { startRegistry, type RunningRegistry } from './support/registry.js';
import { tamperFile } from './support/tamper.js';
import { RawRepository, signVsa, type AttestedImage } from './support/verify-fixtures.js';

/**
 * `verify` against the real distribution registry (Debian's docker-registry 2.8, which has no referrers API: the
 * `sha256-<hex>` tag schema), and through a loopback proxy that adds the referrers API in front of it. The
 * attestations are made by test/support/verify-fixtures.ts per docs/attestation.md; each hostile case changes one
 * thing an attacker holding the registry can change, in a repository of its own.
 */

let registry: RunningRegistry;
let work: string;
let key: SigningKey;
let keyFile: string;
let otherKeyFile: string;
/** The example image built from its spec (it carries a recipe), and an unrelated image. */
let image: { digest: Digest; descriptor: Descriptor; recipe: string };
let otherImage: Digest;
let mirrors: string[];
let repoCount = 0;

before(async () => {
  work = await makeTempDir('verify');
  registry = await startRegistry();
  await generateExampleArchive(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), work);
  copyFileSync(join(REPO_ROOT, 'examples/hello-arch/spec.yaml'), join(work, 'spec.yaml'));
  mirrors = ['--mirror', join(work, 'repo/hello-core/os/x86_64'), '--mirror', join(work, 'repo/hello-extra/os/x86_64')];
  const built = await runCliOk(['build', 'spec.yaml', '-o', `docker://${registry.host}/base/hello:1`], { cwd: work, env: { REPRO_OCI_CACHE: join(work, 'cache') } });
  const digest = built.stdout.trim() as Digest;
  const base = new RawRepository(registry.url, 'base/hello');
  const { descriptor, bytes } = await base.getManifest(digest);
  const config = JSON.parse((await base.getBlob((JSON.parse(bytes.toString()) as { config: { digest: string } }).config.digest)).toString()) as { config: { Labels: Record<string, string> } };
  image = { digest, descriptor, recipe: config.config.Labels[RECIPE_LABEL]! };
  await mkdir(join(work, 'rootfs/etc'), { recursive: true });
  await writeFile(join(work, 'rootfs/etc/motd'), 'another image\n');
  otherImage = (await runCliOk(['build', '--rootfs', join(work, 'rootfs'), '-o', `docker://${registry.host}/base/other:1`])).stdout.trim() as Digest;

  key = generateSigningKey('ed25519');
  keyFile = join(work, 'release.pub');
  await writeFile(keyFile, publicKeyPem(key));
  otherKeyFile = join(work, 'other.pub');
  await writeFile(otherKeyFile, publicKeyPem(generateSigningKey('ecdsa-p256')));
});

after(async () => {
  await registry?.stop();
  if (work) await removeDir(work);
});

/** The image (and the other one) copied into a repository of the test's own, tagged `1` and `other`. */
async function freshRepository(): Promise<{ repo: RawRepository; ref: string }> {
  const name = `case${++repoCount}/hello`;
  await runCliOk(['copy', `docker://${registry.host}/base/hello@${image.digest}`, `docker://${registry.host}/${name}:1`]);
  await runCliOk(['copy', `docker://${registry.host}/base/other@${otherImage}`, `docker://${registry.host}/${name}:other`]);
  return { repo: new RawRepository(registry.url, name), ref: `docker://${registry.host}/${name}` };
}

function attested(repo: RawRepository, overrides: Partial<AttestedImage> = {}): AttestedImage {
  return { name: `${registry.host}/${repo.repository}`, manifest: image.digest, recipe: image.recipe, ...overrides };
}

/** A repository holding the image with a good attestation listed under the tag schema. */
interface Published {
  repo: RawRepository;
  ref: string;
  attestation: Descriptor;
  envelope: Buffer;
}

async function published(): Promise<Published> {
  const { repo, ref } = await freshRepository();
  const envelope = signVsa(attested(repo), key);
  const attestation = await repo.pushAttestation(image.descriptor, envelope);
  await repo.setReferrers(image.digest, [attestation]);
  return { repo, ref, attestation, envelope };
}

function verify(ref: string, ...args: string[]): Promise<RunResult> {
  return runCli(['verify', ref, '--key', keyFile, ...args]);
}

/** Exit 1, the verdict line, and each attestation's outcome on one line of its own. */
function assertNotVerified(result: RunResult, reason: RegExp, ...outcomes: RegExp[]): void {
  assert.equal(result.code, 1, result.stderr + result.stdout);
  const lines = result.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, new RegExp(`^NOT verified: ${image.digest}|^NOT verified: sha256:`));
  assert.match(lines[0]!, reason);
  for (const outcome of outcomes) assert.ok(lines.some((l) => outcome.test(l)), `${outcome} in:\n${result.stdout}`);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
}

describe('verify against the registry (tag schema)', () => {
  test('a published image verifies, by tag and by digest; --json says the same', async () => {
    const { ref, attestation } = await published();
    const byTag = await verify(`${ref}:1`);
    assert.equal(byTag.code, 0, byTag.stderr + byTag.stdout);
    assert.equal(byTag.stdout.split('\n')[0], `verified: ${image.digest} (1 of 1 attestation(s) pass)`);
    assert.match(byTag.stdout, new RegExp(`^attestation ${attestation.digest}: PASSED: signed by ${key.keyId.slice(0, 16)}; build and rebuild both ${image.digest}; recipe ${image.recipe}; packages: no package policy applied; published by repro-oci 0\\.0\\.0-test$`, 'm'));
    assert.equal((await verify(`${ref}@${image.digest}`)).code, 0);

    const json = await verify(`${ref}:1`, '--json');
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(doc), ['verified', 'manifest', 'attestations', 'notExamined']);
    assert.deepEqual(doc.attestations, [{ digest: attestation.digest, referrerOf: image.digest, verified: true, keyIds: [key.keyId], claims: { recipe: image.recipe, publisher: '0.0.0-test', packages: null } }]);
  });

  test('an index: its platform manifest is verified; an attestation listed for the index digest counts too', async () => {
    const { repo, ref } = await freshRepository();
    const index = canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ ...image.descriptor, platform: { architecture: 'amd64', os: 'linux' } }] });
    const indexDescriptor = await repo.putManifest('multi', index, MediaType.OciIndex);
    const attestation = await repo.pushAttestation(indexDescriptor, signVsa(attested(repo), key));
    await repo.setReferrers(indexDescriptor.digest, [attestation]);
    const result = await verify(`${ref}:multi`);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.deepEqual(result.stdout.split('\n').slice(0, 2), [`verified: ${image.digest} (1 of 1 attestation(s) pass)`, `index ${indexDescriptor.digest}: verifying its linux/amd64 manifest`]);
    assert.match(result.stdout, new RegExp(`^attestation ${attestation.digest} \\(referrer of the index ${indexDescriptor.digest}\\): PASSED`, 'm'));
  });

  test('a key that did not sign it: 1, the signature claim named; either of two keys suffices', async () => {
    const { ref } = await published();
    assertNotVerified(await runCli(['verify', `${ref}:1`, '--key', otherKeyFile]), /no attestation passes every check \(1 found\)/, /: FAILED signature: envelope sha256:[0-9a-f]{64}: no signature verifies with a trusted key/);
    assert.equal((await runCli(['verify', `${ref}:1`, '--key', otherKeyFile, '--key', keyFile])).code, 0);
  });

  test('the tag moved to another image: 1, no attestation; the attestation moved along with it names the claim', async () => {
    const { repo, ref, attestation, envelope } = await published();
    const other = await repo.getManifest(otherImage);
    await repo.putManifest('1', other.bytes, other.descriptor.mediaType);
    assertNotVerified(await verify(`${ref}:1`), new RegExp(`no attestation: nothing of artifact type application/vnd\\.in-toto\\+json refers to ${otherImage}`));
    // The attacker also lists the old attestation for the new image: its manifest's subject gives it away.
    await repo.setReferrers(otherImage, [attestation]);
    assertNotVerified(await verify(`${ref}:1`), /no attestation passes/, new RegExp(`FAILED artifact: listed as a referrer of ${otherImage}, but its subject is ${image.digest}`));
    // A new artifact manifest whose subject is the new image, carrying the old (validly signed) envelope.
    const rewrapped = await repo.pushAttestation(other.descriptor, envelope);
    await repo.setReferrers(otherImage, [rewrapped]);
    assertNotVerified(await verify(`${ref}:1`), /no attestation passes/, new RegExp(`FAILED subject: the statement is about ${image.digest}, not ${otherImage}: it attests another image`));
    assert.equal((await verify(`${ref}@${image.digest}`)).code, 0, 'the image itself still verifies by digest');
  });

  test('a stripped attestation (the referrers index emptied): 1, no attestation', async () => {
    const { repo, ref } = await published();
    await repo.setReferrers(image.digest, []);
    assertNotVerified(await verify(`${ref}:1`), /no attestation: nothing of artifact type/);
  });

  test('an altered attestation (a payload byte changed, pushed again): 1, the signature claim named', async () => {
    const { repo, ref, envelope } = await published();
    const doc = JSON.parse(envelope.toString()) as { payload: string };
    const payload = Buffer.from(doc.payload, 'base64');
    payload[payload.indexOf('PASSED') + 1] ^= 0x20; // PASSED → PaSSED
    const altered = Buffer.from(JSON.stringify({ ...doc, payload: payload.toString('base64') }));
    await repo.setReferrers(image.digest, [await repo.pushAttestation(image.descriptor, altered)]);
    assertNotVerified(await verify(`${ref}:1`), /no attestation passes/, /FAILED signature: .*no signature verifies with a trusted key .*: tampered, or signed by another key$/);
  });

  test('several attestations: verified when one passes; each is reported on its line', async () => {
    const { repo, ref, attestation } = await published();
    const failing = await repo.pushAttestation(image.descriptor, signVsa(attested(repo, { recipe: `sha256:${'0'.repeat(64)}` }), key));
    await repo.setReferrers(image.digest, [failing, attestation]);
    const result = await verify(`${ref}:1`);
    assert.equal(result.code, 0, result.stdout);
    assert.equal(result.stdout.split('\n')[0], `verified: ${image.digest} (1 of 2 attestation(s) pass)`);
    assert.match(result.stdout, new RegExp(`^attestation ${failing.digest}: FAILED recipe: the attestation names recipe sha256:0{64}, the image's config label ${image.recipe}$`, 'm'));
    assert.match(result.stdout, new RegExp(`^attestation ${attestation.digest}: PASSED`, 'm'));
  });

  test('--policy: the recorded package policy must be at least as strict as the file, and met', async () => {
    const { repo, ref } = await freshRepository();
    const rebuilders = [{ name: 'alpha', url: 'https://alpha.example.org' }, { name: 'beta', url: 'https://beta.example.org' }];
    const policy = { rebuilders, require: 2, rules: [], attestations: 'required' };
    const packages = { total: 4, meeting: 4, rebuilders: rebuilders.map((r) => ({ ...r, good: 4, verified: 4 })) };
    const attestation = await repo.pushAttestation(image.descriptor, signVsa(attested(repo, { policy, packages }), key));
    await repo.setReferrers(image.digest, [attestation]);
    await writeFile(join(work, 'as-strict.yaml'), 'rebuilders:\n  - {name: a, url: "https://alpha.example.org/"}\npolicy:\n  require: 2\n');
    await writeFile(join(work, 'stricter.yaml'), 'rebuilders:\n  - {name: a, url: "https://alpha.example.org"}\n  - {name: g, url: "https://gamma.example.org"}\n');
    await writeFile(join(work, 'more.yaml'), 'rebuilders:\n  - {name: a, url: "https://alpha.example.org"}\npolicy:\n  require: 3\n');
    assert.equal((await verify(`${ref}:1`, '--policy', join(work, 'as-strict.yaml'))).code, 0);
    assertNotVerified(await verify(`${ref}:1`, '--policy', join(work, 'stricter.yaml')), /no attestation passes/, /FAILED package-policy: rebuilder g \(https:\/\/gamma\.example\.org\) was not asked$/);
    assertNotVerified(await verify(`${ref}:1`, '--policy', join(work, 'more.yaml')), /no attestation passes/, /FAILED package-policy: it required 2 GOOD\(s\) per package, the policy file 3$/);
    const bad = await verify(`${ref}:1`, '--policy', join(work, 'missing.yaml'));
    assert.equal(bad.code, 2, bad.stderr);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  });

  test('--rebuild: the image also rebuilds here to the attested digest', async () => {
    const { ref } = await published();
    const result = await verify(`${ref}:1`, '--rebuild', '--cache', join(work, 'rebuild-cache'), ...mirrors);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, new RegExp(`^rebuild: reproducible: ${image.digest}$`, 'm'));
  });

  test('--rebuild: a signed attestation for an image that does not rebuild to its digest is not enough', async () => {
    const { repo, ref } = await freshRepository();
    // An image with one file changed: same recipe label, another digest; and an attestation (validly signed) that says it reproduces.
    await runCliOk(['copy', `docker://${registry.host}/base/hello@${image.digest}`, `oci:${join(work, 'pulled')}:t`]);
    const tampered = (await tamperFile(join(work, 'pulled'), 't', 'usr/lib/libgreeting.txt', (b) => Buffer.from(b.toString().replace('world', 'worle')), join(work, 'tampered'))) as Digest;
    await runCliOk(['copy', `oci:${join(work, 'tampered')}:t`, `docker://${registry.host}/${repo.repository}:1`]);
    const descriptor = (await repo.getManifest(tampered)).descriptor;
    await repo.setReferrers(tampered, [await repo.pushAttestation(descriptor, signVsa(attested(repo, { manifest: tampered }), key))]);
    assert.equal((await verify(`${ref}:1`)).code, 0, 'the attestation alone passes');
    const result = await verify(`${ref}:1`, '--rebuild', '--cache', join(work, 'rebuild-cache'), ...mirrors);
    assert.equal(result.code, 1, result.stderr + result.stdout);
    assert.match(result.stdout, new RegExp(`^NOT verified: ${tampered}: the local rebuild made ${image.digest}, not ${tampered}$`, 'm'));
    assert.match(result.stdout, new RegExp(`^rebuild: NOT reproducible: image ${tampered}, rebuild ${image.digest}$`, 'm'));
    assert.match(result.stdout, /^rebuild: .*libgreeting\.txt/m);
  });

  test('errors are exit 2 in one line: no key, a bad key file, an unreachable registry', async () => {
    const { ref } = await published();
    const cases = [
      await runCli(['verify', `${ref}:1`]),
      await runCli(['verify', `${ref}:1`, '--key', join(work, 'spec.yaml')]),
      await runCli(['verify', 'docker://127.0.0.1:9/x/y:1', '--key', keyFile]),
    ];
    for (const r of cases) {
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    assert.match(cases[0]!.stderr, /no trusted public key given \(--key PUB\)/);
    assert.match(cases[1]!.stderr, /--key .*spec\.yaml: is not a PEM key file/);
  });
});

/**
 * A loopback proxy in front of the real registry that answers the paths in `answers` itself (as an OCI index,
 * as a registry with the referrers API would, or as one serving a hostile `sha256-<hex>` tag) and passes
 * everything else on.
 */
async function listingProxy(target: RunningRegistry, answers: Map<string, Buffer>): Promise<{ host: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    seen.push(`${req.method} ${req.url}`);
    const body = answers.get((req.url ?? '').split('?')[0]!);
    if (body) {
      req.resume();
      res.writeHead(200, { 'Content-Type': MediaType.OciIndex }).end(body);
      return;
    }
    const [hostname, port] = target.host.split(':');
    const forward = httpRequest({ hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (upstream) => {
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  };
  const { port, close } = await listenOnLoopback(handler);
  return { host: `127.0.0.1:${port}`, seen, close };
}

const indexOf = (manifests: readonly Descriptor[]): Buffer => canonicalJsonBytes({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests });

/** The image published in a repository of its own, seen through a proxy whose `sha256-<hex>` tag lists `manifests`. */
async function servedListing(t: { after(fn: () => Promise<void>): void }, manifests: (p: Published) => Promise<Descriptor[]>): Promise<string> {
  const p = await published();
  const proxy = await listingProxy(registry, new Map([[`/v2/${p.repo.repository}/manifests/${referrersTag(image.digest)}`, indexOf(await manifests(p))]]));
  t.after(() => proxy.close());
  return `docker://${proxy.host}/${p.repo.repository}`;
}

describe('verify: what an attacker holding the registry can list', () => {
  test('junk in the tag-schema index: each entry one line of outcome, and the good one still verifies', async (t) => {
    const entries: Record<string, Descriptor> = {};
    const ref = await servedListing(t, async ({ repo, attestation, envelope }) => {
      entries.missing = { mediaType: MediaType.OciManifest, digest: sha256(Buffer.from('nothing')), size: 7, artifactType: IN_TOTO_ARTIFACT_TYPE };
      entries.anIndex = { ...attestation, mediaType: MediaType.OciIndex };
      entries.theImage = { ...image.descriptor, artifactType: IN_TOTO_ARTIFACT_TYPE };
      entries.aBlob = { mediaType: MediaType.OciManifest, digest: sha256(envelope), size: envelope.length, artifactType: IN_TOTO_ARTIFACT_TYPE };
      entries.wrongSize = { ...attestation, size: attestation.size + 1 };
      entries.wrongLayerType = await repo.pushAttestation(image.descriptor, envelope, (m: Record<string, unknown>) => {
        (m.layers as Descriptor[])[0]!.mediaType = 'application/vnd.dsse.envelope.v1+json';
      });
      entries.wrongArtifactType = await repo.pushAttestation(image.descriptor, envelope, (m: Record<string, unknown>) => {
        m.artifactType = 'application/spdx+json';
      });
      entries.huge = { ...attestation, digest: sha256(Buffer.from('huge')), size: 1 << 30 };
      entries.otherSubject = await repo.pushAttestation({ mediaType: MediaType.OciManifest, digest: otherImage, size: 1 }, envelope);
      entries.good = attestation;
      return Object.values(entries);
    });
    const result = await verify(`${ref}:1`);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.equal(result.stdout.split('\n')[0], `verified: ${image.digest} (1 of 10 attestation(s) pass)`);
    // One line per entry, in the listing's order.
    const lines = result.stdout.split('\n');
    const outcome = (d: Descriptor): string => {
      const line = lines[1 + Object.values(entries).indexOf(d)]!;
      assert.ok(line.startsWith(`attestation ${d.digest}: `), line);
      return line;
    };
    assert.match(outcome(entries.missing!), /: FAILED artifact: .*manifest sha256:[0-9a-f]{64}.*(404|not found|unknown)/i);
    assert.match(outcome(entries.anIndex!), /FAILED artifact: listed with media type application\/vnd\.oci\.image\.index\.v1\+json, not application\/vnd\.oci\.image\.manifest\.v1\+json$/);
    assert.match(outcome(entries.theImage!), /FAILED artifact: its manifest's artifactType is undefined, not application\/vnd\.in-toto\+json$/);
    assert.match(outcome(entries.aBlob!), /FAILED artifact: /);
    assert.match(outcome(entries.wrongSize!), /FAILED artifact: .*bytes, but its descriptor declares/);
    assert.match(outcome(entries.wrongLayerType!), /FAILED artifact: its layer's media type is application\/vnd\.dsse\.envelope\.v1\+json, not application\/vnd\.in-toto\.verification_summary\+dsse$/);
    assert.match(outcome(entries.wrongArtifactType!), /FAILED artifact: its manifest's artifactType is application\/spdx\+json/);
    assert.match(outcome(entries.huge!), /FAILED artifact: its manifest declares 1073741824 bytes, more than the 65536/);
    assert.match(outcome(entries.otherSubject!), new RegExp(`FAILED artifact: listed as a referrer of ${image.digest}, but its subject is ${otherImage}$`));
    assert.match(outcome(entries.good!), /: PASSED: /);
    assert.equal(result.stdout.trimEnd().split('\n').length, 11, 'the verdict and one line per entry');
  });

  test('an envelope larger than allowed is refused unread; one longer than its descriptor says fails its digest', async () => {
    const { repo, ref, envelope } = await published();
    const big = await repo.pushAttestation(image.descriptor, envelope, (m) => {
      (m.layers as Descriptor[])[0]!.size = 4 * 1024 * 1024 + 1;
    });
    const short = await repo.pushAttestation(image.descriptor, envelope, (m) => {
      (m.layers as Descriptor[])[0]!.size = envelope.length - 1;
    });
    await repo.setReferrers(image.digest, [big, short]);
    const result = await verify(`${ref}:1`);
    assertNotVerified(result, /no attestation passes every check \(2 found\)/,
      new RegExp(`^attestation ${big.digest}: FAILED envelope: declares 4194305 bytes, more than the 4194304 a DSSE envelope may have$`),
      new RegExp(`^attestation ${short.digest}: FAILED envelope: `));
  });

  test('thousands of listed attestations: at most 32 examined, the rest counted', async (t) => {
    const junk = Array.from({ length: 5000 }, (_, i): Descriptor => ({ mediaType: MediaType.OciIndex, digest: sha256(Buffer.from(String(i))), size: 100, artifactType: IN_TOTO_ARTIFACT_TYPE }));
    const result = await verify(`${await servedListing(t, async () => junk)}:1`, '--json');
    assert.equal(result.code, 1, result.stderr);
    const doc = JSON.parse(result.stdout) as { attestations: unknown[]; notExamined: number; reason: string };
    assert.deepEqual(Object.keys(doc), ['verified', 'reason', 'manifest', 'attestations', 'notExamined']);
    assert.equal(doc.attestations.length, 32);
    assert.equal(doc.notExamined, 5000 - 32);
    assert.equal(doc.reason, 'no attestation passes every check (32 found)');
  });
});

describe('verify through the referrers API', () => {
  test('the API answer is used and the tag is not read; a huge answer is one line, exit 2', async (t) => {
    const { repo, attestation } = await published();
    await repo.setReferrers(image.digest, []); // the tag schema lists nothing: only the API can find it
    const answers = new Map<string, Buffer>();
    const proxy = await listingProxy(registry, answers);
    t.after(() => proxy.close());
    const apiPath = `/v2/${repo.repository}/referrers/${image.digest}`;
    answers.set(apiPath, indexOf([attestation]));
    const ref = `docker://${proxy.host}/${repo.repository}`;
    const result = await verify(`${ref}:1`);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.ok(proxy.seen.some((l) => l.startsWith(`GET ${apiPath}`)), proxy.seen.join('\n'));
    assert.ok(!proxy.seen.some((l) => l.includes(`/manifests/sha256-`)), 'the referrers tag is not read when the API answers');

    // The attestation of another image, listed by the API for this one.
    const other = await repo.getManifest(otherImage);
    answers.set(`/v2/${repo.repository}/referrers/${otherImage}`, indexOf([attestation]));
    await repo.putManifest('1', other.bytes, other.descriptor.mediaType);
    assertNotVerified(await verify(`${ref}:1`), /no attestation passes/, /FAILED artifact: listed as a referrer of sha256:[0-9a-f]{64}, but its subject is/);

    const manyEntries = Array.from({ length: 30000 }, (_, i) => ({ ...attestation, digest: sha256(Buffer.from(String(i))) }));
    answers.set(apiPath, indexOf(manyEntries));
    const huge = await verify(`${ref}@${image.digest}`);
    assert.equal(huge.code, 2, huge.stdout);
    assert.match(huge.stderr, /referrers of sha256:[0-9a-f]{64}.*more than the 4194304 bytes allowed/);
    assert.equal(huge.stderr.trim().split('\n').length, 1, huge.stderr);
  });
});

import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateSigningKey, publicKeyPem } from '../src/attest/signing-key.js';
import { generateExampleArchive } from '../src/example/generate.js';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { sha256 } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/mediatypes.js';
import type { Descriptor } from '../src/oci/types.js';
import { copyImage } from '../src/transports/copy.js';
import { bytesStream, LayoutSource } from '../src/transports/layout.js';
import { openDestination } from '../src/transports/open.js';
import { REPO_ROOT, runCli, runCliOk, tempDirFor } from './support/cli.js';

/**
 * An index as docker buildx pushes it (and Docker Hub's official images carry): the image for linux/amd64 and,
 * listed first, a BuildKit attestation manifest (platform unknown/unknown, `vnd.docker.reference.type:
 * attestation-manifest`) holding an SBOM statement. rebuild, verify and diff name it and never take it for the image.
 */

/** BuildKit's attestation manifest for `image`: an in-toto SPDX statement as its layer, an `unknown` config. */
function buildkitAttestation(image: Descriptor): { descriptor: Descriptor; blobs: Map<string, Buffer> } {
  const statement = canonicalJsonBytes({ _type: 'https://in-toto.io/Statement/v0.1', predicateType: 'https://spdx.dev/Document', subject: [{ name: 'pkg:docker/hello', digest: { sha256: image.digest.slice(7) } }], predicate: { spdxVersion: 'SPDX-2.3' } });
  const config = canonicalJsonBytes({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(statement)] } });
  const manifest = canonicalJsonBytes({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.in-toto+json', digest: sha256(statement), size: statement.length, annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' } }],
  });
  const descriptor: Descriptor = {
    mediaType: MediaType.OciManifest,
    digest: sha256(manifest),
    size: manifest.length,
    platform: { architecture: 'unknown', os: 'unknown' },
    annotations: { 'vnd.docker.reference.digest': image.digest, 'vnd.docker.reference.type': 'attestation-manifest' },
  };
  return { descriptor, blobs: new Map([[sha256(statement), statement], [sha256(config), config], [descriptor.digest, manifest]]) };
}

test('an index with a BuildKit attestation manifest listed first: rebuild, verify and diff name it and take the linux/amd64 image', async (t) => {
  const work = await tempDirFor(t, 'index-attestation');
  await generateExampleArchive(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), work);
  copyFileSync(join(REPO_ROOT, 'examples/hello-arch/spec.yaml'), join(work, 'spec.yaml'));
  const env = { REPRO_OCI_CACHE: join(work, 'cache') };
  const mirrors = ['--mirror', join(work, 'repo/hello-core/os/x86_64'), '--mirror', join(work, 'repo/hello-extra/os/x86_64')];
  const built = await runCliOk(['build', 'spec.yaml', '-o', `oci:${join(work, 'img')}:t`], { cwd: work, env });
  const digest = built.stdout.trim();

  const source = await LayoutSource.open(join(work, 'img'), 't');
  const { descriptor } = await source.root();
  const attestation = buildkitAttestation(descriptor);
  const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [attestation.descriptor, { ...descriptor, platform: { architecture: 'amd64', os: 'linux' } }] };
  const bytes = canonicalJsonBytes(index);
  const root: Descriptor = { mediaType: MediaType.OciIndex, digest: sha256(bytes), size: bytes.length };
  await copyImage(
    {
      root: async () => ({ descriptor: root, raw: { bytes, digest: root.digest, value: index as unknown } }),
      openBlob: async (d: Descriptor) => (attestation.blobs.has(d.digest) ? bytesStream(attestation.blobs.get(d.digest)!) : source.openBlob(d)),
      close: async () => {},
    },
    await openDestination(`oci:${join(work, 'idx')}:multi`),
  );
  const ref = `oci:${join(work, 'idx')}:multi`;
  const skipped = `index ${root.digest}: skipped attestation manifest ${attestation.descriptor.digest} (of ${digest}): not a platform's image`;

  const rebuilt = await runCli(['rebuild', ref, ...mirrors], { cwd: work, env });
  assert.equal(rebuilt.code, 0, rebuilt.stderr + rebuilt.stdout);
  assert.equal(rebuilt.stdout, `index ${root.digest}: rebuilding its linux/amd64 manifest (index-level annotations and attestations are the publisher's and are not rebuilt)\n${skipped}\nreproducible: ${digest}\n`);
  const json = JSON.parse((await runCliOk(['rebuild', ref, '--json', ...mirrors], { cwd: work, env })).stdout) as { index: unknown };
  assert.deepEqual(json.index, { digest: root.digest, platform: 'linux/amd64', skipped: [{ digest: attestation.descriptor.digest, kind: 'attestation manifest', refersTo: digest }] });

  await writeFile(join(work, 'k.pub'), publicKeyPem(generateSigningKey('ed25519')));
  const verified = await runCli(['verify', ref, '--key', join(work, 'k.pub')]);
  assert.equal(verified.code, 1, verified.stderr);
  assert.equal(verified.stdout, `NOT verified: ${digest}: no attestation: nothing of artifact type application/vnd.in-toto+json refers to ${digest} or its index ${root.digest}\nindex ${root.digest}: verifying its linux/amd64 manifest\n${skipped}\n`);

  const diff = await runCli(['diff', ref, `oci:${join(work, 'img')}:t`]);
  assert.equal(diff.code, 1, diff.stderr);
  assert.match(diff.stdout, new RegExp(`^note: a: ${skipped.replace(/[()+.]/g, '\\$&')}$`, 'm'));
  assert.match(diff.stdout, /^\[index\] /m, 'only the index differs');
  assert.doesNotMatch(diff.stdout, /^\[(manifest|config|layer|entry)/m);
  const diffJson = JSON.parse((await runCli(['diff', ref, `oci:${join(work, 'img')}:t`, '--json'])).stdout) as { summary: { manifests: unknown; skipped: unknown } };
  assert.deepEqual(diffJson.summary.manifests, { a: digest, b: digest });
  assert.deepEqual(diffJson.summary.skipped, [{ side: 'a', index: root.digest, manifests: [{ digest: attestation.descriptor.digest, kind: 'attestation manifest', refersTo: digest }] }]);

  // The attestation manifest is never the image, even when asked for by its platform.
  for (const command of [['rebuild', ref, '--platform', 'unknown/unknown', ...mirrors], ['verify', ref, '--key', join(work, 'k.pub'), '--platform', 'unknown/unknown'], ['diff', ref, `oci:${join(work, 'img')}:t`, '--platform', 'unknown/unknown']]) {
    const r = await runCli(command, { cwd: work, env });
    assert.equal(r.code, 2, r.stdout);
    assert.equal(r.stderr, `repro-oci: ${ref}: the index has no manifest for unknown/unknown (platforms: linux/amd64)\n`);
  }
});

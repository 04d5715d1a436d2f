import assert from 'node:assert/strict';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { generateExampleArchive } from '../src/example/generate.js';
import { REPO_ROOT, runCli, tempDirFor } from './support/cli.js';
import { startRegistry } from './support/registry.js';
import { tamperFile } from './support/tamper.js';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { sha256 } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/mediatypes.js';
import type { Descriptor } from '../src/oci/types.js';
import { copyImage } from '../src/transports/copy.js';
import { LayoutSource } from '../src/transports/layout.js';
import { openDestination } from '../src/transports/open.js';

/** Wraps a layout's image in an index with publisher annotations and pushes it; returns the index digest. */
async function pushUnderIndex(dir: string, tag: string, target: string): Promise<string> {
  const source = await LayoutSource.open(dir, tag);
  const { descriptor } = await source.root();
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [{ ...descriptor, platform: { architecture: 'amd64', os: 'linux' }, annotations: { 'org.opencontainers.image.created': '2026-11-29T00:00:00Z', 'org.opencontainers.image.revision': 'abc' } }],
    annotations: { 'org.opencontainers.image.ref.name': 'indexed' },
  };
  const bytes = canonicalJsonBytes(index);
  const root = { mediaType: MediaType.OciIndex, digest: sha256(bytes), size: bytes.length };
  const staged = {
    root: async () => ({ descriptor: root, raw: { bytes, digest: root.digest, value: index as unknown } }),
    openBlob: (d: Descriptor) => source.openBlob(d),
    close: async () => {},
  };
  await copyImage(staged, await openDestination(target));
  return root.digest;
}

test('push the example, delete every local copy, rebuild from the registry digest; a tampered push is caught and explained', async (t) => {
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const work = await tempDirFor(t, 'registry-rebuild');
  await generateExampleArchive(join(REPO_ROOT, 'examples/hello-arch/packages.yaml'), work);
  copyFileSync(join(REPO_ROOT, 'examples/hello-arch/spec.yaml'), join(work, 'spec.yaml'));
  const env = { REPRO_OCI_CACHE: join(work, 'cache') };
  // The recipe's package URLs are relative paths, which a rebuild does not resolve: the repositories serve as mirrors.
  const mirrors = ['--mirror', join(work, 'repo/hello-core/os/x86_64'), '--mirror', join(work, 'repo/hello-extra/os/x86_64')];

  // Build straight to the registry and to a local layout.
  const built = await runCli(['build', 'spec.yaml', '-o', `docker://${registry.host}/example/hello:1`, '-o', `oci:${join(work, 'img')}:t`], { cwd: work, env });
  assert.equal(built.code, 0, built.stderr);
  const digest = built.stdout.trim();

  // The same image under a publisher's index (docker-library's oci-import adds annotations there).
  const indexRef = await pushUnderIndex(join(work, 'img'), 't', `docker://${registry.host}/example/hello:indexed`);

  // The tampered variant is pushed before the local copies go.
  await tamperFile(join(work, 'img'), 't', 'usr/lib/libgreeting.txt', (b) => Buffer.from(b.toString().replace('world', 'worle')), join(work, 'bad'));
  const pushed = await runCli(['copy', `oci:${join(work, 'bad')}:t`, `docker://${registry.host}/example/hello:tampered`]);
  assert.equal(pushed.code, 0, pushed.stderr);
  const badDigest = pushed.stdout.trim();
  rmSync(join(work, 'img'), { recursive: true });
  rmSync(join(work, 'bad'), { recursive: true });
  rmSync(join(work, 'cache'), { recursive: true });

  const ok = await runCli(['rebuild', `docker://${registry.host}/example/hello@${digest}`, ...mirrors], { cwd: work, env });
  assert.equal(ok.code, 0, ok.stderr + ok.stdout);
  assert.equal(ok.stdout, `reproducible: ${digest}\n`);
  const byTag = await runCli(['rebuild', `docker://${registry.host}/example/hello:1`, ...mirrors], { cwd: work, env });
  assert.equal(byTag.stdout, `reproducible: ${digest}\n`);

  const viaIndex = await runCli(['rebuild', `docker://${registry.host}/example/hello@${indexRef}`, ...mirrors], { cwd: work, env });
  assert.equal(viaIndex.code, 0, viaIndex.stderr + viaIndex.stdout);
  assert.equal(viaIndex.stdout, `index ${indexRef}: rebuilding its linux/amd64 manifest (index-level annotations and attestations are the publisher's and are not rebuilt)\nreproducible: ${digest}\n`);

  const diff = await runCli(['diff', `docker://${registry.host}/example/hello@${digest}`, `docker://${registry.host}/example/hello@${badDigest}`]);
  assert.equal(diff.code, 1, diff.stderr);
  assert.match(diff.stdout, /~ \/usr\/lib\/libgreeting\.txt: sha256 [0-9a-f]{16} → [0-9a-f]{16} \[libgreeting\]/);

  const bad = await runCli(['rebuild', `docker://${registry.host}/example/hello@${badDigest}`, ...mirrors], { cwd: work, env });
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stdout, /^NOT reproducible: image sha256:/);
  assert.match(bad.stdout, /\/usr\/lib\/libgreeting\.txt: sha256 [0-9a-f]{16} → [0-9a-f]{16} \[libgreeting\]/);

  // archive keeps what a digest stands for; rebuild works from the archive after the registry forgets it.
  const kept = await runCli(['archive', `docker://${registry.host}/example/hello@${digest}`, `oci:${join(work, 'kept')}:hello`]);
  assert.equal(kept.code, 0, kept.stderr);
  await registry.stop();
  const later = await runCli(['rebuild', `oci:${join(work, 'kept')}:hello`, ...mirrors], { cwd: work, env });
  assert.equal(later.stdout, `reproducible: ${digest}\n`);
});

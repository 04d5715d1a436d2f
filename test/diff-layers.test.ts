import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { diffImages } from '../src/compare/image-diff.js';
import { canonicalJsonBytes } from '../src/oci/canonical-json.js';
import { sha256, type Digest } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/mediatypes.js';
import type { Descriptor } from '../src/oci/types.js';
import type { TarSourceEntry } from '../src/tar/entry.js';
import { writeTar } from '../src/tar/writer.js';
import type { ImageSource } from '../src/transports/types.js';

type Spec = [string, string | null][]; // path, content (null = directory)

async function tar(spec: Spec): Promise<Buffer> {
  const entries: TarSourceEntry[] = spec.map(([path, content]) =>
    content === null
      ? { path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 }
      : { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: Buffer.byteLength(content), open: () => Readable.from([Buffer.from(content)]) },
  );
  const parts: Buffer[] = [];
  for await (const c of writeTar(entries)) parts.push(c);
  return Buffer.concat(parts);
}

/** An in-memory image with uncompressed layers. */
async function image(layers: Spec[]): Promise<ImageSource> {
  const blobs = new Map<Digest, Buffer>();
  const descriptors: Descriptor[] = [];
  for (const spec of layers) {
    const bytes = await tar(spec);
    blobs.set(sha256(bytes), bytes);
    descriptors.push({ mediaType: MediaType.OciLayer, digest: sha256(bytes), size: bytes.length });
  }
  const config = canonicalJsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: descriptors.map((d) => d.digest) } });
  blobs.set(sha256(config), config);
  const manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length }, layers: descriptors };
  const bytes = canonicalJsonBytes(manifest);
  const descriptor: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length };
  return {
    root: async () => ({ descriptor, raw: { bytes, digest: descriptor.digest, value: manifest } }),
    openBlob: async (d) => Readable.from([blobs.get(d.digest)!]),
    close: async () => {},
  };
}

test('multi-layer images are compared layer by layer and on their merged view, whiteouts applied', async () => {
  const base: Spec = [['a', null], ['a/x', 'one'], ['a/y', 'why']];
  const a = await image([base, [['a', null], ['a/.wh.y', ''], ['b', null], ['b/z', 'zed']]]);
  const b = await image([base, [['a', null], ['a/.wh..wh..opq', ''], ['a/x', 'two']]]);
  const report = await diffImages({ label: 'A', source: a }, { label: 'B', source: b });
  const files = report.differences.filter((d) => d.level === 'file').map((d) => d.message);
  assert.deepEqual(files, [
    'layer 1: + /a/.wh..wh..opq (file)',
    'layer 1: - /a/.wh.y (file)',
    'layer 1: + /a/x (file)',
    'layer 1: - /b (dir)',
    'layer 1: - /b/z (file)',
    `merged: /a/x: sha256 ${sha256('one').slice(7, 23)} → ${sha256('two').slice(7, 23)}`,
    'merged: - /b (dir)',
    'merged: - /b/z (file)',
  ]);
  assert.ok(!files.some((m) => m.includes('merged') && m.includes('/a/y')), 'a/y is whited out on both sides');
  assert.equal(report.same, false);
});

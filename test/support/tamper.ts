import { Readable } from 'node:stream';
import { compressToBuffer, decompressAuto, getCompressor } from '../../src/compress/index.js';
import { canonicalJsonBytes } from '../../src/oci/canonical-json.js';
import { sha256 } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { checkConfig, checkManifest } from '../../src/oci/raw-json.js';
import type { Descriptor, ImageConfig, Manifest } from '../../src/oci/types.js';
import type { TarSourceEntry } from '../../src/tar/entry.js';
import { readTar } from '../../src/tar/reader.js';
import { writeTar } from '../../src/tar/writer.js';
import { copyImage } from '../../src/transports/copy.js';
import { bytesStream, LayoutDestination, LayoutSource, readJsonBlob } from '../../src/transports/layout.js';

async function drain(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of source) parts.push(c);
  return Buffer.concat(parts);
}

/**
 * Rewrites one file of a single-layer image held in an OCI layout (small test images only: the layer is read
 * into memory), updating diff_id and layer descriptor, and writes the result to `outDir:tag`. Returns the new
 * manifest digest.
 */
export async function tamperFile(dir: string, tag: string, path: string, mutate: (content: Buffer) => Buffer, outDir: string): Promise<string> {
  const source = await LayoutSource.open(dir, tag);
  const root = await source.root();
  const manifest = checkManifest(root.raw, 'manifest').value;
  const config = checkConfig(await readJsonBlob(source, manifest.config, 'config'), 'config').value;
  const layer = manifest.layers[0]!;
  const entries: TarSourceEntry[] = [];
  for await (const e of readTar(decompressAuto(await source.openBlob(layer), 'layer'))) {
    const content = e.type === 'file' ? await drain(e.content()) : Buffer.alloc(0);
    const bytes = e.path === path ? mutate(content) : content;
    entries.push({ path: e.path, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: e.type === 'file' ? bytes.length : 0, ...(e.linkTarget !== undefined ? { linkTarget: e.linkTarget } : {}), open: () => Readable.from([bytes]) });
  }
  const tar = await drain(writeTar(entries));
  const blob = await compressToBuffer([tar], getCompressor('gzip'));
  const newConfig: ImageConfig = { ...config, rootfs: { type: 'layers', diff_ids: [sha256(tar)] } };
  const configBytes = canonicalJsonBytes(newConfig);
  const newLayer: Descriptor = { ...layer, digest: sha256(blob), size: blob.length };
  const newManifest: Manifest = { ...manifest, config: { ...manifest.config, digest: sha256(configBytes), size: configBytes.length }, layers: [newLayer] };
  const manifestBytes = canonicalJsonBytes(newManifest);
  const blobs = new Map([
    [newLayer.digest, blob],
    [sha256(configBytes), configBytes],
    [sha256(manifestBytes), manifestBytes],
  ]);
  const rootDescriptor: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256(manifestBytes), size: manifestBytes.length };
  const staged = {
    root: async () => ({ descriptor: rootDescriptor, raw: { bytes: manifestBytes, digest: rootDescriptor.digest, value: newManifest as unknown } }),
    openBlob: async (d: Descriptor) => bytesStream(blobs.get(d.digest)!),
    close: async () => {},
  };
  await copyImage(staged, await LayoutDestination.create(outDir, tag));
  return rootDescriptor.digest;
}

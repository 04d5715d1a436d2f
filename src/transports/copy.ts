import { UploadLostError } from '../errors.js';
import { isIndexMediaType } from '../oci/mediatypes.js';
import { checkIndex, checkManifest, type RawJson } from '../oci/raw-json.js';
import type { Descriptor } from '../oci/types.js';
import { bytesStream, readJsonBlob } from './layout.js';
import type { ImageDestination, ImageSource } from './types.js';

/** How often one blob is sent from its start when the registry loses the upload (UploadLostError). */
const BLOB_UPLOAD_ATTEMPTS = 3;

/**
 * Copies the graph under the source's root — index, manifests, configs, layers — keeping every byte and so
 * every digest. Blobs stream from source to destination, verified on both sides; children are written before
 * the documents that name them, and the destination is committed only when everything arrived.
 */
export async function copyImage(source: ImageSource, destination: ImageDestination): Promise<Descriptor> {
  try {
    const { descriptor, raw } = await source.root();
    await copyDocument(source, destination, descriptor, raw, new Set());
    await destination.commit(descriptor);
    return descriptor;
  } catch (err) {
    await destination.abort();
    throw err;
  }
}

/** Copies one document and what it names; `copied` holds the documents done, so shared children (a DAG) are copied once. */
async function copyDocument(source: ImageSource, destination: ImageDestination, descriptor: Descriptor, raw: RawJson<unknown>, copied: Set<string>): Promise<void> {
  copied.add(descriptor.digest);
  if (isIndexMediaType(descriptor.mediaType)) {
    const index = checkIndex(raw, `index ${descriptor.digest}`, descriptor.mediaType).value;
    for (const child of index.manifests) {
      if (copied.has(child.digest)) continue;
      const what = isIndexMediaType(child.mediaType) ? 'index' : 'manifest';
      await copyDocument(source, destination, child, await readJsonBlob(source, child, what), copied);
    }
  } else {
    const manifest = checkManifest(raw, `manifest ${descriptor.digest}`, descriptor.mediaType).value;
    for (const blob of [manifest.config, ...manifest.layers]) {
      if (await destination.hasBlob(blob.digest)) continue;
      for (let attempt = 1; ; attempt++) {
        try {
          await destination.putBlob(blob, await source.openBlob(blob));
          break;
        } catch (err) {
          // The registry dropped the upload half-way: send the blob again from a fresh read of the source.
          if (!(err instanceof UploadLostError) || attempt >= BLOB_UPLOAD_ATTEMPTS) throw err;
        }
      }
    }
  }
  if (!(await destination.hasBlob(descriptor.digest))) await destination.putBlob(descriptor, bytesStream(raw.bytes));
}

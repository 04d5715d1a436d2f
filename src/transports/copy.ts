import { UploadLostError } from '../errors.js';
import { isIndexMediaType } from '../oci/mediatypes.js';
import { checkIndex, checkManifest, type RawJson } from '../oci/raw-json.js';
import type { Descriptor } from '../oci/types.js';
import { bytesStream, readJsonBlob } from './layout.js';
import type { ImageDestination, ImageSource } from './types.js';
import { openDestination, openSource, type TransportOptions } from './open.js';
import { parseReference } from './reference.js';
import { parseCreds, type Credentials } from './registry/auth.js';

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

export interface CopyReferenceOptions {
  /** Allow plain http to registries that are not on loopback. */
  insecure?: boolean;
  /** Registry credentials (user:pass) for both sides, as `--creds`; srcCreds and destCreds override it per side. */
  creds?: string;
  /** Registry credentials (user:pass) for the source (`--src-creds`) and for the destination (`--dest-creds`). */
  srcCreds?: string;
  destCreds?: string;
  /** When the source is an index, copy only its manifest for this platform (os/arch[/variant]). */
  platform?: string;
  /** Registry uploads: blobs larger than this go up in chunks of this size. */
  chunkSize?: number;
}

/** One side's credentials: its own option's, else those for both sides; the hint for a registry that wants some names its own option. */
function sideCredentials(side: string | undefined, sideOption: string, both: string | undefined): { creds?: Credentials; credsOption: string } {
  if (side !== undefined) return { creds: parseCreds(side, sideOption), credsOption: sideOption };
  if (both !== undefined) return { creds: parseCreds(both, '--creds'), credsOption: sideOption };
  return { credsOption: sideOption };
}

/** `copy SRC DST`: every blob verified, every digest kept; returns the root descriptor written. */
export async function copyReference(src: string, dst: string, options: CopyReferenceOptions = {}): Promise<Descriptor> {
  const sourceRef = parseReference(src);
  const destinationRef = parseReference(dst);
  const common: TransportOptions = { ...(options.insecure ? { insecure: true } : {}) };
  // Both sides' credentials are checked before anything is read, each named by the option that gave it.
  const sourceCreds = sideCredentials(options.srcCreds, '--src-creds', options.creds);
  const destinationCreds = sideCredentials(options.destCreds, '--dest-creds', options.creds);
  const source = await openSource(sourceRef, { ...common, ...sourceCreds, ...(options.platform ? { platform: options.platform } : {}) });
  try {
    // Blobs already in another repository of the same registry are mounted rather than uploaded again.
    const mountFrom = sourceRef.transport === 'docker' && destinationRef.transport === 'docker' && sourceRef.registry === destinationRef.registry ? sourceRef.repository : undefined;
    const destination = await openDestination(destinationRef, {
      ...common,
      ...destinationCreds,
      ...(options.chunkSize ? { chunkSize: options.chunkSize } : {}),
      ...(mountFrom ? { mountFrom } : {}),
    });
    return await copyImage(source, destination);
  } finally {
    await source.close();
  }
}

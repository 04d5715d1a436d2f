import { UserError } from '../../errors.js';
import { canonicalJsonBytes } from '../../oci/canonical-json.js';
import { sha256, type Digest } from '../../oci/digest.js';
import { MediaType } from '../../oci/mediatypes.js';
import type { Descriptor, Index } from '../../oci/types.js';
import { bytesStream } from '../layout.js';
import { copyImage } from '../copy.js';
import type { ImageSource } from '../types.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { putManifestAs, RegistryDestination, type RegistryDestinationOptions } from './destination.js';
import { formatDockerReference, type DockerReference } from './reference.js';
import { listReferrers, referrersTag } from './referrers.js';

/**
 * Pushing in the order that never lets a tag name an incomplete image (docs/attestation.md "Push order"): the
 * image by digest (blobs, then the manifest), then each referrer by digest (its blobs, then its manifest), the
 * referrers tag index where the registry has no referrers API, and only then, in a separate call, the tag.
 */

/** A manifest to attach to an image, with the blobs it names. */
export interface ReferrerDocument {
  descriptor: Descriptor;
  bytes: Buffer;
  blobs: { descriptor: Descriptor; bytes: Buffer }[];
}

/** How the registry took the referrers: its referrers API (it answered `OCI-Subject`), or the `sha256-<hex>` tag index publish keeps. */
export type ReferrersVia = 'api' | 'tag-schema';

export class ReferrerPusher {
  private constructor(
    readonly ref: DockerReference,
    private readonly client: RegistryClient,
    private readonly options: RegistryDestinationOptions,
  ) {}

  /** `ref` names the repository; its tag and digest are not used here (tag() takes the tag). */
  static async create(ref: DockerReference, options: RegistryOptions & RegistryDestinationOptions = {}): Promise<ReferrerPusher> {
    const repository = { registry: ref.registry, repository: ref.repository };
    return new ReferrerPusher(repository, await RegistryClient.create(ref.registry, ref.repository, options), options);
  }

  private get label(): string {
    return `docker://${formatDockerReference(this.ref)}`;
  }

  /** Every blob of the image, then its manifest by digest: nothing is tagged. */
  async pushImage(source: ImageSource, root: Descriptor): Promise<void> {
    const destination = await RegistryDestination.create({ ...this.ref, digest: root.digest }, this.options);
    const written = await copyImage(source, destination);
    if (written.digest !== root.digest) throw new UserError(`${this.label}: pushed ${written.digest}, not ${root.digest}`);
  }

  /**
   * The referrers' blobs and manifests, by digest. When the registry's answer to any manifest PUT lacks
   * `OCI-Subject`, it has no referrers API (distribution-spec 1.1): the subject's `sha256-<hex>` index is updated.
   */
  async pushReferrers(subject: Digest, documents: readonly ReferrerDocument[]): Promise<ReferrersVia> {
    const destination = await RegistryDestination.create({ ...this.ref, digest: subject }, this.options);
    let via: ReferrersVia = 'api';
    try {
      for (const document of documents) {
        for (const blob of document.blobs) {
          if (!(await destination.hasBlob(blob.descriptor.digest))) await destination.putBlob(blob.descriptor, bytesStream(blob.bytes));
        }
        const headers = await putManifestAs(this.client, this.ref, document.descriptor.digest, document.descriptor, document.bytes);
        if (headers.get('oci-subject') !== subject) via = 'tag-schema';
      }
    } catch (err) {
      await destination.abort();
      throw err;
    }
    if (via === 'tag-schema') await this.addToReferrersIndex(subject, documents.map((d) => d.descriptor));
    return via;
  }

  /** The tag schema's index for `subject`, with `descriptors` added to what it already lists (other tools' referrers kept). */
  private async addToReferrersIndex(subject: Digest, descriptors: readonly Descriptor[]): Promise<void> {
    const existing = await listReferrers(this.ref, subject, { client: this.client });
    const manifests = [...existing.manifests];
    for (const d of descriptors) if (!manifests.some((m) => m.digest === d.digest)) manifests.push(d);
    if (manifests.length === existing.manifests.length && existing.via === 'tag-schema') return;
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
    const bytes = canonicalJsonBytes(index);
    await putManifestAs(this.client, this.ref, referrersTag(subject), { mediaType: MediaType.OciIndex, digest: sha256(bytes), size: bytes.length }, bytes);
  }

  /** Moves `tag` to the root, which must already be in the repository: the last request of a push. */
  async tag(tag: string, root: Descriptor, bytes: Buffer): Promise<void> {
    await putManifestAs(this.client, this.ref, tag, root, bytes);
  }
}

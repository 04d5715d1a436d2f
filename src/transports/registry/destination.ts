import { Readable } from 'node:stream';
import { DigestMismatchError, UploadLostError, UserError } from '../../errors.js';
import { Progress } from '../../util/progress.js';
import { sha256, VerifyingStream, type Digest } from '../../oci/digest.js';
import { isIndexMediaType } from '../../oci/mediatypes.js';
import { MAX_JSON_BYTES } from '../../oci/raw-json.js';
import type { Descriptor } from '../../oci/types.js';
import { readSmall } from '../../util/fs.js';
import type { ImageDestination } from '../types.js';
import { repositoryScope } from './auth.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { readBody, withRetries } from './http.js';
import { formatDockerReference, type DockerReference } from './reference.js';
import { isManifestDescriptor } from './source.js';

export interface RegistryDestinationOptions extends RegistryOptions {
  /** Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size. Default 16 MiB. */
  chunkSize?: number;
  /** A repository on the same registry that may already hold the blobs: they are mounted from it, not uploaded. */
  mountFrom?: string;
}

export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;

interface StagedManifest {
  descriptor: Descriptor;
  bytes: Buffer;
}

/**
 * Pushes an image to a registry. Blobs are uploaded as they arrive (skipped when the registry has them, mounted
 * when `mountFrom` holds them); manifests are held until commit(), which PUTs children before the index that
 * names them and the root last, by tag when the reference has one. Nothing is tagged before everything arrived.
 */
export class RegistryDestination implements ImageDestination {
  private readonly label: string;
  private readonly scopes: string[];
  private readonly staged = new Map<Digest, StagedManifest>();
  /** Upload sessions opened by a mount attempt that the registry answered with an upload instead. */
  private readonly pendingUploads = new Map<Digest, string>();
  private readonly openUploads = new Set<string>();
  private readonly chunkSize: number;

  private constructor(
    readonly client: RegistryClient,
    readonly ref: DockerReference,
    options: RegistryDestinationOptions,
    private readonly mountFrom: string | undefined,
  ) {
    this.label = `docker://${formatDockerReference(ref)}`;
    this.scopes = [repositoryScope(ref.repository, 'pull,push')];
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isSafeInteger(this.chunkSize) || this.chunkSize < 1) throw new UserError(`chunk size ${options.chunkSize}: must be a positive integer`);
  }

  static async create(ref: DockerReference, options: RegistryDestinationOptions = {}): Promise<RegistryDestination> {
    const mountFrom = options.mountFrom && options.mountFrom !== ref.repository ? options.mountFrom : undefined;
    return new RegistryDestination(await RegistryClient.create(ref.registry, ref.repository, options), ref, options, mountFrom);
  }

  private blobPath(digest: Digest): string {
    return `/v2/${this.ref.repository}/blobs/${digest}`;
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    if (this.staged.has(digest)) return true;
    const what = `${this.label}: blob ${digest}`;
    const response = await this.client.request('HEAD', this.blobPath(digest), { scopes: this.scopes, what });
    await response.body?.cancel().catch(() => {});
    if (response.status === 200) return true;
    if (response.status !== 404) throw await this.client.unexpected(response, what);
    return this.mountFrom ? this.tryMount(digest) : false;
  }

  /** Cross-repository mount; on 202 the registry opened an ordinary upload, kept for the putBlob that follows. */
  private async tryMount(digest: Digest): Promise<boolean> {
    const what = `${this.label}: mount ${digest} from ${this.mountFrom}`;
    const query = new URLSearchParams({ mount: digest, from: this.mountFrom! });
    const response = await this.client.request('POST', `/v2/${this.ref.repository}/blobs/uploads/?${query}`, {
      scopes: [...this.scopes, repositoryScope(this.mountFrom!, 'pull')],
      what,
    });
    await response.body?.cancel().catch(() => {});
    if (response.status === 201) return true;
    if (response.status === 202) {
      const location = response.headers.get('location');
      if (location) {
        const url = this.client.url(location);
        this.pendingUploads.set(digest, url);
        this.openUploads.add(url);
      }
      return false;
    }
    throw await this.client.unexpected(response, what);
  }

  async putBlob(descriptor: Descriptor, content: Readable | AsyncIterable<Buffer>): Promise<void> {
    const what = `${this.label}: ${isManifestDescriptor(descriptor) ? 'manifest' : 'blob'} ${descriptor.digest}`;
    // The content is piped only right before it is consumed, so that a failure is never emitted unheard.
    const verify = (): VerifyingStream => {
      const verified = new VerifyingStream(descriptor.digest, descriptor.size, what);
      const input = content instanceof Readable ? content : Readable.from(content, { objectMode: false });
      input.on('error', (err) => verified.destroy(err));
      return input.pipe(verified);
    };
    if (isManifestDescriptor(descriptor)) {
      if (descriptor.size > MAX_JSON_BYTES) throw new UserError(`${what}: ${descriptor.size} bytes is more than the ${MAX_JSON_BYTES} allowed for a manifest`);
      const bytes = await readSmall(verify(), MAX_JSON_BYTES, what);
      this.staged.set(descriptor.digest, { descriptor, bytes });
      return;
    }
    let location: string;
    try {
      location = this.pendingUploads.get(descriptor.digest) ?? (await this.startUpload(what));
    } catch (err) {
      if (content instanceof Readable) content.destroy();
      throw err;
    }
    this.pendingUploads.delete(descriptor.digest);
    this.openUploads.add(location);
    const verified = verify();
    const progress = new Progress(`push ${formatDockerReference(this.ref)} blob ${descriptor.digest.slice(7, 19)}`).start(descriptor.size);
    try {
      if (descriptor.size <= this.chunkSize) {
        const bytes = await readSmall(verified, this.chunkSize, what);
        await this.finishUpload(location, descriptor.digest, bytes, what);
        progress.advance(bytes.length);
      } else {
        await this.chunkedUpload(location, descriptor.digest, verified, what, progress);
      }
      this.openUploads.delete(location);
    } catch (err) {
      verified.destroy();
      await this.cancelUpload(location);
      throw err;
    } finally {
      progress.stop();
    }
  }

  private async startUpload(what: string): Promise<string> {
    const response = await this.client.request('POST', `/v2/${this.ref.repository}/blobs/uploads/`, { scopes: this.scopes, what: `${what}: start upload` });
    await response.body?.cancel().catch(() => {});
    const location = response.headers.get('location');
    if (response.status !== 202 || !location) throw await this.client.unexpected(response, `${what}: start upload`);
    return this.client.url(location);
  }

  /** PATCHes the stream in chunkSize pieces, following each new Location, then closes the upload. */
  private async chunkedUpload(first: string, digest: Digest, verified: AsyncIterable<Buffer>, what: string, progress: Progress): Promise<void> {
    let location = first;
    let offset = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const send = async (chunk: Buffer): Promise<void> => {
      const end = offset + chunk.length - 1;
      const response = await this.client.request('PATCH', location, {
        scopes: this.scopes,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${end}` },
        body: chunk,
        what: `${what}: upload bytes ${offset}-${end}`,
      });
      if (response.status === 404 || response.status === 416) {
        const error = await this.client.unexpected(response, `${what}: upload bytes ${offset}-${end}`);
        throw new UploadLostError(`${error.message} (the registry no longer accepts this upload where it stands)`);
      }
      await response.body?.cancel().catch(() => {});
      if (response.status !== 202) throw await this.client.unexpected(response, `${what}: upload bytes ${offset}-${end}`);
      const range = /^(?:bytes=)?0-(\d+)$/.exec(response.headers.get('range') ?? '');
      if (range && Number(range[1]) !== end) throw new UserError(`${what}: the registry holds bytes 0-${range[1]} after a chunk ending at ${end}`);
      const next = response.headers.get('location');
      this.openUploads.delete(location);
      if (next) location = this.client.url(next);
      this.openUploads.add(location);
      offset = end + 1;
      progress.advance(chunk.length);
    };
    for await (const piece of verified) {
      pending.push(piece);
      pendingBytes += piece.length;
      while (pendingBytes >= this.chunkSize) {
        const all = Buffer.concat(pending);
        await send(all.subarray(0, this.chunkSize));
        const rest = all.subarray(this.chunkSize);
        pending = rest.length ? [rest] : [];
        pendingBytes = rest.length;
      }
    }
    // The whole stream has passed the VerifyingStream: only now does the upload get closed under its digest.
    if (pendingBytes > 0) await send(Buffer.concat(pending));
    await this.finishUpload(location, digest, undefined, what);
  }

  private async finishUpload(location: string, digest: Digest, body: Buffer | undefined, what: string): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const response = await this.client.request('PUT', url.href, {
      scopes: this.scopes,
      headers: { 'Content-Type': 'application/octet-stream' },
      ...(body ? { body } : {}),
      what: `${what}: finish upload`,
    });
    await response.body?.cancel().catch(() => {});
    if (response.status !== 201 && response.status !== 204) throw await this.client.unexpected(response, `${what}: finish upload`);
    const stored = response.headers.get('docker-content-digest');
    if (stored && stored !== digest) throw new DigestMismatchError(`${what}: the registry stored it as ${stored}`);
    this.openUploads.delete(location);
  }

  private async cancelUpload(location: string): Promise<void> {
    this.openUploads.delete(location);
    try {
      const response = await this.client.request('DELETE', location, { scopes: this.scopes, what: `${this.label}: cancel upload` });
      await response.body?.cancel().catch(() => {});
    } catch {
      // best effort: the registry expires abandoned uploads
    }
  }

  private async putManifest(reference: string, manifest: StagedManifest): Promise<void> {
    await putManifestAs(this.client, this.ref, reference, manifest.descriptor, manifest.bytes);
  }

  /** The bytes of a document the registry already holds, verified against its digest. */
  private async readExisting(descriptor: Descriptor): Promise<Buffer> {
    const what = `${this.label}: manifest ${descriptor.digest}`;
    for (const path of [`/v2/${this.ref.repository}/manifests/${descriptor.digest}`, this.blobPath(descriptor.digest)]) {
      const bytes = await withRetries(what, this.client.retry, async () => {
        const response = await this.client.request('GET', path, { scopes: this.scopes, headers: { Accept: descriptor.mediaType }, what });
        if (response.status === 404) {
          await response.body?.cancel().catch(() => {});
          return undefined;
        }
        if (response.status !== 200) throw await this.client.unexpected(response, what);
        return readBody(response, response.url, MAX_JSON_BYTES, what);
      });
      if (!bytes) continue;
      if (sha256(bytes) !== descriptor.digest) throw new DigestMismatchError(`${what}: the registry's copy has digest ${sha256(bytes)}`);
      return bytes;
    }
    throw new UserError(`${what}: the root manifest was never written`);
  }

  async commit(root: Descriptor): Promise<void> {
    if (this.ref.digest && this.ref.digest !== root.digest) {
      throw new DigestMismatchError(`${this.label}: the image being pushed has digest ${root.digest}, not the one in the reference`);
    }
    // A registry that also serves manifests under /blobs/ made hasBlob() say yes to the root: read it back.
    const rootManifest = this.staged.get(root.digest) ?? { descriptor: root, bytes: await this.readExisting(root) };
    if (sha256(rootManifest.bytes) !== root.digest) throw new DigestMismatchError(`${this.label}: root manifest bytes do not match ${root.digest}`);
    // Children first (the order copy wrote them, which is depth first), so every index names manifests that exist.
    const children = [...this.staged.values()].filter((m) => m.descriptor.digest !== root.digest);
    children.sort((a, b) => Number(isIndexMediaType(a.descriptor.mediaType)) - Number(isIndexMediaType(b.descriptor.mediaType)));
    for (const child of children) await this.putManifest(child.descriptor.digest, child);
    const tag = this.ref.tag ?? (this.ref.digest ? undefined : 'latest');
    await this.putManifest(tag ?? root.digest, { descriptor: { ...rootManifest.descriptor, mediaType: root.mediaType }, bytes: rootManifest.bytes });
    // Upload sessions a mount attempt opened but no blob used (a manifest digest probed as a blob).
    for (const location of [...this.openUploads]) await this.cancelUpload(location);
    this.pendingUploads.clear();
  }

  async abort(): Promise<void> {
    this.staged.clear();
    this.pendingUploads.clear();
    for (const location of [...this.openUploads]) await this.cancelUpload(location);
  }
}

/**
 * PUTs one manifest under `reference` (its digest or a tag) and checks that the registry names it by our digest.
 * Returns the response headers (`OCI-Subject` tells a registry with the referrers API).
 */
export async function putManifestAs(client: RegistryClient, ref: DockerReference, reference: string, descriptor: Descriptor, bytes: Buffer): Promise<Headers> {
  const label = `docker://${formatDockerReference({ registry: ref.registry, repository: ref.repository })}`;
  const what = `${label}: put manifest ${descriptor.digest}${reference === descriptor.digest ? '' : ` as ${reference}`}`;
  const response = await client.request('PUT', `/v2/${ref.repository}/manifests/${reference}`, {
    scopes: [repositoryScope(ref.repository, 'pull,push')],
    headers: { 'Content-Type': descriptor.mediaType },
    body: bytes,
    what,
  });
  if (response.status !== 201 && response.status !== 200 && response.status !== 204) throw await client.unexpected(response, what);
  await response.body?.cancel().catch(() => {});
  const stored = response.headers.get('docker-content-digest');
  if (stored && stored !== descriptor.digest) throw new DigestMismatchError(`${what}: the registry answered Docker-Content-Digest ${stored}`);
  return response.headers;
}

import { Readable } from 'node:stream';
import { DigestMismatchError, UserError } from '../../errors.js';
import { Progress } from '../../util/progress.js';
import { isDigest, sha256, verifiedStream, type Digest } from '../../oci/digest.js';
import { isIndexMediaType, isManifestMediaType, MediaType } from '../../oci/mediatypes.js';
import { checkIndex, looksLikeIndex, MAX_JSON_BYTES, parseRawJson, type RawJson } from '../../oci/raw-json.js';
import type { Descriptor, Platform } from '../../oci/types.js';
import type { ImageSource } from '../types.js';
import { platformString } from '../platform-manifest.js';
import { repositoryScope } from './auth.js';
import { RegistryClient, type RegistryOptions } from './client.js';
import { backoffDelay, describeNetworkError, readBody, sleep, TransientError, withRetries } from './http.js';
import { formatDockerReference, type DockerReference } from './reference.js';
import { listReferrers } from './referrers.js';

/** Every manifest type we read, index types first (what docker and skopeo send). */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest].join(', ');

export interface RegistrySourceOptions extends RegistryOptions {
  /** `os/arch[/variant]`: when the reference names an index, its manifest for this platform becomes the root. */
  platform?: string;
}

/** Whether a descriptor names a manifest or index (read through /manifests/, not /blobs/). */
export function isManifestDescriptor(descriptor: Descriptor): boolean {
  return isIndexMediaType(descriptor.mediaType) || isManifestMediaType(descriptor.mediaType);
}

function mediaTypeOf(value: unknown, contentType: string | null): string {
  const own = typeof value === 'object' && value !== null ? (value as { mediaType?: unknown }).mediaType : undefined;
  if (typeof own === 'string' && own) return own;
  const header = contentType?.split(';')[0]?.trim();
  if (header && (isIndexMediaType(header) || isManifestMediaType(header))) return header;
  return looksLikeIndex(value) ? MediaType.OciIndex : MediaType.OciManifest;
}

export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, ...rest] = text.split('/');
  if (!os || !architecture || rest.length > 0) throw new UserError(`--platform ${JSON.stringify(text)}: expected OS/ARCH[/VARIANT]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have || have.os !== want.os || have.architecture !== want.architecture) return false;
  return want.variant === undefined || have.variant === want.variant;
}

/** Reads an image from a registry: the root manifest by tag or digest, and every blob verified while it streams. */
export class RegistrySource implements ImageSource {
  private readonly label: string;
  private readonly scopes: string[];

  private constructor(
    readonly client: RegistryClient,
    readonly ref: DockerReference,
    private readonly platform: Platform | undefined,
  ) {
    this.label = `docker://${formatDockerReference(ref)}`;
    this.scopes = [repositoryScope(ref.repository, 'pull')];
  }

  static async open(ref: DockerReference, options: RegistrySourceOptions = {}): Promise<RegistrySource> {
    const platform = options.platform ? parsePlatform(options.platform) : undefined;
    return new RegistrySource(await RegistryClient.create(ref.registry, ref.repository, options), ref, platform);
  }

  async root(): Promise<{ descriptor: Descriptor; raw: RawJson<unknown> }> {
    const reference = this.ref.digest ?? this.ref.tag ?? 'latest';
    const top = await this.fetchManifest(reference);
    if (!this.platform || !isIndexMediaType(top.descriptor.mediaType)) return top;
    const index = checkIndex(top.raw, `${this.label} index ${top.descriptor.digest}`, top.descriptor.mediaType).value;
    const chosen = index.manifests.find((d) => isManifestMediaType(d.mediaType) && platformMatches(this.platform!, d.platform));
    if (!chosen) {
      const have = index.manifests.map((d) => platformString(d.platform) || '?').join(', ');
      throw new UserError(`${this.label}: the index has no manifest for ${platformString(this.platform)} (it has ${have || 'none'})`);
    }
    const child = await this.fetchManifest(chosen.digest, chosen);
    return child;
  }

  /**
   * GETs a manifest by tag or digest with its exact bytes. By digest the bytes must hash to it; by tag the
   * digest is computed and, when the registry sends Docker-Content-Digest, must agree with it.
   */
  async fetchManifest(reference: string, expected?: Descriptor): Promise<{ descriptor: Descriptor; raw: RawJson<unknown> }> {
    const what = `${this.label}: manifest ${reference}`;
    const path = `/v2/${this.ref.repository}/manifests/${reference}`;
    const { bytes, contentType, headerDigest } = await withRetries(what, this.client.retry, async () => {
      const response = await this.client.request('GET', path, { scopes: this.scopes, headers: { Accept: MANIFEST_ACCEPT }, what });
      if (response.status !== 200) throw await this.client.unexpected(response, what);
      const body = await readBody(response, response.url, MAX_JSON_BYTES, what);
      return { bytes: body, contentType: response.headers.get('content-type'), headerDigest: response.headers.get('docker-content-digest') };
    });
    const digest = sha256(bytes);
    if (isDigest(reference) && digest !== reference) throw new DigestMismatchError(`${what}: content has digest ${digest}`);
    if (headerDigest && headerDigest !== digest) {
      throw new DigestMismatchError(`${what}: Docker-Content-Digest ${headerDigest} does not match the bytes received (${digest})`);
    }
    if (expected && bytes.length !== expected.size) {
      throw new DigestMismatchError(`${what}: ${bytes.length} bytes, but its descriptor declares ${expected.size}`);
    }
    const raw = parseRawJson<unknown>(bytes, what);
    const mediaType = mediaTypeOf(raw.value, contentType);
    const descriptor: Descriptor = { mediaType, digest, size: bytes.length };
    if (expected?.platform) descriptor.platform = expected.platform;
    return { descriptor, raw };
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    if (isManifestDescriptor(descriptor)) {
      const { raw } = await this.fetchManifest(descriptor.digest, descriptor);
      return Readable.from([raw.bytes], { objectMode: false });
    }
    // One lazy stream: nothing is requested before the consumer reads, so an early failure (a small blob with
    // the wrong bytes) cannot be emitted before the consumer listens for it.
    return verifiedStream(this.blobChunks(descriptor.digest, descriptor.size), descriptor.digest, descriptor.size, `${this.label}: blob ${descriptor.digest}`);
  }

  /**
   * The bytes of a blob; redirects to blob storage are followed. A connection lost (or a body cut short) part
   * way resumes with a Range request from where it stopped, up to the retry policy's attempts.
   */
  private async *blobChunks(digest: Digest, size: number): AsyncGenerator<Buffer> {
    const what = `${this.label}: blob ${digest}`;
    const path = `/v2/${this.ref.repository}/blobs/${digest}`;
    const progress = new Progress(`pull ${this.ref.repository} blob ${digest.slice(7, 19)}`, { brief: true }).start(size);
    let offset = 0;
    try {
      for (let attempt = 1; ; attempt++) {
        const headers: Record<string, string> = offset > 0 ? { Range: `bytes=${offset}-` } : {};
        const response = await this.client.request('GET', path, { scopes: this.scopes, headers, what });
        if (response.status !== 200 && response.status !== 206) throw await this.client.unexpected(response, what);
        let skip = 0;
        if (offset > 0) {
          const range = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '');
          // A server that ignores Range sends the whole blob again: skip what we already passed on.
          skip = response.status === 206 && range ? offset - Number(range[1]) : offset;
          if (skip < 0) throw new UserError(`${what}: the registry resumed at ${range![1]}, after the ${offset} bytes we have`);
        }
        let failure: TransientError | undefined;
        try {
          for await (const chunk of (response.body ?? []) as AsyncIterable<Uint8Array>) {
            let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
            if (skip > 0) {
              const n = Math.min(skip, buf.length);
              buf = buf.subarray(n);
              skip -= n;
              if (buf.length === 0) continue;
            }
            offset += buf.length;
            progress.advance(buf.length);
            yield buf;
          }
        } catch (err) {
          if (err instanceof UserError) throw err;
          failure = new TransientError(`connection lost after ${offset} of ${size} bytes (${describeNetworkError(err)})`);
        }
        if (!failure && offset < size) failure = new TransientError(`the body ended after ${offset} of ${size} bytes`);
        if (!failure) return; // more bytes than declared, or wrong ones, are the VerifyingStream's to refuse
        if (attempt >= this.client.retry.attempts) throw new UserError(`${what}: ${failure.message} (after ${attempt} attempts)`);
        await sleep(backoffDelay(this.client.retry, attempt, failure));
      }
    } finally {
      progress.stop();
    }
  }

  /** What refers to `subject` here: the referrers API, else the `sha256-<hex>` tag schema. */
  async referrers(subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    return (await listReferrers(this.ref, subject, { client: this.client, ...(artifactType !== undefined ? { artifactType } : {}) })).manifests;
  }

  async close(): Promise<void> {}
}


import { createReadStream } from 'node:fs';
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { UserError } from '../errors.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { digestHex, discard, fileHasDigest, verifiedStream, VerifyingStream, type Digest } from '../oci/digest.js';
import { isIndexMediaType, MediaType } from '../oci/mediatypes.js';
import { checkIndex, looksLikeIndex, MAX_JSON_BYTES, parseRawJson, type RawJson } from '../oci/raw-json.js';
import { Annotation, type Descriptor, type Index } from '../oci/types.js';
import { ensureDir, exists, readSmall, siblingTempPath, streamToFileAtomic, writeFileAtomic } from '../util/fs.js';
import type { ImageDestination, ImageSource } from './types.js';

/** OCI image layout (image-spec image-layout.md): `oci-layout`, `index.json`, `blobs/sha256/<hex>`. */
const LAYOUT_FILE = 'oci-layout';
const LAYOUT_CONTENT = canonicalJsonBytes({ imageLayoutVersion: '1.0.0' });

function blobPath(dir: string, digest: Digest): string {
  return join(dir, 'blobs', 'sha256', digestHex(digest));
}

/** Reads one JSON document out of a source by descriptor, verified and size-capped. */
export async function readJsonBlob(source: ImageSource, descriptor: Descriptor, what: string): Promise<RawJson<unknown>> {
  if (descriptor.size > MAX_JSON_BYTES) throw new UserError(`${what} ${descriptor.digest}: declared size ${descriptor.size} is more than the ${MAX_JSON_BYTES} allowed`);
  const bytes = await readSmall(await source.openBlob(descriptor), MAX_JSON_BYTES, what);
  return parseRawJson(bytes, `${what} ${descriptor.digest}`);
}

export class LayoutSource implements ImageSource {
  private constructor(
    private readonly dir: string,
    private readonly tag: string | undefined,
    private readonly label: string,
    private readonly onClose: () => Promise<void>,
  ) {}

  static async open(dir: string, tag: string | undefined, label = `oci:${dir}`, onClose: () => Promise<void> = async () => {}): Promise<LayoutSource> {
    const info = await stat(dir).catch(() => undefined);
    if (!info?.isDirectory()) throw new UserError(`${label}: no such directory`);
    const layout = await readFile(join(dir, LAYOUT_FILE), 'utf8').catch(() => undefined);
    if (layout === undefined) throw new UserError(`${label}: not an OCI image layout (no ${LAYOUT_FILE} file)`);
    let version: unknown;
    try {
      version = (JSON.parse(layout) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      throw new UserError(`${label}: ${LAYOUT_FILE} is not valid JSON`);
    }
    if (version !== '1.0.0') throw new UserError(`${label}: unsupported image layout version ${JSON.stringify(version)}`);
    return new LayoutSource(dir, tag, label, onClose);
  }

  async index(): Promise<RawJson<Index>> {
    const bytes = await readFile(join(this.dir, 'index.json')).catch(() => undefined);
    if (bytes === undefined) throw new UserError(`${this.label}: index.json is missing`);
    return checkIndex(parseRawJson(bytes, `${this.label} index.json`), `${this.label} index.json`);
  }

  async root(): Promise<{ descriptor: Descriptor; raw: RawJson<unknown> }> {
    const entries = (await this.index()).value.manifests;
    let chosen: Descriptor | undefined;
    if (this.tag !== undefined) {
      const matches = entries.filter((d) => d.annotations?.[Annotation.RefName] === this.tag);
      if (matches.length === 0) throw new UserError(`${this.label}: no image tagged ${JSON.stringify(this.tag)}`);
      if (matches.length > 1) throw new UserError(`${this.label}: several images are tagged ${JSON.stringify(this.tag)}`);
      chosen = matches[0];
    } else if (entries.length === 1) {
      chosen = entries[0];
    } else {
      const tags = entries.map((d) => d.annotations?.[Annotation.RefName]).filter(Boolean);
      throw new UserError(`${this.label}: holds ${entries.length} images; name one as ${this.label}:TAG${tags.length ? ` (tags: ${tags.join(', ')})` : ''}`);
    }
    const descriptor = chosen!;
    const raw = await readJsonBlob(this, descriptor, looksLikeIndex(undefined, descriptor.mediaType) ? 'index' : 'manifest');
    return { descriptor, raw };
  }

  /** Artifact manifests in index.json whose subject is `subject` (how `archive` keeps a recipe beside an image). */
  async referrers(subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const entry of (await this.index()).value.manifests) {
      if (isIndexMediaType(entry.mediaType)) continue;
      const raw = await readJsonBlob(this, entry, 'manifest').catch(() => undefined);
      const value = raw?.value as { subject?: Descriptor; artifactType?: string } | undefined;
      if (value?.subject?.digest !== subject) continue;
      const type = value.artifactType ?? entry.artifactType;
      if (artifactType !== undefined && type !== artifactType) continue;
      out.push({ ...entry, ...(type ? { artifactType: type } : {}) });
    }
    return out;
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    const path = blobPath(this.dir, descriptor.digest);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) throw new UserError(`${this.label}: blob ${descriptor.digest} is missing`);
    return verifiedStream(createReadStream(path), descriptor.digest, descriptor.size, `${this.label}: blob ${descriptor.digest}`);
  }

  async close(): Promise<void> {
    await this.onClose();
  }
}

/**
 * Writes into a layout directory. A new directory is assembled beside its final path and renamed into place on
 * commit; an existing layout gets blobs by atomic rename and its index.json replaced atomically, and on abort
 * the blobs this writer added are removed again.
 */
export class LayoutDestination implements ImageDestination {
  private readonly added: string[] = [];

  private constructor(
    private readonly finalDir: string,
    private readonly workDir: string,
    private readonly isNew: boolean,
    private readonly tag: string | undefined,
    private readonly label: string,
  ) {}

  static async create(dir: string, tag: string | undefined, label = `oci:${dir}`): Promise<LayoutDestination> {
    const info = await stat(dir).catch(() => undefined);
    if (info && !info.isDirectory()) throw new UserError(`${label}: exists and is not a directory`);
    if (info) {
      const isLayout = await exists(join(dir, LAYOUT_FILE));
      const isEmpty = (await readdir(dir)).length === 0;
      if (!isLayout && !isEmpty) throw new UserError(`${label}: exists and is not an OCI image layout`);
      if (isLayout) {
        await LayoutSource.open(dir, undefined, label); // validates the existing layout before touching it
        return new LayoutDestination(dir, dir, false, tag, label);
      }
      await rm(dir, { recursive: true }); // an empty directory is replaced atomically like a new one
    }
    const work = siblingTempPath(dir);
    await ensureDir(join(work, 'blobs', 'sha256'));
    await writeFileAtomic(join(work, LAYOUT_FILE), LAYOUT_CONTENT);
    return new LayoutDestination(dir, work, true, tag, label);
  }

  /** Whether the layout holds the blob intact: a file under its digest is hashed before it is trusted. */
  async hasBlob(digest: Digest): Promise<boolean> {
    return fileHasDigest(blobPath(this.workDir, digest), digest);
  }

  async putBlob(descriptor: Descriptor, content: Readable | AsyncIterable<Buffer>): Promise<void> {
    const path = blobPath(this.workDir, descriptor.digest);
    if (await this.hasBlob(descriptor.digest)) {
      // Already here, intact. Drain the source so its producer does not stall.
      await discard(content);
      return;
    }
    // Anything else under that name (a corrupt or forged file) is replaced by the verified bytes.
    await ensureDir(join(this.workDir, 'blobs', 'sha256'));
    const verify = new VerifyingStream(descriptor.digest, descriptor.size, `${this.label}: blob ${descriptor.digest}`);
    await streamToFileAtomic(path, content, [verify]);
    if (!this.isNew) this.added.push(path);
  }

  /** Names the root in index.json (tagged as the reference says), plus any `extra` entries (artifacts). */
  async commit(root: Descriptor, extra: Descriptor[] = []): Promise<void> {
    const entry: Descriptor = { ...root };
    if (this.tag !== undefined) entry.annotations = { ...(root.annotations ?? {}), [Annotation.RefName]: this.tag };
    let manifests: Descriptor[] = [];
    if (!this.isNew) {
      const existing = await LayoutSource.open(this.workDir, undefined, this.label);
      // An entry with the same tag (or, untagged, the same digest) is replaced, as skopeo does.
      manifests = (await existing.index()).value.manifests.filter((d) =>
        this.tag !== undefined ? d.annotations?.[Annotation.RefName] !== this.tag : d.digest !== root.digest || d.annotations?.[Annotation.RefName] !== undefined,
      );
    }
    manifests.push(entry);
    for (const e of extra) if (!manifests.some((m) => m.digest === e.digest)) manifests.push(e);
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
    await writeFileAtomic(join(this.workDir, 'index.json'), canonicalJsonBytes(index));
    if (this.isNew) {
      if (await exists(this.finalDir)) throw new UserError(`${this.label}: appeared while writing; not replaced`);
      await rename(this.workDir, this.finalDir);
    }
  }

  async abort(): Promise<void> {
    if (this.isNew) await rm(this.workDir, { recursive: true, force: true });
    else for (const path of this.added) await rm(path, { force: true });
  }
}

/** Wraps already-verified bytes as a stream (for blobs we produced ourselves). */
export function bytesStream(bytes: Buffer): Readable {
  return Readable.from([bytes]);
}

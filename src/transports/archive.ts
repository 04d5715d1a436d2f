import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { detectCompression } from '../compress/index.js';
import { UserError } from '../errors.js';
import { canonicalJsonBytes } from '../oci/canonical-json.js';
import { digestHex, HashingStream, verifiedStream, type Digest } from '../oci/digest.js';
import { isIndexMediaType, MediaType } from '../oci/mediatypes.js';
import { checkManifest, parseRawJson, type RawJson } from '../oci/raw-json.js';
import type { Descriptor, Index, Manifest } from '../oci/types.js';
import { compareMemberNames, normalizeMemberPath, type TarSourceEntry } from '../tar/entry.js';
import { readTar } from '../tar/reader.js';
import { writeTar } from '../tar/writer.js';
import { makeScratchDir, streamToFileAtomic, writeFileAtomic } from '../util/fs.js';
import { LayoutDestination, LayoutSource, readJsonBlob } from './layout.js';
import { imageManifests } from './platform-manifest.js';
import type { ImageDestination, ImageSource } from './types.js';

/**
 * Archives of layouts: `oci-archive:` is a tar of an OCI layout; `docker-archive:` is what `docker save` writes
 * and `docker load` reads. We write docker archives the way Docker 25+ does — an OCI layout plus `manifest.json`
 * — so that a reader of the layout (ours) finds the manifest digest again; archives with manifest.json only (older
 * Docker, skopeo) are read too, with a manifest made up from their config and layers.
 */

/** Extracts an archive into a scratch directory, refusing anything that could land outside it. */
async function extractArchive(file: string, label: string): Promise<{ dir: string; symlinks: Map<string, string>; cleanup: () => Promise<void> }> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw new UserError(`${label}: no such file`);
  const scratch = await makeScratchDir('archive');
  const symlinks = new Map<string, string>();
  try {
    for await (const entry of readTar(createReadStream(file), { what: label })) {
      const path = normalizeMemberPath(entry.name);
      if (path === null) throw new UserError(`${label}: member ${JSON.stringify(entry.name)} escapes the archive`);
      if (path === undefined) continue;
      const target = join(scratch.path, path);
      if (entry.type === 'dir') {
        await mkdir(target, { recursive: true });
      } else if (entry.type === 'file') {
        await mkdir(dirname(target), { recursive: true });
        await pipeline(Readable.from(entry.content()), createWriteStream(target, { flags: 'wx', mode: 0o600 })).catch((err: NodeJS.ErrnoException) => {
          throw err.code === 'EEXIST' || err.code === 'EISDIR' ? new UserError(`${label}: member ${path} appears twice`) : err;
        });
      } else if (entry.type === 'symlink') {
        symlinks.set(path, entry.linkTarget!); // resolved lexically, never created on disk
      } else {
        throw new UserError(`${label}: unexpected ${entry.type} member ${path}`);
      }
    }
  } catch (err) {
    await scratch.cleanup();
    throw err;
  }
  return { dir: scratch.path, symlinks, cleanup: scratch.cleanup };
}

/** Writes a directory tree as a deterministic tar (fixed owner, modes and time) to `file`, atomically. */
async function archiveDirectory(dir: string, file: string): Promise<void> {
  const entries: TarSourceEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(dir, rel))) {
      const path = rel ? `${rel}/${name}` : name;
      const info = await lstat(join(dir, path));
      if (info.isDirectory()) {
        entries.push({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 });
        await walk(path);
      } else {
        entries.push({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: info.size, open: () => createReadStream(join(dir, path)) });
      }
    }
  };
  await walk('');
  entries.sort(compareMemberNames);
  await streamToFileAtomic(file, Readable.from(writeTar(entries)));
}

/** A layout staged in scratch space and archived into a file on commit. */
class ArchiveDestination implements ImageDestination {
  constructor(
    private readonly layout: LayoutDestination,
    private readonly scratch: { path: string; cleanup: () => Promise<void> },
    private readonly file: string,
    private readonly beforeArchive: (dir: string, root: Descriptor) => Promise<void>,
  ) {}

  static async create(file: string, tag: string | undefined, label: string, beforeArchive: (dir: string, root: Descriptor) => Promise<void> = async () => {}): Promise<ArchiveDestination> {
    const info = await stat(file).catch(() => undefined);
    if (info?.isDirectory()) throw new UserError(`${label}: is a directory`);
    if (!(await stat(dirname(file)).catch(() => undefined))?.isDirectory()) throw new UserError(`${label}: directory ${dirname(file)} does not exist`);
    const scratch = await makeScratchDir('out');
    const layout = await LayoutDestination.create(join(scratch.path, 'layout'), tag, label);
    return new ArchiveDestination(layout, scratch, file, beforeArchive);
  }

  hasBlob(digest: Digest): Promise<boolean> {
    return this.layout.hasBlob(digest);
  }

  putBlob(descriptor: Descriptor, content: Readable | AsyncIterable<Buffer>): Promise<void> {
    return this.layout.putBlob(descriptor, content);
  }

  async commit(root: Descriptor): Promise<void> {
    try {
      await this.layout.commit(root);
      const dir = join(this.scratch.path, 'layout');
      await this.beforeArchive(dir, root);
      await archiveDirectory(dir, this.file);
    } finally {
      await this.scratch.cleanup();
    }
  }

  async abort(): Promise<void> {
    await this.scratch.cleanup();
  }
}

export async function openOciArchiveSource(file: string, tag: string | undefined): Promise<ImageSource> {
  const label = `oci-archive:${file}`;
  const extracted = await extractArchive(file, label);
  try {
    return await LayoutSource.open(extracted.dir, tag, label, extracted.cleanup);
  } catch (err) {
    await extracted.cleanup();
    throw err;
  }
}

export function createOciArchiveDestination(file: string, tag: string | undefined): Promise<ImageDestination> {
  return ArchiveDestination.create(file, tag, `oci-archive:${file}`);
}

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export function createDockerArchiveDestination(file: string, name: string | undefined): Promise<ImageDestination> {
  const label = `docker-archive:${file}`;
  return ArchiveDestination.create(file, undefined, label, async (dir, root) => {
    // manifest.json names one image: the root manifest, or the single manifest of a root index.
    const source = await LayoutSource.open(dir, undefined, label);
    let manifestDescriptor = root;
    if (isIndexMediaType(root.mediaType)) {
      const index = (await source.root()).raw.value as Index;
      const images = imageManifests(index);
      if (images.length !== 1) throw new UserError(`${label}: a docker archive holds one image per name, but the index has ${images.length}; choose a platform first`);
      manifestDescriptor = images[0]!;
    }
    const manifest = checkManifest(await readJsonBlob(source, manifestDescriptor, 'manifest'), 'manifest').value;
    const entry: DockerManifestEntry = {
      Config: `blobs/sha256/${digestHex(manifest.config.digest)}`,
      RepoTags: name ? [name] : [],
      Layers: manifest.layers.map((l) => `blobs/sha256/${digestHex(l.digest)}`),
    };
    await writeFileAtomic(join(dir, 'manifest.json'), canonicalJsonBytes([entry]));
  });
}

/**
 * Reads files of an extracted docker archive that has no manifest of its own (manifest.json only, as older Docker
 * and skopeo write it) by digest, verified; its root is a manifest made up from the config and the layers.
 */
class DockerArchiveSource implements ImageSource {
  readonly keepsOnlyContent = true;

  constructor(
    private readonly rootDescriptor: Descriptor,
    private readonly rootRaw: RawJson<unknown>,
    private readonly files: Map<Digest, string>,
    private readonly label: string,
    private readonly cleanup: () => Promise<void>,
  ) {}

  async root(): Promise<{ descriptor: Descriptor; raw: RawJson<unknown> }> {
    return { descriptor: this.rootDescriptor, raw: this.rootRaw };
  }

  async openBlob(descriptor: Descriptor): Promise<Readable> {
    // The made-up manifest is a blob of this image too (a rebuild compares it), held in memory.
    if (descriptor.digest === this.rootDescriptor.digest) return verifiedStream(Readable.from([this.rootRaw.bytes]), descriptor.digest, descriptor.size, `${this.label}: manifest`);
    const path = this.files.get(descriptor.digest);
    if (!path) throw new UserError(`${this.label}: blob ${descriptor.digest} is missing`);
    return verifiedStream(createReadStream(path), descriptor.digest, descriptor.size, `${this.label}: blob ${descriptor.digest}`);
  }

  close(): Promise<void> {
    return this.cleanup();
  }
}

async function describeFile(path: string): Promise<{ digest: Digest; size: number; head: Buffer }> {
  const hasher = new HashingStream();
  let head = Buffer.alloc(0);
  hasher.on('data', (chunk: Buffer) => {
    if (head.length < 8) head = Buffer.concat([head, chunk.subarray(0, 8)]);
  });
  await pipeline(createReadStream(path), hasher);
  return { digest: hasher.digest(), size: hasher.size, head };
}

export async function openDockerArchiveSource(file: string, name: string | undefined, sourceIndex: number | undefined): Promise<ImageSource> {
  const label = `docker-archive:${file}`;
  const extracted = await extractArchive(file, label);
  try {
    const resolve = (member: string): string => {
      let path: string | null | undefined = normalizeMemberPath(member);
      for (let hops = 0; path && extracted.symlinks.has(path); hops++) {
        if (hops > 16) throw new UserError(`${label}: symlink loop at ${member}`);
        path = normalizeMemberPath(posix.normalize(posix.join(posix.dirname(path), extracted.symlinks.get(path)!)));
      }
      if (!path) throw new UserError(`${label}: ${JSON.stringify(member)} points outside the archive`);
      return join(extracted.dir, path);
    };
    const manifestBytes = await readFile(join(extracted.dir, 'manifest.json')).catch(() => undefined);
    if (!manifestBytes) throw new UserError(`${label}: no manifest.json (not a docker archive)`);
    const entries = parseRawJson<DockerManifestEntry[]>(manifestBytes, `${label} manifest.json`).value;
    if (!Array.isArray(entries) || entries.some((e) => typeof e?.Config !== 'string' || !Array.isArray(e.Layers))) {
      throw new UserError(`${label}: manifest.json is not a list of {Config, Layers}`);
    }
    let entry: DockerManifestEntry | undefined;
    if (sourceIndex !== undefined) entry = entries[sourceIndex];
    else if (name !== undefined) entry = entries.find((e) => e.RepoTags?.includes(name));
    else if (entries.length === 1) entry = entries[0];
    else throw new UserError(`${label}: holds ${entries.length} images; name one with :NAME:TAG or :@INDEX`);
    if (!entry) throw new UserError(`${label}: no image ${name ?? `@${sourceIndex}`}`);

    const files = new Map<Digest, string>();
    const config = await describeFile(resolve(entry.Config));
    files.set(config.digest, resolve(entry.Config));
    const layers: Descriptor[] = [];
    for (const layer of entry.Layers) {
      const info = await describeFile(resolve(layer));
      files.set(info.digest, resolve(layer));
      const compression = detectCompression(info.head);
      const mediaType = compression === 'gzip' ? MediaType.DockerLayerGzip : compression === 'zstd' ? MediaType.DockerLayerZstd : compression === 'none' ? MediaType.DockerLayer : undefined;
      if (!mediaType) throw new UserError(`${label}: layer ${layer} has unsupported compression ${compression}`);
      layers.push({ mediaType, digest: info.digest, size: info.size });
    }

    // A Docker 25+ archive also carries the original manifest as an OCI layout: prefer its exact bytes.
    const original = await findOriginalManifest(extracted.dir, config.digest, layers, label);
    if (original) {
      const source = await LayoutSource.open(extracted.dir, undefined, label, extracted.cleanup);
      // The layout's manifest is ours when we wrote the archive, but `docker save` writes one of its own.
      return new PinnedRootSource(source, original.descriptor, original.raw, true);
    }
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.DockerManifest,
      config: { mediaType: MediaType.DockerConfig, digest: config.digest, size: config.size },
      layers,
    };
    const raw = parseRawJson<unknown>(canonicalJsonBytes(manifest), `${label} manifest`);
    const descriptor: Descriptor = { mediaType: MediaType.DockerManifest, digest: raw.digest, size: raw.bytes.length };
    return new DockerArchiveSource(descriptor, raw, files, label, extracted.cleanup);
  } catch (err) {
    await extracted.cleanup();
    throw err;
  }
}

async function findOriginalManifest(dir: string, configDigest: Digest, layers: Descriptor[], label: string): Promise<{ descriptor: Descriptor; raw: RawJson<unknown> } | undefined> {
  const layout = await LayoutSource.open(dir, undefined, label).catch(() => undefined);
  if (!layout) return undefined;
  const index = await layout.index().catch(() => undefined);
  if (!index) return undefined;
  const candidates: Descriptor[] = [...index.value.manifests];
  for (let i = 0; i < candidates.length && i < 64; i++) {
    const d = candidates[i]!;
    const raw = await readJsonBlob(layout, d, 'manifest').catch(() => undefined);
    if (!raw) continue;
    if (isIndexMediaType(d.mediaType)) {
      candidates.push(...((raw.value as Index).manifests ?? []));
      continue;
    }
    const m = raw.value as Manifest;
    if (m.config?.digest === configDigest && m.layers?.length === layers.length && m.layers.every((l, k) => l.digest === layers[k]!.digest)) {
      return { descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size }, raw };
    }
  }
  return undefined;
}

/** A layout source whose root is a chosen manifest rather than index.json's single entry. */
class PinnedRootSource implements ImageSource {
  constructor(
    private readonly inner: ImageSource,
    private readonly descriptor: Descriptor,
    private readonly raw: RawJson<unknown>,
    readonly keepsOnlyContent: boolean,
  ) {}

  async root(): Promise<{ descriptor: Descriptor; raw: RawJson<unknown> }> {
    return { descriptor: this.descriptor, raw: this.raw };
  }

  openBlob(descriptor: Descriptor): Promise<Readable> {
    return this.inner.openBlob(descriptor);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

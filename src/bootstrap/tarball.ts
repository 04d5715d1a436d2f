import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { chmod, rename, rm, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { UserError } from '../errors.js';
import type { TreeNode } from '../install/installer.js';
import { decompressAuto, getCompressor, type Compressor } from '../compress/index.js';
import type { Compression } from '../oci/mediatypes.js';
import type { Digest } from '../oci/digest.js';
import { writeLayer } from '../image/layer.js';
import { RECIPE_PATH } from '../image/recipe.js';
import { sortWithHardlinks } from '../rootfs/tree.js';
import { normalizeMemberPath, type TarSourceEntry } from '../tar/entry.js';
import { readTar } from '../tar/reader.js';
import { readSmall, settled, siblingTempPath, writeFileAtomic } from '../util/fs.js';
import { writeFailure } from '../util/fs-error.js';
import { displayName } from '../util/raw-name.js';
import type { BootstrapSettings } from './archiso.js';

/**
 * The bootstrap tarball as mkarchiso's _build_bootstrap_image makes it (`bsdtar -cf - root.<arch> pkglist.<arch>.txt
 * version | COMPRESSOR`), written by repro-oci's own tar writer: members in byte order, mtimes clamped, owners
 * numeric, and a pinned compressor whose identity the recipe records.
 */

/** File name endings and the compression each means; archiso's tarball without a compressor is a plain .tar. */
const ENDINGS: [string, Compression][] = [['.tar.zst', 'zstd'], ['.tar.gz', 'gzip'], ['.tar', 'none']];

export interface BootstrapOutput {
  path: string;
  compression: Compression;
  /** Also write PATH.sha256 (`HEX  NAME`, as sha256sum writes it). */
  sha256File: boolean;
}

export const BOOTSTRAP_PREFIX = 'bootstrap:';

/** `bootstrap:FILE.tar.zst|.tar.gz|.tar[:sha256]`, or undefined for anything that does not start with `bootstrap:`. */
export function parseBootstrapOutput(text: string): BootstrapOutput | undefined {
  if (!text.startsWith(BOOTSTRAP_PREFIX)) return undefined;
  let path = text.slice(BOOTSTRAP_PREFIX.length);
  const sha256File = path.endsWith(':sha256');
  if (sha256File) path = path.slice(0, -':sha256'.length);
  if (!path) throw new UserError(`${text}: no file after bootstrap:`);
  if (path.includes(':')) throw new UserError(`${text}: a path with ':' is not supported (the only suffix is :sha256)`);
  const ending = ENDINGS.find(([end]) => path.endsWith(end) && path.length > end.length && !path.endsWith(`/${end}`));
  if (!ending) throw new UserError(`${text}: the file name must end in .tar.zst, .tar.gz or .tar (it chooses the compression)`);
  return { path, compression: ending[1], sha256File };
}

/**
 * A bootstrap tarball named for `rebuild` or `diff`: `bootstrap:FILE`, or a bare FILE.tar.zst, .tar.gz or .tar (no transport
 * prefix of an image reference). Undefined for anything else.
 */
export function bootstrapTarballPath(reference: string): string | undefined {
  if (reference.startsWith(BOOTSTRAP_PREFIX)) return reference.slice(BOOTSTRAP_PREFIX.length);
  if (/^(oci|oci-archive|docker-archive|docker):/.test(reference)) return undefined;
  return /\.tar(\.zst|\.gz)?$/.test(reference) ? reference : undefined;
}

/** The pinned compressor of a bootstrap tarball: as for layers, gzip in parallel 1 MiB blocks. */
export function bootstrapCompressor(compression: Compression, level: number | undefined): Compressor {
  return getCompressor(compression, level, true);
}

/** Everything the tarball holds, in member order: root.<arch>/…, pkglist.<arch>.txt and version at the top. */
export function bootstrapEntries(nodes: Map<string, TreeNode>, settings: BootstrapSettings, pkglist: string, sourceDateEpoch: number): TarSourceEntry[] {
  const root = `root.${settings.arch}`;
  const small = (path: string, text: string): TarSourceEntry => {
    const bytes = Buffer.from(text, 'utf8');
    return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: sourceDateEpoch, size: bytes.length, open: () => Readable.from([bytes]) };
  };
  const entries: TarSourceEntry[] = [small(`pkglist.${settings.arch}.txt`, pkglist), { path: root, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: sourceDateEpoch, size: 0 }];
  for (const node of sortWithHardlinks(nodes)) {
    entries.push({ ...node, path: `${root}/${node.path}`, ...(node.type === 'hardlink' ? { linkTarget: `${root}/${node.linkTarget}` } : {}) });
  }
  entries.push(small('version', `${settings.imageVersion}\n`));
  return entries;
}

export interface WrittenTarball {
  digest: Digest;
  size: number;
  /** Digest and size of the tar inside. */
  diffId: Digest;
  uncompressedSize: number;
}

/** Streams the tarball into `file` (a scratch path: nothing is renamed). */
export async function writeTarball(entries: TarSourceEntry[], sourceDateEpoch: number, compressor: Compressor, file: string): Promise<WrittenTarball> {
  return writeLayer(entries, sourceDateEpoch, compressor, file);
}

/** The sha256sum line for a file: what `sha256sum -c` checks in the file's directory. */
export function sha256Line(digest: Digest, path: string): string {
  return `${digest.slice('sha256:'.length)}  ${basename(path)}\n`;
}

/**
 * Writes the tarball at `output.path` all-or-nothing (a temporary sibling renamed into place, mode 0644 as
 * archiso's umask leaves it), then PATH.sha256 when asked. A failure leaves neither file half-written.
 */
export async function writeTarballAtomic(entries: TarSourceEntry[], sourceDateEpoch: number, compressor: Compressor, output: BootstrapOutput): Promise<WrittenTarball> {
  const temp = siblingTempPath(output.path);
  let written: WrittenTarball;
  try {
    written = await writeTarball(entries, sourceDateEpoch, compressor, temp);
    await chmod(temp, 0o644);
    await rename(temp, output.path);
  } catch (err) {
    await rm(temp, { force: true });
    throw writeFailure(err, output.path, temp);
  } finally {
    settled(temp);
  }
  if (output.sha256File) await writeFileAtomic(`${output.path}.sha256`, sha256Line(written.digest, output.path));
  return written;
}

const ROOT_RE = /^root\.([a-z0-9_]+)(?:\/|$)/;
const RECIPE_LIMIT = 64 * 1024 * 1024;
/** Beyond any Arch bootstrap (about 1 GiB uncompressed): a decompression bomb stops here. */
const MAX_TAR_BYTES = 64 * 1024 * 1024 * 1024;

/**
 * The recipe a bootstrap tarball carries (`root.<arch>/usr/share/repro-oci/recipe.json`) and the architecture its
 * root directory names. Every member is looked at: one outside `root.<arch>/`, `pkglist.<arch>.txt` and `version`,
 * a name that climbs out (`..`, absolute), a second root or recipe is refused in one line. Nothing is extracted.
 */
export async function readTarballRecipe(path: string): Promise<{ bytes: Buffer; arch: string }> {
  const what = `bootstrap tarball ${displayName(path)}`;
  let arch: string | undefined;
  let bytes: Buffer | undefined;
  let total = 0;
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new UserError(`${what}: cannot be read (${err.code === 'ENOENT' ? 'no such file' : err.code ?? err.message})`);
  });
  if (!info.isFile()) throw new UserError(`${what}: not a regular file`);
  async function* bounded(): AsyncGenerator<Buffer> {
    for await (const chunk of decompressAuto(createReadStream(path), what)) {
      total += chunk.length;
      if (total > MAX_TAR_BYTES) throw new UserError(`${what}: more than ${MAX_TAR_BYTES} bytes uncompressed`);
      yield chunk;
    }
  }
  try {
    for await (const entry of readTar(bounded(), { what })) {
      const name = normalizeMemberPath(entry.name);
      if (name === null || name === undefined) throw new UserError(`${what}: member ${JSON.stringify(displayName(entry.name))} is not a relative path inside the tarball`);
      const root = ROOT_RE.exec(name);
      if (root) {
        if (arch !== undefined && root[1] !== arch) throw new UserError(`${what}: two root directories, root.${arch} and root.${root[1]}`);
        arch = root[1]!;
        if (name === `root.${arch}/${RECIPE_PATH}`) {
          if (bytes) throw new UserError(`${what}: more than one ${name}`);
          if (entry.type !== 'file') throw new UserError(`${what}: ${name} is a ${entry.type}, not a file`);
          bytes = await readSmall(entry.content(), RECIPE_LIMIT, `${what}: ${name}`);
        }
      } else if (name !== 'version' && !/^pkglist\.[a-z0-9_]+\.txt$/.test(name)) {
        throw new UserError(`${what}: member ${JSON.stringify(displayName(name))} is neither under root.<arch>/ nor pkglist.<arch>.txt or version: not an archiso bootstrap tarball`);
      }
    }
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${what}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (!arch) throw new UserError(`${what}: no root.<arch>/ directory: not an archiso bootstrap tarball`);
  if (!bytes) throw new UserError(`${what}: carries no recipe (root.${arch}/${RECIPE_PATH}): it was not built by repro-oci`);
  return { bytes, arch };
}

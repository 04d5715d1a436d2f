import { mergeLayers } from '../compare/image-diff.js';
import { indexLayer, type LayerIndex, type OnFile } from '../compare/layer-index.js';
import { discard } from '../oci/digest.js';
import type { Descriptor, ImageConfig, Manifest } from '../oci/types.js';
import { normalizeMemberPath, type ContentOpener } from '../tar/entry.js';
import type { ReadEntry } from '../tar/reader.js';
import type { ImageSource } from '../transports/types.js';
import { layerDiffIds, readLayer } from '../transports/verify.js';
import type { Spool } from '../util/spool.js';
import type { DetectedLayer } from './layer-reproduction.js';
import { consumeTogether } from '../util/consume-together.js';
import { detectTarConvention, foreignMetadata, type ForeignTarEntry } from './tar-convention.js';

/**
 * One pass over each layer of a foreign image serves every level of its check: the merged view (indexLayer), the
 * convention of the tar's writer (tar-convention.ts, from the raw headers of the same bytes), and every member as
 * read with its content's sha256, for the layer rebuild (layers.ts); the image's copies of files a rebuild may keep
 * are spooled. Each layer is read once, checked against its digest and diffID before anything read is used; the
 * layer level reads it again only when it keeps a file this pass did not spool.
 */

/** One member of a layer as read (the root and unsafe names left out), in archive order. */
export interface LayerMember {
  entry: ForeignTarEntry;
  /** A regular file's content sha256. */
  sha256?: string;
  /** A regular file's content as the image has it, when spooled. */
  kept?: ContentOpener;
}

export interface LayerPass {
  members: LayerMember[];
  /** The writer's convention, or what stopped its detection (reported where the layer level would detect it). */
  detected: DetectedLayer | { error: unknown };
}

export interface ForeignLayersRead {
  merged: LayerIndex;
  layers: LayerPass[];
}

export interface ForeignLayersOptions {
  /** Whether a file's content is spooled for the rebuild (within `maxSpooledBytes` over all layers). */
  spoolable: (path: string) => boolean;
  spool: Spool;
  maxSpooledBytes: number;
  /** Sees every file's content that is not spooled (it must read all of it), as mergedImage's onFile. */
  onFile?: (layer: number) => OnFile;
  /** Sees each spooled file's content, in chunks, as it is spooled. */
  onSpooled?: (layer: number, path: string, size: number) => ((chunk: Buffer) => void) | undefined;
}

/** A member as a rebuild writes it again: header fields and PAX metadata as read, content not attached. */
export function memberEntry(read: ReadEntry, path: string): ForeignTarEntry {
  const entry: ForeignTarEntry = { path, type: read.type, mode: read.mode, uid: read.uid, gid: read.gid, mtime: read.mtime, size: read.size, ...foreignMetadata(read.pax) };
  if (read.linkTarget !== undefined) entry.linkTarget = read.type === 'hardlink' ? (normalizeMemberPath(read.linkTarget) ?? read.linkTarget) : read.linkTarget;
  if (read.devMajor !== undefined) Object.assign(entry, { devMajor: read.devMajor, devMinor: read.devMinor ?? 0 });
  if (read.xattrs) entry.xattrs = read.xattrs;
  if (read.uname) entry.uname = read.uname;
  if (read.gname) entry.gname = read.gname;
  return entry;
}

/** Reads every layer once (see the module comment) and merges their views, whiteouts applied. */
export async function readForeignLayers(source: ImageSource, descriptor: Descriptor, manifest: Manifest, config: ImageConfig, label: string, options: ForeignLayersOptions): Promise<ForeignLayersRead> {
  const diffIds = layerDiffIds(manifest, config, `${label} manifest ${descriptor.digest}`);
  const indexes: LayerIndex[] = [];
  const layers: LayerPass[] = [];
  let spooled = 0;
  for (const [i, layer] of manifest.layers.entries()) {
    const what = `${label}: layer ${layer.digest}`;
    const members: LayerMember[] = [];
    const callerOnFile = options.onFile?.(i);
    let kept: ContentOpener | undefined;
    const onFile: OnFile = async (path, content, size) => {
      kept = undefined;
      if (!options.spoolable(path) || spooled + size > options.maxSpooledBytes) return callerOnFile ? callerOnFile(path, content, size) : discard(content);
      spooled += size;
      const see = options.onSpooled?.(i, path, size);
      kept = (await options.spool.store(see ? tap(content, see) : content)).open;
    };
    const onEntry = (read: ReadEntry, summary: { sha256?: string }): void => {
      const path = normalizeMemberPath(read.name);
      const opener = kept;
      kept = undefined;
      if (!path) return; // the root is written from the convention's record of it
      members.push({ entry: memberEntry(read, path), ...(summary.sha256 !== undefined ? { sha256: summary.sha256 } : {}), ...(read.type === 'file' && opener ? { kept: opener } : {}) });
    };
    let tarLength = 0;
    const [index, detected] = await readLayer(source, layer, diffIds[i], what, (content) =>
      consumeTogether(
        count(content, (n) => (tarLength += n)),
        (tar) => indexLayer(tar, what, onFile, onEntry),
        (tar) => detectTarConvention(tar, { what: `${label} layer ${i + 1}` }).then((convention) => ({ convention }), (error: unknown) => ({ error })),
      ),
    );
    indexes.push(index);
    layers.push({ members, detected: 'convention' in detected ? { convention: detected.convention, tarLength } : detected });
  }
  return { merged: mergeLayers(indexes), layers };
}

function tap(source: AsyncIterable<Buffer>, see: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  return (async function* () {
    for await (const chunk of source) {
      see(chunk);
      yield chunk;
    }
  })();
}

function count(source: AsyncIterable<Buffer>, add: (n: number) => void): AsyncGenerator<Buffer> {
  return tap(source, (chunk) => add(chunk.length));
}

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { InstalledTree, TreeNode } from '../install/installer.js';
import { LOCAL_DB_DIR } from '../install/local-db.js';
import type { Digest } from '../oci/digest.js';
import type { ImageConfig, Manifest } from '../oci/types.js';
import { normalizeMemberPath } from '../tar/entry.js';
import { readTar } from '../tar/reader.js';
import type { ImageSource } from '../transports/types.js';
import { layerDiffIds, readLayer } from '../transports/verify.js';
import { makeScratchDir } from '../util/fs.js';
import type { ContentReport, InstalledFacts } from './content-compare.js';
import { reproduceLayer, type LayerVerdict } from './layer-reproduction.js';
import { foreignMetadata, type ForeignTarEntry } from './tar-convention.js';

/**
 * The layer and digest levels of checking a foreign image: each layer written again, in the conventions of the
 * tool that wrote it (tar-convention.ts), from what the content level verified, and its diffID compared (and, where
 * the compressor is one repro-oci can run byte for byte, its digest: layer-reproduction.ts).
 *
 * What a rebuilt layer is made of, member by member of the original:
 * - a package's path: the package's content (or symlink target) and mode and owner, from repro-oci's install;
 * - a path the content level explained but cannot rebuild (a regenerated file equal to its regeneration, a file no
 *   rerun can make the same, an edited %BACKUP% file, pacman's `desc` with its install date): the image's bytes;
 * - a path not explained: the package's content when a package installs it, else left out — the diffID then
 *   differs at that member, as the content level already says;
 * - timestamps, owner names, PAX times and ACLs: as the layer records them (nothing to rebuild them from).
 * So an identical diffID means the layer holds nothing besides what the content level verified or named: no
 * hidden member, record or byte, including in files a later layer hides.
 */

export interface LayerSources {
  /** Members whose content (or link target) and metadata come from the packages. */
  packages: number;
  /** Explained members kept as the image has them (see the module comment). */
  image: number;
  /** Unexplained members given the package's content instead. */
  replaced: number;
  /** Unexplained members that no package installs: left out. */
  omitted: number;
}

export interface LayerCheck {
  /** 1-based position in the manifest, as the CLI prints it. */
  layer: number;
  digest: Digest;
  diffId: Digest;
  /** The diffID level: identical or differs, unknown-writer (conventions not known here), or not checked (why in detail). */
  verdict: 'identical' | 'differs' | 'unknown-writer' | 'not-checked';
  /** One line: the tar writer detected and how the layer was rebuilt, or why it was not. */
  detail?: string;
  sources?: LayerSources;
  /** reproduceLayer's verdict: the convention, the diffID and the digest levels. */
  reproduction?: LayerVerdict;
}

export interface LayerCheckInput {
  source: ImageSource;
  label: string;
  manifest: Manifest;
  config: ImageConfig;
  /** repro-oci's install of the image's packages (alive until the check returns), and its facts as compared. */
  tree: InstalledTree;
  installed: ReadonlyMap<string, InstalledFacts>;
  content: ContentReport;
  log: (message: string) => void;
}

/** The most of the image's own bytes one layer's rebuild keeps on disk (explained files are small: logs, keyrings). */
const MAX_KEPT_BYTES = 1024 ** 3;

/** Paths whose explained content cannot come from the packages, with why. */
function keptFromImage(content: ContentReport, installed: ReadonlyMap<string, InstalledFacts>): Set<string> {
  const kept = new Set<string>();
  for (const g of content.generatedPaths) if (g.status === 'identical' || g.status === 'not-regenerated') kept.add(g.path);
  for (const d of content.differs) if (d.backup) kept.add(d.path);
  // pacman's desc files that the content level found equal but for the install date: the image's.
  const differing = new Set(content.differs.map((d) => d.path));
  for (const path of installed.keys()) if (path.startsWith(`${LOCAL_DB_DIR}/`) && path.endsWith('/desc') && !differing.has(path)) kept.add(path);
  return kept;
}

/** The file node that holds a tree path's content (itself, or the file a hardlink shares). */
function contentNode(nodes: ReadonlyMap<string, TreeNode>, path: string): TreeNode | undefined {
  const node = nodes.get(path);
  const shared = node?.type === 'hardlink' ? nodes.get(node.linkTarget!) : node;
  return shared?.type === 'file' ? shared : undefined;
}

/** Writes `content` to `file` and returns its sha256. */
async function spool(content: AsyncIterable<Buffer>, file: string): Promise<string> {
  const hash = createHash('sha256');
  const tap = new Transform({ transform: (chunk: Buffer, _enc, done) => done(null, hash.update(chunk) && chunk) });
  await pipeline(content, tap, createWriteStream(file, { mode: 0o600 }));
  return hash.digest('hex');
}

async function sha256Of(content: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of content) hash.update(chunk);
  return hash.digest('hex');
}

/** The rebuilt layer's members (see the module comment), reading the original once, checked against its digest and diffID. */
async function rebuiltMembers(input: LayerCheckInput, index: number, diffId: Digest, scratch: string, kept: ReadonlySet<string>, nodes: ReadonlyMap<string, TreeNode>): Promise<{ entries: ForeignTarEntry[]; sources: LayerSources }> {
  const layer = input.manifest.layers[index]!;
  const what = `${input.label} layer ${index + 1}`;
  const sources: LayerSources = { packages: 0, image: 0, replaced: 0, omitted: 0 };
  const entries: ForeignTarEntry[] = [];
  let keptBytes = 0;
  await readLayer(input.source, layer, diffId, what, async (content) => {
    for await (const read of readTar(content, { what })) {
      const path = normalizeMemberPath(read.name);
      if (!path) {
        // The root (`./`) is written from the convention's record of it; a hostile name was refused when the image was merged.
        for await (const chunk of read.content()) void chunk;
        continue;
      }
      const entry: ForeignTarEntry = { path, type: read.type, mode: read.mode, uid: read.uid, gid: read.gid, mtime: read.mtime, size: read.size, ...foreignMetadata(read.pax) };
      if (read.linkTarget !== undefined) entry.linkTarget = read.type === 'hardlink' ? (normalizeMemberPath(read.linkTarget) ?? read.linkTarget) : read.linkTarget;
      if (read.devMajor !== undefined) Object.assign(entry, { devMajor: read.devMajor, devMinor: read.devMinor ?? 0 });
      if (read.xattrs) entry.xattrs = read.xattrs;
      if (read.uname) entry.uname = read.uname;
      if (read.gname) entry.gname = read.gname;
      const facts = input.installed.get(path);
      const explained = kept.has(path);
      const fromPackage = !explained && facts !== undefined && facts.type === read.type && read.type !== 'hardlink';
      if (read.type === 'file') {
        if (explained) {
          if ((keptBytes += read.size) > MAX_KEPT_BYTES) throw new LayerTooLarge(`more than ${MAX_KEPT_BYTES / 1024 ** 3} GiB of explained files to keep from the image`);
          const file = join(scratch, `${index}-${entries.length}`);
          await spool(read.content(), file);
          entry.open = () => createReadStream(file);
          sources.image++;
        } else {
          const actual = await sha256Of(read.content());
          const node = contentNode(nodes, path);
          if (!node?.open) {
            sources.omitted++;
            continue;
          }
          entry.open = node.open;
          entry.size = node.size;
          if (fromPackage && facts.sha256 === actual) sources.packages++;
          else sources.replaced++;
        }
      } else {
        for await (const chunk of read.content()) void chunk;
        if (read.type === 'hardlink' || path.split('/').pop()!.startsWith('.wh.')) {
          // A hardlink's content is its target's member's; a whiteout is the merged view's business, checked there.
        } else if (fromPackage) {
          if (read.type === 'symlink') entry.linkTarget = nodes.get(path)!.linkTarget!;
          sources.packages++;
        } else if (explained) {
          sources.image++;
        } else if (facts !== undefined) {
          sources.replaced++; // another type than the package's: kept, the diffID differs only if the bytes do
        } else {
          sources.omitted++;
          continue;
        }
      }
      if (fromPackage && read.type !== 'symlink') Object.assign(entry, { mode: facts.mode, uid: facts.uid, gid: facts.gid });
      entries.push(entry);
    }
  });
  return { entries, sources };
}

class LayerTooLarge extends Error {}

function describeSources(s: LayerSources): string {
  const parts = [`${s.packages.toLocaleString('en-US')} members from the packages`, `${s.image.toLocaleString('en-US')} explained kept as the image has them`];
  if (s.replaced) parts.push(`${s.replaced.toLocaleString('en-US')} unexplained given the package's content`);
  if (s.omitted) parts.push(`${s.omitted.toLocaleString('en-US')} unexplained left out`);
  return `${parts.join(', ')}; timestamps and owner names as the layer records them`;
}

export async function checkLayers(input: LayerCheckInput): Promise<LayerCheck[]> {
  const diffIds = layerDiffIds(input.manifest, input.config, `${input.label} manifest`);
  const kept = keptFromImage(input.content, input.installed);
  const nodes = new Map(input.tree.entries.map((n) => [n.path, n]));
  const checks: LayerCheck[] = [];
  for (const [i, layer] of input.manifest.layers.entries()) {
    const check: LayerCheck = { layer: i + 1, digest: layer.digest, diffId: diffIds[i]!, verdict: 'not-checked' };
    checks.push(check);
    const scratch = await makeScratchDir('layer-check');
    try {
      input.log(`rebuilding layer ${i + 1} (${layer.digest}) in its writer's conventions`);
      const { entries, sources } = await rebuiltMembers(input, i, diffIds[i]!, scratch.path, kept, nodes);
      const blob = { digest: layer.digest, size: layer.size, mediaType: layer.mediaType, open: async function* () { yield* await input.source.openBlob(layer); } };
      const reproduction = await reproduceLayer(entries, blob, diffIds[i]!, { what: `${input.label} layer ${i + 1}` });
      const verdict = reproduction.diffID.verdict;
      Object.assign(check, {
        verdict: verdict === 'unknown writer' ? 'unknown-writer' : verdict,
        detail: `${reproduction.convention.summary}; ${describeSources(sources)}`,
        sources,
        reproduction,
      });
    } catch (err) {
      if (!(err instanceof LayerTooLarge)) throw err;
      check.detail = err.message;
    } finally {
      await scratch.cleanup();
    }
  }
  return checks;
}
